"""The evaluation classifier's run: found by the source digest of the data across every experiment, else
trained once and logged, as a child of the run that first needed it.

Evaluations that start together on new data take a lock per tracking store and source: the first
trains and logs, the others wait and then find its run. A classifier run killed while training is
ended FAILED by the next `classifier_for` of its source (the stale-run rule of steps: it carries its
process).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import torch
from mlflow.tracking import MlflowClient

from pipeline.core.data import datasets
from pipeline.core.judges import cnn, knn
from pipeline.process import processes
from pipeline.tracking.artifacts import load_model, log_model
from pipeline.tracking.code import code_version
from pipeline.tracking.reuse import store_key
from pipeline.tracking.runs import newest_finished, process_tags, sweep_stale_runs
from pipeline.tracking.step import side_run

CLASSIFIER_STEP = "classifier"


def find_classifier_run(source_digest: str):
    """The newest finished classifier run for this source digest, in any experiment, or None."""
    return newest_finished(CLASSIFIER_STEP, {"source_digest": source_digest})


def classifier_for(prepared: datasets.Prepared, device: torch.device, experiment_id: str, parent_run_id: str | None):
    """(classifier, run id) for the source of `prepared`; a new classifier run goes under `parent_run_id`.
    Classifier runs of this source left RUNNING by a process that is gone are ended FAILED first."""
    digest = prepared.source_digest
    sweep_stale_runs(CLASSIFIER_STEP, {"source_digest": digest})
    run = find_classifier_run(digest)
    if run is None:
        with processes.machine_lock(f"classifier-{store_key()}-{digest[:16]}"):
            sweep_stale_runs(CLASSIFIER_STEP, {"source_digest": digest})  # a holder killed while training
            run = find_classifier_run(digest)
            run_id = (
                run.info.run_id if run is not None else train_and_log(prepared, device, experiment_id, parent_run_id)
            )
    else:
        run_id = run.info.run_id
    return load_model(f"runs:/{run_id}/model", device, parameter="classifier"), run_id


def _code_tags() -> dict[str, str]:
    """The code version that trained the classifier: the report's provenance names it."""
    return code_version().tags()


def train_and_log(
    prepared: datasets.Prepared, device: torch.device, experiment_id: str, parent_run_id: str | None
) -> str:
    """Train the classifier in a run of its own (not the launcher's) and log its scores and model."""
    digest = prepared.source_digest
    tags = {"source_digest": digest, **process_tags(), **_code_tags()}
    with side_run(CLASSIFIER_STEP, f"classifier {digest[:8]}", experiment_id, parent_run_id, tags) as run:
        model, params, metrics = cnn.train_on(prepared, device)
        mlflow.log_params({**params, "source_digest": digest})
        mlflow.log_metrics(metrics)
        log_model(model)
        return run.info.run_id


def judge_for(run_id: str, prepared: datasets.Prepared):
    """The second judge of the classifier run `run_id` (pipeline/core/judges/knn.py), read from its artifact.

    The first evaluation that needs it fits it, once, on the same pool as the CNN and logs it into that
    run with its test accuracy, under a lock, so every evaluation of one source finds the same judge
    beside the same CNN.
    """
    client = MlflowClient()

    def read():
        with tempfile.TemporaryDirectory(prefix="vae-judge2-") as tmp:
            try:
                return knn.Judge.from_bytes(Path(client.download_artifacts(run_id, knn.ARTIFACT, tmp)).read_bytes())
            except Exception:  # not logged yet
                return None

    found = read()
    if found is None:
        with processes.machine_lock(f"judge2-{store_key()}-{run_id[:16]}"):
            found = read()
            if found is None:
                found, params, metrics = knn.fit_on(prepared)
                with tempfile.TemporaryDirectory(prefix="vae-judge2-") as tmp:
                    local = Path(tmp) / Path(knn.ARTIFACT).name
                    local.write_bytes(found.to_bytes())
                    client.log_artifact(run_id, str(local), str(Path(knn.ARTIFACT).parent))
                for key, value in params.items():
                    client.log_param(run_id, key, value)
                for key, value in metrics.items():
                    client.log_metric(run_id, key, value)
    return found
