"""How far the two judges agree on one sampler's samples, and the samples they disagree on most.

Two classifiers that name different digits for the same sample cannot both be right. Their
accuracy on real digits says little about samples that lie between digits, so the judges are
weighed on the samples themselves: the CNN x k-NN confusion matrix of the scored samples (rows the
CNN's class, columns the k-NN's), Cohen's kappa (agreement beyond what chance gives with the same
class shares: 1 identical labels, 0 chance), and the share of samples the two classify differently
(`samples_in_dispute`). An evaluation keeps, per sampler, the matrix, up to 32 samples of its most
frequent disagreement (the CNN says a, the k-NN says b) and 32 random samples with both labels
(a small .npz); the report draws them side by side so the reader can judge by eye.
"""

from __future__ import annotations

import dataclasses
import io
import math
from dataclasses import dataclass

import numpy as np

CLASSES = 10
PER_SIDE = 32  # samples of the most frequent disagreement shown: 4 rows of 8
RANDOM = 32  # random samples shown with both judges' labels: 4 rows of 8
ARTIFACT = "disputed_digits.npz"  # under evaluation/<sampler key>/


@dataclass
class Dispute:
    """Both judges over one sampler's scored samples: the counts, kappa, and the samples shown."""

    confusion: np.ndarray  # (10, 10) counts: row the CNN's class, column the k-NN's
    kappa: float  # Cohen's kappa of the two judges' labels (NaN when both name one same class throughout)
    cell_rows: np.ndarray  # indices (scoring order) of the samples shown from the most frequent disagreement
    cell_images: np.ndarray  # (<= PER_SIDE, 28, 28) uint8: those samples
    random_rows: np.ndarray  # indices of the random samples, ascending
    random_images: np.ndarray  # (<= RANDOM, 28, 28) uint8
    random_cnn: np.ndarray  # the CNN's class of each random sample
    random_knn: np.ndarray  # the k-NN's class of each random sample

    @property
    def total(self) -> int:
        return int(self.confusion.sum())

    @property
    def disputed(self) -> int:
        """Scored samples the two judges classify differently."""
        return self.total - int(np.trace(self.confusion))

    @property
    def share_in_dispute(self) -> float:
        return self.disputed / self.total if self.total else 0.0

    @property
    def cell(self) -> tuple[int, int]:
        """(a, b): the most frequent disagreement, the CNN says a and the k-NN says b."""
        return most_frequent_disagreement(self.confusion)

    @property
    def cell_count(self) -> int:
        return int(self.confusion[self.cell])

    def caption(self) -> str:
        """What the disagreement side shows, e.g. "CNN says 3, k-NN says 8: 40 of 100 samples"."""
        if not self.disputed:
            return f"the judges agree on all {self.total} samples"
        a, b = self.cell
        return f"CNN says {a}, k-NN says {b}: {self.cell_count} of {self.total} samples"

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            confusion=self.confusion,
            kappa=np.array(self.kappa, dtype=np.float64),
            cell_rows=self.cell_rows,
            cell_images=self.cell_images,
            random_rows=self.random_rows,
            random_images=self.random_images,
            random_cnn=self.random_cnn,
            random_knn=self.random_knn,
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Dispute:
        """The dispute `to_bytes` wrote; ValueError for another layout (an evaluation that kept only
        each judge's dominant class has no confusion matrix to read)."""
        with np.load(io.BytesIO(data)) as arrays:
            fields = {name: arrays[name] for name in arrays.files}
        names = [f.name for f in dataclasses.fields(cls)]
        if sorted(fields) != sorted(names):
            raise ValueError(f"{ARTIFACT} holds {sorted(fields)}, not {sorted(names)}")
        return cls(**{**fields, "kappa": float(fields["kappa"])})


def most_frequent_disagreement(confusion: np.ndarray) -> tuple[int, int]:
    """The off-diagonal cell with the largest count; ties (all zero included) go to the lowest (a, b)."""
    off = np.asarray(confusion, dtype=np.int64).copy()
    np.fill_diagonal(off, -1)
    a, b = np.unravel_index(int(off.argmax()), off.shape)  # argmax: the first of equals, row-major
    return int(a), int(b)


def agreement(cnn_classes, knn_classes) -> tuple[np.ndarray, float]:
    """(confusion matrix, Cohen's kappa) of the two judges' classes, by scikit-learn. Kappa is 0/0 when
    both judges put every sample in one same class: NaN then, as scikit-learn returns it."""
    # scikit-learn's import costs seconds: paid only where the judges' agreement is measured
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    labels = list(range(CLASSES))
    confusion = confusion_matrix(cnn_classes, knn_classes, labels=labels)
    if len(set(np.unique(cnn_classes)) | set(np.unique(knn_classes))) <= 1:
        return confusion, math.nan  # scikit-learn would warn and give NaN
    return confusion, float(cohen_kappa_score(cnn_classes, knn_classes, labels=labels))


