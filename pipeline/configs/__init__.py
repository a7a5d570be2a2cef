"""One dataclass per step: the single source of truth for its parameters.

The CLI flags are built from these fields, MLproject lists the same names and defaults
(tests/unit/test_project_files.py keeps them in step), and the logged MLflow params are these values.
Construction validates, so bad input is refused before any work starts.

Every config is importable from here (`from pipeline.configs import TrainConfig`); `fields` holds
what they are built of, `search` the search's, the largest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.configs.fields import (
    DATASET_CHOICES,
    DEFAULT_SAMPLERS,
    DEVICE_PATTERN,
    MAX_SEED,
    NO_VALUE,
    PRECISIONS,
    PRESET_VALUE,
    RUN_ID_PATTERN,
    SEED_HELP,
    at_least,
    check_device,
    check_model,
    check_samplers,
    check_seed,
    check_seed_list,
    check_val_fraction,
    coerce,
    device_param,
    param,
    precision_param,
)
from pipeline.configs.search import SEARCH_OBJECTIVES, STORAGE_FORMS, SearchConfig
from pipeline.core.experiments import PRESETS, SETTING_TYPES, Settings, select
from pipeline.errors import bad_parameter

__all__ = [
    "DATASET_CHOICES",
    "DEFAULT_SAMPLERS",
    "DEVICE_PATTERN",
    "MAX_SEED",
    "NO_VALUE",
    "PRESET_VALUE",
    "RUN_ID_PATTERN",
    "SEED_HELP",
    "SEARCH_OBJECTIVES",
    "STORAGE_FORMS",
    "STEP_CONFIGS",
    "EvaluateConfig",
    "EyeConfig",
    "JudgesConfig",
    "MainConfig",
    "PrepareDataConfig",
    "ReportConfig",
    "SampleConfig",
    "SearchConfig",
    "TrainConfig",
]


@dataclass(frozen=True)
class PrepareDataConfig:
    """prepare_data: load a dataset, split it, write one prepared file."""

    dataset: str = param("mnist-5k", f"dataset to prepare: {DATASET_CHOICES}")
    val_fraction: float = param(0.1, "share of the training images held out for validation")
    seed: int = param(
        0, "seed of the validation split (which training images are held out); the test split never depends on it"
    )
    data_root: str = param("data", "where torchvision finds or downloads mnist / fashion-mnist")

    def __post_init__(self):
        coerce(self)
        check_seed(self)
        check_val_fraction(self)
        from pipeline.core.data.datasets import check_dataset_name  # late: numpy stays out of the CLI's parsing

        check_dataset_name(self.dataset)


@dataclass(frozen=True)
class TrainConfig:
    """train: fit the study's VAE and log metrics, samples, checkpoints and the model."""

    data: str = param("mnist-5k", f"{DATASET_CHOICES}, a prepare_data run id, or a prepared-file URI")
    loss: str = param("bce", "reconstruction term", ("bce", "mse"))
    forward: str = param("standard", "forward pass of the study", ("standard", "sampled-params"))
    latent_size: int = param(100, "latent dimensions")
    hidden_size: int = param(392, "hidden units of encoder and decoder")
    epochs: int = param(100, "training epochs")
    batch_size: int = param(128, "images per optimizer step")
    lr: float = param(0.001, "Adam learning rate")
    seed: int = param(0, SEED_HELP)
    device: str = device_param()
    precision: str = precision_param()
    samplers: str = param(DEFAULT_SAMPLERS, "latent samplers, '+'-separated specs")
    n_images: int = param(5, "single images logged per sampler at the end")
    sample_every: int = param(10, "log a sample grid per sampler every N epochs (0: only at the end)")
    checkpoint_every: int = param(10, "write a checkpoint every N epochs (the last epoch always)")
    resume: str = param("none", "a train run id (or checkpoint URI) to continue from its last checkpoint, or none")
    val_fraction: float = param(0.1, "validation share when `data` is a dataset name")
    data_root: str = param("data", "torchvision root when `data` is mnist or fashion-mnist")

    def __post_init__(self):
        coerce(self)
        for name in ("latent_size", "hidden_size", "epochs", "batch_size", "n_images"):
            at_least(self, name, 1)
        at_least(self, "sample_every", 0)
        at_least(self, "checkpoint_every", 1)
        check_seed(self)
        if not self.lr > 0:
            raise bad_parameter("lr", self.lr, "a number > 0")
        check_device(self)
        check_val_fraction(self)
        check_samplers(self)


