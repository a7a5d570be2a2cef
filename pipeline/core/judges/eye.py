"""A person as the third judge: a blind set of generated and real digits, the person's answers, and what
they measure (HYPE∞, Zhou et al. 2019: the share of generated images taken for real; 50 % means a
person cannot tell them apart).

The set: `n` images of each experiment, drawn with a seed from the samples its evaluate runs kept with
both judges' labels (the random samples of pipeline/core/judges/disagreement.py, pooled over training
seeds), and `n` real test digits; shuffled, each with an opaque id. Which image is what stays in the
set (and, at the end, in the logged table), never on the page.

The answers: an append-only JSON-lines file, a header line naming the set, then one line per answer as it
is given (`{"id", "digit", "says"}`, digit -1 for "no digit") or per undo (`{"undo": id}`); replaying it
gives the answers, so a killed session loses nothing and resumes where it stopped.

The numbers, per experiment and over images (exact binomial 95 % intervals, `scipy.stats.binomtest`): the
share taken for real, the share called "no digit", each digit's share and the dominant digit, and Cohen's
kappa of the eye with the CNN and with the k-NN (the eye's "no digit" is an eleventh class). Real digits
give the rater's own accuracy (their true digit named) and false-alarm rate (a real digit called
generated), so that a careless rater shows.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field

import numpy as np

REAL, GENERATED = "real", "generated"
NO_DIGIT = -1
DIGITS = tuple(range(10))
EYE_CLASSES = (NO_DIGIT, *DIGITS)
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Item:
    """One image of the blind set and what it is (never shown)."""

    image_id: str
    kind: str  # REAL | GENERATED
    experiment: str  # "" for a real digit
    seed: int  # training seed of the evaluation that kept it (-1: a real digit)
    row: int  # its index in the evaluation's scoring order, or in the test split
    cnn: int  # the CNN's class (-1: a real digit, not judged)
    knn: int  # the k-NN's class
    label: int  # a real digit's true class (-1: generated)
    pixels: np.ndarray = field(compare=False, repr=False)  # (28, 28) uint8

    def record(self) -> dict:
        return {
            "image_id": self.image_id,
            "kind": self.kind,
            "experiment": self.experiment,
            "seed": self.seed,
            "row": self.row,
            "cnn": self.cnn,
            "knn": self.knn,
            "label": self.label,
        }


@dataclass
class Pool:
    """An experiment's kept samples with both judges' labels, pooled over training seeds."""

    images: np.ndarray  # (M, 28, 28) uint8
    cnn: np.ndarray
    knn: np.ndarray
    seeds: np.ndarray
    rows: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)


def draw_set(pools: dict[str, Pool], real_images: np.ndarray, real_labels: np.ndarray, n: int, seed: int) -> list[Item]:
    """`n` images of each experiment (by name, in sorted order) and `n` real digits, drawn without
    replacement with `seed`, shuffled, with opaque ids from the same generator."""
    rng = np.random.default_rng(seed)
    items = []
    for name in sorted(pools):
        pool = pools[name]
        for i in np.sort(rng.choice(len(pool), size=n, replace=False)):
            items.append(
                (
                    GENERATED,
                    name,
                    int(pool.seeds[i]),
                    int(pool.rows[i]),
                    int(pool.cnn[i]),
                    int(pool.knn[i]),
                    -1,
                    pool.images[i],
                )
            )
    for i in np.sort(rng.choice(len(real_labels), size=n, replace=False)):
        items.append((REAL, "", -1, int(i), -1, -1, int(real_labels[i]), real_images[i]))
    order = rng.permutation(len(items))
    ids: list[str] = []
    while len(set(ids)) < len(items):
        ids = [rng.bytes(6).hex() for _ in items]
    return [Item(ids[k], *items[index]) for k, index in enumerate(order)]


def set_digest(items: list[Item]) -> str:
    """What names one set: its ids, what each is, and its pixels."""
    h = hashlib.sha256()
    for item in items:
        h.update(json.dumps(item.record(), sort_keys=True).encode())
        h.update(np.ascontiguousarray(item.pixels, dtype=np.uint8).tobytes())
    return h.hexdigest()[:16]


# --- the answers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    image_id: str
    digit: int  # 0-9, or NO_DIGIT
    says: str  # REAL | GENERATED


def answer_line(answer: Answer) -> dict:
    return {"id": answer.image_id, "digit": answer.digit, "says": answer.says}


def check_answer(entry: dict, ids: set[str]) -> Answer:
    """An answer line as an Answer; ValueError saying what is wrong with it."""
    if entry.get("id") not in ids:
        raise ValueError(f"unknown image id {entry.get('id')!r}")
    if entry.get("digit") not in EYE_CLASSES:
        raise ValueError(f"image {entry['id']}: digit {entry.get('digit')!r} is not 0-9 or {NO_DIGIT} (no digit)")
    if entry.get("says") not in (REAL, GENERATED):
        raise ValueError(f"image {entry['id']}: says {entry.get('says')!r} is not {REAL} or {GENERATED}")
    return Answer(entry["id"], int(entry["digit"]), entry["says"])


def replay(entries: list[dict], ids: set[str]) -> list[Answer]:
    """The answers a log's lines (after its header) leave, in the order given: an undo removes the last
    answer (of the image it names); a later answer of an image replaces its earlier one."""
    answers: list[Answer] = []
    for entry in entries:
        if "undo" in entry:
            if answers and answers[-1].image_id == entry["undo"]:
                answers.pop()
            continue
        answer = check_answer(entry, ids)
        answers = [a for a in answers if a.image_id != answer.image_id] + [answer]
    return answers


# --- the numbers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Share:
    """k of n with its exact (Clopper-Pearson) 95 % interval."""

    k: int
    n: int
    low: float
    high: float

    @property
    def value(self) -> float:
        return self.k / self.n if self.n else math.nan

    def text(self) -> str:
        if not self.n:
            return "–"
        return f"{self.value:.0%} [{self.low:.0%}, {self.high:.0%}] ({self.k} of {self.n})"


def share(k: int, n: int) -> Share:
    """k of n, with scipy's exact binomial interval (NaN bounds for n = 0)."""
    if n == 0:
        return Share(0, 0, math.nan, math.nan)
    from scipy.stats import binomtest  # late: scipy.stats costs a second, paid where a share is computed

    interval = binomtest(int(k), int(n)).proportion_ci(confidence_level=CONFIDENCE, method="exact")
    return Share(int(k), int(n), float(interval.low), float(interval.high))


