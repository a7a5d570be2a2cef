"""Verdicts on class identity and coverage stand on two judges: hand-made scores, older runs included."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from analysis.dominance import dominant_text
from analysis.sources import Evaluation
from analysis.tables import Row, Table
from analysis.verdicts import MOST_DIGITS, finding_verdicts, identity_part, threshold_part
from pipeline.core.scores.spread import CLASSIFIER_DEPENDENT, CONTRADICTED, HOLDS, Summary


def _row(study_id: str, cell: str, sampler: str, dominant: tuple[int, int] = (1, 1), **scores) -> Row:
    """A row evaluated at seeds 0 and 1 whose CNN and k-NN name the `dominant` classes."""
    key = sampler.replace(":", "_").replace(",", "_")
    experiment = {"name": study_id, "study_id": study_id, "cell": cell, "sampler": sampler, "sampler_key": key}
    child = SimpleNamespace(
        data=SimpleNamespace(tags={"max_class": str(dominant[0]), "max_class_judge2": str(dominant[1])})
    )
    evaluations = [Evaluation(cell, seed, None, "", {key: child}) for seed in (0, 1)]
    real = {name: Summary(()) for name in ("fid_floor", "sharpness_real", "class_entropy_real")}
    return Row(experiment, evaluations, {k: Summary.of(v) for k, v in scores.items()}, real)


def _coverage(row: Row) -> tuple[str, str]:
    part = identity_part(
        lambda s: threshold_part("E1 covers most digits", row, f"classes_covered{s}", MOST_DIGITS, "greater")
    )
    return part.outcome, part.evidence


def test_coverage_holds_only_when_both_judges_count_most_digits():
    both = _row("E1", "bce-standard", "normal:0,1", classes_covered=[10, 10], classes_covered_judge2=[9, 10])
    assert _coverage(both) == (HOLDS, "classes_covered E1 (> 7.5 expected): CNN 10; k-NN 9.5 ± 0.7")
    split = _row("E1", "bce-standard", "normal:0,1", classes_covered=[10, 10], classes_covered_judge2=[5, 6])
    assert _coverage(split)[0] == CLASSIFIER_DEPENDENT
    neither = _row("E1", "bce-standard", "normal:0,1", classes_covered=[5, 5], classes_covered_judge2=[4, 6])
    assert _coverage(neither)[0] == CONTRADICTED


def test_an_evaluation_from_before_the_second_judge_keeps_the_cnns_outcome_and_says_so():
    old = _row("E1", "bce-standard", "normal:0,1", classes_covered=[10, 10])
    outcome, evidence = _coverage(old)
    assert outcome == HOLDS and evidence.endswith("(CNN only: these evaluations have no second judge)")


def test_f6_is_classifier_dependent_when_the_judges_disagree_on_the_dominant_digit():
    """The CNN sees digit 3 take over under Beta, the k-NN sees the histogram of N(0,1) unchanged."""
    e1 = _row("E1", "bce-standard", "normal:0,1", class_entropy=[2.2, 2.21], class_entropy_judge2=[2.2, 2.21])
    e3 = _row(
        "E3",
        "bce-standard",
        "beta:0.25,0.25",
        (3, 0),
        class_entropy=[1.0, 1.1],
        class_entropy_judge2=[2.2, 2.19],
        judges_agree=[0, 0],
    )
    cnn = {id(e1): np.full(10, 0.1), id(e3): np.array([0.05] * 3 + [0.55] + [0.05] * 6)}

    def shares_of(row, suffix=""):
        return {seed: (np.full(10, 0.1) if suffix else cnn[id(row)]) + 0.001 * seed for seed in (0, 1)}

    f6 = next(v for v in finding_verdicts(Table("s", [e1, e3]), shares_of) if v.finding == "F6")
    entropy, digit3 = f6.parts[0], f6.parts[1]
    assert entropy.text == "E3 less diverse than E1 (class entropy)" and entropy.outcome == CLASSIFIER_DEPENDENT
    assert entropy.evidence == (
        "class_entropy E3 vs E1: CNN 1.05 ± 0.07 vs 2.205 ± 0.007; k-NN 2.195 ± 0.007 vs 2.205 ± 0.007"
    )
    assert digit3.outcome == CLASSIFIER_DEPENDENT  # CNN: 0.55 vs 0.10 holds; k-NN: no difference
    assert f6.outcome == CLASSIFIER_DEPENDENT and f6.rows == [e1, e3]
    assert f6.deciding() is entropy  # the first part the judges dispute decides the word
    assert dominant_text(e3) == "CNN 3, 3 (seeds 0, 1); k-NN 0, 0"  # each judge's digit, seed by seed
