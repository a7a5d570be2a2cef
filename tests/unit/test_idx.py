"""IDX reading and every bad-input case: each refused with the file named and the problem stated."""

import gzip

import numpy as np
import pytest

from pipeline.core.data import datasets
from pipeline.core.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx, read_idx_folder, write_idx
from pipeline.errors import InputError
from tests.conftest import write_idx_folder


@pytest.mark.parametrize("gz", [False, True])
def test_reads_what_was_written(tmp_path, gz):
    folder = write_idx_folder(tmp_path / "idx", n_train=30, n_test=10, gz=gz)
    splits = read_idx_folder(folder)
    assert splits["train"][0].shape == (30, 28, 28) and splits["train"][0].dtype == np.uint8
    assert splits["test"][1].tolist() == list(range(10))
    assert splits["train"][1].dtype == np.int64


def test_header_bytes_follow_the_idx_format(tmp_path):
    path = tmp_path / "labels"
    write_idx(path, np.array([7, 3], dtype=np.uint8))
    assert path.read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 2, 7, 3])
    assert read_idx(path, LABELS_MAGIC).tolist() == [7, 3]


def test_wrong_magic_names_file_and_numbers(tmp_path):
    folder = write_idx_folder(tmp_path / "idx")
    labels = folder / "train-labels-idx1-ubyte"
    with pytest.raises(
        InputError, match=r"train-labels-idx1-ubyte: wrong IDX magic number 0x00000801; expected 0x00000803"
    ):
        read_idx(labels, IMAGES_MAGIC)


def test_truncated_data(tmp_path):
    folder = write_idx_folder(tmp_path / "idx")
    images = folder / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-100])
    with pytest.raises(InputError, match=r"train-images-idx3-ubyte: truncated file"):
        read_idx_folder(folder)


def test_truncated_header(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(InputError, match="truncated file: header needs 16 bytes"):
        read_idx(path, IMAGES_MAGIC)


def test_truncated_gzip(tmp_path):
    folder = write_idx_folder(tmp_path / "idx", gz=True)
    path = folder / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(InputError, match=r"t10k-images-idx3-ubyte.gz: cannot be read"):
        read_idx_folder(folder)


def test_count_mismatch(tmp_path):
    folder = write_idx_folder(tmp_path / "idx", n_train=30)
    write_idx(folder / "train-labels-idx1-ubyte", np.zeros(29, dtype=np.uint8))
    with pytest.raises(InputError, match=r"30 images but train-labels-idx1-ubyte has 29 labels"):
        read_idx_folder(folder)


def test_images_not_28x28(tmp_path):
    folder = write_idx_folder(tmp_path / "idx")
    write_idx(folder / "t10k-images-idx3-ubyte", np.zeros((20, 32, 32), dtype=np.uint8))
    with pytest.raises(InputError, match=r"t10k-images-idx3-ubyte: images are 32x32; expected 28x28"):
        read_idx_folder(folder)


def test_missing_folder_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_idx_folder(tmp_path / "nowhere")
    folder = write_idx_folder(tmp_path / "idx")
    (folder / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(InputError, match=r"missing IDX file t10k-labels-idx1-ubyte \(or t10k-labels-idx1-ubyte.gz\)"):
        read_idx_folder(folder)


def test_trailing_bytes(tmp_path):
    path = tmp_path / "labels"
    write_idx(path, np.array([1, 2], dtype=np.uint8))
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(InputError, match="1 unexpected bytes"):
        read_idx(path, LABELS_MAGIC)


def test_prepare_via_idx_prefix(tmp_path):
    folder = write_idx_folder(tmp_path / "idx", n_train=100, n_test=20, gz=True)
    prepared = datasets.prepare(f"idx:{folder}", val_fraction=0.1, seed=0)
    assert prepared.counts() == {"train": 90, "val": 10, "test": 20}
    assert gzip.open(folder / "train-images-idx3-ubyte.gz").read(4) == bytes([0, 0, 8, 3])
