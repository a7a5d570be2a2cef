"""The eye step's sessions (pipeline/steps/eye.py): a person's labels of a blind set, each one run under the
study it judged. Finding them (a lookup: it only answers) and marking one replaced by a newer session of
the same rater on the same set (the older run stays, tagged; the report reads the newest)."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from pipeline.tracking.runs import PARENT_TAG, finished_runs

EYE_STEP = "eye"
EYE_TABLE = "eye/answers.json"  # mlflow.log_table: one row per image and rater
EYE_IMAGES = "eye/images.npz"  # the set's images by id (image_id, pixels), for the report's pictures
SET_TAG, RATER_TAG, REPLACED_TAG = "eye.set", "eye.rater", "eye.replaced_by"


def eye_sessions(source_run_id: str, rater: str | None = None, set_digest: str | None = None) -> list:
    """The finished eye runs under `source_run_id` (in any experiment) that no newer session replaced,
    newest first; only this rater's, or this set's, when given."""
    tags = {PARENT_TAG: source_run_id}
    if rater is not None:
        tags[RATER_TAG] = rater
    if set_digest is not None:
        tags[SET_TAG] = set_digest
    return [run for run in finished_runs(EYE_STEP, tags) if REPLACED_TAG not in run.data.tags]


def mark_replaced(run_ids: list[str], newer_run_id: str) -> None:
    """Tag older sessions as replaced by `newer_run_id` (asked for with the eye step's `replace=yes`)."""
    client = MlflowClient()
    for run_id in run_ids:
        client.set_tag(run_id, REPLACED_TAG, newer_run_id)
