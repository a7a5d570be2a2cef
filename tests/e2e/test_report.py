"""The report step end to end on a tiny real study (tests/e2e/report_study.py): the files on both runs,
the tables against the evaluate runs, the verdicts on two judges, the convergence warning, provenance."""

from __future__ import annotations

import base64
import html as html_module
import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from tests.conftest import REPO
from tests.e2e import report_study as rs
from tests.helpers import artifact_paths

# --- a tiny real study --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tracking(tiny_study):
    """This file's store: the tiny study's (tests/conftest.py's `tiny_study`), shared with the UI's tests."""
    return tiny_study[0]


@pytest.fixture(scope="module")
def study(tiny_study):
    """The tiny real study (tests/e2e/report_study.py): 2 cells x 2 seeds, trained and evaluated, and its main run."""
    return tiny_study[1]


@pytest.fixture(scope="module")
def reported(tracking, study, tmp_path_factory):
    """`mlflow run . -e report -P source=<main run id>` on the tiny study."""
    output = tmp_path_factory.mktemp("report-out")
    run_id, log = tracking.mlflow_run("report", {"source": study["main"], "output": output})
    html, markdown = (output / "report.html").read_text(), (output / "report.md").read_text()
    return {"run_id": run_id, "output": output, "html": html, "markdown": markdown, "page": rs.Page(html), "log": log}


@pytest.mark.slow
def test_report_run_writes_and_logs_the_files_on_both_runs(tracking, study, reported):
    client = tracking.client
    run = client.get_run(reported["run_id"])
    assert run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags["pipeline.step"] == "report" and tags["mlflow.parentRunId"] == study["main"]
    assert tags["report.browser_check"].startswith("passed:"), tags["report.browser_check"]
    assert run.data.params["source"] == study["main"]
    output = reported["output"]
    for name in ("report.html", "report.md", "report.png"):
        assert (output / name).stat().st_size > 0
    assert (output / "report.png").read_bytes().startswith(b"\x89PNG")
    for run_id in (reported["run_id"], study["main"]):
        logged = set(artifact_paths(client, run_id, "report"))
        assert {"report/report.html", "report/report.md", "report/report.png"} <= logged, run_id
        assert any(path.startswith("report/images/") for path in logged)
    logged_html = Path(client.download_artifacts(study["main"], "report/report.html")).read_text()
    assert logged_html == reported["html"]


@pytest.mark.slow
def test_the_main_runs_page_shows_the_verdict_table_and_links_the_report(tracking, study, reported):
    """The main run's description (the UI renders it as Markdown on the run's page) is the report's verdict
    table, as report.md has it, and a link to report/report.html in the UI's model-training view."""
    note = tracking.client.get_run(study["main"]).data.tags["mlflow.note.content"]
    table, link = note.strip().split("\n\n")
    assert table.splitlines()[0] == "| finding | the write-up says | verdict | the numbers, clause by clause |"
    assert [line.split(" | ")[0] for line in table.splitlines()[2:]] == [f"| **{f}**" for f in rs.FINDINGS]
    assert table in reported["markdown"]
    route = f"#/experiments/{tracking.experiment_id}/runs/{reported['run_id']}/artifacts/report/report.html"
    assert link.endswith(f"[report/report.html]({route}?workflowType=machine_learning)")


