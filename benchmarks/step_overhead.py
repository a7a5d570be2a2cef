"""A step's fixed cost against a bare `import torch, mlflow`, on mnist-5k, as JSON.

Interleaved in one run, `--repeats` rounds (median of each figure):
- `bare_import_s`: `python -c "import torch, mlflow"`, the floor any step pays;
- `train_step_s`: `python -m pipeline train --epochs 1`, and inside it the epoch itself (the
  run's `time_epoch_s` metric: training plus the validation pass);
- `evaluate_step_s`: `python -m pipeline evaluate` of that model, 3 samplers x 1,000 samples,
  `iwae_k=50`, and inside it the scoring (the run's `time_scoring_s`: reference features, the
  three samplers' metrics by both judges and the likelihood, IWAE included).
- `extra_imports_s`: what both steps import beyond `import torch, mlflow` before they can log a
  figure, timed inside one process: MLflow's SQLAlchemy tracking store (every step opens it) and
  matplotlib's pyplot on Agg (`extra_imports_over_bare`: the part of the 0.5 above the bare import
  that the ratios allow, used up by these imports alone).
- `bare_import_gc_s`: of the bare import, the time Python's garbage collector takes in it, timed
  inside one process. A step pays none of it: `python -m pipeline` keeps the collector off until the
  step's modules are imported (pipeline/__main__.py, pipeline/process/collector.py). `train_fixed_over_bare_gc_free` and
  `evaluate_fixed_over_bare_gc_free` are the ratios against a bare import without it, to show how
  much of a ratio that saving makes.
The ratios are the issue's: `train_fixed_over_bare` = (train_step_s - epoch) / bare_import_s and
`evaluate_fixed_over_bare` = (evaluate_step_s - scoring) / bare_import_s. The breakdown splits each
step's wall time at its MLflow run's start and end (start-up before the run, work inside it, exit
after it). `dynamo_import_s` is what building a torch.optim optimizer costs on top of `import torch` (it
imports torch._dynamo); the train step pays it (torch.optim.Adam(fused=True), pipeline/core/model/training.py).

    python benchmarks/step_overhead.py [--repeats 3]
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
SAMPLERS = "normal:0,1+normal:1,2+beta:0.25,0.25"
GOAL = 1.6  # issue 21: the goal once the steps use only public APIs (torch.optim's Adam, MLflow's log_model)
EXTRA_IMPORTS = (
    "import time, torch, mlflow; from pipeline.core import plots; started = time.perf_counter(); "
    "import mlflow.store.tracking.sqlalchemy_store; plots.pyplot(); print(time.perf_counter() - started)"
)

BARE_GC = (
    "import gc, time\nspent, started = [0.0], [0.0]\n"
    "def watch(phase, info):\n"
    "    if phase == 'start': started[0] = time.perf_counter()\n"
    "    else: spent[0] += time.perf_counter() - started[0]\n"
    "gc.callbacks.append(watch)\nimport torch, mlflow\nprint(spent[0])"
)


def evaluate_command(python: str, model: str) -> list[str]:
    """The timed evaluate step: 3 samplers x 1,000 samples, iwae_k=50."""
    scores = ["--samplers", SAMPLERS, "--n_samples", "1000", "--iwae_k", "50"]
    return [python, "-m", "pipeline", "evaluate", "--model", model, *scores]


def timed(command: list[str], env: dict, cwd: Path) -> tuple[float, float, str]:
    """(seconds, wall clock at start in ms, stdout) of one command, which must succeed."""
    started_ms, started = time.time() * 1000, time.perf_counter()
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return seconds, started_ms, result.stdout


def run_id_of(stdout: str) -> str:
    return stdout.strip().splitlines()[-1].removeprefix("run id: ")


def phases(client, run_id: str, seconds: float, started_ms: float) -> dict[str, float]:
    """The step's wall time split at its run's start and end (MLflow's own times)."""
    info = client.get_run(run_id).info
    before = (info.start_time - started_ms) / 1000
    inside = (info.end_time - info.start_time) / 1000
    return {
        "before_run_s": round(before, 2),
        "in_run_s": round(inside, 2),
        "after_run_s": round(seconds - before - inside, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    python = sys.executable
    names = ("bare", "bare_gc", "extra", "dynamo", "train", "epoch", "evaluate", "scoring")
    rows: dict[str, list] = {name: [] for name in names}
    breakdown: dict[str, list] = {"train": [], "evaluate": []}
    with tempfile.TemporaryDirectory(prefix="vae-step-overhead-") as tmp:
        folder = Path(tmp)
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
            "VAE_PIPELINE_CACHE": str(folder / "cache"),
            "PYTHONPATH": str(REPO),
        }
        env.pop("MLFLOW_RUN_ID", None)
        from mlflow.tracking import MlflowClient

        # warm-up (not counted): the database, the prepared data, the evaluation classifier
        _, _, out = timed([python, "-m", "pipeline", "train", "--epochs", "1"], env, folder)
        timed(evaluate_command(python, run_id_of(out)), env, folder)
        client = MlflowClient(env["MLFLOW_TRACKING_URI"])
        for _ in range(args.repeats):
            rows["bare"].append(timed([python, "-c", "import torch, mlflow"], env, folder)[0])
            rows["bare_gc"].append(float(timed([python, "-c", BARE_GC], env, folder)[2]))
            rows["extra"].append(float(timed([python, "-c", EXTRA_IMPORTS], env, folder)[2]))
            rows["dynamo"].append(
                timed([python, "-c", "import torch, mlflow, torch._dynamo"], env, folder)[0] - rows["bare"][-1]
            )
            seconds, started, out = timed([python, "-m", "pipeline", "train", "--epochs", "1"], env, folder)
            train_id = run_id_of(out)
            rows["train"].append(seconds)
            rows["epoch"].append(client.get_run(train_id).data.metrics["time_epoch_s"])
            breakdown["train"].append(phases(client, train_id, seconds, started))
            seconds, started, out = timed(evaluate_command(python, train_id), env, folder)
            evaluate_id = run_id_of(out)
            rows["evaluate"].append(seconds)
            rows["scoring"].append(client.get_run(evaluate_id).data.metrics["time_scoring_s"])
            breakdown["evaluate"].append(phases(client, evaluate_id, seconds, started))
    median = {name: round(statistics.median(values), 3) for name, values in rows.items()}
    train_ratio = (median["train"] - median["epoch"]) / median["bare"]
    evaluate_ratio = (median["evaluate"] - median["scoring"]) / median["bare"]
    gc_free = median["bare"] - median["bare_gc"]
    result = {
        "repeats": args.repeats,
        "cpu_count": os.cpu_count(),
        "bare_import_s": median["bare"],
        "bare_import_gc_s": median["bare_gc"],
        "extra_imports_s": median["extra"],
        "extra_imports_over_bare": round(median["extra"] / median["bare"], 3),
        "dynamo_import_s": median["dynamo"],
        "train_step_s": median["train"],
        "train_epoch_s": median["epoch"],
        "evaluate_step_s": median["evaluate"],
        "evaluate_scoring_s": median["scoring"],
        "train_fixed_over_bare": round(train_ratio, 3),
        "evaluate_fixed_over_bare": round(evaluate_ratio, 3),
        "train_fixed_over_bare_gc_free": round((median["train"] - median["epoch"]) / gc_free, 3),
        "evaluate_fixed_over_bare_gc_free": round((median["evaluate"] - median["scoring"]) / gc_free, 3),
        "goal": GOAL,
        "train_within_goal": train_ratio <= GOAL,
        "evaluate_within_goal": evaluate_ratio <= GOAL,
        "breakdown_median": {
            step: {key: round(statistics.median(r[key] for r in runs), 2) for key in runs[0]}
            for step, runs in breakdown.items()
        },
        "all": {name: [round(v, 3) for v in values] for name, values in rows.items()},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