@dataclass(frozen=True)
class _DrawingConfig:
    """What sample and evaluate share: the model drawn from, its samplers, the seed of the draws, the device."""

    model: str = param("", "a train run id")
    samplers: str = param("auto", "'+'-separated sampler specs, or auto: the train run's own")
    seed: int = param(0, "seed of the latent draws")
    device: str = device_param()

    def _check(self, model_allowed: str, count: str, minimum: int, fitted_allowed: bool = False) -> None:
        coerce(self)
        check_model(self, model_allowed)
        at_least(self, count, minimum)
        check_seed(self)
        check_device(self)
        check_samplers(self, fitted_allowed=fitted_allowed)


@dataclass(frozen=True)
class SampleConfig(_DrawingConfig):
    """sample: decode latent draws of a trained model into grids and single images."""

    model: str = param("", "a train run id or a model URI (runs:/..., models:/...)")
    n: int = param(16, "images per sampler")

    def __post_init__(self):
        self._check("a train run id or a model URI", "n", 1)


@dataclass(frozen=True)
class EvaluateConfig(_DrawingConfig):
    """evaluate: measure generation quality per sampler and the model's likelihood."""

    samplers: str = param("auto", "'+'-separated sampler specs, or auto: the train run's own plus gmm:10")
    seed: int = param(0, "seed of the latent draws and subsets")
    n_samples: int = param(10000, "generated images per sampler")
    iwae_k: int = param(100, "importance samples per test image for the NLL estimate")
    copy_scores: str = param(
        "auto",
        "put the model-level scores (not the samplers': those are the evaluate run's child runs) on the "
        "train run too: auto (unless it holds scores measured with other settings) | replace | skip",
        ("auto", "replace", "skip"),
    )

    def __post_init__(self):
        self._check("a train run id", "n_samples", 10, fitted_allowed=True)
        at_least(self, "iwae_k", 1)


@dataclass(frozen=True)
class JudgesConfig:
    """judges: the evaluation's two classifiers (the CNN and the pixel k-NN) for the source of prepared data,
    trained and fitted once per source so that the evaluations only load them."""

    data: str = param("", "a prepare_data run id")
    device: str = device_param()

    def __post_init__(self):
        coerce(self)
        check_device(self)
        if not RUN_ID_PATTERN.match(self.data):
            raise bad_parameter("data", self.data, "a prepare_data run id (32 hex digits)")


def preset_values(name: str) -> str:
    """A setting's value in the presets, for its help: ' (100)' where they agree, else ' (quick: 50, study: 100)'."""
    values = {preset: _shown(getattr(settings, name)) for preset, settings in PRESETS.items()}
    if len(set(values.values())) == 1:
        return f" ({next(iter(values.values()))})"
    return " (" + ", ".join(f"{preset}: {value}" for preset, value in values.items()) + ")"


def preset_summary(preset: str) -> str:
    """One preset in a line, for the `preset` parameter's help."""
    settings = PRESETS[preset]
    return (
        f"{preset}: {settings.experiments} experiments on {settings.data}, {settings.epochs} epochs, "
        f"{len(settings.seeds)} seeds"
    )


