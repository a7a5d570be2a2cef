"""End to end: the report of a real `mlflow run . -e main` warns when its models had not learned.

A 1-epoch main opens its page with the warning and marks its verdicts preliminary; the same study
trained until its validation loss levels off has neither (the tiny model on mnist-5k: 40 epochs fall
0.9 % and 1.7 % over their last tenth, 60 epochs about 1.2 %; the rule's threshold is 2 %).
"""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.slow

STUDY = {"experiments": "E1", "seeds": "0,1", "latent_size": 8, "hidden_size": 32, "n_samples": 200, "iwae_k": 3,
         "reuse": "dirty", "max_parallel": 2}


@pytest.fixture(scope="module")
def experiment(tracking):
    return tracking.client.create_experiment("report-convergence",
                                             artifact_location=(tracking.root / "report-convergence").as_uri())


def _report(tracking, experiment, tmp_path, epochs: int) -> str:
    tracking.mlflow_run("main", {**STUDY, "epochs": epochs, "report_dir": tmp_path}, experiment_id=experiment)
    return (tmp_path / "report.html").read_text()


def _words(html: str) -> dict[str, str]:
    return dict(re.findall(r"<tr data-finding='(F\d)'>.*?<td class='name word [a-z]+'>(.*?)</td>", html, flags=re.S))


def test_a_one_epoch_main_opens_with_the_warning_and_its_verdicts_are_preliminary(tracking, experiment, tmp_path):
    html = _report(tracking, experiment, tmp_path, epochs=1)
    body = html[html.index("<body>"):]
    assert "id='convergence-warning'" in body and body.index("convergence-warning") < body.index("<h2")
    warning = re.search(r"id='convergence-warning'><b>(.*?)</b>", html).group(1)
    assert "bce-standard seed 0: still improving (too short to tell: 1 epoch)" in warning
    assert "bce-standard seed 1: still improving (too short to tell: 1 epoch)" in warning
    words = _words(html)  # only E1 was evaluated: F1 is measured, the others not, and so not preliminary either
    assert words["F1"].endswith(" — preliminary: models still improving"), words
    assert all(words[f] == "not measured in this run" for f in ("F2", "F3", "F4", "F5", "F6")), words
    assert "The verdicts on F1 are preliminary" in warning
    assert html.count("<td class='name'>still improving (too short to tell: 1 epoch)</td>") == 2


def test_a_converged_main_has_no_warning_and_no_preliminary_verdict(tracking, experiment, tmp_path):
    html = _report(tracking, experiment, tmp_path, epochs=60)
    assert "convergence-warning" not in html and "preliminary: models still improving" not in html
    assert len(re.findall(r"<td class='name'>converged \(val loss [+-]\d+\.\d % over the last 6 epochs of 60\)</td>",
                          html)) == 2
    assert not _words(html)["F1"].startswith("not measured")