def as_uint8(images) -> np.ndarray:
    """Flat or square images in [0, 1] (tensor or array) as (N, 28, 28) uint8."""
    array = images.detach().float().cpu().numpy() if hasattr(images, "detach") else np.asarray(images, np.float32)
    return (np.clip(array.reshape(len(array), 28, 28), 0, 1) * 255).round().astype(np.uint8)


def of(images, cnn_classes, knn_classes, seed: int, per_side: int = PER_SIDE, random: int = RANDOM) -> Dispute:
    """The dispute over `images`, given each judge's class per image: the first `per_side` samples (in
    scoring order) of the most frequent disagreement, and `random` samples drawn with `seed`."""
    cnn_classes, knn_classes = np.asarray(cnn_classes, np.int64), np.asarray(knn_classes, np.int64)
    confusion, kappa = agreement(cnn_classes, knn_classes)
    a, b = most_frequent_disagreement(confusion)
    cell_rows = np.flatnonzero((cnn_classes == a) & (knn_classes == b))[:per_side]
    drawn = np.random.default_rng(seed).choice(len(cnn_classes), size=min(random, len(cnn_classes)), replace=False)
    random_rows = np.sort(drawn)
    pixels = as_uint8(images)
    return Dispute(
        confusion.astype(np.int64),
        kappa,
        cell_rows,
        pixels[cell_rows],
        random_rows,
        pixels[random_rows],
        cnn_classes[random_rows],
        knn_classes[random_rows],
    )


def draw_confusion(axis, confusion: np.ndarray, title: str) -> None:
    """An annotated CNN x k-NN heatmap (scikit-learn's display), the most frequent disagreement framed."""
    from matplotlib.patches import Rectangle
    from sklearn.metrics import ConfusionMatrixDisplay

    display = ConfusionMatrixDisplay(np.asarray(confusion), display_labels=list(range(CLASSES)))
    display.plot(ax=axis, cmap="Blues", colorbar=False, values_format="d", text_kw={"fontsize": 6})
    axis.set_xlabel("k-NN's class", fontsize=9)
    axis.set_ylabel("CNN's class", fontsize=9)
    axis.tick_params(labelsize=8)
    if np.trace(confusion) < np.sum(confusion):
        a, b = most_frequent_disagreement(confusion)
        axis.add_patch(Rectangle((b - 0.5, a - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.5))
    axis.set_title(title, fontsize=10)


def draw_labelled(axis, images: np.ndarray, cnn_classes: np.ndarray, knn_classes: np.ndarray) -> None:
    """Digits 8 to a row, "CNN/k-NN" over each in the white gap above it (red where the two differ)."""
    from pipeline.core.plots import tile

    padding = 10
    axis.imshow(tile(images.astype(np.float32) / 255, 8, padding, 1.0), cmap="gray", vmin=0, vmax=1)
    columns, cell = min(8, len(images)), 28 + padding
    for index, (a, b) in enumerate(zip(cnn_classes, knn_classes)):
        x = (index % columns) * cell + padding + 14
        y = (index // columns) * cell + padding / 2
        color = "black" if a == b else "red"
        axis.text(x, y, f"{a}/{b}", ha="center", va="center", fontsize=7, color=color)


def panel_figure(dispute: Dispute, title: str = "", summed: np.ndarray | None = None, summed_title: str = ""):
    """The judges' confusion matrix (`summed`, else this dispute's own), the samples of the most frequent
    disagreement as a 4 x 8 grid, and the random samples labelled by both judges (matplotlib)."""
    from pipeline.core.plots import pyplot, tile

    figure, axes = pyplot().subplots(1, 3, figsize=(16, 5.4), gridspec_kw={"width_ratios": [4, 5.5, 5.5]})
    confusion = dispute.confusion if summed is None else summed
    draw_confusion(axes[0], confusion, summed_title or f"CNN × k-NN, κ {dispute.kappa:.2f}")
    cell = dispute.cell_images
    shown = tile(cell.astype(np.float32) / 255, 8) if len(cell) else np.zeros((28, 28))
    axes[1].imshow(shown, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axes[1].set_title(dispute.caption() + (f"; {len(cell)} shown" if len(cell) else ""), fontsize=10)
    if len(dispute.random_images):
        draw_labelled(axes[2], dispute.random_images, dispute.random_cnn, dispute.random_knn)
    axes[2].set_title(f"{len(dispute.random_images)} random samples, labelled CNN/k-NN (red: they differ)", fontsize=10)
    for axis in axes[1:]:
        axis.set_axis_off()
    if title:
        figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    return figure
