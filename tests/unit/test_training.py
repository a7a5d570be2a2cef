"""Training behaviour: determinism, divergence, and resume after a real interruption."""

import sys
from pathlib import Path

import pytest

from pipeline.configs import TrainConfig
from pipeline.core.model.training import DivergenceError
from pipeline.steps.train import train


def history(client, run_id, key="train_loss"):
    return [(m.step, m.value) for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]


def test_same_seed_same_metrics(tracking):
    config = TrainConfig(epochs=2, sample_every=0, checkpoint_every=5, n_images=1, latent_size=20, hidden_size=64)
    first, second = train(config), train(config)
    for key in ("train_loss", "val_loss", "val_kl"):
        assert history(tracking.client, first, key) == history(tracking.client, second, key)
    other = train(dataclass_replace(config, seed=1))
    assert history(tracking.client, other) != history(tracking.client, first)


def dataclass_replace(config, **changes):
    import dataclasses

    return dataclasses.replace(config, **changes)


def test_divergence_fails_the_run_naming_the_epoch(tracking):
    with pytest.raises(DivergenceError, match="training diverged at epoch 1"):
        train(TrainConfig(epochs=3, lr=1e8, sample_every=0, latent_size=10, hidden_size=32))
    run = tracking.client.search_runs([tracking.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)[
        0
    ]
    assert run.info.status == "FAILED"
    assert "epoch 1" in run.data.tags["failure_reason"]
    assert "train_loss" not in run.data.metrics  # no NaNs logged


def test_divergence_exit_status_through_the_cli(tracking):
    result = tracking.python_step("train", "--epochs", "2", "--lr", "1e8", "--latent_size", "8", "--hidden_size", "16")
    assert result.returncode == 1
    assert "error: training diverged at epoch 1" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["32", "bf16-mixed"])
def test_resume_after_kill_ends_with_the_uninterrupted_metrics(tracking, precision):
    """Kill a real training process after its second checkpoint, resume it, compare with a straight run:
    exact in either precision (bf16-mixed keeps float32 weights and Adam state in its checkpoints)."""
    args = [
        "train",
        "--precision",
        precision,
        "--epochs",
        "30",
        "--checkpoint_every",
        "2",
        "--sample_every",
        "0",
        "--n_images",
        "1",
        "--latent_size",
        "20",
        "--hidden_size",
        "64",
    ]
    straight = tracking.python_step(*args)
    assert straight.returncode == 0, straight.stderr[-3000:]
    straight_id = tracking.client.search_runs([tracking.experiment_id], order_by=["attributes.start_time DESC"])[
        0
    ].info.run_id

    tracking.kill_when_paused([sys.executable, "-m", "pipeline", *args], epoch=2)  # after its second checkpoint
    killed = tracking.client.search_runs(
        [tracking.experiment_id], filter_string="attributes.status = 'RUNNING'", order_by=["attributes.start_time DESC"]
    )[0]
    killed_id = killed.info.run_id
    assert len(tracking.client.get_metric_history(killed_id, "train_loss")) == 2
    assert "checkpoints/epoch_0002.pt" in [f.path for f in tracking.client.list_artifacts(killed_id, "checkpoints")]

    resumed = tracking.python_step(*args, "--resume", killed_id)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    resumed_run = tracking.client.search_runs([tracking.experiment_id], order_by=["attributes.start_time DESC"])[0]
    assert resumed_run.data.tags["resumed_from"] == killed_id
    for key in ("train_loss", "val_loss", "val_recon", "val_kl"):
        assert history(tracking.client, resumed_run.info.run_id, key) == history(tracking.client, straight_id, key)
    straight_metrics = tracking.client.get_run(straight_id).data.metrics
    assert resumed_run.data.metrics["test_loss"] == straight_metrics["test_loss"]
    assert len(history(tracking.client, resumed_run.info.run_id)) == 30


def test_resume_refuses_a_different_configuration(tracking):
    run_id = train(TrainConfig(epochs=1, sample_every=0, latent_size=8, hidden_size=16))
    from pipeline.cli import main

    assert main(["train", "--resume", run_id, "--latent_size", "9", "--hidden_size", "16", "--epochs", "2"]) == 2


def test_a_bf16_mixed_training_logs_its_precision_and_resumes_only_in_it(tracking, capsys):
    """The step passes `precision` to the loop (its losses differ from float32's), logs it, keeps it in the
    checkpoint, and refuses to continue the checkpoint in float32."""
    args = dict(epochs=1, sample_every=0, n_images=1, latent_size=8, hidden_size=16)
    bf16 = train(TrainConfig(**args, precision="bf16-mixed"))
    fp32 = train(TrainConfig(**args))
    assert tracking.client.get_run(bf16).data.params["precision"] == "bf16-mixed"
    assert tracking.client.get_run(fp32).data.params["precision"] == "32"
    assert history(tracking.client, bf16) != history(tracking.client, fp32)
    from pipeline.cli import main

    assert main(["train", "--resume", bf16, "--latent_size", "8", "--hidden_size", "16", "--epochs", "2"]) == 2
    assert "parameter 'precision': got '32' but the checkpoint to resume has 'bf16-mixed'" in capsys.readouterr().err


def test_a_truncated_newest_checkpoint_is_skipped_on_resume(tracking, tmp_path):
    """A checkpoint cut short (a copy interrupted mid-upload) is passed over for the one before it."""
    args = dict(epochs=2, checkpoint_every=1, sample_every=0, n_images=1, latent_size=8, hidden_size=16)
    run_id = train(TrainConfig(**args))
    newest = Path(tracking.client.download_artifacts(run_id, "checkpoints/epoch_0002.pt", str(tmp_path)))
    truncated = tmp_path / "cut" / newest.name
    truncated.parent.mkdir()
    truncated.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    tracking.client.log_artifact(run_id, str(truncated), "checkpoints")

    from pipeline.tracking import load_latest_checkpoint

    state = load_latest_checkpoint(run_id)
    assert state["epoch"] == 1 and len(state["history"]) == 1
    resumed = train(TrainConfig(**args, resume=run_id))
    assert history(tracking.client, resumed, "val_loss") == history(tracking.client, run_id, "val_loss")
