"""Where a search's time goes: training, scoring, logging; and trials per minute with 1 and 2 workers.

Runs real `python -m pipeline search` processes against a fresh SQLite tracking store in a
temporary folder (the user's store is not touched):
1. a cold search with 1 worker: it trains one model per latent size it picks (and the evaluation
   classifier, reported apart), so it gives the training cost;
2. the same search under a new study name with 1 worker, then with 2 workers: the models are
   reused, so these give the trial rate of the search itself.
Read back from MLflow: train run durations, each trial run's `seconds_model` / `seconds_scoring` /
`seconds_logging`, trial run durations split by outcome (complete / pruned), and the search runs'
`trials` and `search_seconds`. Only the JSON goes to stdout (the searches' output goes to stderr).
On a shared machine the figures swing: run it on an idle one.

    python benchmarks/search_cost.py [--data mnist-5k] [--latent-sizes 2,5,10] [--epochs 5] [--trials 12] [--tiny]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_search(folder: Path, env: dict, study: str, settings: dict, workers: int) -> tuple[str, float]:
    """(search run id, wall seconds of the whole command)."""
    args = [f"--{k}={v}" for k, v in {**settings, "study_name": study, "n_workers": workers}.items()]
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "search", *args],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=sys.stderr,
        text=True,
    )
    wall = time.perf_counter() - started
    sys.stderr.write(result.stdout)
    if result.returncode != 0:
        raise SystemExit(f"search {study} failed with status {result.returncode}")
    return result.stdout.strip().splitlines()[-1].split()[-1], wall


def seconds(run) -> float:
    return (run.info.end_time - run.info.start_time) / 1000


def summary(client, experiment_id: str, run_id: str, wall: float) -> dict:
    parent = client.get_run(run_id)
    trials = client.search_runs(
        [experiment_id],
        f"tags.`mlflow.parentRunId` = '{run_id}' and tags.`pipeline.step` = 'search_trial'",
        max_results=1000,
    )
    trainings = client.search_runs(
        [experiment_id], f"tags.`mlflow.parentRunId` = '{run_id}' and tags.`pipeline.step` = 'train'", max_results=1000
    )
    complete = [seconds(r) for r in trials if r.info.status == "FINISHED"]
    pruned = [seconds(r) for r in trials if r.info.status == "KILLED"]
    total = lambda name: round(sum(r.data.metrics.get(name, 0.0) for r in trials), 2)  # noqa: E731
    metrics = parent.data.metrics
    span = (max(r.info.end_time for r in trials) - min(r.info.start_time for r in trials)) / 1000 if trials else 0
    return {
        "trials": int(metrics["trials"]),
        "trials_pruned": int(metrics["trials_pruned"]),
        "trainings": int(metrics["trainings"]),
        "training_run_seconds": round(sum(seconds(r) for r in trainings), 2),
        "trial_seconds_waiting_for_models": total("seconds_model"),  # training (launch included) and loading
        "scoring_seconds": total("seconds_scoring"),
        "logging_seconds": total("seconds_logging"),
        "seconds_per_complete_trial": round(statistics.mean(complete), 2) if complete else None,
        "seconds_per_pruned_trial": round(statistics.mean(pruned), 2) if pruned else None,
        "search_seconds": round(metrics["search_seconds"], 2),  # the trial phase, from first ask to last tell
        "trials_per_minute": round(metrics["trials"] / metrics["search_seconds"] * 60, 2),
        "command_seconds": round(wall, 2),  # with start-up, classifier, test figures and plots
        # from the first trial's start to the last one's end: without the workers' start-up
        "trials_per_minute_between_first_and_last_trial": round(len(trials) / span * 60, 2) if span > 0 else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="mnist-5k")
    parser.add_argument("--latent-sizes", default="2,5,10")
    parser.add_argument("--hidden-size", type=int, default=392)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--n-samples", default="1000,3000,10000")
    parser.add_argument("--tiny", action="store_true", help="a smoke test: latent 2,4, hidden 32, 1 epoch, 4 trials")
    parser.add_argument("--keep", action="store_true", help="keep the temporary tracking folder and print its path")
    args = parser.parse_args()
    if args.tiny:
        args.latent_sizes, args.hidden_size, args.epochs, args.trials, args.n_samples = "2,4", 32, 1, 4, "100,200,400"
    settings = {
        "data": args.data,
        "latent_sizes": args.latent_sizes,
        "hidden_size": args.hidden_size,
        "epochs": args.epochs,
        "n_trials": args.trials,
        "n_samples": args.n_samples,
        "verify_seeds": "none",
    }

    from mlflow.tracking import MlflowClient

    folder = Path(tempfile.mkdtemp(prefix="search-cost-"))
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("search-cost", artifact_location=(folder / "artifacts").as_uri())
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": uri,
        "MLFLOW_EXPERIMENT_ID": experiment_id,
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
    }
    env.pop("MLFLOW_RUN_ID", None)

    cold_id, cold_wall = run_search(folder, env, "cold", settings, 1)
    warm_id, warm_wall = run_search(folder, env, "warm-1-worker", settings, 1)
    two_id, two_wall = run_search(folder, env, "warm-2-workers", settings, 2)
    classifier = client.search_runs([experiment_id], "tags.`pipeline.step` = 'classifier'")
    cold = summary(client, experiment_id, cold_id, cold_wall)
    warm = summary(client, experiment_id, warm_id, warm_wall)
    two = summary(client, experiment_id, two_id, two_wall)
    print(
        json.dumps(
            {
                "settings": settings,
                "cpu_count": os.cpu_count(),
                "classifier_seconds": round(seconds(classifier[0]), 2) if classifier else None,
                "cold_search_1_worker": cold,
                "warm_search_1_worker": warm,
                "warm_search_2_workers": two,
                "trials": cold["trials"] + warm["trials"] + two["trials"],
                "trainings": cold["trainings"] + warm["trainings"] + two["trainings"],
                "trials_per_minute_1_worker": warm["trials_per_minute"],
                "trials_per_minute_2_workers": two["trials_per_minute"],
                "trials_per_minute_between_first_and_last_trial_1_worker": warm[
                    "trials_per_minute_between_first_and_last_trial"
                ],
                "trials_per_minute_between_first_and_last_trial_2_workers": two[
                    "trials_per_minute_between_first_and_last_trial"
                ],
                "tracking_folder": str(folder) if args.keep else None,
            },
            indent=2,
        )
    )
    if not args.keep:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