def kappa(eye: list[int], judge: list[int]) -> float:
    """Cohen's kappa of the eye's classes (NO_DIGIT an eleventh class) with a judge's; NaN where it is 0/0
    (both name one same class throughout) or there is nothing to compare."""
    if not eye or len(set(eye) | set(judge)) <= 1:
        return math.nan
    from sklearn.metrics import cohen_kappa_score  # late, as in disagreement.py

    return float(cohen_kappa_score(eye, judge, labels=list(EYE_CLASSES)))


@dataclass
class Judged:
    """What the eye says of one experiment's images (rows: one per image and rater)."""

    images: int
    raters: int
    real: Share  # taken for real (HYPE∞)
    no_digit: Share
    digits: dict[int, Share]
    dominant: int | None  # the digit named most often (ties: the lowest), None when no digit was named
    kappa_cnn: float
    kappa_knn: float

    @property
    def dominant_share(self) -> Share | None:
        return None if self.dominant is None else self.digits[self.dominant]


def judge_experiment(rows: list[dict]) -> Judged:
    """The eye on one experiment's rows (table rows: `eye_digit`, `eye_says`, `cnn`, `knn`, `rater`, `image_id`)."""
    total = len(rows)
    named = [int(r["eye_digit"]) for r in rows]
    counts = {d: named.count(d) for d in DIGITS}
    dominant = max(DIGITS, key=lambda d: (counts[d], -d)) if any(counts.values()) else None
    return Judged(
        images=len({r["image_id"] for r in rows}),
        raters=len({r["rater"] for r in rows}),
        real=share(sum(r["eye_says"] == REAL for r in rows), total),
        no_digit=share(named.count(NO_DIGIT), total),
        digits={d: share(counts[d], total) for d in DIGITS},
        dominant=dominant,
        kappa_cnn=kappa(named, [int(r["cnn"]) for r in rows]),
        kappa_knn=kappa(named, [int(r["knn"]) for r in rows]),
    )


@dataclass
class RealDigits:
    """The rater's answers on the real digits: their own accuracy and false-alarm rate."""

    accuracy: Share  # the true digit named
    false_alarm: Share  # called generated


def judge_real(rows: list[dict]) -> RealDigits:
    return RealDigits(
        accuracy=share(sum(int(r["eye_digit"]) == int(r["label"]) for r in rows), len(rows)),
        false_alarm=share(sum(r["eye_says"] == GENERATED for r in rows), len(rows)),
    )


def by_experiment(rows: list[dict]) -> dict[str, list[dict]]:
    """Rows of generated images by experiment, in sorted order."""
    found: dict[str, list[dict]] = {}
    for row in rows:
        if row["kind"] == GENERATED:
            found.setdefault(row["experiment"], []).append(row)
    return dict(sorted(found.items()))


def metric_key(experiment: str) -> str:
    """An experiment's name as part of a metric key (MLflow allows letters, digits, _ - . / and spaces)."""
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in experiment)


def metrics(rows: list[dict]) -> tuple[dict[str, float], dict[str, str]]:
    """The summary metrics (and the dominant digits, as tags) of a session's rows."""
    found: dict[str, float] = {"eye_images": float(len({r["image_id"] for r in rows})), "eye_answers": float(len(rows))}
    tags: dict[str, str] = {}

    def put(name: str, value: Share) -> None:
        found[name] = value.value
        found[f"{name}_low"], found[f"{name}_high"] = value.low, value.high

    for experiment, own in by_experiment(rows).items():
        key = metric_key(experiment)
        judged = judge_experiment(own)
        put(f"eye_real/{key}", judged.real)
        put(f"eye_no_digit/{key}", judged.no_digit)
        found[f"eye_kappa_cnn/{key}"], found[f"eye_kappa_knn/{key}"] = judged.kappa_cnn, judged.kappa_knn
        found.update({f"eye_digit_share/{key}/{d}": judged.digits[d].value for d in DIGITS})
        if judged.dominant is not None:
            put(f"eye_dominant_share/{key}", judged.dominant_share)
            tags[f"eye_dominant/{key}"] = str(judged.dominant)
    real = judge_real([r for r in rows if r["kind"] == REAL])
    put("eye_accuracy_real", real.accuracy)
    put("eye_false_alarm", real.false_alarm)
    return {k: v for k, v in found.items() if math.isfinite(v)}, tags
