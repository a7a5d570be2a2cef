"""How a step's process was launched, read once where the step starts: the run `mlflow run` made for it, the
driver (main or search) that launched it, and whether the user (or `mlflow run`) chose the experiment.

MLflow ends a run by clearing `MLFLOW_RUN_ID` from the environment, so a step that opens a side run (the
classifier's) before its own would lose the launched run if it read the variable late: the step reads
this context first and passes it on, and nothing reads the variables again.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

from pipeline.process.processes import DRIVER_ENV

RUN_ID_ENV = "MLFLOW_RUN_ID"  # set by `mlflow run` for the step's process: the run made for it
EXPERIMENT_ENVS = ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")


@dataclasses.dataclass(frozen=True)
class LaunchContext:
    run_id: str | None = None  # the run `mlflow run` made for this process, to be adopted
    driver: str | None = None  # host:pid:start time of the main or search process that launched it
    experiment_chosen: bool = False  # an experiment was named (`mlflow run` names one for its run)

    @classmethod
    def of(cls, environ: Mapping[str, str]) -> LaunchContext:
        return cls(
            run_id=environ.get(RUN_ID_ENV) or None,
            driver=environ.get(DRIVER_ENV) or None,
            experiment_chosen=any(environ.get(name) for name in (RUN_ID_ENV, *EXPERIMENT_ENVS)),
        )


def launch_context() -> LaunchContext:
    """This process's launch context, read from its environment now: call it where the step starts."""
    return LaunchContext.of(os.environ)
