"""Reading the IDX files MNIST-style datasets ship in, refusing anything malformed by name."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from pipeline.errors import InputError

IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
SPLIT_PREFIXES = {"train": "train", "test": "t10k"}


def read_idx(path: Path, expected_magic: int) -> np.ndarray:
    """The array stored in one IDX file (plain or .gz), after checking magic number and length."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as error:
        raise InputError(f"{path}: cannot be read ({error})") from None
    if len(raw) < 4:
        raise InputError(f"{path}: truncated file: {len(raw)} bytes, no IDX header")
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        raise InputError(
            f"{path}: wrong IDX magic number 0x{magic:08x}; expected 0x{expected_magic:08x} "
            f"({'images' if expected_magic == IMAGES_MAGIC else 'labels'}, unsigned bytes)"
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise InputError(f"{path}: truncated file: header needs {header} bytes, file has {len(raw)}")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(raw) < expected:
        raise InputError(f"{path}: truncated file: shape {shape} needs {expected} bytes, file has {len(raw)}")
    if len(raw) > expected:
        raise InputError(f"{path}: {len(raw) - expected} unexpected bytes after the data of shape {shape}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def find_idx_file(folder: Path, stem: str) -> Path:
    """`stem` or `stem.gz` in folder; an error naming both when neither is there."""
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise InputError(f"{folder}: missing IDX file {stem} (or {stem}.gz)")


def read_idx_split(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) and labels (N,) of the 'train' or 'test' split in an IDX folder."""
    prefix = SPLIT_PREFIXES[split]
    images_path = find_idx_file(folder, f"{prefix}-images-idx3-ubyte")
    labels_path = find_idx_file(folder, f"{prefix}-labels-idx1-ubyte")
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if images.shape[1:] != (28, 28):
        raise InputError(f"{images_path}: images are {images.shape[1]}x{images.shape[2]}; expected 28x28")
    if len(images) != len(labels):
        raise InputError(f"{images_path}: {len(images)} images but {labels_path.name} has {len(labels)} labels")
    return images, labels.astype(np.int64)


def read_idx_folder(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Both splits of the four standard IDX files in one folder."""
    if not folder.is_dir():
        raise InputError(f"idx folder {str(folder)!r} does not exist; expected a folder with the four IDX files")
    return {split: read_idx_split(folder, split) for split in SPLIT_PREFIXES}


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write uint8 array as IDX (used by tests and tools that build small datasets)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = (0x0800 | array.ndim).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as handle:
        handle.write(header + array.tobytes())
