"""One dataclass per step: the single source of truth for its parameters.

The CLI flags are built from these fields, MLproject lists the same names and defaults
(tests/unit/test_project_files.py keeps them in step), and the logged MLflow params are these values.
Construction validates, so bad input is refused before any work starts.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from pipeline.errors import bad_parameter

# '+' separates samplers: a value made of letters, digits and `+:,.-_` needs no shell quoting, so
# `mlflow run` logs it as it is and the UI shows the same string as `python -m pipeline` (';' is
# accepted too, but `mlflow run` shows such a list quoted).
DEFAULT_SAMPLERS = "normal:0,1+normal:1,2+beta:0.25,0.25"
SEED_HELP = (
    "seed of the validation split (which training images are held out), the initialization, the batch "
    "order and the noise; the test split never depends on it"
)
MAX_SEED = 2**32 - 1
DATASET_CHOICES = "mnist-5k | mnist | fashion-mnist | idx:DIR"
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def _param(default, help: str, choices: tuple[str, ...] | None = None):
    return field(default=default, metadata={"help": help, "choices": choices})


def _device():
    """The `device` parameter every step that computes takes."""
    return _param("auto", "auto (cuda, then mps, then cpu) | cpu | cuda | cuda:N | mps")


def _coerce(cfg) -> None:
    """Turn CLI strings into the field's type, naming the parameter when that fails."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        kind = {"int": int, "float": float, "str": str}[f.type if isinstance(f.type, str) else f.type.__name__]
        if kind is str:
            converted = str(value)
        elif kind is int:
            try:
                converted = int(str(value))
            except ValueError:
                raise bad_parameter(f.name, value, "an integer") from None
        else:
            try:
                converted = float(value)
            except (TypeError, ValueError):
                raise bad_parameter(f.name, value, "a number") from None
        choices = f.metadata.get("choices")
        if choices and converted not in choices:
            raise bad_parameter(f.name, value, " | ".join(choices))
        object.__setattr__(cfg, f.name, converted)


def _at_least(cfg, name: str, low) -> None:
    if getattr(cfg, name) < low:
        raise bad_parameter(name, getattr(cfg, name), f">= {low}")


def _check_seed(cfg) -> None:
    if not 0 <= cfg.seed <= MAX_SEED:
        raise bad_parameter("seed", cfg.seed, f"an integer in [0, {MAX_SEED}]")


def _check_device(cfg) -> None:
    if not DEVICE_PATTERN.match(cfg.device):
        raise bad_parameter("device", cfg.device, "auto | cpu | cuda | cuda:N | mps")


def _check_samplers(cfg, fitted_allowed: bool = False) -> None:
    """Parse the sampler list now, so a bad spec stops the step before any work, and store it in
    canonical form, so one configuration always logs one string ('auto': the step's default).

    Samplers fitted on encoded data (gmm:K) need the evaluate step's data; other steps refuse them.
    """
    if cfg.samplers == "auto":
        return
    from pipeline.core.samplers import join_specs, needs_fit, parse_samplers  # late: samplers imports torch

    samplers = parse_samplers(cfg.samplers)
    fitted = [s.spec for s in samplers if needs_fit(s)]
    if fitted and not fitted_allowed:
        raise bad_parameter(
            "samplers",
            cfg.samplers,
            f"normal:LOC,SCALE | beta:A,B | beta:A,B,LOC,SCALE "
            f"({', '.join(fitted)} is fitted on encoded data: evaluate only)",
        )
    object.__setattr__(cfg, "samplers", join_specs(samplers))


def _check_model(cfg, allowed: str) -> None:
    if not cfg.model:
        raise bad_parameter("model", cfg.model, allowed)


def _check_val_fraction(cfg) -> None:
    if not 0.0 < cfg.val_fraction < 0.5:
        raise bad_parameter("val_fraction", cfg.val_fraction, "a number in (0, 0.5)")


