"""Evaluation in two parts: a context built once (classifier, real reference, data), then scoring.

The context holds everything that does not depend on the sampler: the evaluation classifier, the
real reference features of one split, and the real train subset scored through the very same code
path as generated images (the floor). Scoring one sampler then costs one decode, one classifier
pass and the metrics, so a search trial can score many samplers against one context.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from pipeline.core.judges import cnn
from pipeline.core.model.samplers import Sampler, draw_samples, needs_fit
from pipeline.core.model.training import as_float_tensor
from pipeline.core.scores import catalogue, likelihood, quality
from pipeline.errors import InputError

SAMPLER_METRICS, MODEL_METRICS = catalogue.names(catalogue.SAMPLER), catalogue.names(catalogue.MODEL)
REAL_ROW = "real (train subset)"
REAL_METRICS = catalogue.names(catalogue.REAL)  # the real-data yardsticks of an evaluation
GMM_FIT_CODES = 10_000  # EM's cost grows with the codes: every training mean of full MNIST would take minutes


def gmm_fit_codes(train_count: int) -> int:
    """How many encoded training means a fitted sampler (gmm:K) is fitted on."""
    return min(GMM_FIT_CODES, train_count)


def check_fittable(samplers: list[Sampler], train_count: int) -> None:
    """Refuse, before any work, a gmm:K with more components than there are codes to fit it on."""
    codes = gmm_fit_codes(train_count)
    for sampler in samplers:
        if needs_fit(sampler) and sampler.k > codes:
            raise InputError(
                f"parameter 'samplers': {sampler.spec} has {sampler.k} components but is fitted on "
                f"{codes} encoded training images; allowed: gmm:K with K <= {codes}"
            )


@dataclass
class Scored:
    """One sampler's scored draws: the fitted sampler, the images, their metrics, class counts and classes."""

    sampler: Sampler
    images: torch.Tensor
    metrics: dict
    counts: np.ndarray
    classes: np.ndarray  # the CNN's class of every image


@dataclass
class EvaluationContext:
    """What every sampler of one evaluation is measured against."""

    classifier: cnn.DigitClassifier
    splits: dict[str, torch.Tensor]  # flat float images per split, on the device
    reference: quality.Reference
    reference_split: str
    n_samples: int
    seed: int
    real_row: dict  # the real train subset's metrics: the floor every sampler is read against
    real: dict  # the catalogue's real-data yardsticks (REAL_METRICS)
    real_counts: np.ndarray
    reference_labels: np.ndarray | None = None  # the reference split's labels (judges' accuracy on blurred digits)
    _codes: dict = field(default_factory=dict)  # encoded training means per model, for gmm:K

    @classmethod
    def build(
        cls, classifier, prepared, device: torch.device, n_samples: int, seed: int, reference_split: str = "test"
    ) -> EvaluationContext:
        """Embed the reference split once and score a real train subset of n_samples images."""
        splits = {name: as_float_tensor(images, device) for name, (images, _) in prepared.splits.items()}
        features, _ = cnn.embed(classifier, splits[reference_split])
        reference = quality.Reference.build(features, prepared.splits[reference_split][1])
        generator = np.random.default_rng(seed)
        subset = generator.choice(len(splits["train"]), size=min(n_samples, len(splits["train"])), replace=False)
        real_images = splits["train"][torch.from_numpy(np.sort(subset)).to(device)]
        real_row, real_counts = quality.image_set_metrics(real_images, *cnn.embed(classifier, real_images), reference)
        real = {
            "fid_floor": real_row["fid"],
            "sharpness_real": quality.sharpness(splits[reference_split]),
            "class_entropy_real": float(quality.entropy(reference.label_shares)),
            "confident_share_real": real_row["confident_share"],
        }
        return cls(
            classifier,
            splits,
            reference,
            reference_split,
            n_samples,
            seed,
            real_row,
            real,
            real_counts,
            prepared.splits[reference_split][1],
        )

    def fit(self, model, sampler: Sampler) -> Sampler:
        """The sampler ready to draw: gmm:K is fitted on a seeded subset of encoded training means."""
        if not needs_fit(sampler):
            return sampler
        key = id(model)
        if key not in self._codes:
            train = self.splits["train"]
            rows = np.random.default_rng(self.seed).permutation(len(train))[: gmm_fit_codes(len(train))]
            self._codes = {
                key: likelihood.encoded_means(model, train[torch.from_numpy(np.sort(rows)).to(train.device)])
            }
        return sampler.fit(self._codes[key], seed=self.seed)

    def score(self, model, sampler: Sampler, n: int | None = None):
        """(fitted sampler, images, metrics, class counts) of n draws (default: n_samples)."""
        scored = self.scored(model, sampler, n)
        return scored.sampler, scored.images, scored.metrics, scored.counts

    def scored(self, model, sampler: Sampler, n: int | None = None) -> Scored:
        """`score`, with the CNN's class of every image too (what the judges' dispute is made of)."""
        sampler = self.fit(model, sampler)
        images = draw_samples(model, sampler, n or self.n_samples, self.seed, self.reference.features.device)
        features, probabilities = cnn.embed(self.classifier, images)
        metrics, counts = quality.image_set_metrics(images, features, probabilities, self.reference)
        return Scored(sampler, images, metrics, counts, probabilities.argmax(1).cpu().numpy())

    def model_metrics(self, model, loss: str, iwae_k: int) -> dict[str, float]:
        """The model's likelihood on the test split and its active latent units."""
        test = self.splits["test"]
        return {
            "neg_elbo": likelihood.neg_elbo(model, test, loss, self.seed),
            "nll": likelihood.iwae_nll(model, test, iwae_k, loss, self.seed),
            "active_units": likelihood.active_units(model, test),
        }


def format_table(rows: dict[str, dict], extra: dict[str, float]) -> str:
    """A plain-text table: one row per sampler (and the real train subset), then the extra scores."""
    header = ["sampler", *SAMPLER_METRICS, "max_class"]
    lines = [header]
    for key, row in rows.items():
        cells = [key]
        for name in (*SAMPLER_METRICS, "max_class"):
            value = row[name]
            cells.append(str(value) if isinstance(value, int) else f"{value:.4g}")
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        "  ".join(cell.rjust(width) if i else cell.ljust(width) for i, (cell, width) in enumerate(zip(line, widths)))
        for line in lines
    ]
    text.insert(1, "  ".join("-" * width for width in widths))
    text.append("")
    text.append("  ".join(f"{name} {value:.4g}" for name, value in extra.items()))
    return "\n".join(text)
