"""Generation-quality metrics on a set of images, each a number for one of the study's judgements.

- realism: FID (Fréchet distance of the classifier's penultimate features, in float64 by an
  eigendecomposition; the tests check it against torchmetrics and a closed form), `confidence` (mean top-class probability), k-NN
  `precision` (Kynkäänniemi et al. 2019) and its outlier-robust companion `density`
  (Naeem et al. 2020);
- diversity (finding F6): predicted-class histogram, its entropy, KL to the data's label
  frequencies, classes covered, the largest class share; k-NN `recall` and `coverage`;
- clarity: `sharpness`, the mean per-image variance of the Laplacian.

The real reference (features, label frequencies) is computed once per evaluation in a
`Reference` and reused for every sampler. Entropy is scipy.stats', the Laplacian scipy.ndimage's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

CLASSES = 10
CONFIDENT = 0.9  # a prediction is confident when its top-class probability reaches this
PR_K = 3  # precision and recall: Kynkäänniemi et al. 2019 use k = 3
DC_K = 5  # density and coverage: Naeem et al. 2020 recommend k = 5
MOST_DIGITS = 8  # "most digits": 8 of the 10
DISTANCE_CHUNK = 2048


@dataclass(frozen=True)
class GaussianStats:
    """Mean, covariance and the covariance's symmetric square root of a feature set (float64, CPU)."""

    mean: torch.Tensor
    covariance: torch.Tensor
    covariance_sqrt: torch.Tensor

    @classmethod
    def of(cls, features: torch.Tensor) -> GaussianStats:
        x = features.detach().cpu().double()
        covariance = torch.cov(x.T)
        values, vectors = torch.linalg.eigh(covariance)
        sqrt = (vectors * values.clamp(min=0).sqrt()) @ vectors.T
        return cls(x.mean(0), covariance, sqrt)


def frechet_distance(real: GaussianStats, fake_features: torch.Tensor) -> float:
    """‖μ_r − μ_f‖² + tr(Σ_r + Σ_f − 2 (Σ_r Σ_f)^½), the FID formula (Heusel et al. 2017).

    tr (Σ_r Σ_f)^½ is the sum of the square roots of the eigenvalues of the symmetric
    Σ_r^½ Σ_f Σ_r^½, which has the same spectrum: no non-symmetric matrix square root is needed.
    """
    fake = GaussianStats.of(fake_features)
    product = real.covariance_sqrt @ fake.covariance @ real.covariance_sqrt
    trace_sqrt = torch.linalg.eigvalsh((product + product.T) / 2).clamp(min=0).sqrt().sum()
    distance = (real.mean - fake.mean).pow(2).sum() + real.covariance.trace() + fake.covariance.trace() - 2 * trace_sqrt
    return float(distance)


def entropy(shares: np.ndarray, reference: np.ndarray | None = None) -> float:
    """Shannon entropy in nats, or with `reference` the KL divergence to it (both normalized first)."""
    from scipy import stats

    return float(stats.entropy(shares, reference))


def class_histogram(probabilities: torch.Tensor, classes: int = CLASSES) -> np.ndarray:
    """Counts of the predicted (arg-max) class."""
    return np.bincount(probabilities.argmax(1).cpu().numpy(), minlength=classes)


def class_metrics(counts: np.ndarray, reference_shares: np.ndarray) -> dict:
    """Entropy (nats, at most ln C), KL(generated || reference), classes covered, largest share.

    A class counts as covered when it holds at least half of a uniform share (1 / 2C); the share of
    the MOST_DIGITS-th most frequent class says by how much "most digits" are covered, continuously.
    """
    shares = counts / counts.sum()
    return {
        "class_entropy": float(entropy(shares)),
        "class_kl": float(entropy(shares, reference_shares)),
        "classes_covered": int((shares >= 0.5 / len(shares)).sum()),
        "most_digits_share": float(np.sort(shares)[::-1][MOST_DIGITS - 1]),
        "max_class_share": float(shares.max()),
        "max_class": int(shares.argmax()),
    }


def kth_neighbour_radii(features: torch.Tensor, k: int = PR_K) -> torch.Tensor:
    """Distance of each point to its k-th nearest other point of the same set."""
    radii = []
    for start in range(0, len(features), DISTANCE_CHUNK):
        distances = torch.cdist(features[start : start + DISTANCE_CHUNK], features)
        # k + 1: the point itself is at distance 0. topk is ~10x faster than kthvalue here.
        radii.append(distances.topk(k + 1, dim=1, largest=False).values[:, -1])
    return torch.cat(radii)


