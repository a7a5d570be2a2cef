"""Whether the study's models had learned: each training's convergence (pipeline/core/model/convergence.py),
which verdicts rest on a model still improving fast, and the warning the page then opens with.

A verdict on a model that has not learned describes the training length, not the write-up: the
reader is told so before anything else.
"""

from __future__ import annotations

from pipeline.core.findings.intervals import NOT_MEASURED
from pipeline.core.model import convergence
from pipeline.core.model.convergence import Convergence

Key = tuple[str, int]  # (cell, seed)


def judge_trainings(histories: dict[Key, dict[str, list[tuple[int, float]]]]) -> dict[Key, Convergence]:
    """Each training's convergence from its logged val_loss per epoch ((step, value) in step order)."""
    return {
        key: convergence.judge([value for _, value in history.get("val_loss", [])])
        for key, history in histories.items()
    }


def mark_preliminary(verdicts, trainings: dict[Key, Convergence]) -> list[Key]:
    """Mark every measured verdict that rests on a model still improving fast; returns those models, sorted."""
    behind: set[Key] = set()
    for verdict in verdicts:
        if verdict.outcome == NOT_MEASURED:
            continue
        used = {(e.cell, e.seed) for row in verdict.rows for e in row.evaluations}
        improving = {key for key in used if key in trainings and trainings[key].still_improving}
        verdict.preliminary = bool(improving)
        behind |= improving
    return sorted(behind)


def warning(verdicts, trainings: dict[Key, Convergence], behind: list[Key]) -> str:
    """The page's opening warning, or "" when every model behind a verdict had converged."""
    if not behind:
        return ""
    listed = "; ".join(f"{cell} seed {seed}: {trainings[(cell, seed)].text()}" for cell, seed in behind)
    findings = ", ".join(v.finding for v in verdicts if v.preliminary)
    return (
        f"Warning: {len(behind)} of the trained models behind the verdicts were still improving fast when "
        f"training stopped (validation loss falling more than {convergence.THRESHOLD:.0%} over the last tenth "
        f"of the epochs): {listed}. The verdicts on {findings} are preliminary: they may describe models that "
        "have not learned yet rather than the write-up. Train longer (-P epochs=...) for verdicts that count."
    )


def converged_line(converged: dict[Key, Convergence]) -> str:
    """All trainings converged (the warning says otherwise, trainings.warning)."""
    if not converged:
        return "Convergence: no training history logged."
    fall = max(0.0, max(state.improvement for state in converged.values()))
    return (
        f"Convergence: all {len(converged)} trainings converged: over the last tenth of the epochs their "
        f"validation loss fell by less than {100 * convergence.THRESHOLD:.0f} % (at most {100 * fall:.1f} %)."
    )
