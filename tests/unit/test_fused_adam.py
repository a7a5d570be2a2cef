"""The training optimizer makes torch.optim.Adam(fused=True)'s update, bit for bit, shares its
checkpoint layout both ways, and keeps torch._dynamo out of the process."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
import torch

from pipeline.core.fused_adam import FusedAdam
from pipeline.core.model import VAE, loss_terms
from pipeline.core.training import make_optimizer


def train_steps(model: VAE, optimizer, steps: int, seed: int = 0) -> None:
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        batch = torch.rand(16, 784, generator=generator)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            terms = loss_terms(model(batch), batch, "bce")
        optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        optimizer.step()


def twins(lr: float = 1e-3):
    torch.manual_seed(3)
    ours = VAE(8, 32)
    theirs = VAE(8, 32)
    theirs.load_state_dict(ours.state_dict())
    return ours, FusedAdam(ours.parameters(), lr), theirs, torch.optim.Adam(theirs.parameters(), lr=lr, fused=True)


def assert_same_state(first: dict, second: dict) -> None:
    assert first["param_groups"] == second["param_groups"]
    assert first["state"].keys() == second["state"].keys()
    for index, state in first["state"].items():
        assert state.keys() == second["state"][index].keys()
        for key, value in state.items():
            other = second["state"][index][key]
            assert value.dtype == other.dtype and value.shape == other.shape and torch.equal(value, other), key


def test_the_update_equals_torch_fused_adam_bit_for_bit():
    ours, ours_opt, theirs, theirs_opt = twins(lr=3e-3)
    train_steps(ours, ours_opt, 25)
    train_steps(theirs, theirs_opt, 25)
    for mine, reference in zip(ours.parameters(), theirs.parameters()):
        assert torch.equal(mine, reference)
    assert_same_state(ours_opt.state_dict(), theirs_opt.state_dict())
    assert ours_opt.state_dict()["state"][0]["step"].item() == 25
    assert not torch.equal(next(ours.parameters()), next(twins()[0].parameters()))  # it did move


@pytest.mark.parametrize("direction", ["adam to ours", "ours to adam"])
def test_a_checkpoint_of_either_continues_in_the_other_exactly(direction):
    ours, ours_opt, theirs, theirs_opt = twins()
    train_steps(ours, ours_opt, 5)
    train_steps(theirs, theirs_opt, 5)
    source_model, source_opt = (theirs, theirs_opt) if direction == "adam to ours" else (ours, ours_opt)
    resumed = VAE(8, 32)
    resumed_opt = (FusedAdam(resumed.parameters(), 1.0) if direction == "adam to ours"
                   else torch.optim.Adam(resumed.parameters(), lr=1.0, fused=True))
    buffer = io.BytesIO()  # through bytes, as a checkpoint file goes
    torch.save({"model": source_model.state_dict(), "optimizer": source_opt.state_dict()}, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)
    resumed.load_state_dict(checkpoint["model"])
    resumed_opt.load_state_dict(checkpoint["optimizer"])
    train_steps(resumed, resumed_opt, 5, seed=1)
    train_steps(source_model, source_opt, 5, seed=1)
    for mine, reference in zip(resumed.parameters(), source_model.parameters()):
        assert torch.equal(mine, reference)


def test_a_state_of_other_adam_settings_is_refused():
    model = VAE(8, 32)
    other = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999))
    with pytest.raises(ValueError, match="betas"):
        FusedAdam(model.parameters(), 1e-3).load_state_dict(other.state_dict())


def test_training_keeps_torch_dynamo_out_of_the_process():
    code = ("import sys, torch\n"
            "from pipeline.core.model import VAE\n"
            "from pipeline.core.training import make_optimizer, train_epoch\n"
            "model = VAE(8, 32)\n"
            "optimizer = make_optimizer(model, 1e-3, torch.device('cpu'))\n"
            "train_epoch(model, optimizer, torch.rand(40, 784), 16, 'bce')\n"
            "print(type(optimizer).__name__, 'torch._dynamo' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "FusedAdam False"
    assert isinstance(make_optimizer(VAE(8, 32), 1e-3, torch.device("meta")), torch.optim.Adam)
