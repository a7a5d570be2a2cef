"""pipeline/core/model/training.py:
The training optimizer is torch.optim.Adam, fused on the CPU, and a checkpoint of it, saved and loaded
with `weights_only=True` as resume does, continues training exactly where it stopped."""

from __future__ import annotations

import io

import torch

from pipeline.core.model.training import make_optimizer
from pipeline.core.model.vae import VAE, loss_terms

CPU = torch.device("cpu")


def train_steps(model: VAE, optimizer, steps: int, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        batch = torch.rand(16, 784, generator=generator)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            terms = loss_terms(model(batch), batch, "bce")
        optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        optimizer.step()


def test_the_optimizer_is_torch_adam_fused_on_the_cpu_with_default_settings():
    optimizer = make_optimizer(VAE(8, 32), 3e-3, CPU)
    assert type(optimizer) is torch.optim.Adam
    (group,) = optimizer.param_groups
    assert group["fused"] is True and group["lr"] == 3e-3
    assert group["betas"] == (0.9, 0.999) and group["eps"] == 1e-8 and group["weight_decay"] == 0


def test_a_checkpoint_loaded_with_weights_only_continues_exactly():
    torch.manual_seed(3)
    uninterrupted = VAE(8, 32)
    interrupted = VAE(8, 32)
    interrupted.load_state_dict(uninterrupted.state_dict())
    first, second = make_optimizer(uninterrupted, 1e-3, CPU), make_optimizer(interrupted, 1e-3, CPU)
    train_steps(uninterrupted, first, 5, seed=0)
    train_steps(interrupted, second, 5, seed=0)

    buffer = io.BytesIO()  # through bytes, as a checkpoint file goes
    torch.save({"model": interrupted.state_dict(), "optimizer": second.state_dict()}, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)
    resumed = VAE(8, 32)
    resumed.load_state_dict(checkpoint["model"])
    resumed_optimizer = make_optimizer(resumed, 1.0, CPU)  # lr comes back from the checkpoint
    resumed_optimizer.load_state_dict(checkpoint["optimizer"])
    assert resumed_optimizer.param_groups[0]["lr"] == 1e-3
    assert resumed_optimizer.state_dict()["state"][0]["step"].item() == 5

    train_steps(uninterrupted, first, 5, seed=1)
    train_steps(resumed, resumed_optimizer, 5, seed=1)
    for mine, reference in zip(resumed.parameters(), uninterrupted.parameters()):
        assert torch.equal(mine, reference)
    assert not torch.equal(next(resumed.parameters()), next(interrupted.parameters()))  # it did move
