"""pipeline/steps/prepare_data.py, pipeline/steps/train.py, pipeline/steps/sample.py, pipeline/steps/judges.py:
End to end: the real `mlflow run . -e STEP --env-manager local` commands, read back with MlflowClient."""

import numpy as np
import pytest

from pipeline.core.judges import knn
from tests.conftest import write_idx_folder
from tests.helpers import artifact_paths

pytestmark = pytest.mark.slow

SAMPLER_KEYS = ("normal_0_1", "normal_1_2", "beta_0.25_0.25")


def test_prepare_data_logs_the_prepared_file_and_dataset_inputs(tracking, prepared_run_id):
    run = tracking.client.get_run(prepared_run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["pipeline.step"] == "prepare_data"
    assert run.data.params["dataset"] == "mnist-5k" and len(run.data.params["data_digest"]) == 64
    assert run.data.metrics == {"train_count": 3600.0, "val_count": 400.0, "test_count": 1000.0}
    assert "prepared/data.npz" in artifact_paths(tracking.client, prepared_run_id)
    inputs = {(d.dataset.name, d.dataset.digest) for d in run.inputs.dataset_inputs}
    digest16 = run.data.params["data_digest"][:16]
    assert inputs == {(f"mnist-5k-{s}", digest16) for s in ("train", "val", "test")}


def test_train_logs_metrics_images_checkpoint_and_model(tracking, prepared_run_id, trained_run_id):
    client = tracking.client
    run = client.get_run(trained_run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["data_digest"] == client.get_run(prepared_run_id).data.params["data_digest"]
    for key in ("train_loss", "train_recon", "train_kl", "val_loss", "val_recon", "val_kl"):
        steps = [m.step for m in client.get_metric_history(trained_run_id, key)]
        assert sorted(steps) == [1, 2], key
    losses = [m.value for m in sorted(client.get_metric_history(trained_run_id, "train_loss"), key=lambda m: m.step)]
    assert losses[1] < losses[0] < 600  # learning, in nats per image
    assert 50 < run.data.metrics["test_loss"] < 300
    assert any(k.startswith("system/cpu_utilization") for k in run.data.metrics)

    paths = artifact_paths(client, trained_run_id)
    for key in SAMPLER_KEYS:
        assert f"samples/{key}/grid.png" in paths
        assert [p for p in paths if p.startswith(f"samples/{key}/image_")] == [
            f"samples/{key}/image_{i}.png" for i in range(5)
        ]
        per_epoch = [p for p in paths if p.startswith(f"images/samples_{key}")]
        assert len([p for p in per_epoch if p.endswith(".png")]) == 2, per_epoch  # one grid per epoch
    for expected in ("reconstructions.png", "loss_curve.png", "checkpoints/epoch_0001.pt", "checkpoints/epoch_0002.pt"):
        assert expected in paths

    import mlflow.pytorch
    import torch

    model = mlflow.pytorch.load_model(f"runs:/{trained_run_id}/model", map_location="cpu")
    images = model.decode(torch.zeros(2, 100))
    assert images.shape == (2, 784) and 0 <= images.min() and images.max() <= 1

    from pipeline.tracking import load_latest_checkpoint as load_latest

    state = load_latest(trained_run_id)
    assert state["epoch"] == 2 and len(state["history"]) == 2


def test_sample_logs_grids_and_single_images_tagged_with_the_source(tracking, mlflow_run, trained_run_id):
    sample_id = mlflow_run("sample", {"model": trained_run_id, "n": 4, "device": "cpu"})
    run = tracking.client.get_run(sample_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["source_run_id"] == trained_run_id
    paths = artifact_paths(tracking.client, sample_id)
    for key in SAMPLER_KEYS:
        assert {f"samples/{key}/grid.png"} | {f"samples/{key}/image_{i}.png" for i in range(4)} <= set(paths)
    from PIL import Image

    local = tracking.client.download_artifacts(sample_id, "samples/normal_0_1/image_0.png")
    assert np.asarray(Image.open(local)).shape == (112, 112)


def test_bad_input_through_mlflow_run_fails_the_run_with_the_message(tracking):
    run_id, output = tracking.mlflow_run("train", {"loss": "hinge"}, expect_success=False)
    assert "parameter 'loss': got 'hinge'; allowed: bce | mse" in output
    assert tracking.client.get_run(run_id).info.status == "FAILED"


@pytest.mark.parametrize("uri_kind", ["runs", "models"])
def test_sample_from_a_model_uri_sits_beside_its_train_run(tracking, mlflow_run, trained_run_id, uri_kind):
    uri = f"runs:/{trained_run_id}/model"
    if uri_kind == "models":
        import mlflow

        uri = f"models:/vae-e2e/{mlflow.register_model(uri, 'vae-e2e').version}"
    result = tracking.python_step("sample", "--model", uri, "--n", "3", "--samplers", "normal:0,1")
    assert result.returncode == 0, result.stderr[-3000:]
    sample_id = result.stdout.strip().splitlines()[-1].removeprefix("run id: ")
    run = tracking.client.get_run(sample_id)
    train = tracking.client.get_run(trained_run_id)
    assert run.data.tags["source_model_uri"] == uri and run.data.tags["source_run_id"] == trained_run_id
    assert run.data.tags["mlflow.parentRunId"] == trained_run_id
    assert run.info.experiment_id == train.info.experiment_id
    assert run.info.run_name == f"sample {train.info.run_name}"
    assert {f"samples/normal_0_1/image_{i}.png" for i in range(3)} <= set(artifact_paths(tracking.client, sample_id))


def test_params_are_plain_and_the_same_whichever_launcher(tracking, trained_run_id):
    from pipeline.tracking.params import normalized_params

    run = tracking.client.get_run(trained_run_id)
    assert run.data.params["samplers"] == "normal:0,1+normal:1,2+beta:0.25,0.25"  # no shell quotes in the UI
    assert run.data.params["resume"] == "none"
    assert run.info.run_name == "train bce standard z100 s0"
    direct = tracking.python_step(
        "train",
        "--data",
        run.data.params["data"],
        "--epochs",
        "2",
        "--sample_every",
        "1",
        "--checkpoint_every",
        "1",
        "--lr",
        "1e-3",
        "--samplers",
        "normal:0,1;normal:1,2;beta:0.25,0.25",
    )
    assert direct.returncode == 0, direct.stderr[-3000:]
    direct_run = tracking.client.get_run(direct.stdout.strip().splitlines()[-1].removeprefix("run id: "))
    assert direct_run.data.params["samplers"] == run.data.params["samplers"]
    ignore = {"device_used"}
    assert {k: v for k, v in normalized_params(direct_run).items() if k not in ignore} == {
        k: v for k, v in normalized_params(run).items() if k not in ignore
    }


def test_judges_trains_a_new_sources_classifier_and_knn_once_and_then_finds_them(tracking, tmp_path):
    """`mlflow run . -e judges -P data=<prepare run id>` on a source no run has seen (random IDX digits)."""
    folder = write_idx_folder(tmp_path / "idx", n_train=200, n_test=20, seed=11)
    prepare, _ = tracking.mlflow_run("prepare_data", {"dataset": f"idx:{folder}"})
    first, again = (tracking.mlflow_run("judges", {"data": prepare})[0] for _ in range(2))
    client = tracking.client
    runs = [client.get_run(run_id) for run_id in (first, again)]
    assert [run.info.status for run in runs] == ["FINISHED", "FINISHED"]
    assert runs[0].data.tags["classifier_run_id"] == runs[1].data.tags["classifier_run_id"]
    classifier = client.get_run(runs[0].data.tags["classifier_run_id"])
    assert classifier.data.tags["mlflow.parentRunId"] == first  # trained by the first, found by the second
    assert classifier.data.tags["source_digest"] == runs[0].data.tags["source_digest"]
    assert classifier.data.params["train_images"] == "200" and "test_accuracy" in classifier.data.metrics
    assert knn.ARTIFACT in artifact_paths(client, classifier.info.run_id)
    assert runs[0].data.tags["mlflow.parentRunId"] == prepare  # beside its data, as a sample runs beside its model


@pytest.mark.parametrize("data", ["nonsense", "trained"])
def test_judges_refuses_data_that_is_not_a_prepare_data_run(tracking, trained_run_id, data):
    data = trained_run_id if data == "trained" else data
    before = len(tracking.client.search_runs([tracking.experiment_id], max_results=1000))
    result = tracking.python_step("judges", "--data", data)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "parameter 'data'" in result.stderr and "allowed: a prepare_data run id" in result.stderr
    assert len(tracking.client.search_runs([tracking.experiment_id], max_results=1000)) == before