@pytest.mark.slow
def test_the_table_holds_every_experiment_with_mean_and_std_from_the_evaluate_runs(tracking, study, reported):
    page = reported["page"]
    assert len(page.tables) == 1
    table = page.tables[0]
    names = [e["name"] for e in rs.experiments()]
    assert set(table["rows"]) == set(names) and len(names) == 8
    assert {"E1", "E2", "E3", "E4", "bce-standard gmm:10", "mse-standard normal:0,1"} <= set(table["rows"])
    client = tracking.client
    runs = {key: client.get_run(evaluate).data for key, (evaluate, _) in study["evaluations"].items()}
    evaluations = {key: evaluate for key, (evaluate, _) in study["evaluations"].items()}
    assert table["settings"] == runs[("bce-standard", 0)].tags["scores.settings"]
    appendix = page.appendix[0]
    assert len(page.appendix) == 1 and appendix["settings"] == table["settings"] and set(appendix["rows"]) == set(names)
    for experiment in rs.experiments():
        shown_in = {"fid": table, "precision": table, "class_entropy": table, "sharpness": table}
        for metric, shown in {**shown_in, "coverage": appendix, "max_class_share_confident": appendix}.items():
            key = experiment["sampler_key"]
            values = [
                rs.sampler_data(client, evaluations[(experiment["cell"], seed)], key).metrics[metric]
                for seed in rs.SEEDS
            ]
            text, _ = shown["rows"][experiment["name"]][metric]
            assert text.removesuffix(" ★") == rs.stats_text(values), (experiment["name"], metric)
    # the model's own nll: once per model cell, on the cell's first row (the others span it)
    nll = [runs[("mse-standard", seed)].metrics["nll"] for seed in rs.SEEDS]
    assert table["rows"]["mse-standard normal:0,1"]["nll"][0] == rs.stats_text(nll)
    assert [name for name, cells in table["rows"].items() if "nll" in cells] == ["E1", "mse-standard normal:0,1"]
    assert len(next(iter(table["rows"].values()))) <= 9  # at most 9 headline metrics


@pytest.mark.slow
def test_the_best_mark_is_on_the_real_best_mean(tracking, study, reported):
    table = reported["page"].tables[0]
    client = tracking.client
    runs = {
        (cell, seed, e["sampler_key"]): rs.sampler_data(client, evaluate, e["sampler_key"]).metrics
        for (cell, seed), (evaluate, _) in study["evaluations"].items()
        for e in rs.experiments()
        if e["cell"] == cell
    }

    def mean(experiment, metric):
        return np.mean([runs[(experiment["cell"], s, experiment["sampler_key"])][metric] for s in rs.SEEDS])

    experiments = rs.experiments()
    appendix = reported["page"].appendix[0]
    for metric, pick, shown in (("fid", min, table), ("precision", max, table), ("coverage", max, appendix)):
        best = pick(mean(e, metric) for e in experiments)
        expected = {e["name"] for e in experiments if math.isclose(mean(e, metric), best, rel_tol=1e-12)}
        marked = {name for name, cells in shown["rows"].items() if cells[metric][1]}
        assert marked == expected, metric
        assert all(shown["rows"][name][metric][0].endswith("★") for name in marked)
    for shown in (table, appendix):  # best is closest to the real digits: never starred (noise is sharp too)
        for name, cells in shown["rows"].items():
            for metric in ("sharpness", "class_entropy", "nll"):
                assert metric not in cells or not cells[metric][1] and "★" not in cells[metric][0], (name, metric)


@pytest.mark.slow
def test_all_six_verdicts_are_on_the_page_with_their_numbers(tracking, study, reported):
    html = reported["html"]
    for finding in rs.FINDINGS:
        assert f"id='{finding}'" in html, finding
    words = rs.verdict_words(html)
    assert words["F5"] == "not measured"  # no sampled-params cell in this study
    f6 = re.search(r"<tr data-finding='F6'>(.*?)</tr>", html, flags=re.S).group(1)
    assert "E5 less diverse than E1: not measured (coverage not measured)" in f6
    # the one vocabulary, qualified by each clause's word or the models' convergence
    heads = {re.split(r":|;| \(| —", word)[0] for word in words.values()}
    assert heads <= {"holds", "contradicted", "in part", "unsettled", "not measured"}, words
    f4 = re.search(r"<tr data-finding='F4'>(.*?)</tr>", html, flags=re.S).group(1)
    client = tracking.client
    disputes = re.search(r"<ul class='disputes'>(.*?)</ul>", html, flags=re.S).group(1)
    assert disputes.count("<li>E3: ") == 1 and disputes.count("<li>E4: ") == 1  # each said once
    # E3's kappa and each judge's dominant digit, seed by seed, are those its evaluations logged
    logged = [rs.sampler_data(client, study["evaluations"][("bce-standard", s)][0], "beta_0.25_0.25") for s in rs.SEEDS]
    e3_line = re.search(r"<li>E3: (.*?)</li>", disputes).group(1)
    assert e3_line.startswith(f"κ {rs.stats_text([data.metrics['judges_kappa'] for data in logged])}; "), e3_line
    cnn, knn = (", ".join(data.tags[tag] for data in logged) for tag in ("max_class", "max_class_judge2"))
    assert f"dominant digit CNN {cnn} (seeds 0, 1); k-NN {knn}" in e3_line
    e3 = [
        rs.sampler_data(client, study["evaluations"][("bce-standard", s)][0], "beta_0.25_0.25").metrics["sharpness"]
        for s in rs.SEEDS
    ]
    e4 = [
        rs.sampler_data(client, study["evaluations"][("mse-standard", s)][0], "beta_0.25_0.25").metrics["sharpness"]
        for s in rs.SEEDS
    ]
    m4, m3 = rs.means_text(e4, e3).split(" vs ")  # the primary's means, rounded alike, then its raw and Holm p
    assert re.search(
        rf"E4 sharper than E3: [a-z -]+ \(sharpness {re.escape(m4)} vs {re.escape(m3)}, p [^ ]+ \(Holm ", f4
    ), f4
    assert "paired, seed by seed (scipy.stats.ttest_rel)" in html  # the rule is written on the page


