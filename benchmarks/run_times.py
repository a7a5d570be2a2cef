"""Where a `main` run's wall time went, read back from MLflow: its steps' own start and end times.

For a finished main run it prints JSON: the wall time; per step kind (prepare_data, train, evaluate,
classifier, report) how many ran, their summed seconds and the longest; inside the trainings the
seconds spent in epochs (`time_epoch_s`) and inside the evaluations the scoring (`time_scoring_s`);
and the serial parts, when only one step could run: before the first training and after the last
evaluation. Steps that were reused (not run by this main) are counted apart.

    python benchmarks/run_times.py --experiment study          # the newest finished main run in it
    python benchmarks/run_times.py --run <main run id> [--tracking-uri sqlite:///mlflow.db]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

import mlflow
from mlflow.tracking import MlflowClient

from pipeline.tracking.runs import PARENT_TAG, STEP_TAG, search_all_runs


def seconds(run) -> float:
    return (run.info.end_time - run.info.start_time) / 1000.0


def metric_sum(client: MlflowClient, run_id: str, key: str) -> float:
    return sum(m.value for m in client.get_metric_history(run_id, key))


def descendants(client: MlflowClient, experiment_ids: list[str], root_id: str) -> list:
    """Every run below `root_id` (children, grandchildren: the classifier sits under an evaluation)."""
    runs = search_all_runs(experiment_ids, "")
    children = defaultdict(list)
    for run in runs:
        children[run.data.tags.get(PARENT_TAG)].append(run)
    found, queue = [], [root_id]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child.info.run_id)
    return found


def breakdown(client: MlflowClient, main_run) -> dict:
    experiment_ids = [main_run.info.experiment_id]
    below = [r for r in descendants(client, experiment_ids, main_run.info.run_id) if r.info.end_time]
    kinds: dict[str, list] = defaultdict(list)
    for run in below:
        kinds[run.data.tags.get(STEP_TAG, "other")].append(run)
    steps = {
        kind: {
            "ran": len(runs),
            "seconds_sum": round(sum(seconds(r) for r in runs), 1),
            "seconds_max": round(max(seconds(r) for r in runs), 1),
        }
        for kind, runs in sorted(kinds.items())
    }
    if kinds.get("train"):
        steps["train"]["epochs_seconds_sum"] = round(
            sum(metric_sum(client, r.info.run_id, "time_epoch_s") for r in kinds["train"]), 1
        )
    if kinds.get("evaluate"):
        steps["evaluate"]["scoring_seconds_sum"] = round(
            sum(metric_sum(client, r.info.run_id, "time_scoring_s") for r in kinds["evaluate"]), 1
        )
    start, end = main_run.info.start_time, main_run.info.end_time
    first_train = min((r.info.start_time for r in kinds.get("train", [])), default=start)
    last_evaluate = max((r.info.end_time for r in kinds.get("evaluate", [])), default=end)
    return {
        "main_run_id": main_run.info.run_id,
        "code_version": main_run.data.tags.get("mlflow.source.git.commit", ""),
        "wall_seconds": round((end - start) / 1000.0, 1),
        "steps": steps,
        "serial_seconds": {
            "before_first_training": round((first_train - start) / 1000.0, 1),
            "after_last_evaluation": round((end - last_evaluate) / 1000.0, 1),
        },
        "steps_reused": int(main_run.data.metrics.get("steps_reused", 0)),
    }


def newest_main(client: MlflowClient, experiment_name: str):
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        raise SystemExit(f"no experiment named {experiment_name!r}")
    runs = client.search_runs(
        [experiment.experiment_id],
        f"tags.`{STEP_TAG}` = 'main' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        raise SystemExit(f"no finished main run in experiment {experiment_name!r}")
    return runs[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", help="a main run id")
    which.add_argument("--experiment", help="an experiment name: its newest finished main run")
    parser.add_argument("--tracking-uri", help="default: MLFLOW_TRACKING_URI, else MLflow's default")
    args = parser.parse_args()
    if args.tracking_uri:
        mlflow.set_tracking_uri(args.tracking_uri)
    client = MlflowClient()
    run = client.get_run(args.run) if args.run else newest_main(client, args.experiment)
    print(json.dumps(breakdown(client, run), indent=2))


if __name__ == "__main__":
    main()
