"""Time the README's main job cold and then again, as a user runs it, and print JSON.

Both runs are the real `mlflow run . --env-manager local` (the `quick` preset unless --param says
otherwise) against a fresh tracking database and an empty prepared-data cache in a temporary
folder: the first run trains and evaluates everything (and the evaluation classifier), the second
finds every step finished and reuses it. The second run is reported against the first, in the
same process, so the ratio holds on a busy machine too; the goals (docs/speed.md): cold at most
120 s, again at most 10 s, on an idle 2-core machine, with the quality floor below. The cold run's time is also broken down by
step from its runs (benchmarks/run_times.py): epochs, scoring, fixed costs, the serial parts.

With `--reference DIR` (a checkout of other code, e.g. `git worktree add /tmp/ref <commit>`), the same
pairs run for that project too, interleaved with this one's (this cold, this again, reference cold,
reference again), and the JSON adds the reference's figures and the ratios this ÷ reference.

    python benchmarks/main_speed.py [--param epochs=5 ...] [--repeats 2] [--reference DIR]
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
GOALS_S = {"cold": 120.0, "again": 10.0}


def timed_run(project: Path, folder: Path, params: list[str], reuse: str) -> tuple[float, str]:
    mlflow = str(Path(sys.executable).parent / "mlflow")
    command = [
        mlflow,
        "run",
        str(project),
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
    """The quick preset's quality floor, from the same cold run: E1's N(0,1) samples cover at
    least 8 of 10 classes with recall at least 0.3, in every training seed."""
    e1 = client.search_runs(experiment_ids, "tags.`pipeline.step` = 'evaluate_sampler' and tags.experiment = 'E1'")
    seeds = {
        run.data.tags.get("seed"): {name: run.data.metrics.get(name) for name in ("classes_covered", "recall", "fid")}
        for run in e1
    }
    met = bool(seeds) and all((m["classes_covered"] or 0) >= 8 and (m["recall"] or 0) >= 0.3 for m in seeds.values())
    return {"E1_normal_0_1_by_seed": seeds, "floor": "classes_covered >= 8 and recall >= 0.3", "met": met}


def tree_is_clean(project: Path) -> bool:
    """Whether the code steps run is committed (docs/reuse.md): then the default reuse=clean reuses."""
    sys.path.insert(0, str(REPO))
    from pipeline.tracking.code import version_of

    return not version_of(project).dirty


def summary(cold: list[float], again: list[float]) -> dict:
    return {
        "cold_seconds": cold,
        "again_seconds": again,
        "cold_median_s": statistics.median(cold),
        "again_median_s": statistics.median(again),
        "again_over_cold": round(statistics.median(again) / statistics.median(cold), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--param", action="append", default=[], help="a main parameter, KEY=VALUE (repeatable)")
    parser.add_argument("--repeats", type=int, default=1, help="cold/again pairs, each in a fresh folder")
    parser.add_argument("--reference", type=Path, help="a checkout of other code, timed beside this one")
    args = parser.parse_args()
    projects = {"this": REPO, **({"reference": args.reference.resolve()} if args.reference else {})}
    # uncommitted code reuses only with reuse=dirty
    reuse = {name: "clean" if tree_is_clean(project) else "dirty" for name, project in projects.items()}
    times = {name: {"cold": [], "again": []} for name in projects}
    summaries, breakdowns = {name: [] for name in projects}, {name: [] for name in projects}
    for _ in range(args.repeats):
        for name, project in projects.items():
            with tempfile.TemporaryDirectory(prefix="vae-main-bench-") as tmp:
                seconds, first = timed_run(project, Path(tmp), args.param, reuse[name])
                times[name]["cold"].append(round(seconds, 1))
                breakdowns[name].append(cold_breakdown(Path(tmp)))
                seconds, second = timed_run(project, Path(tmp), args.param, reuse[name])
                times[name]["again"].append(round(seconds, 1))
                summaries[name].append({"cold": first, "again": second})
    this = summary(times["this"]["cold"], times["this"]["again"])
    result = {
        "params": args.param,
        "reuse": reuse["this"],
        "cpu_count": os.cpu_count(),
        **this,
        "goals_s": GOALS_S,
        "cold_within_goal": this["cold_median_s"] < GOALS_S["cold"],
        "again_within_goal": this["again_median_s"] < GOALS_S["again"],
        "summaries": summaries["this"],
        "cold_breakdowns": breakdowns["this"],
    }
    if args.reference:
        reference = summary(times["reference"]["cold"], times["reference"]["again"])
        result["reference"] = {
            "project": str(projects["reference"]),
            "reuse": reuse["reference"],
            **reference,
            "summaries": summaries["reference"],
            "cold_breakdowns": breakdowns["reference"],
        }
        result["cold_over_reference"] = round(this["cold_median_s"] / reference["cold_median_s"], 3)
        result["again_over_reference"] = round(this["again_median_s"] / reference["again_median_s"], 3)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
