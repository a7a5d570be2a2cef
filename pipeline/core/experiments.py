"""The study's experiments and the grid around them (docs/study.md), and the presets of `main`.

A *cell* is one trained model configuration (loss x forward pass); an *experiment* is a cell sampled
with one sampler. Experiments that differ only in the sampler share one trained model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pipeline.core.model.samplers import parse_sampler

LOSSES = ("bce", "mse")
FORWARDS = ("standard", "sampled-params")
GRID_SAMPLERS = ("normal:0,1", "normal:1,2", "beta:0.25,0.25", "gmm:10")


@dataclass(frozen=True)
class Experiment:
    """One row of the study: a model cell sampled with one sampler, with the study's id if it has one."""

    loss: str
    forward: str
    sampler: str
    study_id: str | None = None  # E1-E5 for the write-up's own experiments
    evaluate_only: bool = False  # a sampler the cell's model is only evaluated with: its training stays as it was

    @property
    def cell(self) -> str:
        return cell_name(self.loss, self.forward)

    @property
    def name(self) -> str:
        return self.study_id or f"{self.cell} {self.sampler}"

    def plan_entry(self) -> dict:
        """The experiment as main's plan (main/steps.json) records it, for the report to read back."""
        return {
            "name": self.name,
            "study_id": self.study_id,
            "cell": self.cell,
            "loss": self.loss,
            "forward": self.forward,
            "sampler": self.sampler,
            "sampler_key": parse_sampler(self.sampler).key,
        }


def cell_name(loss: str, forward: str) -> str:
    return f"{loss}-{forward}"


STUDY = (
    Experiment("bce", "standard", "normal:0,1", "E1"),
    Experiment("bce", "standard", "normal:1,2", "E2"),
    Experiment("bce", "standard", "beta:0.25,0.25", "E3"),
    Experiment("mse", "standard", "beta:0.25,0.25", "E4"),
    Experiment("bce", "sampled-params", "normal:0,1", "E5"),
)
STUDY_IDS = {e.study_id: e for e in STUDY}


def experiment_of(loss: str, forward: str, sampler: str) -> str | None:
    """The study's id (E1-E5) of a model cell sampled with `sampler`, or None when it is none of them;
    samplers compare by key, so `normal:0,1` and `normal:0.0,1.0` are one."""
    key = parse_sampler(sampler).key
    for experiment in STUDY:
        if (experiment.loss, experiment.forward, parse_sampler(experiment.sampler).key) == (loss, forward, key):
            return experiment.study_id
    return None


# What the findings' sensitivity rows compare beyond E1-E5 (readings the write-up leaves open, deciding no
# word): the MSE model sampled from N(0,1) (F4 beyond Beta), N(1,2) read as variance 2 rather than scale 2
# (F2), and the sampled-params model sampled with Beta(0.25,0.25) (F5, F6). Each model is one E1-E5 already
# trains: one more sampler of its evaluation, no training (its train step's samplers, and so its reuse
# key, stay the study's).
VARIANCE_TWO = "normal:1,1.41421"  # N(1, 2) with 2 the variance: scale √2, to the six digits a spec keeps
BASELINES = (
    Experiment("mse", "standard", "normal:0,1", evaluate_only=True),
    Experiment("bce", "standard", VARIANCE_TWO, evaluate_only=True),
    Experiment("bce", "sampled-params", "beta:0.25,0.25", evaluate_only=True),
)


def grid() -> list[Experiment]:
    """Every loss x forward x sampler, the study's own rows carrying their ids."""
    ids = {(e.loss, e.forward, e.sampler): e.study_id for e in STUDY}
    return [
        Experiment(loss, forward, sampler, ids.get((loss, forward, sampler)))
        for loss in LOSSES
        for forward in FORWARDS
        for sampler in GRID_SAMPLERS
    ]


@dataclass(frozen=True)
class Settings:
    """What a preset of `main` fixes, typed; `main`'s parameter of the same name overrides each one."""

    experiments: str  # for `select`: grid | study | a comma list of study ids and cells
    data: str  # a dataset name or a prepare_data run id
    epochs: int
    seeds: tuple[int, ...]  # one training per cell and seed
    latent_size: int
    hidden_size: int
    batch_size: int
    lr: float
    n_samples: int  # generated images per sampler in evaluate
    iwae_k: int  # importance samples per test image for the NLL
    precision: str = "32"  # of the train steps: 32 | bf16-mixed

    def as_record(self) -> dict:
        """The settings as main's plan records them (main/settings.json, main/steps.json)."""
        return {**dataclasses.asdict(self), "seeds": list(self.seeds)}

    @classmethod
    def parse(cls, name: str, text: str):
        """A setting given as text (`main`'s parameter of that name), typed as its field declares; a
        ValueError when the text is not of that type."""
        kind = SETTING_TYPES[name]
        if kind == "tuple[int, ...]":
            return tuple(int(part) for part in text.split(","))
        return {"int": int, "float": float, "str": str}[kind](text)


SETTING_TYPES = {f.name: f.type for f in dataclasses.fields(Settings)}  # "int", "float", ... (postponed annotations)


# quick: E1-E5 on the 5,000 bundled digits, chosen by measurement (README, "How the quick preset
# was chosen"): on 3,600 training images progress follows optimizer steps, and batch 64 for 50
# epochs passes what batch 128 reaches in 80 (E1's N(0,1): FID 190 against 151 at convergence,
# recall 0.49, 10 classes); at 40 the MSE model was still improving by the report's rule. Two
# seeds: a t interval over seeds needs two.
# Both presets run `study`: E1-E5 and the BASELINES.
PRESETS = {
    "quick": Settings(
        experiments="study",
        data="mnist-5k",
        epochs=50,
        seeds=(0, 1),
        latent_size=100,
        hidden_size=392,
        batch_size=64,
        lr=0.001,
        n_samples=1000,
        iwae_k=50,
        precision="32",
    ),
    "study": Settings(
        experiments="study",
        data="mnist",
        epochs=100,
        seeds=(0, 1, 2),
        latent_size=100,
        hidden_size=392,
        batch_size=128,
        lr=0.001,
        n_samples=10000,
        iwae_k=100,
        precision="32",
    ),
}


def select(names: str) -> list[Experiment]:
    """Experiments from `grid`, `study` (E1-E5 and the BASELINES their findings compare with), or a comma
    list of study ids (E3) and cells (mse-standard).

    Raises ValueError naming the unknown entries.
    """
    if names == "grid":
        return grid()
    if names == "study":
        return [*STUDY, *BASELINES]
    chosen, unknown = [], []
    cells = {cell_name(loss, forward) for loss in LOSSES for forward in FORWARDS}
    for name in (part.strip() for part in names.split(",")):
        if name in STUDY_IDS:
            picked = [STUDY_IDS[name]]
        elif name in cells:
            picked = [e for e in grid() if e.cell == name]
        else:
            unknown.append(name)
            continue
        chosen += [e for e in picked if e not in chosen]
    if unknown or not chosen:
        raise ValueError(", ".join(unknown) or names)
    return chosen
