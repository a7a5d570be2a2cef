"""analysis/dispute_panels.py:
Both judges weighed at the samples' sharpness: their accuracy said with the unreliable one marked, and
the rows whose digits the report shows because the judges dispute them."""

from __future__ import annotations

from types import SimpleNamespace

from analysis import dispute_panels
from analysis.sources import Evaluation
from analysis.tables import Row, Table
from pipeline.core.scores.spread import Summary


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


def test_the_judges_accuracy_at_the_samples_sharpness_is_said_with_the_unreliable_judge_marked():
    row = _row(
        "E1",
        "normal:0,1",
        judge_acc_at_sample_sharpness=[0.95, 0.97],
        judge2_acc_at_sample_sharpness=[0.70, 0.72],
    )
    assert dispute_panels.judges_text([row]) == (
        "judges' accuracy on real test digits as blurry as the samples: E1: CNN 0.960 ± 0.014, "
        "k-NN 0.710 ± 0.014 unreliable (under 0.8)"
    )
    assert dispute_panels.judges_text([_row("E1", "normal:0,1")]) == ""  # evaluations that did not weigh them


def test_every_experiment_with_evaluations_gets_its_disputed_digits():
    e1 = _row("E1", "normal:0,1")
    e3 = _row("E3", "beta:0.25,0.25", (3, 8))
    unevaluated = Row(e1.experiment | {"name": "E2", "study_id": "E2"}, [], {}, {})
    table = Table("s", [e1, unevaluated, e3])
    assert [row.name for row in dispute_panels.disputed_rows(table)] == ["E1", "E3"]
    assert dispute_panels.file_name(e3) == "disputed_E3.png"
