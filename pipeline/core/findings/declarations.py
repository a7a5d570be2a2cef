"""Every finding the pipeline tests, as data: the write-up's F1–F6 and the search's F7, F8, G and H.

A finding is a list of clauses. Each clause quotes the words it tests (docs/study.md has the
write-up's text) and names one **primary** metric, with the reason it answers those words: the
evaluator (evaluator.py) decides the clause on that metric alone, after Holm's correction over every
primary test of its family (the study's, or the search's). The construct's other metrics are shown
beside it as secondary evidence and decide nothing. A clause claims its subject (an experiment such
as E2, or a sampler of the search's verification) better or worse than another subject, than the real
digits or than a fixed level, or alike another subject within a declared margin (an equivalence).
A clause with `decides=False` is a sensitivity row: a reading the write-up leaves open, reported
beside the finding and deciding no word. A clause the pipeline cannot test is `Untested`, with the
reason. These declarations were committed before the confirmation's seeds (3–7) were run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.core.findings import reasons
from pipeline.core.scores.catalogue import CATALOGUE

BETTER, WORSE, ALIKE = "better", "worse", "alike"
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
    count: bool = False  # a whole number per seed: tested exactly (sign or permutation test), never by a t interval

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
# "most digits": at least 8 of the 10 classes, a class counted with half a uniform share (1/20)
CLASSES_COVERED = Metric.logged("classes_covered", level=7.5, count=True)
MOST_DIGITS_SHARE = Metric.logged("most_digits_share", level=0.05)
SHARPNESS = Metric.logged("sharpness")
CONFIDENCE = Metric.logged("confidence", why_no_level="no real-digit confidence is logged to compare with")
DIGIT_LIKE = Metric.logged("confident_share")  # the share of samples the CNN reads as a digit (≥ 90 %)


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


REALISM = Construct("realism", (DENSITY, PRECISION, FID))
DIVERSITY = Construct("diversity", (COVERAGE, RECALL, CLASSES_COVERED, MOST_DIGITS_SHARE))
CLARITY = Construct("clarity", (SHARPNESS, CONFIDENCE))
NOISE = Construct("noise", (DIGIT_LIKE, CONFIDENCE))


def identity(digit: int) -> Construct:
    return Construct(f"identity of digit {digit}", (lead_of(digit), share_of(digit)))


DENSITY_MARGIN = 0.1  # a tenth of the density of samples as near the real digits as the real digits (1)
FID_MARGIN = 10.0  # FID units: below the 13 by which the exploratory search's Beta beat N(0,1), its smallest gap


@dataclass(frozen=True)
class Clause:
    """`subject` is `claim` (better/worse/alike) on `primary` than `versus`: another subject, REAL or
    LEVEL. The construct's other metrics are shown beside it and decide nothing."""

    text: str
    quote: str  # the words this clause tests, as the write-up (or the search's question) put them
    construct: Construct
    subject: str
    claim: str
    versus: str
    primary: Metric
    reason: str  # why `primary` answers `quote`
    margin: float | None = None  # an ALIKE clause: the equivalence margin on `primary`
    decides: bool = True  # False: a sensitivity row, beside the finding, deciding no word

    @property
    def secondary(self) -> tuple[Metric, ...]:
        return tuple(m for m in self.construct.metrics if m != self.primary)


@dataclass(frozen=True)
class Untested:
    text: str
    reason: str


@dataclass(frozen=True)
class Finding:
    name: str
    claim: str
    short: str
    clauses: tuple = field(default_factory=tuple)


# Subjects beyond E1–E5 ("cell sampler"), the sensitivity rows' readings the write-up leaves open; each is a
# sampler core/experiments.py's BASELINES evaluates (tests/unit/test_findings.py checks the two agree)
MSE_NORMAL = "mse-standard normal:0,1"  # the MSE model with N(0,1): F4 beyond Beta
VARIANCE_TWO = "bce-standard normal:1,1.41421"  # N(1,2) read as variance 2 (scale √2): F2
E5_BETA = "bce-sampled-params beta:0.25,0.25"  # the sampled-params model sampled with Beta(0.25,0.25): F5, F6
SUBJECT_LABELS = {MSE_NORMAL: "MSE N(0,1)", VARIANCE_TWO: "E2 at variance 2", E5_BETA: "E5 with Beta"}

