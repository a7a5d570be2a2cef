"""pipeline/core/model/training.py:
The training loop's speed-ups keep its results: same batches, same updates, same sums."""

import pytest
import torch

from pipeline.core.model.training import make_optimizer, train_epoch
from pipeline.core.model.vae import VAE, loss_terms

CPU = torch.device("cpu")


def plain_epoch(model, optimizer, images, batch_size, loss):
    """The loop before the speed-ups: permute the whole split, then walk it in slices."""
    model.train()
    shuffled = images[torch.randperm(images.shape[0])]
    sums = torch.zeros(3)
    for start in range(0, images.shape[0], batch_size):
        batch = shuffled[start : start + batch_size]
        terms = loss_terms(model(batch), batch, loss)
        optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        optimizer.step()
        sums += torch.stack(terms).detach() * batch.shape[0]
    return sums


def trained(epoch_fn, loss):
    torch.manual_seed(0)
    images = torch.rand(1000, 784)
    model = VAE(8, 32)
    optimizer = make_optimizer(model, 1e-3, CPU)
    sums = [epoch_fn(model, optimizer, images, 128, loss) for _ in range(2)]  # last batch is short
    return sums, model.state_dict()


@pytest.mark.parametrize("loss", ["bce", "mse"])
def test_train_epoch_equals_the_plain_loop_bit_for_bit(loss):
    sums, state = trained(train_epoch, loss)
    plain_sums, plain_state = trained(plain_epoch, loss)
    assert all(torch.equal(a, b) for a, b in zip(sums, plain_sums))
    assert all(torch.equal(state[key], plain_state[key]) for key in state)


def test_a_read_only_split_becomes_float_pixels_without_a_warning():
    """Prepared splits are read-only arrays: the conversion copies them, so torch has nothing to warn about."""
    import warnings

    import numpy as np

    from pipeline.core.model.training import as_float_tensor

    images = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    images.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pixels = as_float_tensor(images, CPU)
    assert pixels.dtype == torch.float32 and pixels.shape == (1, 4)
    assert torch.equal(pixels, torch.tensor([[0.0, 255.0, 51.0, 102.0]]) / 255)
    pixels.add_(1.0)  # its own memory: the read-only array is untouched
    assert images.tolist() == [[[0, 255], [51, 102]]]
