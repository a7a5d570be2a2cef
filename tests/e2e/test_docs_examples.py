"""README.md: The README's session-by-hand example, read from the page (tests/docs_examples.py) and run with the real
commands: prepare_data, train and evaluate, each on the run id the one before printed. The docs' team,
serving and search-report examples run on the team server, in tests/e2e/test_team_server.py.

What the test changes in the example, and only that: `mlflow run .` names the project folder, run from an
empty folder; the evaluation's `-P` values that make it tiny are added."""

from __future__ import annotations

import pytest

from tests.docs_examples import example, run_block

pytestmark = pytest.mark.slow


def test_the_session_by_hand_runs_prepare_train_evaluate_on_each_others_run_ids(tracking, tmp_path):
    body = example("README.md", "session-by-hand")
    # evaluate at 200 samples and 3 importance samples instead of 10,000 and 100
    tiny = [{}, {}, {"n_samples": 200, "iwae_k": 3}]
    (prepare, _), (train, _), (evaluate, _) = run_block(body, {}, tracking.env(), tmp_path, tiny)
    client = tracking.client
    runs = {name: client.get_run(run_id) for name, run_id in (("p", prepare), ("t", train), ("e", evaluate))}
    assert all(run.info.status == "FINISHED" for run in runs.values())
    assert [run.data.tags["pipeline.step"] for run in runs.values()] == ["prepare_data", "train", "evaluate"]
    assert runs["t"].data.params["data"] == prepare and runs["t"].data.params["epochs"] == "2"
    assert runs["e"].data.params["model"] == train
