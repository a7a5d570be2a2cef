"""Every metric an evaluation logs, declared once: its name, the label a reader sees, which way is
better and what it is held against.

Scoring logs the sampler metrics in this order; the k-NN judge logs the judged ones again; the
findings' clauses, the report's ★ marks and the table in docs/evaluation.md read them from here.
"""

from __future__ import annotations

from dataclasses import dataclass

SAMPLER, MODEL, REAL = "sampler", "model", "real"  # one value per sampler, per trained model, of the real data


@dataclass(frozen=True)
class MetricInfo:
    name: str
    label: str
    kind: str
    higher_is_better: bool | None  # None: a property, not a quality, and never ranked
    real: str | None = None  # the real data's value of it, logged by the same evaluation
    closest_is_best: bool = False  # ranked by closeness to `real`: more is not better (noise is sharp)
    judged: bool = False  # a class metric the second judge logs again, as `name` + "_judge2"

    @property
    def direction(self) -> str | None:
        """How the report ranks it: 'higher', 'lower', 'closer:<real>' or None."""
        if self.closest_is_best:
            return f"closer:{self.real}"
        if self.higher_is_better is None:
            return None
        return "higher" if self.higher_is_better else "lower"


def _info(name: str, label: str, higher_is_better: bool | None, kind: str = SAMPLER, **more) -> MetricInfo:
    return MetricInfo(name, label, kind, higher_is_better, **more)


CATALOGUE = {
    m.name: m
    for m in (
        _info("fid", "FID (LeNet features)", False, real="fid_floor"),
        _info("precision", "precision", True),
        _info("recall", "recall", True),
        _info("density", "density", True),
        _info("coverage", "coverage", True),
        _info("confidence", "classifier confidence", True),
        _info("class_entropy", "class entropy", True, real="class_entropy_real", closest_is_best=True, judged=True),
        _info("class_kl", "KL to the test label shares", False),
        _info("classes_covered", "classes covered", True, judged=True),
        _info("most_digits_share", "the 8th most frequent digit's share", True, judged=True),
        _info("max_class_share", "the largest class share", False, judged=True),
        _info("confident_share", "share of samples read as a digit", True, real="confident_share_real"),
        _info("max_class_share_confident", "the largest class share among confident predictions", False),
        _info("sharpness", "sharpness", True, real="sharpness_real", closest_is_best=True),
        _info("neg_elbo", "negative ELBO", False, MODEL),
        _info("nll", "NLL (IWAE)", False, MODEL),
        _info("active_units", "active units", None, MODEL),
        _info("fid_floor", "FID of a real training subset", None, REAL),
        _info("sharpness_real", "sharpness of the test split", None, REAL),
        _info("class_entropy_real", "class entropy of the test labels", None, REAL),
        _info("confident_share_real", "share of a real training subset read as a digit", None, REAL),
    )
}


def names(kind: str) -> tuple[str, ...]:
    """The metrics of one kind, in the order they are logged."""
    return tuple(m.name for m in CATALOGUE.values() if m.kind == kind)
