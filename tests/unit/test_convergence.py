"""The convergence rule on constructed validation-loss histories, and what the report does with it."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from analysis import trainings
from analysis.verdicts import PRELIMINARY, Verdict
from pipeline.core.findings.declarations import DIVERSITY, LEVEL, MOST_DIGITS_SHARE, Clause
from pipeline.core.findings.evaluator import ClauseVerdict, FindingVerdict
from pipeline.core.findings.intervals import threshold
from pipeline.core.findings.parts import Part
from pipeline.core.model import convergence

COVERS = Clause("E1 covers most digits", "cover most digits", DIVERSITY, "E1", "better", LEVEL, MOST_DIGITS_SHARE, "")


@pytest.mark.parametrize("epochs, span", [(1, 1), (10, 1), (11, 2), (20, 2), (100, 10)])
def test_the_window_is_the_last_tenth_of_the_epochs_and_at_least_one(epochs, span):
    assert convergence.window(epochs) == span


def test_a_single_epoch_is_too_short_to_tell_and_counts_as_still_improving():
    state = convergence.judge([180.0])
    assert not state.measured and state.still_improving
    assert state.text() == "still improving (too short to tell: 1 epoch)"


def test_a_loss_falling_steadily_is_still_improving():
    state = convergence.judge([200.0 * 0.97**epoch for epoch in range(30)])  # 3 % per epoch, window 3
    assert state.window == 3 and state.still_improving
    assert state.improvement == pytest.approx(1 - 0.97**3)  # means of two 3-epoch windows, 3 epochs apart
    assert state.text().startswith("still improving (val loss -8.7 % over the last 3 epochs of 30")


def test_a_plateau_with_noise_has_converged():
    noise = np.random.default_rng(0).normal(0, 0.5, 100)  # ±0.5 % per epoch around 100
    history = [100.0 + 60.0 * math.exp(-epoch / 5) + n for epoch, n in enumerate(noise)]
    state = convergence.judge(history)
    assert state.window == 10 and not state.still_improving
    assert abs(state.improvement) < 0.005
    assert state.text().startswith("converged (val loss")


def test_a_rising_validation_loss_is_not_improving():
    state = convergence.judge([100.0 - epoch for epoch in range(10)] + [91.0 + epoch for epoch in range(10)])
    assert state.improvement < 0 and not state.still_improving


def test_the_threshold_is_a_relative_fall_above_two_percent():
    just_above = [100.0] * 18 + [100.0 * (1 - convergence.THRESHOLD) - 0.01] * 2  # the last window of 2 epochs
    just_below = [100.0] * 18 + [100.0 * (1 - convergence.THRESHOLD) + 0.01] * 2
    assert convergence.THRESHOLD == 0.02
    assert convergence.judge(just_above).still_improving and not convergence.judge(just_below).still_improving


def test_missing_epochs_are_skipped_not_read_as_zero():
    assert convergence.judge([120.0, float("nan"), 119.9, None, 119.9]).epochs == 3


def _verdict(finding: str, cells: list[tuple[str, int]]) -> Verdict:
    row = SimpleNamespace(evaluations=[SimpleNamespace(cell=cell, seed=seed) for cell, seed in cells])
    tested = threshold({0: 0.08, 1: 0.09, 2: 0.085}, 0.05)
    part = Part(COVERS, MOST_DIGITS_SHARE, "E1", "0.05", "greater", [("", tested)], primary=True)
    clause = ClauseVerdict(COVERS, part, [], tested.p_value, tested.direction, p_adjusted=tested.p_value)
    return Verdict(FindingVerdict(finding, "claim", "claim", [clause], []), [row])


def test_verdicts_resting_on_a_model_still_improving_are_preliminary_and_the_page_warns():
    improving, done = convergence.judge([200.0, 150.0]), convergence.judge([100.0] * 20)
    states = {("bce-standard", 0): improving, ("bce-standard", 1): done, ("mse-standard", 0): done}
    f1, f4 = _verdict("F1", [("bce-standard", 0), ("bce-standard", 1)]), _verdict("F4", [("mse-standard", 0)])
    behind = trainings.mark_preliminary([f1, f4], states)
    assert behind == [("bce-standard", 0)] and f1.preliminary and not f4.preliminary
    assert f1.word == f"holds — {PRELIMINARY}" and f4.word == "holds"
    unmeasured = _verdict("F5", [("bce-standard", 0)])
    unmeasured.found.clauses = []
    trainings.mark_preliminary([unmeasured], states)
    assert not unmeasured.preliminary  # a verdict not measured rests on nothing
    text = trainings.warning([f1, f4], states, behind)
    assert text.startswith("Warning: 1 of the trained models behind the verdicts were still improving fast")
    assert "bce-standard seed 0: still improving (val loss -25.0 % over the last 1 epoch of 2)" in text
    assert "The verdicts on F1 are preliminary" in text


def test_no_warning_when_every_model_behind_a_verdict_converged():
    states = {("bce-standard", 0): convergence.judge([100.0] * 20)}
    verdict = _verdict("F1", [("bce-standard", 0)])
    assert trainings.warning([verdict], states, trainings.mark_preliminary([verdict], states)) == ""
    assert not verdict.preliminary
