"""The model registry: generators registered under a name, an alias on the newest result.

Registering is tracking code (it speaks MLflow), kept apart because only the drivers use it: `main`
registers each cell's generator as `vae-generator-<cell>`, `search` the best trial's as
`vae-generator@best-beta`. The same run registered again adds no version; the alias moves to it.
"""

from __future__ import annotations

import mlflow
from mlflow.tracking import MlflowClient

from pipeline.process.processes import machine_lock

GENERATOR = "generator"  # the generator's artifact path in a run (pipeline/serving.py)


def register_generator(run_id: str, name: str, alias: str, tags: dict[str, str] | None = None):
    """The registered version of run `run_id`'s generator under `name` (created once), with `alias` on it."""
    client = MlflowClient()
    with machine_lock(f"register-{name}"):  # two drivers registering one run still make one version
        versions = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
        if versions:
            version = min(versions, key=lambda v: int(v.version))
        else:
            version = mlflow.register_model(f"runs:/{run_id}/{GENERATOR}", name, tags=tags)
        client.set_registered_model_alias(name, alias, version.version)
    print(f"registered: models:/{name}@{alias} = version {version.version} (run {run_id})", flush=True)
    return version
