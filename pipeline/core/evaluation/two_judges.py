"""Both judges on one sampler's samples: their class metrics, how far each can be trusted at the
samples' sharpness, how far they agree on the samples themselves (Cohen's kappa, the share in dispute;
pipeline/core/judges/disagreement.py), and the digits they dispute.

A judge's test accuracy is measured on crisp digits; VAE samples are blurrier. So each evaluation
also blurs real digits of its reference split until their mean sharpness equals the samples'
(pipeline/core/judges/blur.py) and measures both judges there: `judge_acc_at_sample_sharpness` (the CNN)
and `judge2_acc_at_sample_sharpness` (the k-NN), with the σ it took. A judge under
UNRELIABLE_BELOW there is not to be trusted on those samples' classes. Cost per sampler: one
bisection (about 10-20 blurs and sharpness passes over BLUR_DIGITS images), one CNN pass and one
k-NN pass over them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pipeline.core.evaluation.scoring import SAMPLER_METRICS, EvaluationContext, Scored
from pipeline.core.judges import blur, cnn, disagreement, knn
from pipeline.core.stopwatch import Stopwatch

BLUR_DIGITS = 1000  # real digits of the reference split blurred per sampler (a seeded subset)
UNRELIABLE_BELOW = 0.8  # a judge less accurate than this on digits as blurry as the samples is unreliable there
CNN_ACCURACY, KNN_ACCURACY, BLUR_SIGMA = (
    "judge_acc_at_sample_sharpness",
    "judge2_acc_at_sample_sharpness",
    "blur_sigma_at_sample_sharpness",
)
IN_DISPUTE = "samples_in_dispute"  # share of the scored samples the two judges classify differently
KAPPA = "judges_kappa"  # Cohen's kappa of the two judges' classes of the scored samples
METRICS = (CNN_ACCURACY, KNN_ACCURACY, BLUR_SIGMA, IN_DISPUTE, KAPPA)


def real_digits(context: EvaluationContext, n: int = BLUR_DIGITS) -> tuple[torch.Tensor, np.ndarray]:
    """A seeded subset of n real digits of the context's reference split, with their labels."""
    images = context.splits[context.reference_split]
    rows = np.sort(np.random.default_rng(context.seed).permutation(len(images))[:n])
    return images[torch.from_numpy(rows).to(images.device)], np.asarray(context.reference_labels)[rows]


def accuracies_at_sharpness(
    context: EvaluationContext,
    judge2: knn.Judge,
    target: float,
    digits: tuple[torch.Tensor, np.ndarray] | None = None,
) -> dict[str, float]:
    """Both judges' accuracy on real digits blurred to mean sharpness `target`, and the blur's σ."""
    images, labels = digits if digits is not None else real_digits(context)
    blurred = blur.blur_to_sharpness(images, target)
    _, probabilities = cnn.embed(context.classifier, blurred.images)
    cnn_accuracy = float((probabilities.argmax(1).cpu().numpy() == labels).mean())
    return {
        CNN_ACCURACY: cnn_accuracy,
        KNN_ACCURACY: judge2.accuracy(blurred.images, labels),
        BLUR_SIGMA: blurred.sigma,
    }


@dataclass
class Judged:
    """What both judges say about one sampler's scored samples."""

    metrics: dict[str, float]  # the k-NN's class metrics, judges_agree, and METRICS
    dominant: int  # the k-NN's dominant digit
    counts: np.ndarray  # the k-NN's class counts
    dispute: disagreement.Dispute


def judge_samples(
    context: EvaluationContext,
    judge2: knn.Judge,
    scored: Scored,
    digits: tuple[torch.Tensor, np.ndarray] | None = None,
    watch: Stopwatch | None = None,
) -> Judged:
    """The second judge on the scored samples, both judges at the samples' sharpness, and the dispute.
    `digits`: the real subset to blur (default: `real_digits(context)`), passed in to build it once;
    `watch` gets the time of the blurred-digit accuracies as phase `judges_at_sample_sharpness`."""
    predicted = judge2.predict(scored.images)
    metrics, dominant, counts = knn.scores(
        judge2, scored.images, scored.counts, context.reference.label_shares, predicted
    )
    with (watch or Stopwatch())("judges_at_sample_sharpness"):
        metrics.update(accuracies_at_sharpness(context, judge2, scored.metrics["sharpness"], digits))
    disputed = disagreement.of(scored.images, scored.classes, predicted, context.seed)
    metrics[IN_DISPUTE], metrics[KAPPA] = disputed.share_in_dispute, disputed.kappa
    return Judged(metrics, dominant, counts, disputed)


@dataclass
class SamplerScore:
    """One sampler scored and judged by both judges: what its run logs."""

    scored: Scored
    judged: Judged

    @property
    def metrics(self) -> dict[str, float]:
        """Every per-sampler metric: the catalogue's, then the second judge's and both judges' (METRICS)."""
        return {**{name: float(self.scored.metrics[name]) for name in SAMPLER_METRICS}, **self.judged.metrics}

    @property
    def dominant(self) -> dict[str, str]:
        """Each judge's dominant digit, as tags of the sampler's run."""
        return {"max_class": str(self.scored.metrics["max_class"]), f"max_class{knn.SUFFIX}": str(self.judged.dominant)}


def score_sampler(
    context: EvaluationContext,
    model,
    sampler,
    judge2: knn.Judge,
    digits: tuple[torch.Tensor, np.ndarray] | None = None,
    watch: Stopwatch | None = None,
) -> SamplerScore:
    """The one scoring of a sampler, for the evaluate step and the search's verification alike: its
    images and metrics (phase `scoring` of `watch`), then both judges on them."""
    watch = watch or Stopwatch()
    with watch("scoring"):
        scored = context.scored(model, sampler)
        return SamplerScore(scored, judge_samples(context, judge2, scored, digits, watch))
