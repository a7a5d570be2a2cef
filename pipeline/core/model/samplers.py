"""Latent samplers, parsed from specs such as `normal:1,2` or `beta:0.25,0.25,-1,2`.

Every sampler draws from torch's global generator, so callers fix the draws with a seed;
`draw_samples` does so without disturbing the caller's random stream. torch is imported where a
sampler draws: parsing and checking specs (configs, main) does not load it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.errors import InputError

if TYPE_CHECKING:
    import torch

SPEC_FORMS = "normal:LOC,SCALE | beta:A,B | beta:A,B,LOC,SCALE"


def _format_number(value: float) -> str:
    """Shortest readable form, without '+' (1e+06 -> 1e06): specs stand in metric names."""
    return f"{value:g}".replace("e+", "e")


@dataclass(frozen=True)
class Sampler:
    """Base: a canonical spec, a metric-safe key, and `sample(n, latent_size, device)`."""

    kind = ""

    def values(self) -> tuple[float, ...]:
        raise NotImplementedError

    @property
    def spec(self) -> str:
        return f"{self.kind}:{','.join(_format_number(v) for v in self.values())}"

    @property
    def key(self) -> str:
        """The spec with ':' and ',' made '_' so it can stand in MLflow metric and artifact names."""
        return self.spec.replace(":", "_").replace(",", "_")

    def sample(self, n: int, latent_size: int, device: torch.device | str = "cpu") -> torch.Tensor:
        raise NotImplementedError


@dataclass(frozen=True)
class NormalSampler(Sampler):
    """z ~ N(loc, scale^2) per coordinate; scale is the standard deviation (torch's convention)."""

    loc: float
    scale: float
    kind = "normal"

    def values(self):
        return (self.loc, self.scale)

    def sample(self, n, latent_size, device="cpu"):
        import torch

        return torch.randn(n, latent_size, device=device) * self.scale + self.loc

    def mean(self) -> float:
        return self.loc

    def variance(self) -> float:
        return self.scale**2


@dataclass(frozen=True)
class BetaSampler(Sampler):
    """z = loc + scale * Beta(a, b) per coordinate."""

    a: float
    b: float
    loc: float = 0.0
    scale: float = 1.0
    kind = "beta"

    def values(self):
        if (self.loc, self.scale) == (0.0, 1.0):
            return (self.a, self.b)
        return (self.a, self.b, self.loc, self.scale)

    def sample(self, n, latent_size, device="cpu"):
        import torch

        concentration1 = torch.full((latent_size,), self.a, device=device)
        concentration0 = torch.full((latent_size,), self.b, device=device)
        beta = torch.distributions.Beta(concentration1, concentration0).sample((n,))
        return self.loc + self.scale * beta

    def mean(self) -> float:
        return self.loc + self.scale * self.a / (self.a + self.b)

    def variance(self) -> float:
        total = self.a + self.b
        return self.scale**2 * self.a * self.b / (total**2 * (total + 1))


def _numbers(spec: str, text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise InputError(f"sampler spec {spec!r}: values must be numbers; allowed forms: {SPEC_FORMS}") from None
    if not all(math.isfinite(v) for v in values):
        raise InputError(f"sampler spec {spec!r}: values must be finite numbers; allowed forms: {SPEC_FORMS}")
    return values


def _positive(spec: str, **named: float) -> None:
    for name, value in named.items():
        if not value > 0:
            raise InputError(
                f"sampler spec {spec!r}: {name} must be positive, got {value:g}; allowed forms: {SPEC_FORMS}"
            )


def _normal(spec: str, values: list[float]) -> Sampler:
    if len(values) != 2:
        raise InputError(f"sampler spec {spec!r}: normal takes 2 values (LOC,SCALE), got {len(values)}")
    _positive(spec, SCALE=values[1])
    return NormalSampler(*values)


def _beta(spec: str, values: list[float]) -> Sampler:
    if len(values) not in (2, 4):
        raise InputError(f"sampler spec {spec!r}: beta takes 2 values (A,B) or 4 (A,B,LOC,SCALE), got {len(values)}")
    _positive(spec, A=values[0], B=values[1], **({"SCALE": values[3]} if len(values) == 4 else {}))
    return BetaSampler(*values)


REGISTRY = {"normal": _normal, "beta": _beta}


def parse_sampler(spec: str) -> Sampler:
    """One sampler from its spec; an InputError naming the spec when it is malformed."""
    text = spec.strip()
    kind, sep, rest = text.partition(":")
    if kind not in REGISTRY:
        raise InputError(f"sampler spec {spec!r}: unknown kind {kind!r}; allowed forms: {SPEC_FORMS}")
    if not sep or not rest:
        raise InputError(f"sampler spec {spec!r}: no values after '{kind}:'; allowed forms: {SPEC_FORMS}")
    return REGISTRY[kind](spec, _numbers(spec, rest))


# Between specs: '+' (needs no shell quoting) or ';'. A '+' inside a number (1e+3) is followed by a digit.
SEPARATOR = re.compile(r";|\+(?=\s*[A-Za-z])")


def parse_samplers(specs: str) -> list[Sampler]:
    """Samplers from a '+'- (or ';'-) separated list, without repeats, in the order given."""
    parts = [part for part in SEPARATOR.split(specs) if part.strip()]
    if not parts:
        raise InputError(f"parameter 'samplers': got {specs!r}; allowed: one or more of {SPEC_FORMS}, '+'-separated")
    samplers: list[Sampler] = []
    for part in parts:
        sampler = parse_sampler(part)
        if sampler in samplers:
            raise InputError(f"parameter 'samplers': {sampler.spec!r} is given twice")
        samplers.append(sampler)
    return samplers


def join_specs(samplers: list[Sampler]) -> str:
    """The canonical list: canonical specs joined by '+'."""
    return "+".join(sampler.spec for sampler in samplers)


# --- gmm:K, the reference sampler of the evaluate step ---------------------------------------

from dataclasses import field, replace  # noqa: E402


@dataclass(frozen=True)
class GaussianMixtureSampler(Sampler):
    """z from a K-component full-covariance Gaussian mixture fitted on encoded training means.

    Ex-post density estimation (Ghosh et al. 2020): instead of the prior, sample where the
    encoder actually puts the data. `fit(latent_means)` returns the fitted sampler (scikit-learn's
    GaussianMixture); sampling then draws component indices with torch.multinomial and
    z = mean_c + chol_c @ eps from torch's global generator, so seeds fix the draws like the others.
    """

    k: int
    weights: torch.Tensor | None = field(default=None, compare=False, repr=False)
    means: torch.Tensor | None = field(default=None, compare=False, repr=False)
    cholesky: torch.Tensor | None = field(default=None, compare=False, repr=False)
    kind = "gmm"

    def values(self):
        return (self.k,)

    @property
    def fitted(self) -> bool:
        return self.weights is not None

    def fit(self, latent_means, seed: int = 0) -> GaussianMixtureSampler:
        import torch
        from sklearn.mixture import GaussianMixture

        data = latent_means.detach().cpu().double().numpy() if isinstance(latent_means, torch.Tensor) else latent_means
        if len(data) < self.k:
            raise InputError(
                f"sampler spec {self.spec!r}: {self.k} components need at least {self.k} latent codes, got {len(data)}"
            )
        mixture = GaussianMixture(self.k, covariance_type="full", random_state=seed).fit(data)
        return replace(
            self,
            weights=torch.from_numpy(mixture.weights_).float(),
            means=torch.from_numpy(mixture.means_).float(),
            cholesky=torch.linalg.cholesky(torch.from_numpy(mixture.covariances_)).float(),
        )

    def sample(self, n, latent_size, device="cpu"):
        if not self.fitted:
            raise RuntimeError(f"sampler {self.spec!r} must be fitted on latent codes first: call fit(latent_means)")
        if self.means.shape[1] != latent_size:
            raise InputError(
                f"sampler {self.spec!r} was fitted on {self.means.shape[1]} latent dims, not {latent_size}"
            )
        import torch

        weights, means, cholesky = (t.to(device) for t in (self.weights, self.means, self.cholesky))
        components = torch.multinomial(weights, n, replacement=True)
        eps = torch.randn(n, latent_size, device=device)
        # One matmul per component: indexing the Cholesky factors per draw would hold
        # n x d x d floats (10,000 x 100 x 100: 400 MB); the draws are the same.
        z = torch.empty_like(eps)
        for component in range(self.k):
            rows = (components == component).nonzero(as_tuple=True)[0]
            z[rows] = means[component] + eps[rows] @ cholesky[component].T
        return z

    def mixture_mean(self) -> torch.Tensor:
        return self.weights @ self.means

    def mixture_covariance(self) -> torch.Tensor:
        import torch

        covariances = self.cholesky @ self.cholesky.transpose(1, 2)
        centred = self.means - self.mixture_mean()
        return torch.einsum("c,cij->ij", self.weights, covariances + centred[:, :, None] * centred[:, None, :])


def _gmm(spec: str, values: list[float]) -> Sampler:
    if len(values) != 1 or values[0] != int(values[0]) or values[0] < 1:
        raise InputError(
            f"sampler spec {spec!r}: gmm takes one whole number K >= 1 (components); allowed forms: {SPEC_FORMS}"
        )
    return GaussianMixtureSampler(int(values[0]))


def needs_fit(sampler: Sampler) -> bool:
    """Whether a sampler must see the encoded training data before it can sample."""
    return isinstance(sampler, GaussianMixtureSampler) and not sampler.fitted


REGISTRY["gmm"] = _gmm
SPEC_FORMS += " | gmm:K"


def draw_samples(model, sampler: Sampler, n: int, seed: int, device: torch.device) -> torch.Tensor:
    """n decoded images in [0, 1]; seeded, and the caller's random stream is left as it was."""
    import torch

    from pipeline.core.seeding import seeded

    with torch.no_grad(), seeded(seed, device):
        model.eval()
        return model.decode(sampler.sample(n, model.latent_size, device))