def manifold_metrics(
    real: torch.Tensor,
    fake: torch.Tensor,
    k: int = PR_K,
    real_radii: dict[int, torch.Tensor] | None = None,
    dc_k: int = DC_K,
) -> dict[str, float]:
    """k-NN manifold estimates in feature space, both sets cut to the same size n.

    - precision / recall at k (Kynkäänniemi et al. 2019, k = 3): share of generated points inside the
      real manifold (union of balls around each real point reaching its k-th real neighbour), and of
      real points inside the generated manifold;
    - density / coverage at dc_k (Naeem et al. 2020, k = 5): the mean number of real balls holding a
      generated point, over dc_k (about 1 when the two match; outlier real points with huge balls,
      which can lift precision to ~1 even for noise, barely move it), and the share of real balls
      holding at least one generated point.
    One pass over the generated-to-real distances serves all four; `real_radii` ({k: radii of
    real[:n]}) can be passed in, since the real set is the same for every sampler.
    """
    n = min(len(real), len(fake))
    real, fake = real[:n].float(), fake[:n].float()
    real_radii = dict(real_radii or {})
    for needed in {k, dc_k} - set(real_radii):
        real_radii[needed] = kth_neighbour_radii(real, needed)
    fake_radii = kth_neighbour_radii(fake, k)
    in_any_real_ball = torch.zeros(n, dtype=torch.bool, device=fake.device)  # per generated point, at k
    balls_holding = torch.zeros(n, device=fake.device)  # per generated point: real balls holding it, at dc_k
    real_inside = torch.zeros(n, dtype=torch.bool, device=real.device)
    real_ball_hit = torch.zeros(n, dtype=torch.bool, device=real.device)
    for start in range(0, n, DISTANCE_CHUNK):
        distances = torch.cdist(fake[start : start + DISTANCE_CHUNK], real)  # (chunk of fake, real)
        in_any_real_ball[start : start + DISTANCE_CHUNK] = (distances <= real_radii[k].unsqueeze(0)).any(dim=1)
        in_dc_balls = distances <= real_radii[dc_k].unsqueeze(0)
        balls_holding[start : start + DISTANCE_CHUNK] = in_dc_balls.sum(dim=1).float()
        real_ball_hit |= in_dc_balls.any(dim=0)
        real_inside |= (distances <= fake_radii[start : start + DISTANCE_CHUNK].unsqueeze(1)).any(dim=0)
    return {
        "precision": in_any_real_ball.float().mean().item(),
        "recall": real_inside.float().mean().item(),
        "density": balls_holding.mean().item() / dc_k,
        "coverage": real_ball_hit.float().mean().item(),
    }


def precision_recall(
    real: torch.Tensor, fake: torch.Tensor, k: int = PR_K, real_radii: dict[int, torch.Tensor] | None = None
) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019); see `manifold_metrics`."""
    metrics = manifold_metrics(real, fake, k, real_radii)
    return metrics["precision"], metrics["recall"]


def laplacian_variances(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """Per image, the variance of its 4-neighbour Laplacian (OpenCV's ksize=1 kernel), mirrored border
    (scipy.ndimage's "mirror", numpy's "reflect", OpenCV's REFLECT_101: the edge pixel is not repeated).

    A blurry image has small second derivatives everywhere, a crisp stroke large ones at its edges.
    """
    from scipy import ndimage

    array = (
        images.detach().float().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images, np.float32)
    )
    array = array.reshape(len(array), 28, 28) if array.ndim == 2 else array
    laplacian = ndimage.laplace(array, mode="mirror", axes=(1, 2))
    return laplacian.reshape(len(array), -1).var(axis=1)


def sharpness(images) -> float:
    """Mean variance of the Laplacian over the images (pixel values in [0, 1])."""
    return float(laplacian_variances(images).mean())


@dataclass
class Reference:
    """What every sampler is compared with: the real test split's features and label frequencies."""

    features: torch.Tensor
    label_shares: np.ndarray
    stats: GaussianStats
    _radii: dict = field(default_factory=dict)

    @classmethod
    def build(cls, features: torch.Tensor, labels: np.ndarray) -> Reference:
        shares = np.bincount(labels, minlength=CLASSES) / len(labels)
        return cls(features=features.float(), label_shares=shares, stats=GaussianStats.of(features))

    def radii(self, n: int) -> dict[int, torch.Tensor]:
        """{k: k-NN radii of the first n real features} for precision/recall and density/coverage, once per size."""
        if n not in self._radii:
            self._radii[n] = {k: kth_neighbour_radii(self.features[:n], k) for k in (PR_K, DC_K)}
        return self._radii[n]


def confidence_metrics(probabilities: torch.Tensor, dominant: int, threshold: float = CONFIDENT) -> dict:
    """How much a class-histogram verdict rests on the classifier: the share of confident predictions
    (top-class probability >= threshold) and the dominant class's share among them (NaN if none).

    Off-manifold samples are where classifiers disagree: a dominant class that holds among confident
    predictions too does not come from the classifier's guesses on noise.
    """
    top, predicted = probabilities.max(1)
    confident = top >= threshold
    among = (predicted[confident] == dominant).float().mean().item() if confident.any() else math.nan
    return {"confident_share": confident.float().mean().item(), "max_class_share_confident": among}


def image_set_metrics(
    images: torch.Tensor, features: torch.Tensor, probabilities: torch.Tensor, reference: Reference
) -> tuple[dict, np.ndarray]:
    """All generation metrics of one image set (generated or real): (scalars, class counts)."""
    counts = class_histogram(probabilities)
    n = min(len(reference.features), len(features))
    classes = class_metrics(counts, reference.label_shares)
    metrics = {
        "fid": frechet_distance(reference.stats, features),
        **classes,
        **confidence_metrics(probabilities, classes["max_class"]),
        "confidence": float(probabilities.max(1).values.mean()),
        **manifold_metrics(reference.features, features, real_radii=reference.radii(n)),
        "sharpness": sharpness(images),
    }
    return metrics, counts


MAX_ENTROPY = math.log(CLASSES)
