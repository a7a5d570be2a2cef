"""The experiments the pipeline writes into open in MLflow 3's UI as training experiments (their
`mlflow.experimentKind` tag), a kind the user chose is kept, and dataset inputs logged from an
`mlflow server` that proxies artifacts keep a source MLflow can read back. Against a real SQLite store."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest

from pipeline import tracking
from pipeline.core import datasets
from pipeline.tracking.references import dataset_source, log_dataset_inputs


@pytest.fixture()
def client(tracking):
    return tracking.client


@pytest.fixture()
def active(tracking):
    """Make an experiment the active one for the test (a step's run opens there); the session's afterwards."""
    yield lambda experiment_id: mlflow.set_experiment(experiment_id=experiment_id)
    mlflow.set_experiment(experiment_id=tracking.experiment_id)


def kind(client, experiment_id: str) -> str | None:
    return client.get_experiment(experiment_id).tags.get(tracking.KIND_TAG)


def test_a_step_run_marks_its_experiment_as_training(client, active, tmp_path):
    experiment_id = client.create_experiment(f"kind-{tmp_path.name}")
    assert kind(client, experiment_id) is None
    active(experiment_id)
    with tracking.step_run("prepare_data", "a step") as run:
        assert run.info.experiment_id == experiment_id
    assert kind(client, experiment_id) == "custom_model_development" == tracking.TRAINING_KIND


def test_a_child_run_marks_its_experiment_too(client, tmp_path):
    experiment_id = client.create_experiment(f"kind-child-{tmp_path.name}")
    parent = client.create_run(experiment_id).info.run_id
    with tracking.child_run("search_trial", "trial 0", parent, experiment_id):
        pass
    assert kind(client, experiment_id) == tracking.TRAINING_KIND


def test_a_kind_the_user_chose_is_never_overwritten(client, active, tmp_path):
    experiment_id = client.create_experiment(f"kind-user-{tmp_path.name}",
                                             tags={tracking.KIND_TAG: "genai_development"})
    active(experiment_id)
    with tracking.step_run("prepare_data", "a step"):
        pass
    parent = client.create_run(experiment_id).info.run_id
    with tracking.child_run("search_trial", "trial 0", parent, experiment_id):
        pass
    assert kind(client, experiment_id) == "genai_development"


def test_a_proxied_artifact_becomes_an_http_source_on_the_server_and_the_digest_is_kept(client, tmp_path):
    uri = "mlflow-artifacts:/7/0123456789abcdef0123456789abcdef/artifacts/prepared/data.npz"
    source = dataset_source(uri, "http://127.0.0.1:5000")
    assert source.to_dict() == {"url": "http://127.0.0.1:5000/api/2.0/mlflow-artifacts/artifacts/7/"
                                       "0123456789abcdef0123456789abcdef/artifacts/prepared/data.npz"}
    assert dataset_source("/some/local/data.npz") == "/some/local/data.npz"  # MLflow resolves paths itself

    rng = np.random.default_rng(0)
    splits = {name: (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), np.arange(n, dtype=np.int64) % 10)
              for name, n in (("train", 20), ("val", 5), ("test", 5))}
    prepared = datasets.Prepared(splits=splits, source="tiny", digest=datasets.digest_of(splits))
    experiment_id = client.create_experiment(f"inputs-{tmp_path.name}")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        log_dataset_inputs(prepared, "tiny", source)
    inputs = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert sorted(i.dataset.name for i in inputs) == ["tiny-test", "tiny-train", "tiny-val"]
    for dataset_input in inputs:
        assert dataset_input.dataset.digest == prepared.digest[:16]
        read_back = mlflow.data.get_source(dataset_input)
        assert read_back.to_dict() == source.to_dict() and type(read_back).__name__ == "HTTPDatasetSource"
