"""Likelihood measures of a VAE: −ELBO, the IWAE NLL estimate and active units, on known cases."""

from __future__ import annotations

import math

import pytest
import torch

from pipeline.core import likelihood
from pipeline.core.model import VAE, reconstruction_per_image


@pytest.fixture(scope="module")
def images():
    generator = torch.Generator().manual_seed(0)
    return (torch.rand(64, 784, generator=generator) < 0.2).float() * torch.rand(64, 784, generator=generator)


def small_vae(seed=0, latent=8):
    torch.manual_seed(seed)
    return VAE(latent_size=latent, hidden_size=32).eval()


def test_log_mean_exp_is_stable_where_exp_underflows():
    values = torch.tensor([[-1e4], [-1e4 + math.log(3.0)]], dtype=torch.float64)
    assert likelihood.log_mean_exp(values, dim=0).item() == pytest.approx(-1e4 + math.log(2.0), abs=1e-6)
    assert torch.log(torch.exp(values).mean(0)).item() == -math.inf  # what the naive formula gives


def test_prior_as_posterior_and_a_decoder_that_ignores_z_give_the_exact_likelihood_for_any_k(images):
    """q(z|x) = p(z) and p(x|z) = p(x): every importance weight is p(x), so IWAE is exact."""
    model = small_vae()
    with torch.no_grad():
        for layer in (model.mean_head, model.logvar_head, model.decoder_hidden):
            layer.weight.zero_()
            layer.bias.zero_()
    exact = reconstruction_per_image(model.decode_logits(torch.zeros(1, 8)).expand(len(images), -1), images, "bce").mean()
    for k in (1, 7, 50):
        assert likelihood.iwae_nll(model, images, k, "bce") == pytest.approx(exact.item(), rel=1e-6)
    assert likelihood.neg_elbo(model, images, "bce") == pytest.approx(exact.item(), rel=1e-6)


def test_iwae_with_one_sample_equals_the_neg_elbo_in_expectation(images):
    model = small_vae()
    repeated = images[:4].repeat(2500, 1)  # many one-sample estimates of the same four images
    one_sample = likelihood.iwae_nll(model, repeated, 1, "bce", seed=1)
    elbo = likelihood.neg_elbo(model, repeated, "bce", seed=2)
    spread = -likelihood.log_weights(model, repeated, 1, "bce")[0]
    tolerance = 4 * spread.std().item() / math.sqrt(len(repeated)) * math.sqrt(2)
    assert one_sample == pytest.approx(elbo, abs=tolerance)


@pytest.mark.parametrize("loss", ["bce", "mse"])
def test_nll_estimate_tightens_as_k_grows(images, loss):
    model = small_vae(seed=3)
    with torch.no_grad():
        model.logvar_head.bias.fill_(1.0)  # a wide q: a loose one-sample bound, room to tighten
    estimates = [likelihood.iwae_nll(model, images, k, loss, seed=0) for k in (1, 10, 100)]
    assert estimates[0] > estimates[1] > estimates[2]


def test_iwae_is_seeded_and_leaves_the_global_generator_alone(images):
    model = small_vae()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = likelihood.iwae_nll(model, images, 5, "bce", seed=4)
    assert torch.equal(torch.get_rng_state(), before)
    assert likelihood.iwae_nll(model, images, 5, "bce", seed=4) == first


def test_active_units_on_a_constructed_encoder():
    """Two means copy a pixel (Var 1/12 over uniform pixels), one copies it x 0.1 (Var 1/1200): 2 active."""
    model = small_vae(latent=6)
    with torch.no_grad():
        model.encoder_hidden.weight.zero_()
        model.encoder_hidden.bias.zero_()
        model.encoder_hidden.weight[0, 0] = 1.0  # hidden unit 0 = pixel 0 (ReLU of a value in [0, 1])
        model.mean_head.weight.zero_()
        model.mean_head.bias.fill_(0.5)
        model.mean_head.weight[0, 0] = 1.0
        model.mean_head.weight[1, 0] = -1.0
        model.mean_head.weight[2, 0] = 0.1
    x = torch.rand(5000, 784, generator=torch.Generator().manual_seed(0))
    assert likelihood.active_units(model, x) == 2
