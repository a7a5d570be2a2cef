"""Likelihood measures of a VAE: −ELBO, the IWAE NLL estimate and active units, on known cases."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import integrate, stats

from pipeline.core.model.vae import VAE
from pipeline.core.scores import likelihood


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
    logits = model.decode_logits(torch.zeros(1, 8)).expand(len(images), -1)
    for loss in ("bce", "mse"):
        exact = likelihood.neg_log_likelihood(logits, images, loss).mean().item()
        for k in (1, 7, 50):
            assert likelihood.iwae_nll(model, images, k, loss) == pytest.approx(exact, rel=1e-6)
        assert likelihood.neg_elbo(model, images, loss) == pytest.approx(exact, rel=1e-6)


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


def logit(lam: float) -> float:
    return math.log(lam) - math.log1p(-lam)


@pytest.mark.parametrize("lam", [1e-4, 0.05, 0.3, 0.49, 0.4999, 0.5, 0.5001, 0.51, 0.8, 0.9999])
def test_continuous_bernoulli_normalizer_against_numerical_integration(lam):
    """1 / C(λ) = ∫_0^1 λ^x (1 - λ)^(1 - x) dx (Loaiza-Ganem & Cunningham 2019)."""
    integral, _ = integrate.quad(lambda x: lam**x * (1 - lam) ** (1 - x), 0, 1, epsabs=1e-14, epsrel=1e-12)
    value = likelihood.continuous_bernoulli_log_normalizer(torch.tensor([logit(lam)], dtype=torch.float64)).item()
    assert value == pytest.approx(-math.log(integral), abs=1e-9)
    if lam == 0.5:
        assert value == math.log(2)


def test_normalizer_is_smooth_in_float32_across_one_half():
    """Near λ = ½ the closed form cancels: the series keeps float32 within 1e-6 of float64 on both sides."""
    logits = torch.linspace(-0.2, 0.2, 4001, dtype=torch.float64)
    u = logits.abs() / 2
    reference = torch.where(u > 1e-4, math.log(2) + torch.log(u / torch.tanh(u)), math.log(2) + u * u / 3)
    values = likelihood.continuous_bernoulli_log_normalizer(logits.float()).double()
    assert torch.allclose(values, reference, atol=1e-6, rtol=0)
    assert torch.all(values[2001:].diff() >= -1e-7) and torch.all(values[:2000].diff() <= 1e-7)  # even, growing in |l|


@pytest.mark.parametrize("l", [-6.0, -0.3, 0.0, 0.004, 2.5])
def test_a_bce_pixel_density_integrates_to_one(l):
    logits = torch.tensor([[l]], dtype=torch.float64)
    density = lambda x: math.exp(
        -likelihood.neg_log_likelihood(logits, torch.tensor([[x]], dtype=torch.float64), "bce").item()
    )
    assert integrate.quad(density, 0, 1)[0] == pytest.approx(1.0, abs=1e-9)


def test_the_mse_term_is_the_gaussian_with_variance_one_half(images):
    logits = torch.randn(3, 784, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x = images[:3].double()
    mean = torch.sigmoid(logits).numpy()
    expected = -stats.norm(loc=mean, scale=math.sqrt(0.5)).logpdf(x.numpy()).sum(axis=1)
    assert likelihood.neg_log_likelihood(logits, x, "mse").numpy() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("loss", ["bce", "mse"])
def test_nll_is_at_most_the_neg_elbo_on_average(images, loss):
    model = small_vae(seed=5)
    nll = likelihood.iwae_nll(model, images, 50, loss, seed=0)
    elbo = likelihood.neg_elbo(model, images, loss, seed=0)
    assert nll < elbo


def test_the_proposal_is_q_also_for_the_sampled_params_forward(images):
    """E5's forward adds noise to mu and log sigma^2; the likelihood uses the encoder's q all the same."""
    standard = small_vae(seed=6)
    sampled = VAE(latent_size=8, hidden_size=32, forward_mode="sampled-params").eval()
    sampled.load_state_dict(standard.state_dict())
    for loss in ("bce", "mse"):
        assert likelihood.neg_elbo(sampled, images, loss, seed=3) == likelihood.neg_elbo(standard, images, loss, seed=3)
        assert likelihood.iwae_nll(sampled, images, 5, loss, seed=3) == likelihood.iwae_nll(
            standard, images, 5, loss, seed=3
        )


def test_the_natural_parameter_form_equals_bce_minus_log_normalizer():
    """The IWAE hot path computes -log p(x|z) per pixel as log((e^a - 1)/a) + min(η, 0) - ηx; it is
    BCE - log C(λ) from near λ = ½ to saturated logits, in float64 and in float32."""
    logits = torch.cat([torch.linspace(-120, 120, 2001), torch.tensor([0.0, 1e-7, -1e-7, 1e-3, -0.02, 30.0, -88.0])])
    x = torch.rand(len(logits), generator=torch.Generator().manual_seed(0))
    for dtype, tolerance in ((torch.float64, 1e-9), (torch.float32, 2e-5)):
        l, t = logits.to(dtype), x.to(dtype)
        reference = torch.nn.functional.binary_cross_entropy_with_logits(
            l.double(), t.double(), reduction="none"
        ) - likelihood.continuous_bernoulli_log_normalizer(l.double())
        value = likelihood.continuous_bernoulli_nll(l, t).double()
        assert torch.isfinite(value).all()
        assert torch.allclose(value, reference, atol=tolerance, rtol=1e-6)
