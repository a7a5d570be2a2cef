"""How well a trained VAE models the test data: −ELBO, an importance-weighted NLL, active units.

Both likelihoods are negative log-densities of the test images in nats, the same quantity for
both losses, so one column compares BCE and MSE models:
- a BCE model's decoder is read as a continuous Bernoulli (Loaiza-Ganem & Cunningham 2019), the
  normalized density on [0, 1] whose unnormalized part is the BCE: -log p(x|z) = BCE - log C(λ)
  per pixel, with log C(λ) = log(2·artanh(1 − 2λ) / (1 − 2λ)), log 2 at λ = ½;
- an MSE model's decoder is the Gaussian N(x; sigmoid output, σ² = ½) the squared error implies:
  -log p(x|z) = (x - μ)² + ½·log π per pixel.
The NLL is the negative IWAE bound (Burda et al. 2016) with the encoder's q(z|x) = N(mu, sigma^2)
as proposal, also for sampled-params models (their forward pass adds noise that is no part of q):

    nll(x) = -log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x),   z_i ~ q(z|x)

computed with logsumexp so that log-weights of −10^4 nats do not underflow; `neg_elbo` is its
k = 1 case (with the KL term in closed form). The training loss (`test_loss`) is not this: it
stays in the loss's own units. Grey-level densities are not binarized-MNIST likelihoods.
"""

from __future__ import annotations

import math

import torch

from pipeline.core.model.vae import VAE, kl_to_standard_normal
from pipeline.core.seeding import seeded

ACTIVE_THRESHOLD = 0.01  # Burda et al. 2016: a unit is active when Cov_x E_q[z_u|x] > 0.01
LOG_2PI = math.log(2 * math.pi)
LOG_2 = math.log(2.0)
HALF_LOG_PI = 0.5 * math.log(math.pi)  # the Gaussian normalizer per pixel at variance 1/2
SERIES_BELOW = 1e-2  # |logit|/2 under which log C uses its Taylor series
WEIGHTS_PER_CHUNK = 2**16  # images x importance samples decoded at once (memory: x 784 floats)
BATCH = 4096


def continuous_bernoulli_log_normalizer(logits: torch.Tensor) -> torch.Tensor:
    """log C(λ) for λ = sigmoid(logits), elementwise, stable at and near λ = ½.

    With 1 − 2λ = −tanh(l/2), C(λ) = 2·artanh(1 − 2λ)/(1 − 2λ) = 2u / tanh(u) for u = |l|/2; near
    u = 0 the quotient cancels, so there log C = log 2 + log1p(u²/3 − u⁴/45) (error below u⁶).
    """
    u = logits.abs() / 2
    small = u < SERIES_BELOW
    u_safe = torch.where(small, torch.ones_like(u), u)
    exact = LOG_2 + torch.log(u_safe / torch.tanh(u_safe))
    u2 = u * u
    series = LOG_2 + torch.log1p(u2 / 3 - u2 * u2 / 45)
    return torch.where(small, series, exact)


def continuous_bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x|λ) per pixel, BCE − log C(λ), in the exponential-family form of the continuous
    Bernoulli: p(x|η) = η·e^(ηx) / (e^η − 1) with η = logit(λ), so

        -log p(x|η) = log((e^a − 1)/a) + min(η, 0) − η·x,   a = |η|,

    and log((e^a − 1)/a) = a + log((1 − e^(−a))/a), a ratio computed to relative precision
    (no cancellation near η = 0, no overflow for large |η|). Half the tensor passes of BCE minus
    `continuous_bernoulli_log_normalizer`, which it equals (tests): the IWAE bound calls it on
    k × images × 784 values.
    """
    a = logits.abs().clamp_min(1e-30)
    return a + torch.log(-torch.expm1(-a) / a) + logits.clamp(max=0) - logits * x


def neg_log_likelihood(logits: torch.Tensor, x: torch.Tensor, loss: str) -> torch.Tensor:
    """-log p(x|z) per image in nats, summed over pixels: shape (B,). See the module docstring."""
    if loss == "bce":
        return continuous_bernoulli_nll(logits, x).sum(dim=-1)
    if loss == "mse":
        return ((torch.sigmoid(logits) - x).pow(2) + HALF_LOG_PI).sum(dim=-1)
    raise ValueError(f"loss {loss!r}; allowed: bce, mse")


@torch.no_grad()
def neg_elbo(model: VAE, images: torch.Tensor, loss: str, seed: int = 0) -> float:
    """Mean −ELBO per image (nats): one z from q(z|x) for the likelihood, the KL in closed form."""
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=images.device)
    with seeded(seed, images.device):
        for start in range(0, images.shape[0], BATCH):
            x = images[start : start + BATCH]
            mean, logvar = model.encode(x)
            z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
            per_image = neg_log_likelihood(model.decode_logits(z), x, loss) + kl_to_standard_normal(mean, logvar)
            total += per_image.double().sum()
    return (total / images.shape[0]).item()


@torch.no_grad()
def log_weights(model: VAE, x: torch.Tensor, k: int, loss: str) -> torch.Tensor:
    """(k, B) importance log-weights log p(x|z) + log p(z) - log q(z|x) for z ~ q(z|x)."""
    mean, logvar = model.encode(x)
    eps = torch.randn(k, *mean.shape, device=x.device, dtype=mean.dtype)
    z = mean + torch.exp(0.5 * logvar) * eps
    log_q = -0.5 * (eps.pow(2) + logvar + LOG_2PI).sum(-1)
    log_prior = -0.5 * (z.pow(2) + LOG_2PI).sum(-1)
    logits = model.decode_logits(z.reshape(-1, z.shape[-1]))
    target = x.unsqueeze(0).expand(k, *x.shape).reshape(-1, x.shape[-1])
    log_likelihood = -neg_log_likelihood(logits, target, loss).reshape(k, -1)
    return log_likelihood + log_prior - log_q


def log_mean_exp(values: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """log(mean(exp(values))) without overflow or underflow."""
    return torch.logsumexp(values, dim=dim) - math.log(values.shape[dim])


@torch.no_grad()
def iwae_nll(model: VAE, images: torch.Tensor, k: int, loss: str, seed: int = 0) -> float:
    """Mean over images of the k-sample importance-weighted NLL estimate (nats per image)."""
    model.eval()
    batch = max(1, WEIGHTS_PER_CHUNK // k)
    total = torch.zeros((), dtype=torch.float64, device=images.device)
    with seeded(seed, images.device):
        for start in range(0, images.shape[0], batch):
            x = images[start : start + batch]
            total -= log_mean_exp(log_weights(model, x, k, loss), dim=0).double().sum()
    return (total / images.shape[0]).item()


@torch.no_grad()
def active_units(model: VAE, images: torch.Tensor, threshold: float = ACTIVE_THRESHOLD) -> int:
    """Latent dimensions whose encoder mean varies over the data: Var_x E_q[z_u|x] > threshold."""
    return int((encoded_means(model, images).double().var(dim=0) > threshold).sum())


@torch.no_grad()
def encoded_means(model: VAE, images: torch.Tensor, batch: int = BATCH) -> torch.Tensor:
    """E_q[z|x] for each image: what the gmm:K sampler is fitted on."""
    model.eval()
    return torch.cat([model.encode(images[s : s + batch])[0] for s in range(0, images.shape[0], batch)])