F1, F2 = (
    "N(0,1) samples cover most digits but are noisy and blurry.",
    ("N(1,2) samples are noisier; some look like no digit (less realistic); both N(0,1) and N(1,2) are diverse."),
)
F3 = "Beta(0.25,0.25) with BCE: unclear, noisy, worse correspondence to real digits than F1/F2."
F4 = "MSE gives sharper digits than BCE, with the same loss of realism under Beta."
F6 = "The Beta and modified runs lack diversity: the digit 3 comes up more often than the others."


def _diverse(name: str) -> Clause:
    return Clause(
        f"{name} diverse", "both N(0,1) and N(1,2) are diverse", DIVERSITY, name, BETTER, LEVEL,
        MOST_DIGITS_SHARE, reasons.MOST_DIGITS_WHY,
    )  # fmt: skip


# fmt: off
STUDY_FINDINGS = (
    Finding("F1", F1, "N(0,1): most digits, noisy and blurry", (
        Clause("E1 covers most digits", "cover most digits", DIVERSITY, "E1", BETTER, LEVEL,
               MOST_DIGITS_SHARE, reasons.MOST_DIGITS_WHY),
        Clause("E1 noisy: fewer samples look like a digit than real digits", "noisy", NOISE, "E1", WORSE, REAL,
               DIGIT_LIKE, reasons.NOISE_WHY),
        Clause("E1 blurrier than real digits", "blurry", CLARITY, "E1", WORSE, REAL, SHARPNESS, reasons.BLUR_WHY),
    )),
    Finding("F2", F2, "N(1,2): noisier, less realistic; still diverse", (
        Clause("E2 noisier than E1: more samples look like no digit", "noisier; some look like no digit", NOISE,
               "E2", WORSE, "E1", DIGIT_LIKE, reasons.NOISE_WHY),
        Clause("E2 less realistic than E1", "less realistic", REALISM, "E2", WORSE, "E1", DENSITY,
               reasons.FIDELITY_WHY),
        _diverse("E1"),
        _diverse("E2"),
        Clause("E2 at variance 2 noisier than E1", "N(1,2) read as variance 2, not scale 2", NOISE, VARIANCE_TWO,
               WORSE, "E1", DIGIT_LIKE, reasons.NOISE_WHY, decides=False),
        Clause("E2 at variance 2 less realistic than E1", "N(1,2) read as variance 2, not scale 2", REALISM,
               VARIANCE_TWO, WORSE, "E1", DENSITY, reasons.FIDELITY_WHY, decides=False),
    )),
    Finding("F3", F3, "Beta(0.25,0.25): unclear, noisy, further from real digits", (
        Clause("E3 less clear than E1", "unclear", CLARITY, "E3", WORSE, "E1", CONFIDENCE, reasons.UNCLEAR_WHY),
        Clause("E3 noisy: fewer samples look like a digit than real digits", "noisy", NOISE, "E3", WORSE, REAL,
               DIGIT_LIKE, reasons.NOISE_WHY),
        Clause("E3 less realistic than E1", "worse correspondence to real digits than F1", REALISM, "E3", WORSE,
               "E1", DENSITY, reasons.FIDELITY_WHY),
        Clause("E3 less realistic than E2", "worse correspondence to real digits than F2", REALISM, "E3", WORSE,
               "E2", DENSITY, reasons.FIDELITY_WHY),
    )),
    Finding("F4", F4, "MSE sharper than BCE under Beta; the same loss of realism", (
        Clause("E4 sharper than E3", "the MSE model provides a sharper digit compared to the BCE", CLARITY, "E4",
               BETTER, "E3", SHARPNESS, reasons.BLUR_WHY),
        Clause("E4 less realistic than E1", "the same loss of realism under Beta", REALISM, "E4", WORSE, "E1",
               DENSITY, reasons.FIDELITY_WHY),
        Clause("E4 as realistic as E3", "the same loss of realism under Beta", REALISM, "E4", ALIKE, "E3",
               DENSITY, reasons.SAME_LOSS_WHY, margin=DENSITY_MARGIN),
        Clause("MSE sharper than BCE under N(0,1)", "beyond the write-up: it ran MSE only with Beta(0.25,0.25)",
               CLARITY, MSE_NORMAL, BETTER, "E1", SHARPNESS, reasons.BLUR_WHY, decides=False),
    )),
    Finding("F5", "The sampled-params forward makes generations extremely unclear.",
            "sampled-params forward: extremely unclear", (
        Clause("E5 less clear than E1", "extremely unclear", CLARITY, "E5", WORSE, "E1", CONFIDENCE,
               reasons.UNCLEAR_WHY),
        Clause("E5 with Beta less clear than E3", "E5 read as sampled with Beta(0.25,0.25), against the standard "
               "forward with it", CLARITY, E5_BETA, WORSE, "E3", CONFIDENCE, reasons.UNCLEAR_WHY, decides=False),
    )),
    Finding("F6", F6, "Beta and sampled-params: less diverse, digit 3 frequent", tuple(
        clause
        for name in ("E3", "E4", "E5")
        for clause in (
            Clause(f"{name} less diverse than E1", "lack diversity", DIVERSITY, name, WORSE, "E1", COVERAGE,
                   reasons.DIVERSE_WHY),
            Clause(f"digit 3 leads under {name}", "3 was being generated more often compared to the others",
                   identity(3), name, BETTER, LEVEL, lead_of(3), reasons.LEAD_WHY),
        )
    ) + (
        Clause("E5 with Beta less diverse than E1", "E5 read as sampled with Beta(0.25,0.25)", DIVERSITY, E5_BETA,
               WORSE, "E1", COVERAGE, reasons.DIVERSE_WHY, decides=False),
        Clause("digit 3 leads under E5 with Beta", "E5 read as sampled with Beta(0.25,0.25)", identity(3), E5_BETA,
               BETTER, LEVEL, lead_of(3), reasons.LEAD_WHY, decides=False),
    )),
)
# fmt: on

