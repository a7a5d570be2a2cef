"""analysis/judges.py, analysis/dispute_panels.py:
The two judges weighed on the samples themselves: the confusion matrix and Cohen's kappa against
cases worked by hand, the most frequent disagreement, the panel that shows exactly its samples, and
the report's line per experiment."""

from __future__ import annotations

import io
import math
from types import SimpleNamespace

import numpy as np
import pytest

from analysis import dispute_panels, judges
from analysis.sources import Evaluation
from analysis.tables import Row, Table
from pipeline.core.judges import disagreement
from pipeline.core.plots import pyplot, tile
from pipeline.core.scores.spread import Summary


def _images(n: int) -> np.ndarray:
    """n flat images in [0, 1], image i uniformly i / 255: its pixels name the sample."""
    return np.repeat(np.arange(n, dtype=np.float32)[:, None] / 255, 784, axis=1)


def test_kappa_of_a_two_class_table_worked_by_hand():
    # CNN 0 / k-NN 0: 4, 0/1: 2, 1/0: 1, 1/1: 3. Observed agreement 7/10; the CNN says 0 for 6 of 10,
    # the k-NN for 5 of 10, so chance agreement is (6*5 + 4*5)/100 = 0.5 and kappa (0.7 - 0.5)/0.5 = 0.4
    cnn = [0] * 4 + [0] * 2 + [1] * 1 + [1] * 3
    knn = [0] * 4 + [1] * 2 + [0] * 1 + [1] * 3
    confusion, kappa = disagreement.agreement(cnn, knn)
    assert kappa == pytest.approx(0.4)
    assert confusion.shape == (10, 10) and confusion[:2, :2].tolist() == [[4, 2], [1, 3]] and confusion.sum() == 10
    # always the other class, on balanced classes: observed 0, chance 0.5, kappa -1
    assert disagreement.agreement([0, 0, 1, 1], [1, 1, 0, 0])[1] == pytest.approx(-1.0)
    # one class each, never the same: observed 0, chance 0, kappa 0; one same class throughout: 0/0
    assert disagreement.agreement([3, 3], [8, 8])[1] == 0.0
    assert math.isnan(disagreement.agreement([3, 3, 3], [3, 3, 3])[1])


def test_the_confusion_matrix_of_a_tiny_label_set_and_its_most_frequent_disagreement():
    cnn, knn = [3, 3, 3, 8, 1, 3], [8, 8, 3, 8, 2, 8]
    dispute = disagreement.of(_images(6), cnn, knn, seed=0)
    expected = np.zeros((10, 10), int)
    expected[3, 8], expected[3, 3], expected[8, 8], expected[1, 2] = 3, 1, 1, 1
    assert np.array_equal(dispute.confusion, expected)  # rows the CNN's class, columns the k-NN's
    assert (dispute.total, dispute.disputed, dispute.share_in_dispute) == (6, 4, pytest.approx(4 / 6))
    # observed 2/6; chance (CNN 3: 4 x k-NN 3: 1, CNN 8: 1 x k-NN 8: 4) / 36 = 8/36; kappa (1/9)/(7/9)
    assert dispute.kappa == pytest.approx(1 / 7)
    assert dispute.cell == (3, 8) and dispute.cell_count == 3
    assert dispute.cell_rows.tolist() == [0, 1, 5]
    assert dispute.caption() == "CNN says 3, k-NN says 8: 3 of 6 samples"


def test_ties_go_to_the_lowest_cell_and_full_agreement_shows_no_samples():
    assert disagreement.of(_images(4), [1, 2, 5, 5], [2, 1, 5, 5], 0).cell == (1, 2)
    assert disagreement.of(_images(2), [4, 2], [5, 7], 0).cell == (2, 7)
    agreed = disagreement.of(_images(4), [1, 2, 5, 5], [1, 2, 5, 5], 0)
    assert agreed.disputed == 0 and agreed.kappa == pytest.approx(1.0) and len(agreed.cell_images) == 0
    assert agreed.caption() == "the judges agree on all 4 samples"


def _labelled(n: int = 120):
    """Every third sample the CNN calls 3 and the k-NN 8 (40 of them), two it calls 5 and the k-NN 6,
    the rest agreed on."""
    cnn = np.arange(n) % 10
    knn = cnn.copy()
    cell = np.arange(0, n, 3)
    cnn[cell], knn[cell] = 3, 8
    cnn[[1, 4]], knn[[1, 4]] = 5, 6
    return cnn, knn, cell


