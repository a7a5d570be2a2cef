"""Time the README's main job cold and then again, as a user runs it, and print JSON.

Both runs are the real `mlflow run . --env-manager local` (the `quick` preset unless --param says
otherwise) against a fresh tracking database and an empty prepared-data cache in a temporary
folder: the first run trains and evaluates everything (and the evaluation classifier), the second
finds every step finished and reuses it. The second run is reported against the first, in the
same process, so the ratio holds on a busy machine too; the goals are issue 11's (cold at most
150 s, again at most 10 s, on an idle 2-core machine). The cold run's time is also broken down by
step from its runs (benchmarks/run_times.py): epochs, scoring, fixed costs, the serial parts.

    python benchmarks/main_speed.py [--param epochs=5 ...] [--repeats 2]
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

REPO = Path(__file__).resolve().parents[1]
GOALS_S = {"cold": 150.0, "again": 10.0}


def timed_run(folder: Path, params: list[str], reuse: str) -> tuple[float, str]:
    mlflow = str(Path(sys.executable).parent / "mlflow")
    command = [
        mlflow,
        "run",
        str(REPO),
        "--env-manager",
        "local",
        "-P",
        f"reuse={reuse}",
        "-P",
        f"report_dir={folder / 'report'}",
    ]
    for param in params:
        command += ["-P", param]
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
        "VAE_PIPELINE_CACHE": str(folder / "cache"),
    }
    env.pop("MLFLOW_RUN_ID", None)
    started = time.perf_counter()
    result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"main failed ({result.returncode}):\n{(result.stdout + result.stderr)[-4000:]}")
    summary = [line for line in result.stdout.splitlines() if line.startswith("main: done")]
    return seconds, summary[-1] if summary else ""


def cold_breakdown(folder: Path) -> dict:
    """Where the cold run went, from its runs (the newest main in the benchmark's database)."""
    from mlflow.tracking import MlflowClient
    from run_times import breakdown  # beside this script, so on its sys.path

    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    experiment_ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(
        experiment_ids, "tags.`pipeline.step` = 'main'", order_by=["attributes.start_time ASC"], max_results=1
    )
    if not runs:
        return {}
    return {**breakdown(client, runs[0]), "quality_floor": quality_floor(client, experiment_ids)}


def quality_floor(client, experiment_ids: list[str]) -> dict:
    """Issue 11's floor for the quick preset, from the same cold run: E1's N(0,1) samples cover at
    least 8 of 10 classes with recall at least 0.3, in every training seed."""
    e1 = client.search_runs(experiment_ids, "tags.`pipeline.step` = 'evaluate_sampler' and tags.experiment = 'E1'")
    seeds = {
        run.data.tags.get("seed"): {name: run.data.metrics.get(name) for name in ("classes_covered", "recall", "fid")}
        for run in e1
    }
    met = bool(seeds) and all((m["classes_covered"] or 0) >= 8 and (m["recall"] or 0) >= 0.3 for m in seeds.values())
    return {"E1_normal_0_1_by_seed": seeds, "floor": "classes_covered >= 8 and recall >= 0.3", "met": met}


def tree_is_clean() -> bool:
    """Whether the code steps run is committed (docs/reuse.md): then the default reuse=clean reuses."""
    sys.path.insert(0, str(REPO))
    from pipeline.tracking.code import version_of

    return not version_of(REPO).dirty


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--param", action="append", default=[], help="a main parameter, KEY=VALUE (repeatable)")
    parser.add_argument("--repeats", type=int, default=1, help="cold/again pairs, each in a fresh folder")
    args = parser.parse_args()
    reuse = "clean" if tree_is_clean() else "dirty"  # uncommitted code reuses only with reuse=dirty
    cold, again, summaries, breakdowns = [], [], [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="vae-main-bench-") as tmp:
            seconds, first = timed_run(Path(tmp), args.param, reuse)
            cold.append(round(seconds, 1))
            breakdowns.append(cold_breakdown(Path(tmp)))
            seconds, second = timed_run(Path(tmp), args.param, reuse)
            again.append(round(seconds, 1))
            summaries.append({"cold": first, "again": second})
    result = {
        "params": args.param,
        "reuse": reuse,
        "cpu_count": os.cpu_count(),
        "cold_seconds": cold,
        "again_seconds": again,
        "cold_median_s": statistics.median(cold),
        "again_median_s": statistics.median(again),
        "again_over_cold": round(statistics.median(again) / statistics.median(cold), 3),
        "goals_s": GOALS_S,
        "cold_within_goal": statistics.median(cold) < GOALS_S["cold"],
        "again_within_goal": statistics.median(again) < GOALS_S["again"],
        "summaries": summaries,
        "cold_breakdowns": breakdowns,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
