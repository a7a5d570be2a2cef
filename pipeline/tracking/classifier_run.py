"""The evaluation classifier's run: found by the source digest of the data across every experiment, else
trained once and logged, as a child of the run that first needed it.

Evaluations that start together on new data take a lock per tracking store and source: the first
trains and logs, the others wait and then find its run. A classifier run killed while training is
failed by the next lookup (the stale-run rule of steps: it carries its process).
"""

from __future__ import annotations

import mlflow
import torch

from pipeline import tracking
from pipeline.core.data import datasets
from pipeline.core.judges import cnn
from pipeline.process import processes

CLASSIFIER_STEP = "classifier"


def find_classifier_run(source_digest: str):
    """The newest finished classifier run for this source digest, in any experiment, or None."""
    return tracking.newest_finished(CLASSIFIER_STEP, {"source_digest": source_digest})


def classifier_for(prepared: datasets.Prepared, device: torch.device, experiment_id: str, parent_run_id: str | None):
    """(classifier, run id) for the source of `prepared`; a new classifier run goes under `parent_run_id`."""
    digest = prepared.source_digest
    run = find_classifier_run(digest)
    if run is None:
        with processes.machine_lock(f"classifier-{tracking.store_key()}-{digest[:16]}"):
            run = find_classifier_run(digest)
            run_id = (
                run.info.run_id if run is not None else train_and_log(prepared, device, experiment_id, parent_run_id)
            )
    else:
        run_id = run.info.run_id
    return tracking.load_model(f"runs:/{run_id}/model", device, parameter="classifier"), run_id


def _code_tags() -> dict[str, str]:
    """The code version that trained the classifier: the report's provenance names it."""
    return tracking.code_version().tags()


def train_and_log(
    prepared: datasets.Prepared, device: torch.device, experiment_id: str, parent_run_id: str | None
) -> str:
    """Train the classifier in a run of its own (not the launcher's) and log its scores and model."""
    digest = prepared.source_digest
    with tracking.step_run(
        CLASSIFIER_STEP,
        f"classifier {digest[:8]}",
        experiment_id=experiment_id,
        parent_run_id=parent_run_id,
        tags={"source_digest": digest, **tracking.process_tags(), **_code_tags()},
        adopt_launched_run=False,
    ) as run:
        model, params, metrics = cnn.train_on(prepared, device)
        mlflow.log_params({**params, "source_digest": digest})
        mlflow.log_metrics(metrics)
        tracking.log_model(model)
        return run.info.run_id


def judge_for(run_id: str, prepared: datasets.Prepared):
    """The second judge of the classifier run `run_id` (pipeline/core/judges/knn.py), read from its artifact.

    A run logged before the judge existed gets it now, once: fitted on the same pool as the CNN and
    logged into that run with its test accuracy, under a lock, so every evaluation of one source
    finds the same judge beside the same CNN.
    """
    import tempfile
    from pathlib import Path

    from mlflow.tracking import MlflowClient

    from pipeline.core.judges import knn

    client = MlflowClient()

    def read():
        with tempfile.TemporaryDirectory(prefix="vae-judge2-") as tmp:
            try:
                return knn.Judge.from_bytes(Path(client.download_artifacts(run_id, knn.ARTIFACT, tmp)).read_bytes())
            except Exception:  # not logged yet
                return None

    found = read()
    if found is None:
        with processes.machine_lock(f"judge2-{tracking.store_key()}-{run_id[:16]}"):
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
