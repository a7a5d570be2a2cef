"""How well a trained VAE models the test data: −ELBO, an importance-weighted NLL, active units.

The NLL estimate is the negative IWAE bound (Burda et al. 2016) with q(z|x) the encoder's
N(mu, sigma^2) as proposal:

    nll(x) = -log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x),   z_i ~ q(z|x)

computed with logsumexp so that log-weights of −10^4 nats do not underflow. -log p(x|z) is the
training loss's reconstruction term (summed BCE, or summed squared error for MSE models, whose
Gaussian normalizer is left out), so k = 1 equals the −ELBO in expectation and the bound
tightens as k grows. On grey-level pixels BCE is not a normalized density: compare these
numbers with other grey-level −ELBOs, not with binarized-MNIST likelihoods.
"""

from __future__ import annotations

import math

import torch

from pipeline.core.model import VAE, reconstruction_per_image
from pipeline.core.seeding import seeded
from pipeline.core.training import evaluate_epoch

ACTIVE_THRESHOLD = 0.01  # Burda et al. 2016: a unit is active when Cov_x E_q[z_u|x] > 0.01
LOG_2PI = math.log(2 * math.pi)
WEIGHTS_PER_CHUNK = 2**16  # images x importance samples decoded at once (memory: x 784 floats)


@torch.no_grad()
def neg_elbo(model: VAE, images: torch.Tensor, loss: str, seed: int = 0) -> float:
    """Mean −ELBO per image with the model's own forward pass and the training reduction."""
    with seeded(seed, images.device):
        return (evaluate_epoch(model, images, loss)[0] / images.shape[0]).item()


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
    log_likelihood = -reconstruction_per_image(logits, target, loss).reshape(k, -1)
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
def encoded_means(model: VAE, images: torch.Tensor, batch: int = 4096) -> torch.Tensor:
    """E_q[z|x] for each image: what the gmm:K sampler is fitted on."""
    model.eval()
    return torch.cat([model.encode(images[s : s + batch])[0] for s in range(0, images.shape[0], batch)])
