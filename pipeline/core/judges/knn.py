"""The second judge: a k-nearest-neighbour classifier on PCA features of pixels, beside the CNN.

Which digit dominates a sampler's output is a guess where samples are off the data manifold, and
one classifier's guesses there are its own (once the CNN said 7 and a pixel k-NN said 1 on the
same N(0,1) samples). A judge of another family, fitted on the same canonical source pool as the
CNN, tells a histogram that the data decides from one a classifier decides. It is stored as plain
arrays (PCA mean and components, the pool's codes and labels), so loading needs no pickle and
scoring is one projection and one scikit-learn neighbour vote. Measured test accuracy (k = 5, distance
weights): PCA-50 97.6 % on MNIST, 94.5 % on mnist-5k (PCA-30 and k = 1, 3, 10 within 0.5 %).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from pipeline.core.scores.catalogue import CATALOGUE

if TYPE_CHECKING:
    from sklearn.neighbors import KNeighborsClassifier

COMPONENTS = 50
NEIGHBOURS = 5
WEIGHTS = "distance"
NAME = f"k-NN (k={NEIGHBOURS}, {WEIGHTS}-weighted) on PCA-{COMPONENTS} of pixels"
ARTIFACT = "judge2/knn_pca.npz"
SUFFIX = "_judge2"  # metric and tag names: class_entropy_judge2, max_class_judge2, ...
JUDGED = tuple(m.name for m in CATALOGUE.values() if m.judged)  # the CNN's class metrics, asked again
SAMPLER_METRICS = (*(name + SUFFIX for name in JUDGED), "judges_agree")


@dataclass
class Judge:
    """PCA projection plus the pool it votes with; images are flat floats in [0, 1]."""

    mean: np.ndarray  # (784,)
    components: np.ndarray  # (COMPONENTS, 784)
    codes: np.ndarray  # (N, COMPONENTS) of the pool
    labels: np.ndarray  # (N,)
    _vote: KNeighborsClassifier | None = field(default=None, init=False, repr=False, compare=False)

    def project(self, images) -> np.ndarray:
        x = _as_numpy(images).reshape(len(images), -1).astype(np.float32)
        return (x - self.mean) @ self.components.T

    def predict(self, images) -> np.ndarray:
        """The predicted class of every image: the distance-weighted vote of its NEIGHBOURS nearest codes
        (a code at distance 0 outvotes the rest; ties go to the lower class)."""
        if self._vote is None:
            from sklearn.neighbors import KNeighborsClassifier

            self._vote = KNeighborsClassifier(NEIGHBOURS, weights=WEIGHTS, algorithm="brute")
            self._vote.fit(self.codes, self.labels)
        return self._vote.predict(self.project(images))

    def accuracy(self, images, labels) -> float:
        return float((self.predict(images) == _as_numpy(labels)).mean())

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, mean=self.mean, components=self.components, codes=self.codes, labels=self.labels)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Judge:
        with np.load(io.BytesIO(data)) as arrays:
            return cls(arrays["mean"], arrays["components"], arrays["codes"], arrays["labels"])


def _as_numpy(values) -> np.ndarray:
    return values.detach().cpu().numpy() if hasattr(values, "detach") else np.asarray(values)


def fit(images, labels, components: int = COMPONENTS) -> Judge:
    """PCA (seeded, so the same pool always gives the same judge) and the pool's codes."""
    from sklearn.decomposition import PCA

    x = _as_numpy(images).reshape(len(images), -1).astype(np.float32)
    pca = PCA(components, random_state=0).fit(x)
    judge = Judge(
        pca.mean_.astype(np.float32),
        pca.components_.astype(np.float32),
        np.empty((0, components)),
        _as_numpy(labels).astype(np.int64),
    )
    judge.codes = judge.project(x)
    return judge


def fit_on(prepared) -> tuple[Judge, dict, dict]:
    """(judge, params, metrics) on the pooled train + validation images of `prepared`, the CNN's pool;
    accuracy on the test split."""
    images, labels = prepared.pooled_training_set()
    judge = fit(images.astype(np.float32) / 255.0, labels)
    test_x, test_y = prepared.splits["test"]
    params = {"judge2": NAME, "judge2_components": COMPONENTS, "judge2_neighbours": NEIGHBOURS}
    return judge, params, {"judge2_test_accuracy": judge.accuracy(test_x.astype(np.float32) / 255.0, test_y)}


# --- do the judges agree? -----------------------------------------------------------------------


def dominant_class(counts: np.ndarray) -> int:
    return int(np.argmax(counts))


def judges_agree(counts: np.ndarray, counts_judge2: np.ndarray) -> bool:
    """Both judges name the same dominant class (ties resolve to the lowest digit, as argmax does)."""
    return dominant_class(counts) == dominant_class(counts_judge2)


def scores(
    judge: Judge, images, counts: np.ndarray, reference_shares: np.ndarray, predicted: np.ndarray | None = None
) -> tuple[dict, int, np.ndarray]:
    """(metrics, dominant class, class counts) of the second judge on images the CNN counted as
    `counts`: the CNN's class metrics under SUFFIX, and judges_agree (1.0 or 0.0). `predicted`: the
    judge's classes of `images` when already known."""
    from pipeline.core.scores.quality import class_metrics

    predicted = judge.predict(images) if predicted is None else predicted
    counts_judge2 = np.bincount(predicted, minlength=len(counts))
    classes = class_metrics(counts_judge2, reference_shares)
    metrics = {name + SUFFIX: float(classes[name]) for name in JUDGED}
    metrics["judges_agree"] = float(judges_agree(counts, counts_judge2))
    return metrics, classes["max_class"], counts_judge2