@dataclass(frozen=True)
class PrepareDataConfig:
    """prepare_data: load a dataset, split it, write one prepared file."""

    dataset: str = _param("mnist-5k", f"dataset to prepare: {DATASET_CHOICES}")
    val_fraction: float = _param(0.1, "share of the training images held out for validation")
    seed: int = _param(
        0, "seed of the validation split (which training images are held out); the test split never depends on it"
    )
    data_root: str = _param("data", "where torchvision finds or downloads mnist / fashion-mnist")

    def __post_init__(self):
        _coerce(self)
        _check_seed(self)
        _check_val_fraction(self)
        from pipeline.core.datasets import check_dataset_name  # late import: datasets imports torchvision

        check_dataset_name(self.dataset)


@dataclass(frozen=True)
class TrainConfig:
    """train: fit the study's VAE and log metrics, samples, checkpoints and the model."""

    data: str = _param("mnist-5k", f"{DATASET_CHOICES}, a prepare_data run id, or a prepared-file URI")
    loss: str = _param("bce", "reconstruction term", ("bce", "mse"))
    forward: str = _param("standard", "forward pass of the study", ("standard", "sampled-params"))
    latent_size: int = _param(100, "latent dimensions")
    hidden_size: int = _param(392, "hidden units of encoder and decoder")
    epochs: int = _param(100, "training epochs")
    batch_size: int = _param(128, "images per optimizer step")
    lr: float = _param(0.001, "Adam learning rate")
    seed: int = _param(0, SEED_HELP)
    device: str = _device()
    samplers: str = _param(DEFAULT_SAMPLERS, "latent samplers, '+'-separated specs")
    n_images: int = _param(5, "single images logged per sampler at the end")
    sample_every: int = _param(10, "log a sample grid per sampler every N epochs (0: only at the end)")
    checkpoint_every: int = _param(10, "write a checkpoint every N epochs (the last epoch always)")
    resume: str = _param("none", "a train run id (or checkpoint URI) to continue from its last checkpoint, or none")
    val_fraction: float = _param(0.1, "validation share when `data` is a dataset name")
    data_root: str = _param("data", "torchvision root when `data` is mnist or fashion-mnist")

    def __post_init__(self):
        _coerce(self)
        for name in ("latent_size", "hidden_size", "epochs", "batch_size", "n_images"):
            _at_least(self, name, 1)
        _at_least(self, "sample_every", 0)
        _at_least(self, "checkpoint_every", 1)
        _check_seed(self)
        if not self.lr > 0:
            raise bad_parameter("lr", self.lr, "a number > 0")
        _check_device(self)
        _check_val_fraction(self)
        _check_samplers(self)


@dataclass(frozen=True)
class _DrawingConfig:
    """What sample and evaluate share: the model drawn from, its samplers, the seed of the draws, the device."""

    model: str = _param("", "a train run id")
    samplers: str = _param("auto", "'+'-separated sampler specs, or auto: the train run's own")
    seed: int = _param(0, "seed of the latent draws")
    device: str = _device()

    def _check(self, model_allowed: str, count: str, minimum: int, fitted_allowed: bool = False) -> None:
        _coerce(self)
        _check_model(self, model_allowed)
        _at_least(self, count, minimum)
        _check_seed(self)
        _check_device(self)
        _check_samplers(self, fitted_allowed=fitted_allowed)


@dataclass(frozen=True)
class SampleConfig(_DrawingConfig):
    """sample: decode latent draws of a trained model into grids and single images."""

    model: str = _param("", "a train run id or a model URI (runs:/..., models:/...)")
    n: int = _param(16, "images per sampler")

    def __post_init__(self):
        self._check("a train run id or a model URI", "n", 1)


@dataclass(frozen=True)
class EvaluateConfig(_DrawingConfig):
    """evaluate: measure generation quality per sampler and the model's likelihood."""

    samplers: str = _param("auto", "'+'-separated sampler specs, or auto: the train run's own plus gmm:10")
    seed: int = _param(0, "seed of the latent draws and subsets")
    n_samples: int = _param(10000, "generated images per sampler")
    iwae_k: int = _param(100, "importance samples per test image for the NLL estimate")
    copy_scores: str = _param(
        "auto",
        "put the scores on the train run too: auto (unless it holds scores measured "
        "with other settings) | replace | skip",
        ("auto", "replace", "skip"),
    )

    def __post_init__(self):
        self._check("a train run id", "n_samples", 10, fitted_allowed=True)
        _at_least(self, "iwae_k", 1)


