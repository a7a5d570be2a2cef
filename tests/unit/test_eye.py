"""The eye's statistics (pipeline/core/judges/eye.py) against hand-computed cases, the blind set's draw and
the answers log's replay."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from pipeline.configs import EyeConfig
from pipeline.core.judges import eye
from pipeline.errors import InputError

SOURCE = "0" * 32


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        (0, 10, 0.0, 1 - 0.025 ** (1 / 10)),  # Clopper-Pearson at 0: (1 - upper)^n = 0.025
        (10, 10, 0.025 ** (1 / 10), 1.0),  # and at n: lower^n = 0.025
        (1, 2, 1 - math.sqrt(0.975), math.sqrt(0.975)),  # 1 - (1 - p)^2 = 0.025 and 1 - p^2 = 0.025
        (5, 10, 0.187086, 0.812914),  # the textbook interval
    ],
)
def test_a_share_has_the_exact_binomial_interval(k, n, low, high):
    found = eye.share(k, n)
    assert (found.k, found.n, found.value) == (k, n, k / n)
    assert found.low == pytest.approx(low, abs=1e-6) and found.high == pytest.approx(high, abs=1e-6)


def test_a_share_of_nothing_is_not_a_number_and_its_text_says_so():
    found = eye.share(0, 0)
    assert math.isnan(found.value) and math.isnan(found.low) and found.text() == "–"
    assert eye.share(5, 10).text() == "50% [19%, 81%] (5 of 10)"


def test_kappa_counts_no_digit_as_a_class_of_its_own():
    # observed 3/4, chance 0.5 * 0.25 + 0.5 * 0.75 = 0.5: kappa (0.75 - 0.5) / 0.5
    assert eye.kappa([1, 1, 2, 2], [1, 2, 2, 2]) == pytest.approx(0.5)
    # "no digit" twice where the judge says 3 throughout: observed 0.5, chance 0.5
    assert eye.kappa([eye.NO_DIGIT, eye.NO_DIGIT, 3, 3], [3, 3, 3, 3]) == pytest.approx(0.0)
    assert eye.kappa([4, 4], [4, 4]) != eye.kappa([4, 4], [4, 4])  # 0/0: NaN


def row(image, kind, experiment, cnn, knn, digit, says, label=-1, rater="a"):
    return {
        "image_id": image,
        "kind": kind,
        "experiment": experiment,
        "cnn": cnn,
        "knn": knn,
        "label": label,
        "eye_digit": digit,
        "eye_says": says,
        "rater": rater,
    }


def test_metrics_match_a_hand_count():
    rows = [
        row("a", "generated", "E1", 3, 3, 3, "real"),
        row("b", "generated", "E1", 3, 8, 3, "generated"),
        row("c", "generated", "E1", 5, 5, eye.NO_DIGIT, "generated"),
        row("d", "generated", "E1", 1, 1, 1, "real"),
        row("e", "real", "", -1, -1, 7, "real", label=7),
        row("f", "real", "", -1, -1, 2, "generated", label=1),
    ]
    metrics, tags = eye.metrics(rows)
    assert metrics["eye_images"] == 6 and metrics["eye_answers"] == 6
    assert metrics["eye_real/E1"] == 0.5 and metrics["eye_no_digit/E1"] == 0.25
    assert metrics["eye_dominant_share/E1"] == 0.5 and tags == {"eye_dominant/E1": "3"}
    assert [metrics[f"eye_digit_share/E1/{d}"] for d in range(10)] == [0, 0.25, 0, 0.5, 0, 0, 0, 0, 0, 0]
    assert metrics["eye_real/E1_low"] == pytest.approx(eye.share(2, 4).low)
    # eye 3,3,-1,1 against the CNN 3,3,5,1: observed 3/4; chance (2*2 + 1*1) / 16 = 5/16
    assert metrics["eye_kappa_cnn/E1"] == pytest.approx((0.75 - 5 / 16) / (1 - 5 / 16))
    # against the k-NN 3,8,5,1: observed 2/4; chance (2*1 + 1*1) / 16 = 3/16
    assert metrics["eye_kappa_knn/E1"] == pytest.approx((0.5 - 3 / 16) / (1 - 3 / 16))
    assert metrics["eye_accuracy_real"] == 0.5 and metrics["eye_false_alarm"] == 0.5


def test_the_pooled_judgement_counts_images_and_raters():
    rows = [row("a", "generated", "E5", 3, 3, 3, "real", rater=r) for r in ("x", "y")]
    judged = eye.judge_experiment(rows)
    assert (judged.images, judged.raters, judged.real.k, judged.real.n, judged.dominant) == (1, 2, 2, 2, 3)


def pools(sizes: dict[str, int]) -> dict[str, eye.Pool]:
    found = {}
    for index, (name, size) in enumerate(sizes.items()):
        found[name] = eye.Pool(
            images=np.full((size, 28, 28), index, np.uint8),
            cnn=np.arange(size) % 10,
            knn=(np.arange(size) + 1) % 10,
            seeds=np.zeros(size, int),
            rows=np.arange(size),
        )
    return found


def test_the_blind_set_draws_n_per_experiment_and_n_real_digits_shuffled_with_opaque_ids():
    real = np.zeros((50, 28, 28), np.uint8), np.arange(50) % 10
    items = eye.draw_set(pools({"E1": 64, "E2": 40}), *real, n=10, seed=3)
    assert len(items) == 30 and len({i.image_id for i in items}) == 30
    kinds = [(i.kind, i.experiment) for i in items]
    assert kinds.count(("generated", "E1")) == 10 and kinds.count(("generated", "E2")) == 10
    assert kinds.count(("real", "")) == 10
    assert kinds[:10] != sorted(kinds)[:10]  # shuffled, not grouped
    assert all(len(i.image_id) == 12 and int(i.image_id, 16) >= 0 for i in items)
    again = eye.draw_set(pools({"E1": 64, "E2": 40}), *real, n=10, seed=3)
    assert again == items and eye.set_digest(again) == eye.set_digest(items)
    other = eye.draw_set(pools({"E1": 64, "E2": 40}), *real, n=10, seed=4)
    assert eye.set_digest(other) != eye.set_digest(items)
    for item in items:
        if item.kind == "generated":
            pool = pools({"E1": 64, "E2": 40})[item.experiment]
            assert (item.cnn, item.knn) == (pool.cnn[item.row], pool.knn[item.row])


def test_replay_keeps_answers_in_order_and_undo_removes_the_last():
    ids = {"a", "b", "c"}
    entries = [
        {"id": "a", "digit": 3, "says": "real"},
        {"id": "b", "digit": -1, "says": "generated"},
        {"undo": "b"},
        {"id": "b", "digit": 4, "says": "real"},
        {"id": "c", "digit": 0, "says": "generated"},
    ]
    answers = eye.replay(entries, ids)
    assert [(a.image_id, a.digit, a.says) for a in answers] == [
        ("a", 3, "real"),
        ("b", 4, "real"),
        ("c", 0, "generated"),
    ]
    with pytest.raises(ValueError, match="unknown image id 'z'"):
        eye.replay([{"id": "z", "digit": 1, "says": "real"}], ids)
    with pytest.raises(ValueError, match="digit 11"):
        eye.replay([{"id": "a", "digit": 11, "says": "real"}], ids)


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("source", "abc", "a main run id | an evaluate run id"),
        ("n_per_experiment", 0, "an integer in [1, 1000]"),
        ("rater", "a b", "1 to 40 letters"),
        ("port", 70000, "[0, 65535]"),
        ("replace", "maybe", "no | yes"),
    ],
)
def test_bad_parameters_are_refused_by_name(field, value, allowed):
    with pytest.raises(InputError, match=f"parameter '{field}'.*allowed: .*{re.escape(allowed)}"):
        EyeConfig(**{"source": SOURCE, field: value})


def answers_file(tmp_path, header: dict, entries: list[dict]):
    path = tmp_path / "answers.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in [header, *entries]))
    return path


def test_an_answers_file_continues_its_own_set_and_is_refused_for_another(tmp_path):
    from pipeline.steps.eye import open_session

    items = eye.draw_set(pools({"E1": 20}), np.zeros((20, 28, 28), np.uint8), np.arange(20) % 10, n=4, seed=2)
    header = {"set": eye.set_digest(items), "source": SOURCE, "seed": 2, "n_per_experiment": 4, "rater": "ann"}
    first = {"id": items[0].image_id, "digit": 3, "says": "real"}
    path = answers_file(tmp_path, header, [first])
    config = EyeConfig(source=SOURCE, n_per_experiment=4, seed=2, rater="ann", answers=str(path))
    session = open_session(config, header, items)
    assert [a.image_id for a in session.answers] == [items[0].image_id] and session.state()["answered"] == 1
    assert session.state()["current"] == items[1].image_id and not session.done.is_set()

    other_seed = answers_file(tmp_path, {**header, "seed": 5}, [first])
    with pytest.raises(InputError, match=r"parameter 'answers': .*made for another set: seed 5 \(here 2\)"):
        open_session(config, header, items)
    unknown = answers_file(tmp_path, header, [{"id": "f" * 12, "digit": 3, "says": "real"}])
    with pytest.raises(InputError, match=r"parameter 'answers': .*unknown image id 'ffffffffffff'"):
        open_session(config, header, items)
    assert other_seed == unknown  # the same path, rewritten for each case
    cut = answers_file(tmp_path, header, [first])
    cut.write_text(cut.read_text() + '{"id": "' + items[1].image_id + '", "dig')  # killed while writing a line
    resumed = open_session(config, header, items)
    assert [a.image_id for a in resumed.answers] == [items[0].image_id]
    resumed.answer({"id": items[1].image_id, "digit": 2, "says": "real"})  # appended after the whole lines
    assert [a.digit for a in open_session(config, header, items).answers] == [3, 2]
    cut.write_text(cut.read_text().replace('"digit": 3', '"dig'))  # a broken line before the last
    with pytest.raises(InputError, match=r"parameter 'answers': .*line 2 is not JSON"):
        open_session(config, header, items)
    with pytest.raises(InputError, match=r"parameter 'answers': no file"):
        open_session(EyeConfig(source=SOURCE, answers=str(tmp_path / "missing.jsonl")), header, items)


def test_a_session_writes_its_file_from_the_first_answer_on_and_undo_is_appended(tmp_path):
    from pipeline.eye_page import Session

    items = eye.draw_set(pools({"E1": 20}), np.zeros((20, 28, 28), np.uint8), np.arange(20) % 10, n=2, seed=0)
    log = tmp_path / "eye-answers" / "s.jsonl"
    session = Session(items, log, {"set": eye.set_digest(items), "rater": "ann"}, [])
    assert not log.exists()  # nothing on disk before the first answer
    session.answer({"id": items[0].image_id, "digit": 1, "says": "generated"})
    session.undo()
    session.answer({"id": items[0].image_id, "digit": -1, "says": "real"})
    with pytest.raises(ValueError, match="is not the one being shown"):
        session.answer({"id": items[3].image_id, "digit": 1, "says": "real"})
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines[0]["set"] == eye.set_digest(items) and lines[2] == {"undo": items[0].image_id}
    assert eye.replay(lines[1:], {i.image_id for i in items}) == [eye.Answer(items[0].image_id, -1, "real")]
    assert session.png(items[1].image_id).startswith(b"\x89PNG") and session.png("nope") is None
