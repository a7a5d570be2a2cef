"""The `main` step: the whole study from one command, every step reused when it already ran.

prepare_data once, then train -> evaluate for every model cell (loss x forward pass) of the preset
and every seed, then the report. Each step is a real MLflow project step (`mlflow.run`, the
parent's environment manager) and a child run of this one. Independent steps run concurrently,
each with its share of the cores. A step whose finished run has the same configuration key (its
normalized params, upstream run ids included) and code version is reused instead of rerun (see
docs/reuse.md); a training that was interrupted resumes from its last checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import mlflow

from pipeline import tracking
from pipeline.configs import (
    NO_VALUE,
    PRESET_VALUE,
    EvaluateConfig,
    MainConfig,
    PrepareDataConfig,
    ReportConfig,
    TrainConfig,
)
from pipeline.core import study
from pipeline.core.model.samplers import needs_fit, parse_sampler
from pipeline.errors import bad_parameter
from pipeline.process import processes
from pipeline.tracking.artifacts import copy_artifacts
from pipeline.tracking.registry import register_generator
from pipeline.tracking.reuse import StepFailed, key_tags, launch_step, reusable_by, reuse_allowed, reuse_or_launch
from pipeline.tracking.runs import newest_finished

REPORT_INPUTS_TAG = "pipeline.report_inputs"
SEARCH_TAG = "pipeline.search_run_id"  # the search run whose report the study's report links to
GENERATOR_NAME = "vae-generator"  # each cell's as vae-generator-<cell>, alias @main: the newest main's
REGISTRY_ALIAS = "main"
INT_SETTINGS = ("epochs", "latent_size", "hidden_size", "batch_size", "n_samples", "iwae_k")


def resolve_settings(config: MainConfig) -> dict:
    """The preset's settings with every parameter the user gave instead of `preset`, typed."""
    settings = dict(study.PRESETS[config.preset])
    for name in settings:
        value = getattr(config, name)
        if value != PRESET_VALUE:
            settings[name] = value
    for name in INT_SETTINGS:
        settings[name] = int(settings[name])
    settings["lr"] = float(settings["lr"])
    settings["seeds"] = [int(seed) for seed in str(settings["seeds"]).split(",")]
    return settings


def parallel_slots(config: MainConfig, independent: int) -> tuple[int, int]:
    """(steps at once, threads per step): by default one step per core, never more steps than cores'
    worth of threads, since two processes with 2 OpenMP threads each on 2 cores crawl."""
    cores = processes.usable_cores()
    slots = min(cores, independent) if config.max_parallel == "auto" else int(config.max_parallel)
    return max(1, slots), max(1, cores // max(1, slots))


def resolve_search(value: str) -> str | None:
    """The search run `-P search=` names: a search run's id, or a study name (its newest finished
    search run, in any experiment); None for none. Bad input exits 2 before main's run opens."""
    allowed = "the id of a search run | the study name of a finished search run | none"
    if value == NO_VALUE:
        return None
    if tracking.RUN_ID_PATTERN.match(value):
        run = tracking.get_run(value, "search")
        if run.data.tags.get(tracking.STEP_TAG) != "search":
            raise bad_parameter("search", value, f"{allowed} (run {value} is not a search run)")
        return value
    if not re.match(r"^[A-Za-z0-9_.-]+$", value):  # what a study name may hold (the search's own rule)
        raise bad_parameter("search", value, allowed)
    tracking.sweep_stale_runs("search", {"optuna.study_name": value})
    run = newest_finished("search", {"optuna.study_name": value})
    if run is None:
        raise bad_parameter("search", value, f"{allowed} (no finished search run of study {value!r})")
    return run.info.run_id


def read_backend_config(value: str) -> dict | None:
    if value == "none":
        return None
    try:
        return json.loads(Path(value).read_text())
    except (OSError, ValueError) as error:
        raise bad_parameter("backend_config", value, f"a readable JSON file | none ({error})") from None


@dataclass
class Cell:
    """One trained model configuration and the samplers its experiments draw with."""

    loss: str
    forward: str
    samplers: list[str] = field(default_factory=list)
    experiments: list[str] = field(default_factory=list)  # their names: E1-E5 or "cell sampler"
    trained_samplers: list[str] = field(default_factory=list)  # those the train step draws grids with

    @property
    def name(self) -> str:
        return study.cell_name(self.loss, self.forward)


def cells_of(experiments: list[study.Experiment]) -> list[Cell]:
    cells: dict[str, Cell] = {}
    for experiment in experiments:
        cell = cells.setdefault(experiment.cell, Cell(experiment.loss, experiment.forward))
        cell.samplers.append(experiment.sampler)
        cell.experiments.append(experiment.name)
        if not experiment.evaluate_only:
            cell.trained_samplers.append(experiment.sampler)
    return list(cells.values())


class Driver:
    """Launches steps under the main run, reusing finished ones, and records what it used."""

    def __init__(self, config: MainConfig, main_run_id: str, experiment_id: str, threads: int):
        self.config = config
        self.main_run_id = main_run_id
        self.experiment_id = experiment_id
        self.backend_config = read_backend_config(config.backend_config)
        processes.export_for_steps({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)})
        self.records: list[dict] = []
        self._lock = threading.Lock()

    def run(self, step: str, step_config, record: dict, tags: dict | None = None) -> str:
        """The run id of a finished `step` with this configuration: reused, resumed or launched."""

        def launch(resume: str | None) -> str:
            return launch_step(
                step,
                step_config,
                self.main_run_id,
                self.experiment_id,
                name=" ".join([step, *(str(v) for k, v in record.items() if k != "train_run_id")]),
                env_manager=self.config.env_manager,
                backend=self.config.backend,
                backend_config=self.backend_config,
                extra={"resume": resume} if resume else {},
                tags={"pipeline.preset": self.config.preset, **(tags or {})},
            )

        run_id, how = reuse_or_launch(step, step_config, self.experiment_id, self.config.reuse, launch)
        with self._lock:
            self.records.append({"step": step, **record, "run_id": run_id, "reused": how == "reused", "how": how})
        print(f"main: {step} {' '.join(str(v) for v in record.values())}: {how} ({run_id})", flush=True)
        return run_id


