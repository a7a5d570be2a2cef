"""Command line: `python -m pipeline STEP --param value ...`, flags built from the step's dataclass.

Exit status: 0 done, 2 bad input (message names the parameter or file), 1 any other failure.
The last line printed on success is `run id: <id>`, the run the step made.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys

from pipeline.configs import STEP_CONFIGS
from pipeline.errors import InputError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description="VAE study pipeline steps")
    steps = parser.add_subparsers(dest="step", required=True)
    for step, config_class in STEP_CONFIGS.items():
        sub = steps.add_parser(step, help=config_class.__doc__.split(":", 1)[1].strip())
        for f in dataclasses.fields(config_class):
            choices = f.metadata.get("choices")
            help_text = f.metadata.get("help", "") + (f" (default: {f.default!r})" if f.default != "" else " (required)")
            sub.add_argument(f"--{f.name}", default=f.default, help=help_text, metavar="|".join(choices) if choices else None)
    return parser


def run_step(step: str, config) -> str:
    """The step's function, from pipeline/steps/<step>.py or analysis/report.py (imported late: only
    that step's imports)."""
    module = importlib.import_module("analysis.report" if step == "report" else f"pipeline.steps.{step}")
    return getattr(module, step)(config)


def main(argv: list[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    step = args.pop("step")
    try:
        config = STEP_CONFIGS[step](**args)
        run_id = run_step(step, config)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        from pipeline.core.training import DivergenceError
        from pipeline.tracking import StepFailed

        if isinstance(error, (DivergenceError, StepFailed)):  # the run is FAILED and says why: no traceback
            print(f"error: {error}", file=sys.stderr)
            return 1
        raise
    print(f"run id: {run_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
