"""Has a training converged? Judged from its validation loss per epoch.

A report's verdicts about a model that has not learned yet say nothing about the write-up (issue
11: a 5-epoch N(0,1) model contradicted F1 because it drew grey blobs). The rule: the relative
fall of the validation loss over the last tenth of the epochs (at least one epoch), measured between
the mean of that window and the mean of the window before it (one epoch's validation loss on mnist-5k's
400 images moves by about 1 % from noise alone). A fall above THRESHOLD means "still improving fast";
a training too short to compare (fewer than two windows) counts as still improving.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Measured (windowed means as below). mnist-5k, latent 100 (BCE, MSE, sampled-params) and latent 8,
# 2 seeds each: 5 epochs fall 2.5-6.5 %, 10-30 epochs 0-3.6 %, 40-100 epochs 0.2-1.9 % (noise alone
# moves it by ~1 %). MNIST, BCE latent 100: 5 epochs 2.05 %, 10-30 epochs 0.3-0.5 %. 2 % flags the
# short trainings an earlier check found unlearned without flagging long ones on noise; 1 % would flag half
# of the 100-epoch mnist-5k trainings.
THRESHOLD = 0.02
WINDOW_FRACTION = 0.1


@dataclass(frozen=True)
class Convergence:
    """The verdict on one training: its epochs, the window compared and the relative fall over it."""

    epochs: int
    window: int
    improvement: float  # (mean loss of the window before - mean of the last window) / |the former|; NaN if too short

    @property
    def measured(self) -> bool:
        return math.isfinite(self.improvement)

    @property
    def still_improving(self) -> bool:
        return not self.measured or self.improvement > THRESHOLD

    def text(self) -> str:
        """One phrase with the numbers that decide it, for the runs table and the page's warning."""
        if not self.measured:
            return f"still improving (too short to tell: {self.epochs} epoch{'s' * (self.epochs != 1)})"
        word = "still improving" if self.still_improving else "converged"
        span = f"{self.window} epoch{'s' * (self.window != 1)}"
        return f"{word} (val loss {-100 * self.improvement:+.1f} % over the last {span} of {self.epochs})"


def window(epochs: int) -> int:
    """The last tenth of the epochs, rounded up, at least one epoch."""
    return max(1, math.ceil(WINDOW_FRACTION * epochs))


def judge(val_loss: list[float]) -> Convergence:
    """The convergence of a training from its validation loss per epoch, in epoch order."""
    values = [float(v) for v in val_loss if v is not None and math.isfinite(float(v))]
    span = window(len(values))
    if len(values) < 2 * span:
        return Convergence(len(values), span, math.nan)
    before, last = sum(values[-2 * span : -span]) / span, sum(values[-span:]) / span
    return Convergence(len(values), span, (before - last) / abs(before))
