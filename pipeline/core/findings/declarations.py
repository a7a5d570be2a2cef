"""Every finding the pipeline tests, as data: the write-up's F1–F6 and the search's F7, F8, G and H.

A finding is a list of clauses. A clause claims one construct about a subject (an experiment such as
E2, or a sampler of the search's verification), better or worse than another subject, than the real
digits, or than a fixed level; the evaluator (evaluator.py) tests it on every metric of that
construct. A clause the pipeline cannot test is declared `Untested`, with the reason, so that the
report lists it instead of leaving it out. Adding a finding is adding a declaration here
(CONTRIBUTING.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.core.scores.catalogue import CATALOGUE

BETTER, WORSE = "better", "worse"
REAL = "real digits"  # the real data through the same code: a metric's `real` counterpart
LEVEL = "fixed level"  # a metric's own threshold (`level`)


@dataclass(frozen=True)
class Metric:
    """A metric as the study's runs log it, which way is better, and what it can be held against."""

    name: str
    label: str
    higher_is_better: bool
    judged: bool = False  # logged once per judge of class identity: `name` (CNN) and `name_judge2` (k-NN)
    real: str | None = None  # the real data's value of it, logged by the same evaluation
    level: float | None = None  # the level an absolute clause ("covers most digits") is held against
    why_no_level: str = "no absolute level of it is defined"

    @classmethod
    def logged(cls, name: str, **claim) -> Metric:
        """A metric the evaluation logs, as its catalogue declares it (name, label, direction, real
        counterpart, judged), with what a clause holds it against (`level`, `why_no_level`)."""
        info = CATALOGUE[name]
        return cls(name, info.label, bool(info.higher_is_better), info.judged, info.real, **claim)


FID = Metric.logged("fid")
PRECISION = Metric.logged("precision")
DENSITY = Metric.logged("density")
RECALL = Metric.logged("recall", why_no_level="recall has no absolute level of 'diverse'")
COVERAGE = Metric.logged("coverage", why_no_level="coverage has no absolute level of 'diverse'")
# "most digits": at least 8 of the 10 classes covered (a class is covered with half a uniform share)
CLASSES_COVERED = Metric.logged("classes_covered", level=7.5)
SHARPNESS = Metric.logged("sharpness")
CONFIDENCE = Metric.logged("confidence", why_no_level="no real-digit confidence is logged to compare with")


def share_of(digit: int) -> Metric:
    """Digit `digit`'s share of the samples by each judge; above a uniform tenth when it comes up often."""
    return Metric(f"share_of_digit_{digit}", f"share of digit {digit}", True, judged=True, level=0.1)


def lead_of(digit: int) -> Metric:
    """Digit `digit`'s share minus the largest other digit's: above 0 when it comes up more than any other."""
    return Metric(f"lead_of_digit_{digit}", f"lead of digit {digit} over the others", True, judged=True, level=0.0)


@dataclass(frozen=True)
class Construct:
    name: str
    metrics: tuple[Metric, ...]


REALISM = Construct("realism", (FID, PRECISION, DENSITY))
DIVERSITY = Construct("diversity", (RECALL, COVERAGE, CLASSES_COVERED))
CLARITY = Construct("clarity", (SHARPNESS, CONFIDENCE))


def identity(digit: int) -> Construct:
    return Construct(f"identity of digit {digit}", (share_of(digit), lead_of(digit)))


@dataclass(frozen=True)
class Clause:
    """`subject` is `claim` (better/worse) on `construct` than `versus`: another subject, REAL or LEVEL."""

    text: str
    construct: Construct
    subject: str
    claim: str
    versus: str


@dataclass(frozen=True)
class Untested:
    text: str
    reason: str


NOISE = "no metric separates noise from detail: sharpness counts noise as sharp"


@dataclass(frozen=True)
class Finding:
    name: str
    claim: str
    short: str
    clauses: tuple = field(default_factory=tuple)


MSE_NORMAL = "mse-standard normal:0,1"  # the MSE model with N(0,1): F4's comparison under N(0,1)