@pytest.mark.slow
def test_each_part_gives_its_difference_and_95_percent_interval_as_scipy_computes_it(tracking, study, reported):
    html = reported["html"]
    table, rows = rs.part_rows(html)
    assert all(row[1][0] in "✓✗~?·" for row in rows)
    assert re.findall(r"<tr id='(F\d)'>", table) == list(rs.FINDINGS)  # each finding's first part row
    client = tracking.client

    def values(cell, key, metric):
        return [data.metrics[metric] for data in rs.over_seeds(client, study, cell, key).values()]

    # F1, E1 covers most digits, by the CNN: its primary, a one-sample t of the 8th digit's share against 1/20
    name = "the 8th most frequent digit's share (primary, CNN)"
    covered = next(row for row in rows if "E1 covers most digits" in row[1] and html_module.unescape(row[2]) == name)
    cnn = values("bce-standard", "normal_0_1", "most_digits_share")
    difference, low, high = rs.part_interval(covered[4])
    step = 10.0 ** -rs.decimals_of(cnn)
    assert difference == pytest.approx(np.mean(cnn) - 0.05, abs=step)
    if np.std(cnn) > 0:
        scipy_low, scipy_high = stats.ttest_1samp(cnn, 0.05).confidence_interval(0.95)
        assert (low, high) == pytest.approx((scipy_low - 0.05, scipy_high - 0.05), abs=step)
    # the classes covered beside it: a count, by the exact sign test, never a t interval
    count = next(
        row for row in rows if "E1 covers most digits" in row[1] and row[2] == "classes covered (secondary, CNN)"
    )
    assert ", sign test, p " in count[4] and "95 % CI" not in count[4]
    # F2, E2 against E1 on FID: one model cell, so paired seed by seed
    fid = next(row for row in rows if "E2 less realistic than E1" in row[1] and row[2].startswith("FID"))
    e2, e1 = values("bce-standard", "normal_1_2", "fid"), values("bce-standard", "normal_0_1", "fid")
    scipy_low, scipy_high = stats.ttest_rel(e2, e1).confidence_interval(0.95)
    difference, low, high = rs.part_interval(fid[4])
    spread = float(np.std(np.subtract(e2, e1), ddof=1))
    step = 10.0 ** -rs.decimals_of(e2, e1)  # the printed rounding
    assert difference == pytest.approx(np.mean(e2) - np.mean(e1), abs=step)
    assert (low, high) == pytest.approx((scipy_low, scipy_high), abs=step), spread
    assert "paired t, df 1" in fid[4]
    # F4 under N(0,1): two model cells, so Welch's t
    welch = next(
        row for row in rows if "MSE sharper than BCE under N(0,1)" in row[1] and row[2] == "sharpness (primary)"
    )
    assert "Welch t" in welch[4]
    markdown = reported["markdown"]
    assert (
        "| finding | clause | metric | A vs B (mean ± sd over seeds) | A − B [95 % CI], test, df: outcome |" in markdown
    )
    lines = markdown.splitlines()
    assert sum(line.startswith(f"| **{f}** |") for f in rs.FINDINGS for line in lines) == 6  # the verdict table
    assert sum(line.startswith(f"| **{f}**: ") for f in rs.FINDINGS for line in lines) == 6  # each first part row