STEP_CONFIGS = {
    "prepare_data": PrepareDataConfig,
    "train": TrainConfig,
    "sample": SampleConfig,
    "evaluate": EvaluateConfig,
}


PRESET_VALUE, NO_VALUE = "preset", "none"  # a `main` setting left to its preset; no value


def _check_seed_list(cfg, name: str, keyword: str = PRESET_VALUE) -> None:
    """A comma list of seeds (integers in [0, MAX_SEED], no repeats) or `keyword`; stored canonical ("0,1")."""
    value = getattr(cfg, name)
    if value == keyword:
        return
    parts = [p.strip() for p in value.split(",")]
    seeds = {int(p) for p in parts if p.isdigit() and int(p) <= MAX_SEED}  # "1" and "01" are one seed
    if len(seeds) != len(parts):
        raise bad_parameter(
            name, value, f"a comma list of distinct integers in [0, {MAX_SEED}], e.g. 0,1,2 | {keyword}"
        )
    object.__setattr__(cfg, name, ",".join(str(int(p)) for p in parts))


@dataclass(frozen=True)
class MainConfig:
    """main: the whole study (prepare_data, then train -> evaluate per experiment and seed, then the report)."""

    preset: str = _param(
        "quick", "quick: E1-E5 on mnist-5k, 50 epochs, 2 seeds | study: E1-E5 as written", ("quick", "study")
    )
    experiments: str = _param(PRESET_VALUE, "grid | study | a comma list of E1-E5 and cells such as mse-standard")
    data: str = _param(PRESET_VALUE, f"{DATASET_CHOICES} (quick: mnist-5k, study: mnist)")
    seeds: str = _param(PRESET_VALUE, "comma list of seeds, one training per experiment and seed")
    epochs: str = _param(PRESET_VALUE, "training epochs (quick: 50, study: 100)")
    latent_size: str = _param(PRESET_VALUE, "latent dimensions (100)")
    hidden_size: str = _param(PRESET_VALUE, "hidden units (392)")
    batch_size: str = _param(PRESET_VALUE, "images per optimizer step (quick: 64, study: 128)")
    lr: str = _param(PRESET_VALUE, "Adam learning rate (0.001)")
    n_samples: str = _param(PRESET_VALUE, "generated images per sampler in evaluate (quick: 1000, study: 10000)")
    iwae_k: str = _param(PRESET_VALUE, "importance samples for the NLL (quick: 50, study: 100)")
    data_root: str = _param("data", "torchvision root when `data` is mnist or fashion-mnist")
    device: str = _device()
    max_parallel: str = _param("auto", "steps run at once (auto: one per core, at least 1)")
    reuse: str = _param(
        "clean",
        "reuse finished steps: clean (runs of committed code) | dirty (also runs of the "
        "same uncommitted code) | never; see docs/reuse.md",
        ("clean", "dirty", "never"),
    )
    backend: str = _param("local", "MLflow project backend for the steps (local | databricks | kubernetes)")
    backend_config: str = _param("none", "backend config: a JSON file path, or none")
    env_manager: str = _param(
        "local",
        "environment manager for the steps: local (the one main runs in) | conda | virtualenv | uv",
        ("local", "conda", "virtualenv", "uv"),
    )
    report_dir: str = _param("report", "folder the report (HTML and Markdown) is written to")
    search: str = _param(NO_VALUE, "the search the report links to: a search run id | a study name (its newest) | none")

    def __post_init__(self):
        _coerce(self)
        _check_device(self)
        _check_seed_list(self, "seeds")
        if self.max_parallel != "auto" and not (self.max_parallel.isdigit() and int(self.max_parallel) >= 1):
            raise bad_parameter("max_parallel", self.max_parallel, "an integer >= 1 | auto")
        if self.experiments != PRESET_VALUE:
            from pipeline.core.study import select

            try:
                select(self.experiments)
            except ValueError as error:
                raise bad_parameter(
                    "experiments",
                    self.experiments,
                    f"grid | study | a comma list of E1-E5 and cells bce-standard, bce-sampled-params, "
                    f"mse-standard, mse-sampled-params (unknown: {error})",
                ) from None
        for name, kind in (
            ("epochs", int),
            ("latent_size", int),
            ("hidden_size", int),
            ("batch_size", int),
            ("n_samples", int),
            ("iwae_k", int),
            ("lr", float),
        ):
            value = getattr(self, name)
            if value != PRESET_VALUE:
                try:
                    kind(value)
                except ValueError:
                    raise bad_parameter(
                        name, value, f"{'an integer' if kind is int else 'a number'} | preset"
                    ) from None
        if self.data != PRESET_VALUE:
            from pipeline.core.datasets import is_dataset_name

            if not is_dataset_name(self.data) and not re.match(r"^[0-9a-f]{32}$", self.data):
                raise bad_parameter("data", self.data, f"{DATASET_CHOICES} | a prepare_data run id | preset")