STUDY_FINDINGS = (
    Finding(
        "F1",
        "N(0,1) samples cover most digits but are noisy and blurry.",
        "N(0,1): most digits, noisy and blurry",
        (
            Clause("E1 covers most digits", DIVERSITY, "E1", BETTER, LEVEL),
            Untested("noisy", NOISE),
            Clause("E1 blurrier than real digits", CLARITY, "E1", WORSE, REAL),
        ),
    ),
    Finding(
        "F2",
        "N(1,2) samples are noisier and less realistic than N(0,1)'s; both are diverse.",
        "N(1,2): noisier, less realistic; still diverse",
        (
            Untested("noisier", NOISE),
            Clause("E2 less realistic than E1", REALISM, "E2", WORSE, "E1"),
            Clause("E1 diverse", DIVERSITY, "E1", BETTER, LEVEL),
            Clause("E2 diverse", DIVERSITY, "E2", BETTER, LEVEL),
        ),
    ),
    Finding(
        "F3",
        "Beta(0.25,0.25) with BCE: unclear, noisy, worse correspondence to real digits than F1/F2.",
        "Beta(0.25,0.25): unclear, further from real digits",
        (
            Clause("E3 less clear than E1", CLARITY, "E3", WORSE, "E1"),
            Untested("noisy", NOISE),
            Clause("E3 less realistic than E1", REALISM, "E3", WORSE, "E1"),
            Clause("E3 less realistic than E2", REALISM, "E3", WORSE, "E2"),
        ),
    ),
    Finding(
        "F4",
        "MSE gives sharper digits than BCE, with the same loss of realism under Beta.",
        "MSE sharper than BCE; loses realism under Beta too",
        (
            Clause("MSE clearer than BCE under N(0,1)", CLARITY, MSE_NORMAL, BETTER, "E1"),
            Clause("MSE clearer than BCE under Beta(0.25,0.25)", CLARITY, "E4", BETTER, "E3"),
            Clause("MSE less realistic under Beta(0.25,0.25) than under N(0,1)", REALISM, "E4", WORSE, MSE_NORMAL),
        ),
    ),
    Finding(
        "F5",
        "The sampled-params forward makes generations extremely unclear.",
        "sampled-params forward: extremely unclear",
        (Clause("E5 less clear than E1", CLARITY, "E5", WORSE, "E1"),),
    ),
    Finding(
        "F6",
        "The Beta and modified runs lack diversity: the digit 3 comes up more often than the others.",
        "Beta and sampled-params: less diverse, digit 3 frequent",
        tuple(
            clause
            for name in ("E3", "E4", "E5")
            for clause in (
                Clause(f"{name} less diverse than E1", DIVERSITY, name, WORSE, "E1"),
                Clause(f"digit 3 comes up more than the others under {name}", identity(3), name, BETTER, LEVEL),
            )
        ),
    ),
)

LABELS = {  # the search's verified samplers, as the report names them
    "best_beta": "searched Beta",
    "normal_0_1": "N(0,1)",
    "study_beta": "Beta(0.25,0.25)",
    "gmm_10": "gmm:10",
    "matched_normal": "matched normal",
}


def _better_samples(name: str, claim: str, short: str, better: str, worse: str) -> Finding:
    """`better` gives more realistic and more diverse samples than `worse`, on one model per seed."""
    return Finding(
        name,
        claim,
        short,
        (
            Clause(f"{LABELS[better]} more realistic than {LABELS[worse]}", REALISM, better, BETTER, worse),
            Clause(f"{LABELS[better]} more diverse than {LABELS[worse]}", DIVERSITY, better, BETTER, worse),
        ),
    )


SEARCH_FINDINGS = (
    _better_samples(
        "F7",
        "The searched Beta gives better samples than N(0,1) at the searched latent size.",
        "searched Beta better than N(0,1)",
        "best_beta",
        "normal_0_1",
    ),
    _better_samples(
        "F8",
        "The study's Beta(0.25,0.25) gives worse samples than N(0,1) at the searched latent size.",
        "Beta(0.25,0.25) worse than N(0,1)",
        "normal_0_1",
        "study_beta",
    ),
    _better_samples(
        "G",
        "gmm:10 (fitted on the encoded training data) gives better samples than the searched Beta.",
        "gmm:10 better than the searched Beta",
        "gmm_10",
        "best_beta",
    ),
    _better_samples(
        "H",
        "The searched Beta's shape matters beyond its location and scale: it beats N(its mean, its sd).",
        "searched Beta better than its matched normal",
        "best_beta",
        "matched_normal",
    ),
)
