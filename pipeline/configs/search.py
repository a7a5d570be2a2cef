"""The search step's config: an Optuna study over the latent size and a placed Beta sampler."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pipeline.configs.fields import (
    DATASET_CHOICES,
    NO_VALUE,
    at_least,
    check_device,
    check_seed,
    check_seed_list,
    coerce,
    device_param,
    param,
    precision_param,
)
from pipeline.errors import bad_parameter

SEARCH_OBJECTIVES = ("fid", "fid,class_entropy")
STORAGE_FORMS = "auto | sqlite:///PATH | postgresql://USER@HOST:PORT/DB | journal:PATH"
PASSWORD_SOURCES = (
    "a URL without a password, postgresql://USER@HOST:PORT/DB, with the password in PGPASSWORD, "
    "~/.pgpass or a libpq service file (PGSERVICE); `mlflow run` logs every -P value as a param"
)


def check_range(cfg, low_name: str, high_name: str, logarithmic: bool) -> None:
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

    data: str = param("mnist-5k", f"{DATASET_CHOICES}, a prepare_data run id, or a prepared-file URI")
    latent_sizes: str = param("2,5,10,20,50,100", "latent sizes to choose from (comma list of distinct integers >= 1)")
    hidden_size: int = param(392, "hidden units of the trained models")
    epochs: int = param(
        40,
        "training epochs of each model (one model per latent size, reused across trials); "
        "with batch_size 64 on mnist-5k they reach the quick preset's quality floor",
    )
    batch_size: int = param(64, "images per optimizer step of the models")
    precision: str = precision_param()
    objective: str = param(
        "fid",
        "fid (minimized, on the validation split) | fid,class_entropy (two objectives: "
        "minimize fid, maximize class entropy; a Pareto front)",
        SEARCH_OBJECTIVES,
    )
    n_trials: int = param(20, "new trials this invocation adds to the study (pruned ones count)")
    timeout: float = param(0.0, "stop starting trials after this many seconds (0: no limit)")
    study_name: str = param("vae-beta-search", "Optuna study name; rerunning with the same name continues the study")
    storage: str = param(
        "auto",
        f"Optuna storage: {STORAGE_FORMS} (auto: SQLite beside the MLflow database for one "
        "worker, a journal file for several)",
    )
    artifact_dir: str = param(
        "auto",
        "folder of the Optuna artifact store that gets each trial's sample grid, for "
        "optuna-dashboard --artifact-dir (auto: optuna-artifacts beside the study's file)",
    )
    n_workers: int = param(1, "worker processes on this machine")
    heartbeat: str = param(
        "10,60",
        "INTERVAL,GRACE seconds: a running trial's Optuna heartbeat, and the silence "
        "after which it is failed, its run ended FAILED and the trial retried once (SQLite, PostgreSQL)",
    )
    pruner: str = param(
        "median", "stop trials whose early FID is worse than the median (median) | none", ("median", "none")
    )
    n_samples: str = param(
        "1000,3000,10000", "growing sample counts a trial is scored on (comma list), capped by the training images"
    )
    ab_min: float = param(0.05, "lower bound of Beta's a and b (log-uniform)")
    ab_max: float = param(20.0, "upper bound of Beta's a and b (log-uniform)")
    mean_min: float = param(-1.0, "lower bound of the sampler's mean (uniform)")
    mean_max: float = param(1.0, "upper bound of the sampler's mean (uniform)")
    sd_min: float = param(0.1, "lower bound of the sampler's standard deviation (log-uniform)")
    sd_max: float = param(2.0, "upper bound of the sampler's standard deviation (log-uniform)")
    seed: int = param(0, "seed of the models, the validation split, the draws; worker i's TPE sampler gets seed + i")
    device: str = device_param()
    verify_seeds: str = param(
        "1,2,3",
        "training seeds the best trial is verified over on the TEST split (F7, F8): a "
        "comma list of distinct seeds (the search's own reuses its model) | none",
    )

    def __post_init__(self):
        coerce(self)
        from pipeline.core.search_space import parse_int_list

        check_seed_list(self, "verify_seeds", NO_VALUE)

        for name, low in (("hidden_size", 1), ("epochs", 1), ("batch_size", 1), ("n_trials", 1), ("n_workers", 1)):
            at_least(self, name, low)
        if not self.timeout >= 0:
            raise bad_parameter("timeout", self.timeout, "a number of seconds >= 0 (0: no limit)")
        interval, _, grace = self.heartbeat.partition(",")
        if not (interval.isdigit() and grace.isdigit() and 0 < int(interval) < int(grace)):
            raise bad_parameter("heartbeat", self.heartbeat, "INTERVAL,GRACE whole seconds >= 1, INTERVAL < GRACE")
        check_seed(self)
        check_device(self)
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
        check_range(self, "ab_min", "ab_max", logarithmic=True)
        check_range(self, "mean_min", "mean_max", logarithmic=False)
        check_range(self, "sd_min", "sd_max", logarithmic=True)
        if not re.match(r"^[A-Za-z0-9_.-]+$", self.study_name):
            raise bad_parameter("study_name", self.study_name, "letters, digits and ._- (at least one)")
        check_storage_form(self.storage)


def check_storage_form(storage: str) -> None:
    """The storage's form only; whether it can be reached is checked by the step before any trial.

    A password in the URL is refused: the storage is a logged param, and a message never repeats it."""
    if storage == "auto":
        return
    if storage.startswith("journal:") and len(storage) > len("journal:"):
        return
    if re.match(r"^sqlite:///.+", storage):
        return
    postgresql = re.match(r"^postgresql(\+[a-z0-9]+)?://.+$", storage)
    if postgresql and has_password(storage):
        raise bad_parameter("storage", hide_password(storage), PASSWORD_SOURCES)
    if postgresql:
        from sqlalchemy.engine import make_url

        try:
            url = make_url(storage)
            port_ok = url.port is None or 0 < url.port < 65536
        except Exception:  # sqlalchemy's ArgumentError, ValueError for a bad port
            url, port_ok = None, False
        if url is not None and port_ok and url.host and url.database:
            return
    raise bad_parameter("storage", hide_password(storage), STORAGE_FORMS)


def has_password(url: str) -> bool:
    """A password in the URL's user part or in its query (libpq reads `?password=` too)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # a malformed host: say nothing of it rather than guess
        return "@" in url
    return parts.password is not None or any(key == "password" for key, _ in parse_qsl(parts.query))


def hide_password(url: str) -> str:
    """The URL with every password replaced by *** (unchanged when it has none), for messages."""
    if not has_password(url):
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.partition("://")[0] + "://***"
    netloc = parts.netloc
    if parts.password is not None:
        user_info, _, host = netloc.rpartition("@")
        netloc = f"{user_info.partition(':')[0]}:***@{host}"
    query = [(key, "***" if key == "password" else value) for key, value in parse_qsl(parts.query)]
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="*")))
