"""pipeline/tracking/references.py, pipeline/tracking/runs.py:
Tracking as a team server needs it: the experiments the pipeline writes into are marked as training
experiments (`mlflow.experimentKind`) unless the user chose a kind, dataset inputs logged from an
`mlflow server` that proxies artifacts keep a source MLflow can read back, and downloads live in a
temporary folder that is removed. Against a real SQLite store (tests/e2e/test_team_server.py runs
the same against a real server)."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest

from pipeline import tracking
from pipeline.core.data import datasets
from pipeline.tracking.artifacts import downloaded
from pipeline.tracking.references import dataset_source, log_dataset_inputs
from pipeline.tracking.runs import KIND_TAG, TRAINING_KIND, child_run


@pytest.fixture()
def client(tracking):
    return tracking.client


@pytest.fixture()
def active(tracking):
    """Make an experiment the active one for the test (a step's run opens there); the session's afterwards."""
    yield lambda experiment_id: mlflow.set_experiment(experiment_id=experiment_id)
    mlflow.set_experiment(experiment_id=tracking.experiment_id)


def kind(client, experiment_id: str) -> str | None:
    return client.get_experiment(experiment_id).tags.get(KIND_TAG)


def test_a_step_run_marks_its_experiment_as_training(client, active, tmp_path):
    experiment_id = client.create_experiment(f"kind-{tmp_path.name}", artifact_location=tmp_path.as_uri())
    assert kind(client, experiment_id) is None
    active(experiment_id)
    with tracking.step_run("prepare_data", "a step") as run:
        assert run.info.experiment_id == experiment_id
    assert kind(client, experiment_id) == "custom_model_development" == TRAINING_KIND


def test_a_child_run_marks_its_experiment_too(client, tmp_path):
    experiment_id = client.create_experiment(f"kind-child-{tmp_path.name}", artifact_location=tmp_path.as_uri())
    parent = client.create_run(experiment_id).info.run_id
    with child_run("search_trial", "trial 0", parent, experiment_id):
        pass
    assert kind(client, experiment_id) == TRAINING_KIND


def test_a_kind_the_user_chose_is_never_overwritten(client, active, tmp_path):
    experiment_id = client.create_experiment(
        f"kind-user-{tmp_path.name}", artifact_location=tmp_path.as_uri(), tags={KIND_TAG: "genai_development"}
    )
    active(experiment_id)
    with tracking.step_run("prepare_data", "a step"):
        pass
    parent = client.create_run(experiment_id).info.run_id
    with child_run("search_trial", "trial 0", parent, experiment_id):
        pass
    assert kind(client, experiment_id) == "genai_development"


def test_a_proxied_artifact_becomes_an_http_source_on_the_server_and_the_digest_is_kept(client, tmp_path):
    uri = "mlflow-artifacts:/7/0123456789abcdef0123456789abcdef/artifacts/prepared/data.npz"
    source = dataset_source(uri, "http://127.0.0.1:5000")
    assert source.to_dict() == {
        "url": "http://127.0.0.1:5000/api/2.0/mlflow-artifacts/artifacts/7/"
        "0123456789abcdef0123456789abcdef/artifacts/prepared/data.npz"
    }
    assert dataset_source("/some/local/data.npz") == "/some/local/data.npz"  # MLflow resolves paths itself

    rng = np.random.default_rng(0)
    splits = {
        name: (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), np.arange(n, dtype=np.int64) % 10)
        for name, n in (("train", 20), ("val", 5), ("test", 5))
    }
    prepared = datasets.Prepared(splits=splits, source="tiny", digest=datasets.digest_of(splits))
    experiment_id = client.create_experiment(f"inputs-{tmp_path.name}", artifact_location=tmp_path.as_uri())
    with mlflow.start_run(experiment_id=experiment_id) as run:
        log_dataset_inputs(prepared, "tiny", source)
    inputs = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert sorted(i.dataset.name for i in inputs) == ["tiny-test", "tiny-train", "tiny-val"]
    for dataset_input in inputs:
        assert dataset_input.dataset.digest == prepared.digest[:16]
        read_back = mlflow.data.get_source(dataset_input)
        assert read_back.to_dict() == source.to_dict() and type(read_back).__name__ == "HTTPDatasetSource"


def test_a_download_is_a_copy_in_a_temporary_folder_removed_after_the_block(client, tmp_path):
    experiment_id = client.create_experiment(
        f"downloads-{tmp_path.name}", artifact_location=(tmp_path / "artifacts").as_uri()
    )
    run_id = client.create_run(experiment_id).info.run_id
    (tmp_path / "data.npz").write_bytes(b"prepared")
    client.log_artifact(run_id, str(tmp_path / "data.npz"), "prepared")
    with downloaded(run_id=run_id, artifact_path="prepared/data.npz") as local:
        local = Path(local)
        assert local.read_bytes() == b"prepared" and local.parent.name.startswith("vae-download-")
    assert not local.exists() and not local.parent.exists()
    assert (tmp_path / "artifacts" / run_id / "artifacts" / "prepared" / "data.npz").read_bytes() == b"prepared"
