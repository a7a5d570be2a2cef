"""Command line: `python -m pipeline STEP --param value ...`, flags built from the step's dataclass.

Every step is the function of the same name in pipeline/steps/<step>.py. Exit status: 0 done, 2 bad
input (message names the parameter or file), 1 any other failure. The last line printed on success is
`run id: <id>`, the run the step made.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
from collections.abc import Callable

from pipeline.configs import STEP_CONFIGS
from pipeline.errors import InputError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description="VAE study pipeline steps")
    steps = parser.add_subparsers(dest="step", required=True)
    for step, config_class in STEP_CONFIGS.items():
        sub = steps.add_parser(step, help=config_class.__doc__.split(":", 1)[1].strip())
        for f in dataclasses.fields(config_class):
            choices = f.metadata.get("choices")
            help_text = f.metadata.get("help", "") + (
                f" (default: {f.default!r})" if f.default != "" else " (required)"
            )
            sub.add_argument(
                f"--{f.name}", default=f.default, help=help_text, metavar="|".join(choices) if choices else None
            )
    return parser


def configure(argv: list[str] | None = None) -> tuple[str, object]:
    """(step, its validated config) from the command line; InputError for a bad value, before any import
    of the step's modules."""
    args = vars(build_parser().parse_args(argv))
    step = args.pop("step")
    return step, STEP_CONFIGS[step](**args)


def load_step(step: str) -> Callable:
    """The step's function, from pipeline/steps/<step>.py (imported now: only that step's imports)."""
    return getattr(importlib.import_module(f"pipeline.steps.{step}"), step)


def refuse(error: InputError) -> int:
    print(f"error: {error}", file=sys.stderr)
    return 2


def run(function: Callable, config) -> int:
    """Run a step's function; its exit status (a failure the run already records prints one line)."""
    try:
        run_id = function(config)
    except InputError as error:
        return refuse(error)
    except Exception as error:
        from pipeline.core.model.training import DivergenceError  # late, as the next: torch and MLflow
        from pipeline.tracking.reuse import StepFailed  # load with the step, after the command line is checked

        if isinstance(error, (DivergenceError, StepFailed)):  # the run is FAILED and says why: no traceback
            print(f"error: {error}", file=sys.stderr)
            return 1
        raise
    print(f"run id: {run_id}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse, load and run a step in this process (pipeline/__main__.py does the same for a step's own process,
    with its process set up)."""
    try:
        step, config = configure(argv)
    except InputError as error:
        return refuse(error)
    return run(load_step(step), config)


if __name__ == "__main__":
    sys.exit(main())
