"""The parts every step's config is made of: a documented field, coercion of CLI strings, and the checks
that refuse bad input by naming the parameter (pipeline/errors.py: exit status 2)."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import field

from pipeline.core.model.precision import PRECISIONS
from pipeline.core.model.samplers import join_specs, needs_fit, parse_samplers
from pipeline.errors import InputError, bad_parameter

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
RUN_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")  # an MLflow run id, as every `data`, `model` and `source` takes it


def param(default, help: str, choices: tuple[str, ...] | None = None):
    return field(default=default, metadata={"help": help, "choices": choices})


def device_param():
    """The `device` parameter every step that computes takes."""
    return param("auto", "auto (cuda, then mps, then cpu) | cpu | cuda | cuda:N | mps")


PRECISION_HELP = (
    "training precision: 32 (float32) | bf16-mixed (the forward pass under bfloat16 autocast, float32 "
    "weights and optimizer state; faster where the device computes bf16 natively, see docs/speed.md)"
)


def precision_param(default: str = "32", choices: tuple[str, ...] = PRECISIONS, help: str = PRECISION_HELP):
    """The `precision` parameter of the steps that train: train, search (for its models) and main."""
    return param(default, help, choices)


def coerce(cfg) -> None:
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


def at_least(cfg, name: str, low) -> None:
    if getattr(cfg, name) < low:
        raise bad_parameter(name, getattr(cfg, name), f">= {low}")


def check_seed(cfg) -> None:
    if not 0 <= cfg.seed <= MAX_SEED:
        raise bad_parameter("seed", cfg.seed, f"an integer in [0, {MAX_SEED}]")


def check_device(cfg) -> None:
    if not DEVICE_PATTERN.match(cfg.device):
        raise bad_parameter("device", cfg.device, "auto | cpu | cuda | cuda:N | mps")


def check_samplers(cfg, fitted_allowed: bool = False) -> None:
    """Parse the sampler list now, so a bad spec stops the step before any work, and store it in
    canonical form, so one configuration always logs one string ('auto': the step's default).

    Samplers fitted on encoded data (gmm:K) need the evaluate step's data; other steps refuse them.
    """
    if cfg.samplers == "auto":
        return
    try:
        samplers = parse_samplers(cfg.samplers)
    except InputError as error:  # the spec's own message says what is wrong with it and the allowed forms
        raise InputError(f"parameter 'samplers': {error}") from None
    fitted = [s.spec for s in samplers if needs_fit(s)]
    if fitted and not fitted_allowed:
        raise bad_parameter(
            "samplers",
            cfg.samplers,
            f"normal:LOC,SCALE | beta:A,B | beta:A,B,LOC,SCALE "
            f"({', '.join(fitted)} is fitted on encoded data: evaluate only)",
        )
    object.__setattr__(cfg, "samplers", join_specs(samplers))


def check_model(cfg, allowed: str) -> None:
    if not cfg.model:
        raise bad_parameter("model", cfg.model, allowed)


def check_val_fraction(cfg) -> None:
    if not 0.0 < cfg.val_fraction < 0.5:
        raise bad_parameter("val_fraction", cfg.val_fraction, "a number in (0, 0.5)")


PRESET_VALUE, NO_VALUE = "preset", "none"  # a `main` setting left to its preset; no value


def check_seed_list(cfg, name: str, keyword: str = PRESET_VALUE) -> None:
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
