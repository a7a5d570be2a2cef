"""The search's verification as runs: one child run of the search run per (sampler, training seed),
with the same plain metric names as the study's per-sampler runs, and read back as the one source of
the verification's scores (its verdicts and the search report); its verdicts on the search run's page."""

from __future__ import annotations

import time
from contextlib import contextmanager

from mlflow.entities import Metric, RunTag
from mlflow.tracking import MlflowClient

from pipeline.tracking import descriptions
from pipeline.tracking.runs import child_run, children

VERIFY_STEP = "verify"
VERIFICATION_TAG = "verification"  # "true" on every verification run, for the UI's filter


@contextmanager
def verification_run(search_run_id: str, experiment_id: str, name: str, label: str, spec: str, seed: int, tags: dict):
    """A child run of the search run for sampler `name` (`label`, `spec`) on the model trained with `seed`;
    yields its id to log into."""
    run_tags = {
        VERIFICATION_TAG: "true",
        "sampler": spec,
        "sampler_name": name,
        "seed": str(seed),
        **tags,
    }
    with child_run(VERIFY_STEP, f"verify {label} seed {seed}", search_run_id, experiment_id, run_tags) as run:
        yield run.run_id


def log_scores(run_id: str, metrics: dict[str, float], tags: dict[str, str]) -> None:
    """The scores of one verification run, under plain metric names, and its categorical results as tags."""
    now = int(time.time() * 1000)
    MlflowClient().log_batch(
        run_id,
        metrics=[Metric(key, float(value), now, 0) for key, value in metrics.items()],
        tags=[RunTag(key, str(value)) for key, value in tags.items()],
    )


def verification_results(search_run_id: str, experiment_id: str) -> dict[str, dict[str, dict[str, float]]]:
    """{sampler name: {seed: {metric: value}}} of the search run's finished verification runs."""
    results: dict[str, dict[str, dict[str, float]]] = {}
    for run in children(search_run_id, VERIFY_STEP, experiment_id):
        tags = run.data.tags
        results.setdefault(tags["sampler_name"], {})[tags["seed"]] = dict(run.data.metrics)
    return results


def search_description(search_run_id: str, experiment_id: str, record: dict, artifact: str) -> str:
    """The search run's description: each finding's word (`record`: verify/results.json) as a table,
    linking `artifact` of the run for the details (an older record has an outcome but no word)."""
    heading = (
        f"**Does a Beta sampler beat N(0,1)?** Best trial {record['best_trial']} at latent size "
        f"{record['latent_size']} ({record['samplers']['best_beta']}), verified over training seeds "
        f"{', '.join(map(str, record['seeds']))} on the test split."
    )
    rows = [(v["finding"], v["claim"], v.get("word", v["outcome"])) for v in record["verdicts"]]
    link = descriptions.run_page(experiment_id, search_run_id, artifact=artifact)
    return descriptions.verdict_table(heading, rows, artifact, link)


def describe_search(search_run_id: str, experiment_id: str, record: dict, artifact: str) -> None:
    """Show the verdicts on the search run's page in the UI, linking `artifact` for the details."""
    descriptions.describe_run(search_run_id, search_description(search_run_id, experiment_id, record, artifact))
