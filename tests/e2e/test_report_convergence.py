"""analysis/report.py:
End to end: the report of a real `mlflow run . -e main` whose models have learned carries no warning.

A study trained until its validation loss levels off (the tiny model on mnist-5k: 40 epochs fall 0.9 %
and 1.7 % over their last tenth, 60 epochs about 1.2 %; the rule's threshold is 2 %) has no warning and
no preliminary verdict. Its counterpart, a 1-epoch main that opens with the warning, is test_main.py's
main (its module fixture, run once for several tests).
"""

from __future__ import annotations

import re

import pytest

from tests.e2e.report_study import verdict_words

pytestmark = pytest.mark.slow

STUDY = {
    "experiments": "E1",
    "seeds": "0,1",
    "latent_size": 8,
    "hidden_size": 32,
    "n_samples": 200,
    "iwae_k": 3,
    "reuse": "dirty",
    "max_parallel": 2,
}


def test_a_converged_main_has_no_warning_and_no_preliminary_verdict(tracking, tmp_path):
    experiment = tracking.client.create_experiment(
        "report-convergence", artifact_location=(tmp_path / "artifacts").as_uri()
    )
    tracking.mlflow_run("main", {**STUDY, "epochs": 60, "report_dir": tmp_path}, experiment_id=experiment)
    html = (tmp_path / "report.html").read_text()
    assert "convergence-warning" not in html and "preliminary: models still improving" not in html
    assert (
        len(
            re.findall(r"<td class='name'>converged \(val loss [+-]\d+\.\d % over the last 6 epochs of 60\)</td>", html)
        )
        == 2
    )
    assert not verdict_words(html)["F1"].startswith("not measured")