@pytest.mark.slow
def test_two_epoch_models_make_the_page_open_with_a_warning_and_every_verdict_preliminary(tracking, study, reported):
    html = reported["html"]
    body = html[html.index("<body>") :]
    assert body.index("id='convergence-warning'") < body.index("<h2")  # before any section
    warning = re.search(r"id='convergence-warning'><b>(.*?)</b>", html).group(1)
    assert warning.startswith("Warning: 4 of the trained models behind the verdicts were still improving fast")
    assert "The verdicts on F1, F2, F3, F4, F6 are preliminary" in warning
    for cell, seed in ((c, s) for c in ("bce-standard", "mse-standard") for s in rs.SEEDS):
        assert f"{cell} seed {seed}: still improving (val loss" in warning
    words = rs.verdict_words(html)
    for finding in ("F1", "F2", "F3", "F4", "F6"):  # F5 needs the sampled-params cell: not measured
        assert words[finding].endswith(" — preliminary: models still improving"), (finding, words[finding])
    assert "preliminary" not in words["F5"]
    assert html.count("<td class='name'>still improving (val loss") == 4  # the runs table's column, train runs


@pytest.mark.slow
def test_the_page_names_no_path_of_the_machine(tracking, reported):
    markdown = reported["markdown"]
    for text in (reported["html"], markdown):
        assert str(tracking.root) not in text and "/tmp/" not in text and str(Path.home()) + "/" not in text
        assert "sqlite:///mlflow.db" in text  # the tracking URI without its local folder


@pytest.mark.slow
def test_the_page_is_self_contained(reported):
    page = reported["page"]
    panels = len(re.findall(r"\(images/disputed_\w+\.png\)", reported["markdown"]))
    assert len(page.images) == 4 + panels  # the samples figure, loss curves, latent map, interpolations; disputes
    assert all(src.startswith("data:image/png;base64,") for src in page.images)
    assert not [h for h in page.hrefs if re.match(r"^(https?:)?//", h)], "no external fetch"
    assert "script" not in page.tags and "link" not in page.tags and "@import" not in reported["html"]
    assert all(h.startswith("#/experiments/") for h in page.hrefs)  # a local store: relative UI paths
    markdown = reported["markdown"]
    headings = ("Samples", "The experiments and the findings", "Metrics", "Verdicts part by part", "Loss curves")
    for heading in (*headings, "The latent space", "Provenance", "Appendix: every score"):
        assert f"\n## {heading}\n" in markdown and f">{heading}</h2>" in reported["html"]
    for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown):
        assert (reported["output"] / target).read_bytes().startswith(b"\x89PNG"), target


@pytest.mark.slow
def test_the_disputed_digits_are_those_of_the_seed_with_the_most_samples_in_dispute(tracking, study, reported):
    from pipeline.core.model.samplers import parse_sampler

    captions = re.findall(
        r"<figcaption>(E\d) \(([^)]+)\), training seed (\d+): (\d+)% of (\d+) samples", reported["html"]
    )
    assert captions  # two-epoch models: the judges dispute some experiments' digits
    cells = {"E1": "bce-standard", "E2": "bce-standard", "E3": "bce-standard", "E4": "mse-standard"}
    for name, spec, seed, share, _total in captions:
        key = parse_sampler(spec).key
        runs = rs.over_seeds(tracking.client, study, cells[name], key)
        disputed = {s: data.metrics["samples_in_dispute"] for s, data in runs.items()}
        assert int(seed) == max(disputed, key=lambda s: (disputed[s], -s)), (name, disputed)
        assert (
            int(share) == round(100 * disputed[int(seed)])
            and (reported["output"] / "images" / f"disputed_{name}.png").exists()
        )
    keys = {"E1": "normal_0_1", "E2": "normal_1_2", "E3": "beta_0.25_0.25", "E4": "beta_0.25_0.25"}
    runs = {name: rs.over_seeds(tracking.client, study, cells[name], key).values() for name, key in keys.items()}
    disputed = {
        name for name, data in runs.items() if any(d.tags["max_class"] != d.tags["max_class_judge2"] for d in data)
    }
    assert disputed <= {name for name, *_ in captions}  # judges naming different dominant digits: a panel