def _shown(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


@dataclass(frozen=True)
class MainConfig:
    """main: the whole study (prepare_data, then train -> evaluate per experiment and seed, then the report)."""

    preset: str = param("quick", " | ".join(map(preset_summary, PRESETS)), tuple(PRESETS))
    experiments: str = param(
        PRESET_VALUE,
        "grid | study | a comma list of E1-E5 and cells such as mse-standard" + preset_values("experiments"),
    )
    data: str = param(PRESET_VALUE, DATASET_CHOICES + preset_values("data"))
    seeds: str = param(
        PRESET_VALUE, "comma list of seeds, one training per experiment and seed" + preset_values("seeds")
    )
    epochs: str = param(PRESET_VALUE, "training epochs" + preset_values("epochs"))
    latent_size: str = param(PRESET_VALUE, "latent dimensions" + preset_values("latent_size"))
    hidden_size: str = param(PRESET_VALUE, "hidden units" + preset_values("hidden_size"))
    batch_size: str = param(PRESET_VALUE, "images per optimizer step" + preset_values("batch_size"))
    lr: str = param(PRESET_VALUE, "Adam learning rate" + preset_values("lr"))
    n_samples: str = param(PRESET_VALUE, "generated images per sampler in evaluate" + preset_values("n_samples"))
    iwae_k: str = param(PRESET_VALUE, "importance samples for the NLL" + preset_values("iwae_k"))
    precision: str = precision_param(
        PRESET_VALUE,
        (PRESET_VALUE, *PRECISIONS),
        "training precision of the train steps: 32 | bf16-mixed (see train's)" + preset_values("precision"),
    )
    data_root: str = param("data", "torchvision root when `data` is mnist or fashion-mnist")
    device: str = device_param()
    max_parallel: str = param("auto", "steps run at once (auto: one per core, at least 1)")
    reuse: str = param(
        "clean",
        "reuse finished steps: clean (runs of committed code) | dirty (also runs of the "
        "same uncommitted code) | never; see docs/reuse.md",
        ("clean", "dirty", "never"),
    )
    backend: str = param("local", "MLflow project backend for the steps", ("local", "databricks", "kubernetes"))
    backend_config: str = param("none", "backend config: a JSON file path, or none")
    env_manager: str = param(
        "local",
        "environment manager for the steps: local (the one main runs in) | conda | virtualenv | uv",
        ("local", "conda", "virtualenv", "uv"),
    )
    report_dir: str = param("report", "folder the report (HTML and Markdown) is written to")
    search: str = param(NO_VALUE, "the search the report links to: a search run id | a study name (its newest) | none")

    def __post_init__(self):
        coerce(self)
        check_device(self)
        check_seed_list(self, "seeds")
        if self.max_parallel != "auto" and not (self.max_parallel.isdigit() and int(self.max_parallel) >= 1):
            raise bad_parameter("max_parallel", self.max_parallel, "an integer >= 1 | auto")
        if self.experiments != PRESET_VALUE:
            try:
                select(self.experiments)
            except ValueError as error:
                raise bad_parameter(
                    "experiments",
                    self.experiments,
                    f"grid | study | a comma list of E1-E5 and cells bce-standard, bce-sampled-params, "
                    f"mse-standard, mse-sampled-params (unknown: {error})",
                ) from None
        # the numbers; seeds, experiments, data and precision have checks of their own
        for name, kind in SETTING_TYPES.items():
            value = getattr(self, name)
            if kind in ("int", "float") and value != PRESET_VALUE:
                try:
                    Settings.parse(name, value)
                except ValueError:
                    raise bad_parameter(
                        name, value, f"{'an integer' if kind == 'int' else 'a number'} | preset"
                    ) from None
        if self.data != PRESET_VALUE:
            from pipeline.core.data.datasets import is_dataset_name  # late: numpy stays out of the CLI's parsing

            if not is_dataset_name(self.data) and not RUN_ID_PATTERN.match(self.data):
                raise bad_parameter("data", self.data, f"{DATASET_CHOICES} | a prepare_data run id | preset")


@dataclass(frozen=True)
class ReportConfig:
    """report: the study's report (HTML and Markdown) built from what the tracking server holds."""

    source: str = param("", "a main run id | an experiment name (its newest main run) | a search run id (its report)")
    output: str = param("report", "folder the report is written to")

    def __post_init__(self):
        coerce(self)
        if not self.source:
            raise bad_parameter("source", self.source, "a main run id | an experiment name | a search run id")


RATER_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")  # needs no shell quoting, fits a file name


@dataclass(frozen=True)
class EyeConfig:
    """eye: a person labels a blind, shuffled set of generated and real digits in the browser (a third judge)."""

    source: str = param("", "a main run id | an evaluate run id: the study whose kept samples are judged")
    n_per_experiment: int = param(40, "images drawn per experiment, and as many real test digits")
    seed: int = param(0, "seed of the draw, the shuffle and the opaque ids")
    rater: str = param("anonymous", "the rater's name: letters, digits, . _ - (up to 40)")
    host: str = param("127.0.0.1", "address the page is served on (the local machine only, by default)")
    port: int = param(5041, "port of the page; 0: any free port (the address is printed)")
    replace: str = param(
        "no",
        "a rater's finished session on the same set: kept (no: refused) or replaced by this one (yes)",
        ("no", "yes"),
    )
    answers: str = param(
        NO_VALUE,
        "the answers file to continue or log (a session's JSON-lines file), or none: the rater's own file "
        "for this set, beside the tracking database under eye-answers/",
    )

    def __post_init__(self):
        coerce(self)
        if not RUN_ID_PATTERN.match(self.source):
            raise bad_parameter("source", self.source, "a main run id | an evaluate run id (32 hex digits)")
        if not 1 <= self.n_per_experiment <= 1000:
            raise bad_parameter("n_per_experiment", self.n_per_experiment, "an integer in [1, 1000]")
        check_seed(self)
        if not RATER_PATTERN.match(self.rater):
            raise bad_parameter(
                "rater", self.rater, "1 to 40 letters, digits, '.', '_' or '-', a letter or digit first"
            )
        if not 0 <= self.port <= 65535:
            raise bad_parameter("port", self.port, "an integer in [0, 65535] (0: any free port)")
        if not self.host:
            raise bad_parameter("host", self.host, "an address such as 127.0.0.1")


STEP_CONFIGS = {
    "prepare_data": PrepareDataConfig,
    "train": TrainConfig,
    "sample": SampleConfig,
    "evaluate": EvaluateConfig,
    "judges": JudgesConfig,
    "main": MainConfig,
    "report": ReportConfig,
    "search": SearchConfig,
    "eye": EyeConfig,
}
