"""pipeline/core/model/training.py, pipeline/configs/:
`precision=bf16-mixed`: the training step's forward pass computes in bfloat16 while the weights and
Adam's state stay float32; evaluation stays float32; resume stays exact; the setting is refused when
unknown and keeps a bf16 model from standing in for a float32 one."""

import io

import pytest
import torch

from pipeline.configs import MainConfig, SearchConfig, TrainConfig
from pipeline.core.model import training
from pipeline.core.model.samplers import draw_samples, parse_sampler
from pipeline.core.model.vae import VAE
from pipeline.core.scores import likelihood
from pipeline.errors import InputError
from pipeline.search import policy as search_policy
from pipeline.search.models import train_config
from pipeline.tracking.reuse import config_key

CPU = torch.device("cpu")


def tiny(seed: int = 0, forward: str = "standard") -> tuple[VAE, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = VAE(8, 32, forward)
    return model, training.make_optimizer(model, 1e-3, CPU)


def images(count: int = 256) -> torch.Tensor:
    return torch.rand(count, 784, generator=torch.Generator().manual_seed(1))


def linear_output_dtypes(model: VAE) -> tuple[list[torch.dtype], list]:
    """(dtypes of every Linear's outputs, in call order; the hooks, to remove)."""
    seen: list[torch.dtype] = []
    hooks = [
        module.register_forward_hook(lambda _module, _inputs, output: seen.append(output.dtype))
        for module in model.modules()
        if isinstance(module, torch.nn.Linear)
    ]
    return seen, hooks


@pytest.mark.parametrize("precision, computed", [("32", torch.float32), ("bf16-mixed", torch.bfloat16)])
def test_the_training_step_computes_in_its_precision_over_float32_weights_and_adam_state(precision, computed):
    model, optimizer = tiny()
    seen, hooks = linear_output_dtypes(model)
    sums = training.train_epoch(model, optimizer, images(), 128, "bce", precision)
    for hook in hooks:
        hook.remove()
    assert len(seen) == 2 * 5 and set(seen) == {computed}  # two steps of five layers
    assert sums.dtype == torch.float32 and torch.isfinite(sums).all()
    assert all(p.dtype == torch.float32 and p.grad.dtype == torch.float32 for p in model.parameters())
    moments = [t for state in optimizer.state.values() for t in (state["exp_avg"], state["exp_avg_sq"])]
    assert len(moments) == 2 * 10 and all(t.dtype == torch.float32 for t in moments)


def test_the_loss_is_reduced_on_float32_outputs_and_bf16_changes_the_result():
    model, _ = tiny()
    batch = images(16)
    output = training.forward_in_float32(model, batch, "bf16-mixed")
    assert [t.dtype for t in output] == [torch.float32] * 3
    plain = training.forward_in_float32(model, batch, "32")
    assert not torch.equal(output.mean, plain.mean)  # computed in bf16, then widened
    assert torch.allclose(output.mean, plain.mean, atol=0.05)
    with pytest.raises(ValueError, match="precision '16'; allowed: 32, bf16-mixed"):
        training.forward_in_float32(model, batch, "16")


def test_evaluation_after_bf16_training_runs_in_float32():
    """Generation and the likelihood never enter autocast: each layer computes in float32."""
    model, optimizer = tiny()
    training.train_epoch(model, optimizer, images(), 128, "bce", "bf16-mixed")
    seen, hooks = linear_output_dtypes(model)
    drawn = draw_samples(model, parse_sampler("normal:0,1"), 16, 0, CPU)
    nll = likelihood.iwae_nll(model, images(32), 4, "bce")
    elbo = likelihood.neg_elbo(model, images(32), "bce")
    sums = training.evaluate_epoch(model, images(32), "bce")
    for hook in hooks:
        hook.remove()
    assert drawn.dtype == torch.float32 and sums.dtype == torch.float32
    assert nll > 0 and elbo > 0
    assert len(seen) > 0 and set(seen) == {torch.float32}
    assert all(t.dtype == torch.float32 for t in model.state_dict().values())


@pytest.mark.parametrize("forward", ["standard", "sampled-params"])
def test_resume_under_bf16_mixed_ends_with_the_uninterrupted_weights(forward):
    data = images(512)
    straight, optimizer = tiny(forward=forward)
    for _ in range(4):
        training.train_epoch(straight, optimizer, data, 64, "bce", "bf16-mixed")

    first, optimizer = tiny(forward=forward)
    history = []
    for epoch in (1, 2):
        training.train_epoch(first, optimizer, data, 64, "bce", "bf16-mixed")
        history.append({"epoch": epoch})
    config = {"precision": "bf16-mixed"}
    saved = io.BytesIO()
    torch.save(training.checkpoint_state(first, optimizer, 2, history, config, "d", CPU), saved)
    saved.seek(0)
    state = torch.load(saved, weights_only=True)

    resumed, optimizer = tiny(seed=7, forward=forward)  # other weights and another random stream until restored
    assert training.restore_state(state, resumed, optimizer, CPU) == history
    for _ in range(2):
        training.train_epoch(resumed, optimizer, data, 64, "bce", "bf16-mixed")
    expected = straight.state_dict()
    assert all(torch.equal(tensor, expected[name]) for name, tensor in resumed.state_dict().items())


def checkpoint(precision: str | None) -> dict:
    config = {key: str(value) for key, value in vars(TrainConfig(epochs=4)).items()}
    if precision is None:
        del config["precision"]  # written before the setting existed: float32
    else:
        config["precision"] = precision
    return {"config": config, "data_digest": "d", "epoch": 2}


def test_resuming_with_another_precision_is_refused():
    run = vars(TrainConfig(epochs=4, precision="bf16-mixed"))
    with pytest.raises(
        InputError, match="parameter 'precision': got 'bf16-mixed' but the checkpoint to resume has '32'"
    ):
        training.check_resumable(checkpoint("32"), run, "d")
    with pytest.raises(
        InputError, match="parameter 'precision': got 'bf16-mixed' but the checkpoint to resume has '32'"
    ):
        training.check_resumable(checkpoint(None), run, "d")
    training.check_resumable(checkpoint("bf16-mixed"), run, "d")
    training.check_resumable(checkpoint(None), vars(TrainConfig(epochs=4)), "d")


@pytest.mark.parametrize("config_class", [TrainConfig, SearchConfig])
def test_an_unknown_precision_is_refused_naming_the_parameter_and_the_allowed_values(config_class):
    with pytest.raises(InputError, match=r"parameter 'precision': got 'fp16'; allowed: 32 \| bf16-mixed"):
        config_class(precision="fp16")
    with pytest.raises(InputError, match=r"parameter 'precision': got '16'; allowed: preset \| 32 \| bf16-mixed"):
        MainConfig(precision="16")


def test_precision_keys_the_reuse_of_trainings_and_the_search_passes_it_on():
    assert config_key("train", TrainConfig()) != config_key("train", TrainConfig(precision="bf16-mixed"))
    search = SearchConfig(precision="bf16-mixed")
    assert train_config(search, 5).precision == "bf16-mixed" and train_config(SearchConfig(), 5).precision == "32"
    assert search_policy.space_of(search)["precision"] == "bf16-mixed"  # a study's trials share one precision


def train_run(precision: str | None):
    from mlflow.entities import Param, Run, RunData, RunInfo

    params = [Param("epochs", "50")] + ([Param("precision", precision)] if precision is not None else [])
    return Run(RunInfo("ab" * 16, "7", "user", "FINISHED", 0, 1, "active"), RunData(params=params))


def test_the_reports_setup_line_names_the_training_precision(tracking):
    """Read from the train runs' params; a run from before the setting trained in float32."""
    from analysis.provenance import Record
    from analysis.sources import StudyRuns

    def setup(*precisions):
        train = {("bce-standard", seed): train_run(p) for seed, p in enumerate(precisions)}
        plan = {"settings": {"data": "mnist-5k", "epochs": 50, "n_samples": 1000, "iwae_k": 50}}
        return Record(StudyRuns(train_run(None), plan, train), tracking.uri, "cd" * 16).setup()

    assert "; 50 epochs; training precision bf16-mixed; training seeds 0, 1; " in setup("bf16-mixed", "bf16-mixed")
    assert "; training precision 32; training seeds 0; " in setup(None)
    mixed = setup("32", "bf16-mixed", "bf16-mixed", None)
    assert "; training precision 32 on 2 of 4 train runs, bf16-mixed on 2; training seeds 0, 1, 2, 3; " in mixed