def train_config(config: MainConfig, settings: dict, cell: Cell, seed: int, data: str) -> TrainConfig:
    """The train step of one cell and seed (its samplers: the cell's that need no fitting, less those it is
    only evaluated with, so that adding such a sampler reuses the training)."""
    train_samplers = [s for s in cell.trained_samplers if not needs_fit(parse_sampler(s))] or ["normal:0,1"]
    return TrainConfig(
        data=data,
        loss=cell.loss,
        forward=cell.forward,
        latent_size=settings["latent_size"],
        hidden_size=settings["hidden_size"],
        epochs=settings["epochs"],
        batch_size=settings["batch_size"],
        lr=settings["lr"],
        seed=seed,
        device=config.device,
        samplers="+".join(train_samplers),
        data_root=config.data_root,
    )


def evaluate_config(config: MainConfig, settings: dict, cell: Cell, train_run_id: str) -> EvaluateConfig:
    return EvaluateConfig(
        model=train_run_id,
        samplers="+".join(cell.samplers),
        n_samples=settings["n_samples"],
        iwae_k=settings["iwae_k"],
        seed=0,
        device=config.device,
    )


def check_step_settings(config: MainConfig, settings: dict, cells: list[Cell], data: str) -> None:
    """Build every step configuration main will launch, with stand-in run ids for the references
    not known yet, so each setting is checked by the step's own dataclass before main's run opens
    (`-P epochs=0` or `-P n_samples=-10` exit 2 at once, not after the data is prepared)."""
    stand_in = "0" * 32
    data = data if tracking.RUN_ID_PATTERN.match(data) else stand_in
    for cell in cells:
        for seed in settings["seeds"]:
            train_config(config, settings, cell, seed, data)
        evaluate_config(config, settings, cell, stand_in)
    ReportConfig(source=stand_in, output=str(tracking.local_path(config.report_dir)))


