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
The ratios (goals: train 1.9, evaluate 2.5, docs/speed.md): `train_fixed_over_bare` = (train_step_s - epoch) / bare_import_s and
`evaluate_fixed_over_bare` = (evaluate_step_s - scoring) / bare_import_s. The breakdown splits each
step's wall time at its MLflow run's start and end (start-up before the run, work inside it, exit
after it). `dynamo_import_s` is what building a torch.optim optimizer costs on top of `import torch` (it
imports torch._dynamo); the train step pays it (torch.optim.Adam(fused=True), pipeline/core/model/training.py).

With `--reference DIR` (a checkout of other code, e.g. `git worktree add /tmp/ref <commit>`), each
round also times that code's train and evaluate steps (its own store, PYTHONPATH=DIR), right after
this code's, and the JSON adds its figures and ratios under `reference`.

    python benchmarks/step_overhead.py [--repeats 3] [--reference DIR]
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
GOALS = {"train": 1.9, "evaluate": 2.5}  # fixed cost over a bare import (docs/speed.md)
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


class Project:
    """One checkout's steps, timed in a store of its own."""

    def __init__(self, code: Path, folder: Path):
        from mlflow.tracking import MlflowClient

        self.folder = folder
        self.env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
            "VAE_PIPELINE_CACHE": str(folder / "cache"),
            "PYTHONPATH": str(code),
        }
        self.env.pop("MLFLOW_RUN_ID", None)
        self.client = MlflowClient(self.env["MLFLOW_TRACKING_URI"])
        self.rows: dict[str, list] = {name: [] for name in ("train", "epoch", "evaluate", "scoring")}
        self.breakdown: dict[str, list] = {"train": [], "evaluate": []}
        # warm-up (not counted): the database, the prepared data, the evaluation classifier
        _, _, out = timed([sys.executable, "-m", "pipeline", "train", "--epochs", "1"], self.env, folder)
        timed(evaluate_command(sys.executable, run_id_of(out)), self.env, folder)

    def round(self) -> None:
        python, env, folder, client = sys.executable, self.env, self.folder, self.client
        seconds, started, out = timed([python, "-m", "pipeline", "train", "--epochs", "1"], env, folder)
        train_id = run_id_of(out)
        self.rows["train"].append(seconds)
        self.rows["epoch"].append(client.get_run(train_id).data.metrics["time_epoch_s"])
        self.breakdown["train"].append(phases(client, train_id, seconds, started))
        seconds, started, out = timed(evaluate_command(python, train_id), env, folder)
        evaluate_id = run_id_of(out)
        self.rows["evaluate"].append(seconds)
        self.rows["scoring"].append(client.get_run(evaluate_id).data.metrics["time_scoring_s"])
        self.breakdown["evaluate"].append(phases(client, evaluate_id, seconds, started))

    def figures(self, bare: float, gc_free: float) -> dict:
        median = {name: round(statistics.median(values), 3) for name, values in self.rows.items()}
        train_ratio = (median["train"] - median["epoch"]) / bare
        evaluate_ratio = (median["evaluate"] - median["scoring"]) / bare
        return {
            "train_step_s": median["train"],
            "train_epoch_s": median["epoch"],
            "evaluate_step_s": median["evaluate"],
            "evaluate_scoring_s": median["scoring"],
            "train_fixed_over_bare": round(train_ratio, 3),
            "evaluate_fixed_over_bare": round(evaluate_ratio, 3),
            "train_fixed_over_bare_gc_free": round((median["train"] - median["epoch"]) / gc_free, 3),
            "evaluate_fixed_over_bare_gc_free": round((median["evaluate"] - median["scoring"]) / gc_free, 3),
            "train_within_goal": train_ratio <= GOALS["train"],
            "evaluate_within_goal": evaluate_ratio <= GOALS["evaluate"],
            "breakdown_median": {
                step: {key: round(statistics.median(r[key] for r in runs), 2) for key in runs[0]}
                for step, runs in self.breakdown.items()
            },
            "all": {name: [round(v, 3) for v in values] for name, values in self.rows.items()},
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference", type=Path, help="a checkout of other code, timed beside this one")
    args = parser.parse_args()
    python = sys.executable
    rows: dict[str, list] = {name: [] for name in ("bare", "bare_gc", "extra", "dynamo")}
    with tempfile.TemporaryDirectory(prefix="vae-step-overhead-") as tmp:
        (Path(tmp) / "this").mkdir()
        projects = {"this": Project(REPO, Path(tmp) / "this")}
        if args.reference:
            (Path(tmp) / "reference").mkdir()
            projects["reference"] = Project(args.reference.resolve(), Path(tmp) / "reference")
        env, folder = projects["this"].env, projects["this"].folder
        for _ in range(args.repeats):
            rows["bare"].append(timed([python, "-c", "import torch, mlflow"], env, folder)[0])
            rows["bare_gc"].append(float(timed([python, "-c", BARE_GC], env, folder)[2]))
            rows["extra"].append(float(timed([python, "-c", EXTRA_IMPORTS], env, folder)[2]))
            rows["dynamo"].append(
                timed([python, "-c", "import torch, mlflow, torch._dynamo"], env, folder)[0] - rows["bare"][-1]
            )
            for project in projects.values():
                project.round()
    median = {name: round(statistics.median(values), 3) for name, values in rows.items()}
    gc_free = median["bare"] - median["bare_gc"]
    this = projects["this"].figures(median["bare"], gc_free)
    result = {
        "repeats": args.repeats,
        "cpu_count": os.cpu_count(),
        "bare_import_s": median["bare"],
        "bare_import_gc_s": median["bare_gc"],
        "extra_imports_s": median["extra"],
        "extra_imports_over_bare": round(median["extra"] / median["bare"], 3),
        "dynamo_import_s": median["dynamo"],
        "goals": GOALS,
        **this,
        "all": {**{name: [round(v, 3) for v in values] for name, values in rows.items()}, **this["all"]},
    }
    if args.reference:
        reference = projects["reference"].figures(median["bare"], gc_free)
        result["reference"] = {"project": str(args.reference.resolve()), **reference}
        for step in ("train", "evaluate"):
            result[f"{step}_fixed_over_reference"] = round(
                this[f"{step}_fixed_over_bare"] / reference[f"{step}_fixed_over_bare"], 3
            )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
