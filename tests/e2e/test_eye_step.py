"""pipeline/steps/eye.py, pipeline/eye_page.py:
The eye step end to end: a scripted rater answers a blind set through the page's own keys in headless
Chromium; the step is killed mid-session and resumed with every answer kept; the logged run's table and
metrics match the rater's own count; a random rater gives kappa near 0 and about half taken for real; the
report shows the third judge and the by-eye section; bad input exits 2 with nothing logged."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from analysis import browser
from pipeline.core.judges import eye as judging
from tests.conftest import mlflow_run_command
from tests.e2e import report_study as rs

pytestmark = pytest.mark.slow

N = 16  # per experiment: E1-E3 of the trained model (32 kept random samples each), and 16 real digits
IMAGES = 4 * N
SCREENSHOT_ENV = "VAE_EYE_SCREENSHOT"  # where the test saves the page's screenshot (docs/images/eye-page.png)
KEYS = [*"0123456789", "n"]
SAMPLERS = "normal:0,1+normal:1,2+beta:0.25,0.25"  # E1-E3: the trained model's own, without gmm:10


@pytest.fixture(scope="module")
def study(tracking, prepared_run_id, trained_run_id):
    """A real evaluate run of the shared trained model, and a main run naming it (main/steps.json's contract)."""
    result = tracking.python_step(
        "evaluate",
        "--model",
        trained_run_id,
        "--samplers",
        SAMPLERS,
        "--n_samples",
        "64",
        "--iwae_k",
        "2",
        "--device",
        "cpu",
    )
    evaluate_id = rs.run_id(result)
    steps = [
        rs.step_record("prepare_data", prepared_run_id),
        rs.step_record("train", trained_run_id, cell="bce-standard", seed=0),
        rs.step_record("evaluate", evaluate_id, cell="bce-standard", seed=0, train_run_id=trained_run_id),
    ]
    main_id = rs.write_main_run(tracking.client, tracking.experiment_id, steps, name="main eye")
    return {"main": main_id, "evaluate": evaluate_id}


def test_without_a_session_the_report_says_in_one_line_how_to_run_one(study, tmp_path):
    from analysis import eye

    section = eye.section(study["main"], eye.session_answers(study["main"], tmp_path))
    assert section.hint == eye.HINT.format(main=study["main"]) and not section.tables


class Step:
    """The eye step in its own process group, its page address read from its output."""

    def __init__(self, command: list[str], env: dict, cwd: Path):
        self.process = subprocess.Popen(
            command,
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        for line in self.process.stdout:
            self.lines.append(line)
            found = re.search(r"eye: the page is at (http://\S+/) ", line)
            if found:
                self.url = found.group(1)
                return
        raise AssertionError("the step ended without serving the page:\n" + "".join(self.lines[-40:]))

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def finish(self) -> str:
        self.lines += list(self.process.stdout)
        assert self.process.wait(timeout=300) == 0, "".join(self.lines[-60:])
        return "".join(self.lines)


@pytest.fixture(scope="module")
def chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser.find_executable(browser.CHROMIUM, "REPORT_CHROMIUM")
    for flag in (*browser.FLAGS, "--window-size=900,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(
        service=Service(browser.find_executable(browser.CHROMEDRIVER, "REPORT_CHROMEDRIVER")), options=options
    )
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def wait_for(driver, condition):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, 60).until(lambda d: d.execute_script(condition))


class Rater:
    """A scripted rater who answers at random (seeded), pressing the page's keys, and keeps its own record."""

    def __init__(self, seed: int):
        self.random = random.Random(seed)
        self.given: dict[str, tuple[int, str]] = {}

    def answer(self, driver, count: int) -> None:
        from selenium.webdriver.common.action_chains import ActionChains

        for _ in range(count):
            answered = int(driver.execute_script("return document.body.dataset.answered"))
            image_id = driver.execute_script("return document.getElementById('image').dataset.id")
            key = self.random.choice(KEYS)
            says = self.random.choice("rg")
            ActionChains(driver).send_keys(key).send_keys(says).perform()
            wait_for(driver, f"return document.body.dataset.answered === '{answered + 1}'")
            self.given[image_id] = (-1 if key == "n" else int(key), "real" if says == "r" else "generated")

    def undo_one(self, driver) -> None:
        """Answer the shown image, then take it back with u: the same image is shown again."""
        from selenium.webdriver.common.action_chains import ActionChains

        answered = int(driver.execute_script("return document.body.dataset.answered"))
        image_id = driver.execute_script("return document.getElementById('image').dataset.id")
        ActionChains(driver).send_keys("7").send_keys("r").perform()
        wait_for(driver, f"return document.body.dataset.answered === '{answered + 1}'")
        ActionChains(driver).send_keys("u").perform()
        wait_for(driver, f"return document.body.dataset.answered === '{answered}'")
        assert driver.execute_script("return document.getElementById('image').dataset.id") == image_id


def open_page(driver, url: str) -> None:
    driver.get(url)
    wait_for(driver, "return document.body.dataset.answered !== undefined && document.getElementById('image').complete")


@pytest.fixture(scope="module")
def session(tracking, study, chromium, tmp_path_factory):
    """A session killed after 20 answers (python -m pipeline eye) and resumed (mlflow run . -e eye)."""
    params = {"source": study["main"], "n_per_experiment": N, "rater": "scripted", "port": 0, "seed": 1}
    rater = Rater(seed=7)
    first = Step(
        [sys.executable, "-m", "pipeline", "eye", *[f"--{k}={v}" for k, v in params.items()]],
        tracking.env(),
        tracking.root,
    )
    open_page(chromium, first.url)
    page = {
        "html": chromium.page_source,
        "state": chromium.execute_script("return fetch('/state').then(r => r.json())"),
    }
    assert chromium.find_element("id", "progress-text").text == f"0 of {IMAGES} answered"
    rater.answer(chromium, 12)
    rater.undo_one(chromium)
    rater.answer(chromium, 8)
    wait_for(chromium, "return document.getElementById('image').complete")
    screenshot = os.environ.get(SCREENSHOT_ENV)
    if screenshot:
        chromium.save_screenshot(screenshot)
    first.kill()
    chromium.get_log("browser")  # what the first page logged; the resumed page's errors are read below

    second = Step(mlflow_run_command("eye", params, tracking.experiment_id), tracking.env(), tracking.root)
    open_page(chromium, second.url)
    resumed = chromium.find_element("id", "progress-text").text
    rater.answer(chromium, IMAGES - 20)
    wait_for(chromium, "return document.body.dataset.done === 'true'")
    errors = [e["message"] for e in chromium.get_log("browser") if e.get("level") == "SEVERE"]
    output = second.finish()
    run_id = re.findall(r"=== Run \(ID '([0-9a-f]{32})'\) succeeded ===", output)[-1]
    return {"run_id": run_id, "rater": rater, "resumed": resumed, "page": page, "errors": errors, "output": output}


def logged_rows(client, run_id: str) -> list[dict]:
    table = json.loads(Path(client.download_artifacts(run_id, "eye/answers.json")).read_text())
    return [dict(zip(table["columns"], values)) for values in table["data"]]


def test_a_killed_session_resumes_and_the_logged_table_holds_every_answer_given(tracking, study, session):
    assert session["resumed"] == f"20 of {IMAGES} answered"
    run = tracking.client.get_run(session["run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["pipeline.step"] == "eye"
    assert run.data.tags["mlflow.parentRunId"] == study["main"] and run.data.tags["eye.rater"] == "scripted"
    rows = logged_rows(tracking.client, session["run_id"])
    assert len(rows) == IMAGES and len({r["image_id"] for r in rows}) == IMAGES
    given = {r["image_id"]: (r["eye_digit"], r["eye_says"]) for r in rows}
    assert given == session["rater"].given  # the 20 before the kill (the undone answer replaced) and the rest
    kinds = [(r["kind"], r["experiment"]) for r in rows]
    assert sorted(set(kinds)) == [("generated", "E1"), ("generated", "E2"), ("generated", "E3"), ("real", "")]
    assert all(kinds.count(k) == N for k in set(kinds))
    assert not session["errors"], session["errors"]


def test_the_metrics_match_a_hand_count_and_a_random_rater_is_at_chance(tracking, session):
    rows = logged_rows(tracking.client, session["run_id"])
    metrics = tracking.client.get_run(session["run_id"]).data.metrics
    for experiment in ("E1", "E2", "E3"):
        own = [r for r in rows if r["experiment"] == experiment]
        taken = sum(session["rater"].given[r["image_id"]][1] == "real" for r in own)
        none = sum(session["rater"].given[r["image_id"]][0] == -1 for r in own)
        assert metrics[f"eye_real/{experiment}"] == taken / N
        assert metrics[f"eye_no_digit/{experiment}"] == none / N
        low, high = judging.share(taken, N).low, judging.share(taken, N).high
        assert (metrics[f"eye_real/{experiment}_low"], metrics[f"eye_real/{experiment}_high"]) == (low, high)
    real = [r for r in rows if r["kind"] == "real"]
    right = sum(session["rater"].given[r["image_id"]][0] == r["label"] for r in real)
    assert metrics["eye_accuracy_real"] == right / N
    generated = [r for r in rows if r["kind"] == "generated"]
    taken = sum(r["eye_says"] == "real" for r in generated) / len(generated)
    kappa = judging.kappa([r["eye_digit"] for r in generated], [r["cnn"] for r in generated])
    assert 0.3 < taken < 0.7 and abs(kappa) < 0.2, (taken, kappa)


def test_the_page_never_says_what_an_image_is(tracking, study, session):
    rows = logged_rows(tracking.client, session["run_id"])
    assert set(session["page"]["state"]) == {"rater", "total", "answered", "current", "done"}
    html = session["page"]["html"]
    for secret in ("E1", "E2", "E3", "normal", "beta", "experiment", study["main"], study["evaluate"]):
        assert secret not in html and secret not in json.dumps(session["page"]["state"]), secret
    assert re.findall(r"/image/([0-9a-f]+)\.png", html) == [session["page"]["state"]["current"]]
    assert session["page"]["state"]["current"] == rows[0]["image_id"]  # the first of the shuffled set


def test_bad_input_exits_2_naming_the_parameter_and_logs_nothing(tracking, study, session):
    before = len(tracking.client.search_runs([tracking.experiment_id], max_results=1000))
    cases = [
        (["--source", study["evaluate"], "--n_per_experiment", "33"], "parameter 'n_per_experiment'", "1 to 32"),
        (["--source", "f" * 32], "parameter 'source'", "allowed: "),
        (
            ["--source", study["main"], "--n_per_experiment", str(N), "--seed", "1", "--rater", "scripted"],
            "parameter 'replace'",
            "yes",
        ),
    ]
    for args, name, allowed in cases:
        result = tracking.python_step("eye", *args)
        assert result.returncode == 2 and name in result.stderr and allowed in result.stderr, result.stderr
    assert len(tracking.client.search_runs([tracking.experiment_id], max_results=1000)) == before


def test_the_report_shows_the_third_judge_and_the_by_eye_section(tracking, study, session, tmp_path):
    result = tracking.python_step("report", "--source", study["main"], "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    html = (tmp_path / "report.html").read_text()
    assert "<h3 id='by-eye'>By eye: a person as the third judge</h3>" in html and "eye-hint" not in html
    rows = logged_rows(tracking.client, session["run_id"])
    for experiment in ("E1", "E2", "E3"):
        own = [r for r in rows if r["experiment"] == experiment]
        taken = judging.share(sum(r["eye_says"] == "real" for r in own), N).text()
        table = re.search(f"<table class='eye' data-experiment='{experiment}'>(.*?)</table>", html, re.S).group(1)
        eye_row = re.search(r"<tr><td class='name'>eye</td>(.*?)</tr>", table).group(1)
        assert f"<td class='name'>{taken}</td>" in eye_row, (experiment, eye_row, taken)
        line = re.search(f"<li>{experiment}: (.*?)</li>", html).group(1)
        assert f"; by eye ({N} images, 1 rater): " in line, line
    assert "scripted: named the true digit of" in html
    assert "labelled CNN/k-NN/eye" in html  # the images the classifiers dispute, with the eye's answers
    report_run = re.search(r"run id: ([0-9a-f]{32})", result.stdout).group(1)
    assert tracking.client.get_run(report_run).data.tags["report.browser_check"].startswith("passed:")


def test_a_second_session_of_a_rater_replaces_the_first_only_when_asked(tracking, study, session):
    """The logged answers file, given back complete, logs at once (no page); with replace=yes the newer
    session replaces the older, which stays, tagged."""
    from analysis import eye
    from pipeline.tracking.sessions import eye_sessions

    logged = sorted((tracking.root / "eye-answers").glob(f"{study['main']}-*-scripted.logged-*.jsonl"))
    assert len(logged) == 1 and not list((tracking.root / "eye-answers").glob("*-scripted.jsonl"))
    args = ["--source", study["main"], "--n_per_experiment", str(N), "--seed", "1", "--rater", "scripted"]
    result = tracking.python_step("eye", *args, "--answers", str(logged[0]), "--replace", "yes")
    assert result.returncode == 0 and "the page is at" not in result.stdout, result.stdout + result.stderr
    newer = rs.run_id(result)
    assert tracking.client.get_run(session["run_id"]).data.tags["eye.replaced_by"] == newer
    assert [run.info.run_id for run in eye_sessions(study["main"])] == [newer]
    assert logged_rows(tracking.client, newer) == logged_rows(tracking.client, session["run_id"])
    assert eye.session_answers(study["main"], tracking.root / "downloads").rows == logged_rows(tracking.client, newer)