LABELS = {  # the search's verified samplers, as the report names them
    "best_beta": "searched Beta",
    "normal_0_1": "N(0,1)",
    "study_beta": "Beta(0.25,0.25)",
    "gmm_10": "gmm:10",
    "matched_normal": "matched normal",
}


# fmt: off
def _better_samples(name: str, claim: str, short: str, better: str, worse: str) -> Finding:
    """`better` gives more realistic and more diverse samples than `worse`, on one model per seed."""
    quote = f"{LABELS[better]} gives better samples than {LABELS[worse]}"
    return Finding(name, claim, short, (
        Clause(f"{LABELS[better]} more realistic than {LABELS[worse]}", quote, REALISM, better, BETTER, worse,
               DENSITY, reasons.FIDELITY_WHY),
        Clause(f"{LABELS[better]} more diverse than {LABELS[worse]}", quote, DIVERSITY, better, BETTER, worse,
               COVERAGE, reasons.DIVERSE_WHY),
    ))


DISTRIBUTION = Construct("the sample distribution", (FID, DENSITY, COVERAGE))
SEARCH_FINDINGS = (
    Finding("F7", "The searched Beta gives better samples than N(0,1) at the searched latent size.",
            "searched Beta better than N(0,1)", (
        Clause("searched Beta nearer the real digits than N(0,1)", "better samples (the search's objective)",
               DISTRIBUTION, "best_beta", BETTER, "normal_0_1", FID, reasons.DISTRIBUTION_WHY),
    )),
    _better_samples("F8", "The study's Beta(0.25,0.25) gives worse samples than N(0,1) at the searched latent size.",
                    "Beta(0.25,0.25) worse than N(0,1)", "normal_0_1", "study_beta"),
    _better_samples("G", "gmm:10 (fitted on the encoded training data) gives better samples than the searched Beta.",
                    "gmm:10 better than the searched Beta", "gmm_10", "best_beta"),
    Finding("H", "The searched Beta is a temperature, not a shape: it scores like N(its mean, its sd).",
            "searched Beta alike its matched normal", (
        Clause("searched Beta alike its matched normal", "a temperature, not a shape", DISTRIBUTION, "best_beta",
               ALIKE, "matched_normal", FID, reasons.SHAPE_WHY, margin=FID_MARGIN),
    )),
)
# fmt: on