@pytest.mark.slow
def test_the_samples_are_one_figure_with_a_column_per_experiment(tracking, study, reported):
    from analysis import figures

    client = tracking.client
    for evaluate, _ in study["evaluations"].values():
        paths = artifact_paths(client, evaluate, "evaluation")
        for experiment in rs.experiments():
            assert f"evaluation/{experiment['sampler_key']}/grid.png" in paths, (evaluate, experiment["sampler_key"])
    page = reported["page"]
    samples = [src for src, alt in zip(page.images, page.alts) if alt.startswith("sample grids")]
    assert len(samples) == 1
    assert samples[0].startswith("data:image/png;base64,")
    png = base64.b64decode(samples[0].removeprefix("data:image/png;base64,"))
    width, height = rs.png_size(png)
    experiments = len(rs.experiments())  # 8: 5 in the first row, 3 in the second
    columns = min(experiments, figures.SAMPLE_COLUMNS)
    rows = -(-experiments // columns)
    assert width >= columns * rs.MIN_COLUMN_PX, width
    assert height >= rows * width / columns, (width, height)  # grid and histogram stacked in each column
    markdown = reported["markdown"]
    assert markdown.count("(images/samples.png)") == 1
    assert (reported["output"] / "images" / "samples.png").read_bytes() == png
    evaluate = study["evaluations"][("bce-standard", 0)][0]
    assert f"E1: bce-standard, sampler normal:0,1, training seed 0 (evaluate run {evaluate[:8]})" in reported["html"]
    assert "Training seed 0" in reported["html"] and "older code" not in reported["html"]


@pytest.mark.slow
def test_provenance_names_code_version_data_and_runs(tracking, study, reported):
    html = reported["html"]
    markdown = reported["markdown"]
    client = tracking.client
    train = client.get_run(study["steps"][1]["run_id"])
    classifier = client.get_run(study["evaluations"][("bce-standard", 0)][0]).data.tags["classifier_run_id"]
    versions = {}  # the runs' code versions, short: content hash at commit (+dirty), as provenance prints them
    for step in study["steps"][1:]:
        tags = client.get_run(step["run_id"]).data.tags
        version = tags["pipeline.code_version"].removeprefix("code:")
        commit = tags["pipeline.code_commit"]
        short = version[:7] + (f" at {commit[:7]}" if commit != "none" else "")
        versions[version] = short + ("+dirty" if tags["pipeline.code_dirty"] == "true" else "")
    title = re.search(r"code (.+)$", markdown.splitlines()[0]).group(1)
    assert title in versions.values() and re.search(rf"<h1>[^<]*code {re.escape(title)}</h1>", html)
    for text in (html, markdown):
        assert not [version for version in versions if version in text]  # short hashes only
        assert train.data.params["data_digest"][:12] in text and train.data.params["data_digest"] not in text
        assert "the run that wrote this report" in text and "RUNNING" not in text
    assert markdown.count("n_samples=200 iwae_k=3 seed=0") == 1  # the evaluation settings, stated once
    assert markdown.count(f"classifier={classifier[:8]}") == 1 and classifier not in markdown.replace(
        "/runs/" + classifier, ""
    )
    assert "| classifier |" in markdown  # the classifier run is listed, with its code version counted
    assert client.get_run(classifier).data.tags["pipeline.code_version"]  # the judges' code version is recorded
    for step in study["steps"]:
        assert f"#/experiments/{tracking.experiment_id}/runs/{step['run_id']}" in html


@pytest.mark.slow
def test_the_verdict_table_opens_the_page_and_the_screenshot(tracking, reported):
    """Title, setup line, convergence line, then the verdict table: the first table of the HTML and of the
    Markdown, and in the browser within the first 1,000 pixels."""
    from analysis import browser

    html, markdown = reported["html"], reported["markdown"]
    body = html[html.index("<body>") :]
    assert body.index("<h1>") < body.index("id='setup'") < body.index("id='convergence") < body.index("<table")
    assert re.search(r"<table[^>]*>", body).group(0) == "<table class='verdicts' id='verdict-table'>"
    lines = markdown.splitlines()
    assert lines[0].startswith("# VAE study report: preset quick, ") and lines[2].startswith("Setup: data mnist-5k")
    first_table = next(line for line in lines if line.startswith("|"))
    assert first_table == "| finding | the write-up says | verdict | the numbers, clause by clause |"
    checked = browser.check(reported["output"] / "report.html")
    assert checked.passed, checked.summary()
    assert checked.first_table["id"] == "verdict-table" and checked.first_table["bottom"] <= 1000, checked.first_table


@pytest.mark.slow
def test_unlike_settings_land_in_separate_tables_and_a_source_can_be_an_experiment(tracking, study, tmp_path):
    """A second main run whose seed-1 evaluations used other settings; found by experiment name,
    reported without a browser (REPORT_CHROMIUM names no file)."""
    client = tracking.client
    settings_store = tracking.in_experiment("report-settings")
    experiment = settings_store.experiment_id
    steps = [s for s in study["steps"] if not (s["step"] == "evaluate" and s["seed"] == 1)]
    other = {}
    for loss, forward in rs.CELLS:
        cell = f"{loss}-{forward}"
        train = study["evaluations"][(cell, 1)][1]
        # into this main run's experiment: the study's holds one evaluation per seed (the UI's tests group it)
        other[cell] = rs.evaluate(settings_store, train, rs.OTHER_SETTINGS, "--copy_scores", "skip")
        steps.append(rs.step_record("evaluate", other[cell], cell=cell, seed=1, train_run_id=train))
    expected = rs.write_main_run(client, experiment, steps)
    unfinished = client.create_run(experiment, tags={"pipeline.step": "main"}).info.run_id  # newer, but RUNNING
    client.log_dict(unfinished, {"steps": []}, "main/steps.json")
    planless = client.create_run(experiment, tags={"pipeline.step": "main"}).info.run_id  # newer, but no plan
    client.set_terminated(planless, "FINISHED")

    env = {**tracking.env(), "REPORT_CHROMIUM": str(tmp_path / "no-chromium")}
    env.pop("MLFLOW_EXPERIMENT_ID")  # no experiment chosen: the report run goes beside its main run
    result = tracking.python_step(
        "report", "--source", "report-settings", "--output", str(tmp_path / "out"), env=env, cwd=REPO
    )
    report_id = rs.run_id(result)
    run = client.get_run(report_id)
    assert run.data.tags["mlflow.parentRunId"] == expected
    assert run.info.experiment_id == experiment
    assert run.data.tags["report.browser_check"].startswith("skipped:") and "browser check skipped" in result.stderr
    assert not (tmp_path / "out" / "report.png").exists() and (tmp_path / "out" / "report.md").exists()

    page = rs.Page((tmp_path / "out" / "report.html").read_text())
    settings = [t["settings"] for t in page.tables]
    assert len(settings) == 2 and settings[0] != settings[1]
    assert settings[1].startswith(
        f"n_samples={rs.OTHER_SETTINGS['n_samples']} iwae_k={rs.OTHER_SETTINGS['iwae_k']} seed=0"
    )
    assert settings[0].startswith(f"n_samples={rs.SETTINGS['n_samples']} iwae_k={rs.SETTINGS['iwae_k']} seed=0")
    seed0 = rs.sampler_data(client, study["evaluations"][("bce-standard", 0)][0], "normal_0_1").metrics["fid"]
    seed1 = rs.sampler_data(client, other["bce-standard"], "normal_0_1").metrics["fid"]
    assert page.tables[0]["rows"]["E1"]["fid"][0].removesuffix(" ★") == f"{seed0:.4g} (1 seed)"
    assert page.tables[1]["rows"]["E1"]["fid"][0].removesuffix(" ★") == f"{seed1:.4g} (1 seed)"
    html = (tmp_path / "out" / "report.html").read_text()
    assert "never averaged or ranked together" in html
    assert "one seed: no test" in html  # one seed per setting: no part is decided
    assert "report/report.html" in artifact_paths(client, expected, "report")
