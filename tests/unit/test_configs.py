"""Bad input is refused before work starts: exit status 2, the parameter and the allowed values named."""

import pytest

from pipeline.cli import main
from pipeline.configs import TrainConfig


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["train", "--loss", "l1"], "parameter 'loss': got 'l1'; allowed: bce | mse"),
        (["train", "--forward", "x"], "parameter 'forward': got 'x'; allowed: standard | sampled-params"),
        (["train", "--epochs", "ten"], "parameter 'epochs': got 'ten'; allowed: an integer"),
        (["train", "--epochs", "0"], "parameter 'epochs': got 0; allowed: >= 1"),
        (["train", "--lr", "-1"], "parameter 'lr': got -1.0; allowed: a number > 0"),
        (["train", "--lr", "fast"], "parameter 'lr': got 'fast'; allowed: a number"),
        (["train", "--precision", "16"], "parameter 'precision': got '16'; allowed: 32 | bf16-mixed"),
        (["search", "--precision", "bf16"], "parameter 'precision': got 'bf16'; allowed: 32 | bf16-mixed"),
        (["main", "--precision", "fp32"], "parameter 'precision': got 'fp32'; allowed: preset | 32 | bf16-mixed"),
        (["train", "--device", "tpu"], "parameter 'device': got 'tpu'; allowed: auto | cpu | cuda | cuda:N | mps"),
        (["train", "--val_fraction", "0.7"], "parameter 'val_fraction': got 0.7; allowed: a number in (0, 0.5)"),
        (["train", "--samplers", "beta:0,1"], "sampler spec 'beta:0,1': A must be positive"),
        (["train", "--samplers", "normal:0,1;gmm:10"], "gmm:10 is fitted on encoded data: evaluate only"),
        (["sample", "--model", "0" * 32, "--samplers", "gmm:3"], "parameter 'samplers'"),
        (["train", "--data", "cifar"], "parameter 'data': got 'cifar'"),
        (
            ["prepare_data", "--dataset", "svhn"],
            "parameter 'dataset': got 'svhn'; allowed: mnist-5k | mnist | fashion-mnist | idx:DIR",
        ),
        (["prepare_data", "--dataset", "idx:/no/such/folder"], "idx folder '/no/such/folder' does not exist"),
        (["sample"], "parameter 'model': got ''; allowed: a train run id or a model URI"),
        (["sample", "--model", "nonsense"], "parameter 'model': got 'nonsense'"),
        (["sample", "--model", "0" * 32], "parameter 'model': no run '" + "0" * 32 + "'"),
        (["train", "--resume", "0" * 32], "parameter 'resume'"),
        (
            ["main", "--backend", "nonsense"],
            "parameter 'backend': got 'nonsense'; allowed: local | databricks | kubernetes",
        ),
        (["judges"], "parameter 'data': got ''; allowed: a prepare_data run id (32 hex digits)"),
        (["judges", "--data", "0" * 32, "--device", "gpu"], "parameter 'device': got 'gpu'"),
    ],
)
def test_bad_input_exits_2_naming_the_parameter(argv, expected, capsys, tracking):
    assert main(argv) == 2
    assert expected in capsys.readouterr().err


def test_real_process_exit_status_is_2(tracking):
    result = tracking.python_step("train", "--loss", "hinge")
    assert result.returncode == 2
    assert "parameter 'loss'" in result.stderr and "Traceback" not in result.stderr


def test_defaults_are_the_studys():
    config = TrainConfig()
    assert (config.latent_size, config.hidden_size, config.epochs, config.batch_size, config.lr) == (
        100,
        392,
        100,
        128,
        0.001,
    )
    assert config.samplers == "normal:0,1+normal:1,2+beta:0.25,0.25" and config.data == "mnist-5k"
    assert config.precision == "32"
    assert TrainConfig(samplers="normal:0,1;normal:1,2;beta:0.25,0.25").samplers == config.samplers  # canonical
    assert TrainConfig(epochs="3", lr="1e-3").epochs == 3
