"""pipeline/core/data/datasets.py:
The seeded stratified split (NumPy; it replaced scikit-learn's train_test_split in the steps)."""

import numpy as np
import pytest

from pipeline.core.data.datasets import stratified_indices


@pytest.mark.parametrize(
    "counts, held, seed", [([500] * 10, 1000, 0), ([97, 3, 40, 260], 41, 1), ([2, 2, 2], 3, 5), ([1000, 7], 100, 2)]
)
def test_split_is_a_partition_with_each_class_share_rounded(counts, held, seed):
    labels = np.repeat(np.arange(len(counts)), counts)
    kept, held_out = stratified_indices(labels, held, seed)
    assert len(held_out) == held and len(kept) == len(labels) - held
    assert np.array_equal(np.sort(np.concatenate([kept, held_out])), np.arange(len(labels)))
    exact = np.array(counts) * held / len(labels)
    got = np.bincount(labels[held_out], minlength=len(counts))
    assert (np.abs(got - exact) < 1).all()  # floor or ceil of the exact share, like scikit-learn


def test_split_matches_scikit_learns_class_counts_on_the_bundled_digits():
    from sklearn.model_selection import train_test_split

    labels = np.random.default_rng(0).integers(0, 10, 4000)
    _, _, _, sk_held = train_test_split(labels, labels, test_size=400, random_state=0, stratify=labels)
    _, held_out = stratified_indices(labels, 400, 0)
    assert np.abs(np.bincount(labels[held_out], minlength=10) - np.bincount(sk_held, minlength=10)).max() <= 1


def test_same_seed_same_split_other_seed_other_rows():
    labels = np.repeat(np.arange(10), 50)
    first, again, other = (stratified_indices(labels, 100, seed)[1] for seed in (3, 3, 4))
    assert np.array_equal(first, again)
    assert not np.array_equal(np.sort(first), np.sort(other))