def main(config: MainConfig, parent_run_id: str | None = None) -> str:
    """Run the study; returns the main run's id."""
    settings = resolve_settings(config)
    experiments = study.select(settings["experiments"])
    cells = cells_of(experiments)
    slots, threads = parallel_slots(config, len(cells) * len(settings["seeds"]))
    read_backend_config(config.backend_config)  # refuse a bad file before the run opens
    data = settings["data"]
    prepare = None
    if not tracking.RUN_ID_PATTERN.match(data):
        prepare = PrepareDataConfig(dataset=data, seed=0, data_root=config.data_root)
    else:
        tracking.get_run(data, "data")

    check_step_settings(config, settings, cells, data)
    search_run_id = resolve_search(config.search)
    tags = {"pipeline.preset": config.preset, **({SEARCH_TAG: search_run_id} if search_run_id else {})}
    with tracking.step_run("main", f"main {config.preset}", config, parent_run_id=parent_run_id, tags=tags) as run:
        tracking.sweep_stale_runs("main", key_tags("main", config), [run.info.experiment_id])  # a killed earlier main
        tracking.log_config(config)
        mlflow.log_dict(settings, "main/settings.json")
        driver = Driver(config, run.info.run_id, run.info.experiment_id, threads)
        print(
            f"main: {len(experiments)} experiments in {len(cells)} cells x {len(settings['seeds'])} seeds, "
            f"{slots} steps at once with {threads} threads each",
            flush=True,
        )
        code = tracking.code_version()
        print(f"main: code version {code.described()}", flush=True)
        if config.reuse == "clean" and code.dirty:
            print(
                "main: reuse=clean reuses runs of committed code only, and these files are not committed: every "
                "step runs (commit them, or pass -P reuse=dirty to reuse runs of this very code)",
                flush=True,
            )
        if prepare is not None:
            data = driver.run("prepare_data", prepare, {"dataset": prepare.dataset})

        def train_then_evaluate(cell: Cell, seed: int) -> None:
            labels = {"cell": cell.name, "seed": seed}
            tags = {
                "pipeline.cell": cell.name,
                "pipeline.experiments": ", ".join(cell.experiments),
                "pipeline.samplers": "+".join(cell.samplers),
                "pipeline.seed": str(seed),
            }
            train_id = driver.run("train", train_config(config, settings, cell, seed, data), labels, tags=tags)
            evaluate = evaluate_config(config, settings, cell, train_id)
            evaluate_id = driver.run("evaluate", evaluate, {**labels, "train_run_id": train_id}, tags=tags)
            if seed == min(settings["seeds"]):  # evaluate's generator: the decoder and the cell's gmm:K fits
                register_generator(
                    evaluate_id,
                    f"{GENERATOR_NAME}-{cell.name}",
                    REGISTRY_ALIAS,
                    tags={"main_run_id": run.info.run_id, "train_run_id": train_id, "seed": str(seed)},
                )

        failures = []
        with ThreadPoolExecutor(max_workers=slots) as pool:
            futures = {
                pool.submit(train_then_evaluate, cell, seed): (cell.name, seed)
                for cell in cells
                for seed in settings["seeds"]
            }
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    if future.exception() is not None:
                        failures.append(f"{futures[future][0]} seed {futures[future][1]}: {future.exception()}")
        plan = {
            "preset": config.preset,
            "settings": settings,
            "experiments": [e.plan_entry() for e in experiments],
            "steps": sorted(driver.records, key=lambda r: ("prepare_data", "train", "evaluate").index(r["step"])),
        }
        mlflow.log_dict(plan, "main/steps.json")
        counts = {how: sum(r["how"].startswith(how) for r in driver.records) for how in ("ran", "reused", "resumed")}
        mlflow.log_metrics({f"steps_{how}": n for how, n in counts.items()})
        if failures:
            mlflow.set_tag("failure_reason", "; ".join(failures))
            raise StepFailed("steps failed: " + "; ".join(failures))
        write_report(driver, config, search_run_id)
        print(
            f"main: done: {counts['ran']} steps ran, {counts['reused']} reused, {counts['resumed']} resumed; "
            f"report in {tracking.local_path(config.report_dir)}/",
            flush=True,
        )
        return run.info.run_id


def write_report(driver: Driver, config: MainConfig, search_run_id: str | None = None) -> None:
    """The report of this run's steps: built by the `report` step, or copied from a finished report
    run over exactly the same step runs, linked search and code version (under the same reuse rule as steps)."""
    version = tracking.code_version("report").version
    runs = ",".join(sorted(r["run_id"] for r in driver.records))
    linked = f";search={search_run_id}" if search_run_id else ""  # no link: the key stays what it was
    inputs = hashlib.sha256(f"{version};{runs}{linked}".encode()).hexdigest()[:32]
    tracking.sweep_stale_runs("report", {REPORT_INPUTS_TAG: inputs}, [driver.experiment_id])
    previous = newest_finished("report", {REPORT_INPUTS_TAG: inputs}, [driver.experiment_id])
    output = tracking.local_path(config.report_dir)
    if previous is not None and reuse_allowed(config.reuse, "report") and reusable_by(config.reuse, previous):
        copy_artifacts(previous.info.run_id, "report", driver.main_run_id, output)
        print(f"main: report reused from run {previous.info.run_id}", flush=True)
        return
    report = ReportConfig(source=driver.main_run_id, output=str(output))
    launch_step(
        "report",
        report,
        driver.main_run_id,
        driver.experiment_id,
        f"report main {config.preset}",
        env_manager=config.env_manager,
        backend=config.backend,
        backend_config=driver.backend_config,
        tags={REPORT_INPUTS_TAG: inputs, "pipeline.preset": config.preset},
    )
