"""Both judges weighed at the samples' sharpness in the verdicts: their accuracy shown beside every part
about class identity or coverage, a part resting only on unreliable judges says so, and the rows whose
disputed digits the report shows."""

from __future__ import annotations

from types import SimpleNamespace

from analysis import dispute_panels
from analysis.sources import Evaluation
from analysis.tables import Row, Table
from analysis.verdicts import MOST_DIGITS, identity_part, threshold_part
from pipeline.core.scores.spread import HOLDS, JUDGES_UNRELIABLE, Summary, overall


def _row(study_id: str, sampler: str, dominant=(1, 1), **scores) -> Row:
    key = sampler.replace(":", "_").replace(",", "_")
    experiment = {
        "name": study_id,
        "study_id": study_id,
        "cell": "bce-standard",
        "sampler": sampler,
        "sampler_key": key,
    }
    child = SimpleNamespace(
        data=SimpleNamespace(tags={"max_class": str(dominant[0]), "max_class_judge2": str(dominant[1])})
    )
    evaluations = [Evaluation("bce-standard", seed, None, "", {key: child}) for seed in (0, 1)]
    real = {name: Summary(()) for name in ("fid_floor", "sharpness_real", "class_entropy_real")}
    return Row(experiment, evaluations, {k: Summary.of(v) for k, v in scores.items()}, real)


def _coverage(row: Row):
    return identity_part(
        lambda s: threshold_part("E1 covers most digits", row, f"classes_covered{s}", MOST_DIGITS, "greater"), (row,)
    )


COVERED = {"classes_covered": [10, 10], "classes_covered_judge2": [9, 10]}


def test_the_judges_accuracy_at_the_samples_sharpness_stands_beside_the_part():
    row = _row(
        "E1",
        "normal:0,1",
        **COVERED,
        judge_acc_at_sample_sharpness=[0.95, 0.97],
        judge2_acc_at_sample_sharpness=[0.70, 0.72],
    )
    part = _coverage(row)
    assert part.outcome == HOLDS  # one judge reliable: the two-judge rule decides as before
    assert part.evidence == (
        "classes_covered E1 (> 7.5 expected): CNN 10; k-NN 9.5 ± 0.7 (judges' accuracy on real "
        "test digits as blurry as the samples: E1: CNN 0.960 ± 0.014, k-NN 0.710 ± 0.014 unreliable "
        "(under 0.8))"
    )
    assert part.rows == (row,)


def test_a_part_resting_only_on_unreliable_judges_says_so_instead_of_holding():
    row = _row(
        "E1",
        "normal:0,1",
        **COVERED,
        judge_acc_at_sample_sharpness=[0.6, 0.62],
        judge2_acc_at_sample_sharpness=[0.5, 0.55],
    )
    part = _coverage(row)
    assert (
        part.outcome == JUDGES_UNRELIABLE
        and "CNN 0.610 ± 0.014 unreliable (under 0.8), k-NN 0.53 ± 0.04 unreliable" in part.evidence
    )
    assert overall([HOLDS, part.outcome]) == f"inconclusive ({JUDGES_UNRELIABLE})"
    older = _row("E1", "normal:0,1", **COVERED)  # evaluations before the judges were weighed: as before
    assert _coverage(older).outcome == HOLDS and "as blurry" not in _coverage(older).evidence


def test_every_experiment_with_evaluations_gets_its_disputed_digits():
    e1 = _row("E1", "normal:0,1")
    e3 = _row("E3", "beta:0.25,0.25", (3, 8))
    unevaluated = Row(e1.experiment | {"name": "E2", "study_id": "E2"}, [], {}, {})
    table = Table("s", [e1, unevaluated, e3])
    assert [row.name for row in dispute_panels.disputed_rows(table)] == ["E1", "E3"]
    assert dispute_panels.file_name(e3) == "disputed_E3.png"