@dataclass(frozen=True)
class ReportConfig:
    """report: the study's report (HTML and Markdown) built from what the tracking server holds."""

    source: str = _param("", "a main run id | an experiment name (its newest main run) | a search run id (its report)")
    output: str = _param("report", "folder the report is written to")

    def __post_init__(self):
        _coerce(self)
        if not self.source:
            raise bad_parameter("source", self.source, "a main run id | an experiment name | a search run id")


STEP_CONFIGS["main"] = MainConfig
STEP_CONFIGS["report"] = ReportConfig


SEARCH_OBJECTIVES = ("fid", "fid,class_entropy")
STORAGE_FORMS = "auto | sqlite:///PATH | postgresql://USER@HOST:PORT/DB | journal:PATH"


def _check_range(cfg, low_name: str, high_name: str, logarithmic: bool) -> None:
    low, high = getattr(cfg, low_name), getattr(cfg, high_name)
    if logarithmic and not low > 0:
        raise bad_parameter(low_name, low, "a number > 0 (the scale is logarithmic)")
    if not low < high:
        raise bad_parameter(
            high_name, high, f"a number > {low_name} ({low:g}): the range must not be empty or inverted"
        )


@dataclass(frozen=True)
class SearchConfig:
    """search: an Optuna study over the latent size and a placed Beta sampler, each trial a nested run."""

    data: str = _param("mnist-5k", f"{DATASET_CHOICES}, a prepare_data run id, or a prepared-file URI")
    latent_sizes: str = _param("2,5,10,20,50,100", "latent sizes to choose from (comma list of distinct integers >= 1)")
    hidden_size: int = _param(392, "hidden units of the trained models")
    epochs: int = _param(
        40,
        "training epochs of each model (one model per latent size, reused across trials); "
        "with batch_size 64 on mnist-5k they reach the quick preset's quality floor",
    )
    batch_size: int = _param(64, "images per optimizer step of the models")
    objective: str = _param(
        "fid",
        "fid (minimized, on the validation split) | fid,class_entropy (two objectives: "
        "minimize fid, maximize class entropy; a Pareto front)",
        SEARCH_OBJECTIVES,
    )
    n_trials: int = _param(20, "new trials this invocation adds to the study (pruned ones count)")
    timeout: float = _param(0.0, "stop starting trials after this many seconds (0: no limit)")
    study_name: str = _param("vae-beta-search", "Optuna study name; rerunning with the same name continues the study")
    storage: str = _param(
        "auto",
        f"Optuna storage: {STORAGE_FORMS} (auto: SQLite beside the MLflow database for one "
        "worker, a journal file for several)",
    )
    artifact_dir: str = _param(
        "auto",
        "folder of the Optuna artifact store that gets each trial's sample grid, for "
        "optuna-dashboard --artifact-dir (auto: optuna-artifacts beside the study's file)",
    )
    n_workers: int = _param(1, "worker processes on this machine")
    heartbeat: str = _param(
        "10,60",
        "INTERVAL,GRACE seconds: a running trial's Optuna heartbeat, and the silence "
        "after which it is failed, its run ended FAILED and the trial retried once (SQLite, PostgreSQL)",
    )
    pruner: str = _param(
        "median", "stop trials whose early FID is worse than the median (median) | none", ("median", "none")
    )
    n_samples: str = _param(
        "1000,3000,10000", "growing sample counts a trial is scored on (comma list), capped by the training images"
    )
    ab_min: float = _param(0.05, "lower bound of Beta's a and b (log-uniform)")
    ab_max: float = _param(20.0, "upper bound of Beta's a and b (log-uniform)")
    mean_min: float = _param(-1.0, "lower bound of the sampler's mean (uniform)")
    mean_max: float = _param(1.0, "upper bound of the sampler's mean (uniform)")
    sd_min: float = _param(0.1, "lower bound of the sampler's standard deviation (log-uniform)")
    sd_max: float = _param(2.0, "upper bound of the sampler's standard deviation (log-uniform)")
    seed: int = _param(0, "seed of the models, the validation split, the draws; worker i's TPE sampler gets seed + i")
    device: str = _device()
    verify_seeds: str = _param(
        "0,1,2",
        "training seeds the best trial is verified over on the TEST split (F7, F8): a "
        "comma list of distinct seeds (the search's own reuses its model) | none",
    )

    def __post_init__(self):
        _coerce(self)
        from pipeline.core.search_space import parse_int_list

        _check_seed_list(self, "verify_seeds", NO_VALUE)

        for name, low in (("hidden_size", 1), ("epochs", 1), ("batch_size", 1), ("n_trials", 1), ("n_workers", 1)):
            _at_least(self, name, low)
        if not self.timeout >= 0:
            raise bad_parameter("timeout", self.timeout, "a number of seconds >= 0 (0: no limit)")
        interval, _, grace = self.heartbeat.partition(",")
        if not (interval.isdigit() and grace.isdigit() and 0 < int(interval) < int(grace)):
            raise bad_parameter("heartbeat", self.heartbeat, "INTERVAL,GRACE whole seconds >= 1, INTERVAL < GRACE")
        _check_seed(self)
        _check_device(self)
        try:
            object.__setattr__(self, "latent_sizes", ",".join(map(str, parse_int_list(self.latent_sizes))))
        except ValueError:
            raise bad_parameter(
                "latent_sizes", self.latent_sizes, "a comma list of distinct integers >= 1, e.g. 2,5,10"
            ) from None
        try:
            counts = parse_int_list(self.n_samples)
        except ValueError:
            counts = ()
        if not counts or any(c < 10 for c in counts) or list(counts) != sorted(counts):
            raise bad_parameter(
                "n_samples", self.n_samples, "a comma list of increasing integers >= 10, e.g. 1000,3000,10000"
            )
        object.__setattr__(self, "n_samples", ",".join(map(str, counts)))
        _check_range(self, "ab_min", "ab_max", logarithmic=True)
        _check_range(self, "mean_min", "mean_max", logarithmic=False)
        _check_range(self, "sd_min", "sd_max", logarithmic=True)
        if not re.match(r"^[A-Za-z0-9_.-]+$", self.study_name):
            raise bad_parameter("study_name", self.study_name, "letters, digits and ._- (at least one)")
        _check_storage_form(self.storage)


def _check_storage_form(storage: str) -> None:
    """The storage's form only; whether it can be reached is checked by the step before any trial."""
    if storage == "auto":
        return
    if storage.startswith("journal:") and len(storage) > len("journal:"):
        return
    if re.match(r"^sqlite:///.+", storage):
        return
    match = re.match(r"^postgresql(\+[a-z0-9]+)?://(?P<rest>.+)$", storage)
    if match:
        from sqlalchemy.engine import make_url

        try:
            url = make_url(storage)
            port_ok = url.port is None or 0 < url.port < 65536
        except Exception:  # sqlalchemy's ArgumentError, ValueError for a bad port
            url, port_ok = None, False
        if url is not None and port_ok and url.host and url.database:
            return
    raise bad_parameter("storage", storage, STORAGE_FORMS)


STEP_CONFIGS["search"] = SearchConfig
