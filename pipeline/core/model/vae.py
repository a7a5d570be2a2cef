"""The study's VAE, its two forward passes and its two losses (see docs/study.md).

Loss reduction, the same for BCE and MSE so runs compare: each term is summed over the 784
pixels (reconstruction) or the latent dimensions (KL) of an image and averaged over the images
of the batch, i.e. nats per image. The decoder ends in a sigmoid; BCE is computed from the
logits (binary_cross_entropy_with_logits), which equals BCE of the sigmoid output but is exact
where the sigmoid saturates and faster.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

INPUT_SIZE = 784
FORWARD_MODES = ("standard", "sampled-params")
LOSSES = ("bce", "mse")


class ForwardOutput(NamedTuple):
    logits: torch.Tensor  # decoder output before the sigmoid, (B, 784)
    mean: torch.Tensor  # encoder mean mu, (B, latent)
    logvar: torch.Tensor  # encoder log sigma^2, (B, latent)


class LossTerms(NamedTuple):
    total: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor


class VAE(nn.Module):
    """784 -> hidden -> (mu, log sigma^2) heads -> latent -> hidden -> 784, sigmoid output."""

    def __init__(self, latent_size: int = 100, hidden_size: int = 392, forward_mode: str = "standard"):
        super().__init__()
        if forward_mode not in FORWARD_MODES:
            raise ValueError(f"forward_mode {forward_mode!r}; allowed: {', '.join(FORWARD_MODES)}")
        self.latent_size = latent_size
        self.hidden_size = hidden_size
        self.forward_mode = forward_mode
        self.encoder_hidden = nn.Linear(INPUT_SIZE, hidden_size)
        self.mean_head = nn.Linear(hidden_size, latent_size)
        self.logvar_head = nn.Linear(hidden_size, latent_size)
        self.decoder_hidden = nn.Linear(latent_size, hidden_size)
        self.decoder_output = nn.Linear(hidden_size, INPUT_SIZE)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = F.relu(self.encoder_hidden(x))
        return self.mean_head(hidden), self.logvar_head(hidden)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder_output(F.relu(self.decoder_hidden(z)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] for latent codes z: what generation shows."""
        return torch.sigmoid(self.decode_logits(z))

    def draw_latent(self, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z for the decoder: the reparameterization, or E5's sampled-params variant."""
        if self.forward_mode == "sampled-params":
            # E5: mu' ~ N(mu, 1) and log sigma'^2 ~ N(log sigma^2, 1), then z ~ N(mu', sigma'^2).
            mean = mean + torch.randn_like(mean)
            logvar = logvar + torch.randn_like(logvar)
        return mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)

    def forward(self, x: torch.Tensor) -> ForwardOutput:
        mean, logvar = self.encode(x)
        return ForwardOutput(self.decode_logits(self.draw_latent(mean, logvar)), mean, logvar)


def kl_to_standard_normal(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) per image, summed over latent dimensions: shape (B,)."""
    return -0.5 * torch.sum(1 + logvar - mean.pow(2) - logvar.exp(), dim=-1)


def reconstruction_per_image(logits: torch.Tensor, x: torch.Tensor, loss: str) -> torch.Tensor:
    """BCE or squared error per image, summed over pixels: shape (B,)."""
    if loss == "bce":
        return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=-1)
    if loss == "mse":
        return (torch.sigmoid(logits) - x).pow(2).sum(dim=-1)
    raise ValueError(f"loss {loss!r}; allowed: {', '.join(LOSSES)}")


def loss_terms(output: ForwardOutput, x: torch.Tensor, loss: str) -> LossTerms:
    """Negative ELBO and its two terms, summed per image and averaged over the batch.

    The KL term is that of the encoder's q(z|x) = N(mu, sigma^2) in both forward modes.
    """
    batch = x.shape[0]
    reconstruction = reconstruction_per_image(output.logits, x, loss).sum() / batch
    kl = kl_to_standard_normal(output.mean, output.logvar).sum() / batch
    return LossTerms(reconstruction + kl, reconstruction, kl)
