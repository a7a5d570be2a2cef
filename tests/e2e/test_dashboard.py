"""pipeline/search/artifacts.py:
The search watched: a tiny real search uploads each trial's sample grid to the artifact
store beside its study, prints the exact optuna-dashboard command, and the real optuna-dashboard on
127.0.0.1 lists the trials with their grids through its HTTP API; the best trial's generator is
registered as models:/vae-generator@best-beta."""

from __future__ import annotations

import io
import os
import re
import shlex
import urllib.request

import mlflow
import numpy as np
import pytest
from PIL import Image

from tests.conftest import VENV_BIN
from tests.e2e.servers import free_port, get_json, server
from tests.helpers import TINY_SEARCH

pytestmark = pytest.mark.slow

TINY = {**TINY_SEARCH, "n_trials": 3, "study_name": "dashboard-e2e", "pruner": "none"}


@pytest.fixture(scope="module")
def searched(tracking):
    """A tiny search in an experiment of its own: its models are then not found and reused by the search
    tests, which count the trainings their own search launches."""
    experiment = tracking.client.create_experiment(
        "dashboard-e2e", artifact_location=(tracking.root / "dashboard-e2e").as_uri()
    )
    run_id, output = tracking.mlflow_run("search", TINY, experiment_id=experiment)
    return run_id, output


def test_the_search_prints_the_exact_dashboard_command(tracking, searched):
    run_id, output = searched
    root = tracking.root
    command = f"optuna-dashboard sqlite:///{root / 'optuna.db'} --artifact-dir {root / 'optuna-artifacts'}"
    assert f"`{command}`" in output
    assert tracking.client.get_run(run_id).data.tags["optuna.dashboard"] == command


def test_the_dashboard_lists_the_trials_with_their_sample_grids(tracking, searched, tmp_path):
    _, output = searched
    printed = shlex.split(re.search(r"`(optuna-dashboard [^`]+)`", output).group(1))
    port = free_port()
    command = [os.path.join(VENV_BIN, "optuna-dashboard"), *printed[1:], "--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with server(command, f"{url}/api/studies", tmp_path / "dashboard.log"):
        studies = get_json(f"{url}/api/studies")["study_summaries"]
        study_id = next(s["study_id"] for s in studies if s["study_name"] == TINY["study_name"])
        trials = get_json(f"{url}/api/studies/{study_id}")["trials"]
        assert sorted(t["number"] for t in trials) == list(range(TINY["n_trials"]))
        assert all(t["state"] == "Complete" for t in trials)
        with_grid = [t for t in trials if t["artifacts"]]
        assert with_grid, trials
        for trial in with_grid:
            [artifact] = trial["artifacts"]
            assert artifact["filename"] == "samples_grid.png" and artifact["mimetype"] == "image/png"
            address = f"{url}/artifacts/{study_id}/{trial['trial_id']}/{artifact['artifact_id']}"
            with urllib.request.urlopen(address, timeout=60) as response:
                grid = np.asarray(Image.open(io.BytesIO(response.read())))
            assert grid.ndim == 2 and grid.shape[0] == grid.shape[1] > 28 * 8  # an 8x8 grid of digits, upscaled
    assert len(with_grid) == TINY["n_trials"]


def test_the_best_trial_is_registered_as_vae_generator_at_best_beta(tracking, searched):
    run_id, _ = searched
    version = tracking.client.get_model_version_by_alias("vae-generator", "best-beta")
    assert version.run_id == run_id and version.tags["study_name"] == TINY["study_name"]
    best_sampler = tracking.client.get_run(run_id).data.tags["best_sampler"]
    generator = mlflow.pyfunc.load_model("models:/vae-generator@best-beta")
    assert generator.model_config == {"default_sampler": best_sampler}
    import pandas as pd

    out = generator.predict(pd.DataFrame([{"n": 2, "seed": 0}, {"sampler": "gmm:10", "n": 1, "seed": 0}]))
    assert out["sampler"].tolist() == [best_sampler, best_sampler, "gmm:10"]
