"""The digits the two judges dispute, put in front of the reader.

Where the CNN and the k-NN name different dominant digits (or disagree on coverage), no third
number settles it: the reader does, by eye, as the write-up did. An evaluation keeps, per sampler,
up to 32 of its scored samples that the CNN puts in its dominant class and 32 that the k-NN puts in
its own (a small .npz: 64 digits of 784 bytes and the counts); the report draws the labelled panel
for the parts in dispute. `samples_in_dispute` is the share of scored samples the judges classify
differently: the report shows the seed where it is largest.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

PER_SIDE = 32  # samples shown per judge: 4 rows of 8
ARTIFACT = "disputed_digits.npz"  # under evaluation/<sampler key>/


@dataclass
class Dispute:
    """Both judges' dominant digits over one sampler's scored samples, and samples each puts there."""

    cnn_digit: int
    knn_digit: int
    cnn_images: np.ndarray  # (<= PER_SIDE, 28, 28) uint8: samples the CNN puts in cnn_digit
    knn_images: np.ndarray  # (<= PER_SIDE, 28, 28) uint8: samples the k-NN puts in knn_digit
    cnn_count: int  # scored samples the CNN puts in cnn_digit
    knn_count: int  # scored samples the k-NN puts in knn_digit
    disputed: int  # scored samples the two judges classify differently
    total: int

    @property
    def share_in_dispute(self) -> float:
        return self.disputed / self.total if self.total else 0.0

    def labels(self) -> tuple[str, str]:
        """The captions of the two sides."""
        return (
            f"CNN: digit {self.cnn_digit} ({self.cnn_count} of {self.total} samples; {len(self.cnn_images)} shown)",
            f"k-NN: digit {self.knn_digit} ({self.knn_count} of {self.total} samples; {len(self.knn_images)} shown)",
        )

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            cnn_images=self.cnn_images,
            knn_images=self.knn_images,
            numbers=np.array(
                [self.cnn_digit, self.knn_digit, self.cnn_count, self.knn_count, self.disputed, self.total],
                dtype=np.int64,
            ),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Dispute:
        with np.load(io.BytesIO(data)) as arrays:
            cnn_digit, knn_digit, cnn_count, knn_count, disputed, total = (int(v) for v in arrays["numbers"])
            return cls(
                cnn_digit, knn_digit, arrays["cnn_images"], arrays["knn_images"], cnn_count, knn_count, disputed, total
            )


def as_uint8(images) -> np.ndarray:
    """Flat or square images in [0, 1] (tensor or array) as (N, 28, 28) uint8."""
    array = images.detach().float().cpu().numpy() if hasattr(images, "detach") else np.asarray(images, np.float32)
    return (np.clip(array.reshape(len(array), 28, 28), 0, 1) * 255).round().astype(np.uint8)


def of(images, cnn_classes: np.ndarray, knn_classes: np.ndarray, per_side: int = PER_SIDE) -> Dispute:
    """The dispute over `images`, given each judge's class per image: the first `per_side` images
    (in scoring order) each judge puts in its dominant class (ties: the lower digit, as argmax)."""
    cnn_classes, knn_classes = np.asarray(cnn_classes), np.asarray(knn_classes)
    cnn_digit = int(np.bincount(cnn_classes, minlength=10).argmax())
    knn_digit = int(np.bincount(knn_classes, minlength=10).argmax())
    cnn_rows = np.flatnonzero(cnn_classes == cnn_digit)
    knn_rows = np.flatnonzero(knn_classes == knn_digit)
    pixels = as_uint8(images)
    return Dispute(
        cnn_digit,
        knn_digit,
        pixels[cnn_rows[:per_side]],
        pixels[knn_rows[:per_side]],
        len(cnn_rows),
        len(knn_rows),
        int((cnn_classes != knn_classes).sum()),
        len(cnn_classes),
    )


def panel_figure(dispute: Dispute, title: str = ""):
    """Both sides as 4 x 8 grids beside each other, each captioned with its judge and digit (matplotlib)."""
    from pipeline.core.plots import pyplot, tile

    figure, axes = pyplot().subplots(1, 2, figsize=(11, 4.2))
    for axis, images, label in zip(axes, (dispute.cnn_images, dispute.knn_images), dispute.labels()):
        shown = tile(images.astype(np.float32) / 255, 8) if len(images) else np.zeros((28, 28))
        axis.imshow(shown, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axis.set_title(label, fontsize=10)
        axis.set_axis_off()
    if title:
        figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    return figure
