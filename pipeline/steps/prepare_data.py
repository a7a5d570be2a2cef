"""The `prepare_data` step: one prepared file, logged as an artifact and as MLflow dataset inputs."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import mlflow

from pipeline import tracking
from pipeline.configs import PrepareDataConfig
from pipeline.core.data import datasets


def prepare_data(config: PrepareDataConfig) -> str:
    """Prepare the dataset (all checks before the run opens); returns the run id."""
    prepared = datasets.prepare(config.dataset, config.val_fraction, config.seed, config.data_root)
    with tempfile.TemporaryDirectory(prefix="vae-prepare-") as tmp:
        local = datasets.save_prepared(prepared, Path(tmp) / Path(datasets.PREPARED_ARTIFACT).name)
        name = f"prepare_data {config.dataset} s{config.seed}"
        with tracking.step_run("prepare_data", name, config, tags={"source_digest": prepared.source_digest}) as run:
            tracking.log_config(config)
            mlflow.log_params({"data_digest": prepared.digest, "source": prepared.source[:500]})
            mlflow.log_metrics({f"{split}_count": n for split, n in prepared.counts().items()})
            mlflow.log_artifact(str(local), artifact_path=str(Path(datasets.PREPARED_ARTIFACT).parent))
            mlflow.log_dict(prepared.meta(), "prepared/summary.json")
            uri = f"runs:/{run.info.run_id}/{datasets.PREPARED_ARTIFACT}"
            tracking.log_dataset_inputs(prepared, config.dataset, mlflow.get_artifact_uri(datasets.PREPARED_ARTIFACT))
            print(json.dumps({"run_id": run.info.run_id, "prepared": uri, **prepared.meta()}))
            return run.info.run_id