def test_the_panel_shows_exactly_the_samples_of_the_most_frequent_disagreement():
    cnn, knn, cell = _labelled()
    dispute = disagreement.of(_images(120), cnn, knn, seed=7)
    assert dispute.cell == (3, 8) and dispute.cell_count == 40
    assert dispute.cell_rows.tolist() == cell[:32].tolist()  # the first 32 of the 40, in scoring order
    assert dispute.cell_images[:, 0, 0].tolist() == cell[:32].tolist()  # their own pixels
    drawn = np.sort(np.random.default_rng(7).choice(120, size=32, replace=False))
    assert dispute.random_rows.tolist() == drawn.tolist()
    assert dispute.random_images[:, 14, 14].tolist() == drawn.tolist()
    assert dispute.random_cnn.tolist() == cnn[drawn].tolist() and dispute.random_knn.tolist() == knn[drawn].tolist()
    again = disagreement.of(_images(120), cnn, knn, seed=7)
    assert np.array_equal(again.random_rows, dispute.random_rows)  # the evaluation seed reproduces the draw
    assert not np.array_equal(disagreement.of(_images(120), cnn, knn, seed=8).random_rows, dispute.random_rows)

    stored = disagreement.Dispute.from_bytes(dispute.to_bytes())
    assert np.array_equal(stored.confusion, dispute.confusion) and stored.kappa == pytest.approx(dispute.kappa)
    assert np.array_equal(stored.cell_images, dispute.cell_images)
    assert np.array_equal(stored.random_knn, dispute.random_knn)

    figure = disagreement.panel_figure(stored, "E5, seed 1")
    try:
        heatmap, middle, right = figure.axes
        assert middle.get_title() == "CNN says 3, k-NN says 8: 40 of 120 samples; 32 shown"
        assert np.allclose(middle.get_images()[0].get_array(), tile(dispute.cell_images.astype(np.float32) / 255, 8))
        labels = [(text.get_text(), text.get_color()) for text in right.texts]
        expected = [(f"{a}/{b}", "black" if a == b else "red") for a, b in zip(cnn[drawn], knn[drawn])]
        assert labels == expected
        framed = [p for p in heatmap.patches if p.get_edgecolor()[:3] == (1.0, 0.0, 0.0)]
        assert [(p.get_x(), p.get_y()) for p in framed] == [(7.5, 2.5)]  # column: k-NN 8, row: CNN 3
        assert "40" in [text.get_text() for text in heatmap.texts]
    finally:
        pyplot().close(figure)


def _row(folder, seeds_disputes: dict[int, disagreement.Dispute], **scores) -> Row:
    """An experiment whose evaluations kept these disputes (written where the report downloads them)."""
    key = "beta_0.25_0.25"
    experiment = {"name": "E3", "study_id": "E3", "cell": "bce-standard", "sampler": "beta:0.25,0.25"}
    evaluations = []
    for seed, dispute in seeds_disputes.items():
        run = SimpleNamespace(info=SimpleNamespace(run_id=f"run{seed}"), data=SimpleNamespace(tags={}, metrics={}))
        tags = {"max_class": str(dispute.confusion.sum(1).argmax()), "max_class_judge2": str(dispute.cell[1])}
        child = SimpleNamespace(
            data=SimpleNamespace(tags=tags, metrics={"samples_in_dispute": dispute.share_in_dispute})
        )
        evaluations.append(Evaluation("bce-standard", seed, run, "", {key: child}))
        path = folder / f"run{seed}" / "evaluation" / key / disagreement.ARTIFACT
        path.parent.mkdir(parents=True)
        path.write_bytes(dispute.to_bytes())
    summaries = {name: Summary.of(values) for name, values in scores.items()}
    return Row({**experiment, "sampler_key": key}, evaluations, summaries, {})


def test_the_report_line_and_panel_of_an_experiment(tmp_path):
    cnn, knn, _ = _labelled()
    seed0 = disagreement.of(_images(120), cnn, knn, 0)  # 42 of 120 in dispute, 40 of them CNN 3 / k-NN 8
    seed1 = disagreement.of(_images(120), [3] * 120, [3] * 54 + [8] * 66, 1)  # 66 of 120
    row = _row(
        tmp_path,
        {0: seed0, 1: seed1},
        judges_kappa=[0.6, 0.0],  # as logged; seed 1: the CNN says 3 throughout, kappa 0
        samples_in_dispute=[0.35, 0.55],
        judge_acc_at_sample_sharpness=[0.95, 0.97],
        judge2_acc_at_sample_sharpness=[0.70, 0.72],
    )
    assert judges.summed(judges.disputes_of(row, tmp_path))[3, 8] == 106
    assert judges.lines(Table("s", [row]), tmp_path) == [
        "E3: κ 0.3 ± 0.4; 0.45 ± 0.14 of the samples in dispute; most frequent disagreement CNN 3, k-NN 8: "
        "106 of 240 samples (seeds 0, 1); dominant digit CNN 3, 3 (seeds 0, 1); k-NN 8, 8; accuracy on real "
        "test digits as blurry as the samples: CNN 0.960 ± 0.014, k-NN 0.710 ± 0.014 unreliable (under 0.8)"
    ]
    png, caption = dispute_panels.panel(row, tmp_path)
    assert png.startswith(b"\x89PNG")
    assert caption.startswith(
        "E3 (beta:0.25,0.25), training seed 1: 55% of 120 samples classified differently by the two judges. "
    )
    assert "seed 1's most frequent disagreement (CNN says 3, k-NN says 8: 66 of 120 samples)" in caption
    assert dispute_panels.disputed_rows(Table("s", [row, Row(row.experiment, [], {}, {})])) == [row]


def test_an_evaluation_that_kept_only_the_dominant_classes_gives_no_matrix(tmp_path):
    older = io.BytesIO()  # the layout of evaluations that kept each judge's dominant class only
    np.savez_compressed(older, cnn_images=np.zeros((1, 28, 28), np.uint8), numbers=np.arange(6))
    with pytest.raises(ValueError, match="disputed_digits.npz holds"):
        disagreement.Dispute.from_bytes(older.getvalue())
    cnn, knn, _ = _labelled()
    row = _row(tmp_path, {0: disagreement.of(_images(120), cnn, knn, 0)})
    (tmp_path / "run0" / "evaluation" / "beta_0.25_0.25" / disagreement.ARTIFACT).write_bytes(older.getvalue())
    assert judges.disputes_of(row, tmp_path) == {} and judges.cell_text({}) == ""
    assert dispute_panels.panel(row, tmp_path) is None
