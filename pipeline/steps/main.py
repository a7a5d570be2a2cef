"""The `main` step: the whole study from one command, every step reused when it already ran.

prepare_data once, then train -> evaluate for every model cell (loss x forward pass) of the preset
and every seed, then the report. Each step is a real MLflow project step (`mlflow.run`, the
parent's environment manager) and a child run of this one. Independent steps run concurrently,
each with its share of the cores. A step whose finished run has the same configuration key (its
normalized params, upstream run ids included) and code version is reused instead of rerun (see
docs/reuse.md); a training that was interrupted resumes from its last checkpoint.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import mlflow

from pipeline import tracking
from pipeline.configs import (
    NO_VALUE,
    PRESET_VALUE,
    EvaluateConfig,
    JudgesConfig,
    MainConfig,
    PrepareDataConfig,
    ReportConfig,
    TrainConfig,
)
from pipeline.core.experiments import PRESETS, SETTING_TYPES, Experiment, Settings, cell_name, select
from pipeline.core.model.samplers import needs_fit, parse_sampler
from pipeline.errors import bad_parameter
from pipeline.process import processes
from pipeline.process.jobs import Jobs, run_concurrently
from pipeline.tracking.artifacts import copy_artifacts
from pipeline.tracking.descriptions import copy_description, run_page
from pipeline.tracking.registry import register_generator
from pipeline.tracking.reuse import StepFailed, key_tags, launch_step, reusable_by, reuse_allowed, reuse_or_launch
from pipeline.tracking.runs import newest_finished

REPORT_INPUTS_TAG = "pipeline.report_inputs"
SEARCH_TAG = "pipeline.search_run_id"  # the search run whose report the study's report links to
GENERATOR_NAME = "vae-generator"  # each cell's as vae-generator-<cell>, alias @main: the newest main's
REGISTRY_ALIAS = "main"
STEP_ORDER = ("prepare_data", "judges", "train", "evaluate")  # of the steps in main/steps.json
STAND_IN = "0" * 32  # a run id not known yet, where a step configuration is only checked


@dataclass(frozen=True)
class Cell:
    """One trained model configuration and the samplers its experiments draw with."""

    loss: str
    forward: str
    samplers: tuple[str, ...]
    experiments: tuple[str, ...]  # their names: E1-E5 or "cell sampler"
    trained_samplers: tuple[str, ...]  # those the train step draws grids with

    @property
    def name(self) -> str:
        return cell_name(self.loss, self.forward)


def cells_of(experiments: list[Experiment]) -> list[Cell]:
    """The experiments' cells, in order of first appearance, each with its experiments' samplers."""
    by_cell: dict[str, list[Experiment]] = {}
    for experiment in experiments:
        by_cell.setdefault(experiment.cell, []).append(experiment)
    return [
        Cell(
            group[0].loss,
            group[0].forward,
            samplers=tuple(e.sampler for e in group),
            experiments=tuple(e.name for e in group),
            trained_samplers=tuple(e.sampler for e in group if not e.evaluate_only),
        )
        for group in by_cell.values()
    ]


@dataclass(frozen=True)
class Plan:
    """What main runs, decided before its run opens: the preset's settings with the user's overrides,
    the experiments, their cells, and the step configurations built from them."""

    preset: str
    settings: Settings
    experiments: tuple[Experiment, ...]
    cells: tuple[Cell, ...]
    prepare: PrepareDataConfig | None  # None when `data` names a prepare_data run
    device: str
    data_root: str

    @property
    def trainings(self) -> list[tuple[Cell, int]]:
        """Every (cell, seed) to train and evaluate."""
        return [(cell, seed) for cell in self.cells for seed in self.settings.seeds]

    def train_config(self, cell: Cell, seed: int, data: str) -> TrainConfig:
        """The train step of one cell and seed (its samplers: the cell's that need no fitting, less those it
        is only evaluated with, so that adding such a sampler reuses the training)."""
        samplers = [s for s in cell.trained_samplers if not needs_fit(parse_sampler(s))] or ["normal:0,1"]
        settings = self.settings
        return TrainConfig(
            data=data,
            loss=cell.loss,
            forward=cell.forward,
            latent_size=settings.latent_size,
            hidden_size=settings.hidden_size,
            epochs=settings.epochs,
            batch_size=settings.batch_size,
            lr=settings.lr,
            seed=seed,
            device=self.device,
            precision=settings.precision,
            samplers="+".join(samplers),
            data_root=self.data_root,
        )

    def judges_config(self, data: str) -> JudgesConfig:
        """The judges of the prepared data: trained beside the first trainings, loaded by every evaluation."""
        return JudgesConfig(data=data, device=self.device)

    def evaluate_config(self, cell: Cell, train_run_id: str) -> EvaluateConfig:
        return EvaluateConfig(
            model=train_run_id,
            samplers="+".join(cell.samplers),
            n_samples=self.settings.n_samples,
            iwae_k=self.settings.iwae_k,
            seed=0,
            device=self.device,
        )

    def record(self, steps: list[dict]) -> dict:
        """main/steps.json: what the report reads back."""
        return {
            "preset": self.preset,
            "settings": self.settings.as_record(),
            "experiments": [e.plan_entry() for e in self.experiments],
            "steps": sorted(steps, key=lambda r: STEP_ORDER.index(r["step"])),
        }


def settings_of(config: MainConfig, preset: Settings) -> Settings:
    """The preset's settings with every parameter the user gave instead of `preset`, typed."""
    given = {
        name: Settings.parse(name, getattr(config, name))
        for name in SETTING_TYPES
        if getattr(config, name) != PRESET_VALUE
    }
    return dataclasses.replace(preset, **given)


def make_plan(config: MainConfig, preset: Settings) -> Plan:
    """main's plan, from its config and its preset's settings. Every step configuration it will launch is
    built now, with stand-in run ids for the references not known yet, so the step's own dataclass checks
    each setting before main's run opens (`-P epochs=0` exits 2 at once, not after the data is prepared)."""
    settings = settings_of(config, preset)
    experiments = tuple(select(settings.experiments))
    prepare = None
    if not tracking.RUN_ID_PATTERN.match(settings.data):
        prepare = PrepareDataConfig(dataset=settings.data, seed=0, data_root=config.data_root)
    cells = tuple(cells_of(list(experiments)))
    plan = Plan(config.preset, settings, experiments, cells, prepare, config.device, config.data_root)
    data = settings.data if prepare is None else STAND_IN
    plan.judges_config(data)
    for cell, seed in plan.trainings:
        plan.train_config(cell, seed, data)
    for cell in plan.cells:
        plan.evaluate_config(cell, STAND_IN)
    ReportConfig(source=STAND_IN, output=config.report_dir)
    return plan


def parallel_slots(config: MainConfig, independent: int, cores: int) -> tuple[int, int]:
    """(steps at once, threads per step) on `cores` usable cores: by default one step per core, never more
    steps than cores' worth of threads, since two processes with 2 OpenMP threads each on 2 cores crawl."""
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


class Driver:
    """Launches steps under the main run, reusing finished ones, and records what it used."""

    def __init__(self, config: MainConfig, main_run_id: str, experiment_id: str, threads: int, backend_config):
        self.config = config
        self.main_run_id = main_run_id
        self.experiment_id = experiment_id
        self.backend_config = backend_config
        processes.export_for_steps({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)})
        self.records: list[dict] = []
        self._lock = threading.Lock()

    def run(self, step: str, step_config, name: str, labels: dict, tags: dict | None = None) -> str:
        """The run id of a finished `step` with this configuration: reused, resumed or launched as run `name`;
        recorded in main's plan with its `labels`."""

        def launch(resume: str | None) -> str:
            return launch_step(
                step,
                step_config,
                self.main_run_id,
                self.experiment_id,
                name=name,
                env_manager=self.config.env_manager,
                backend=self.config.backend,
                backend_config=self.backend_config,
                extra={"resume": resume} if resume else {},
                tags={"pipeline.preset": self.config.preset, **(tags or {})},
            )

        run_id, how = reuse_or_launch(step, step_config, self.experiment_id, self.config.reuse, launch)
        with self._lock:
            self.records.append({"step": step, **labels, "run_id": run_id, "reused": how == "reused", "how": how})
        print(f"main: {name}: {how} ({run_id})", flush=True)
        return run_id

    def counts(self) -> dict[str, int]:
        """Steps that ran, were reused and were resumed."""
        return {how: sum(r["how"].startswith(how) for r in self.records) for how in ("ran", "reused", "resumed")}


def cell_tags(cell: Cell, seed: int) -> dict[str, str]:
    return {
        "pipeline.cell": cell.name,
        "pipeline.experiments": ", ".join(cell.experiments),
        "pipeline.samplers": "+".join(cell.samplers),
        "pipeline.seed": str(seed),
    }


def train(driver: Driver, plan: Plan, cell: Cell, seed: int, data: str) -> Jobs:
    """One cell and seed's training; its evaluation is the job it leaves, queued behind the trainings that
    wait, so the steps at once stay busy to the end (the short evaluations last)."""
    labels = {"cell": cell.name, "seed": seed}
    train_id = driver.run(
        "train", plan.train_config(cell, seed, data), f"train {cell.name} {seed}", labels, cell_tags(cell, seed)
    )
    return {f"evaluate {cell.name} {seed}": functools.partial(evaluate, driver, plan, cell, seed, train_id)}


def evaluate(driver: Driver, plan: Plan, cell: Cell, seed: int, train_id: str) -> Jobs:
    """One cell and seed's evaluation, and the lowest seed's generator registered (evaluate's: the decoder
    and the cell's gmm:K fits)."""
    labels = {"cell": cell.name, "seed": seed, "train_run_id": train_id}
    step = plan.evaluate_config(cell, train_id)
    evaluate_id = driver.run("evaluate", step, f"evaluate {cell.name} {seed}", labels, cell_tags(cell, seed))
    if seed == min(plan.settings.seeds):
        register_generator(
            evaluate_id,
            f"{GENERATOR_NAME}-{cell.name}",
            REGISTRY_ALIAS,
            tags={"main_run_id": driver.main_run_id, "train_run_id": train_id, "seed": str(seed)},
        )
    return {}


def run_judges(driver: Driver, plan: Plan, data: str) -> Jobs:
    driver.run("judges", plan.judges_config(data), f"judges {plan.settings.data}", {})
    return {}


def announce(plan: Plan, slots: int, threads: int, reuse: str) -> None:
    """What main is about to do, and the code version its steps' reuse keys hold."""
    print(
        f"main: {len(plan.experiments)} experiments in {len(plan.cells)} cells x {len(plan.settings.seeds)} seeds, "
        f"{slots} steps at once with {threads} threads each",
        flush=True,
    )
    code = tracking.code_version()
    print(f"main: code version {code.described()}", flush=True)
    if reuse == "clean" and code.dirty:
        print(
            "main: reuse=clean reuses runs of committed code only, and these files are not committed: every "
            "step runs (commit them, or pass -P reuse=dirty to reuse runs of this very code)",
            flush=True,
        )


def main(config: MainConfig) -> str:
    """Run the study; returns the main run's id."""
    plan = make_plan(config, PRESETS[config.preset])
    slots, threads = parallel_slots(config, 1 + len(plan.trainings), processes.usable_cores())  # judges too
    backend_config = read_backend_config(config.backend_config)
    if plan.prepare is None:
        tracking.get_run(plan.settings.data, "data")
    search_run_id = resolve_search(config.search)
    tags = {"pipeline.preset": config.preset, **({SEARCH_TAG: search_run_id} if search_run_id else {})}
    with tracking.step_run("main", f"main {config.preset}", config, tags=tags) as run:
        tracking.sweep_stale_runs("main", key_tags("main", config), [run.info.experiment_id])  # a killed earlier main
        tracking.log_config(config)
        mlflow.log_dict(plan.settings.as_record(), "main/settings.json")
        driver = Driver(config, run.info.run_id, run.info.experiment_id, threads, backend_config)
        announce(plan, slots, threads, config.reuse)
        data = plan.settings.data
        if plan.prepare is not None:
            data = driver.run("prepare_data", plan.prepare, f"prepare_data {data}", {"dataset": data})
        judges = functools.partial(run_judges, driver, plan, data)
        jobs = {"judges": judges} | {  # first: the evaluations load them, the trainings do not need them
            f"train {cell.name} {seed}": functools.partial(train, driver, plan, cell, seed, data)
            for cell, seed in plan.trainings
        }
        failures = run_concurrently(slots, jobs)
        mlflow.log_dict(plan.record(driver.records), "main/steps.json")
        counts = driver.counts()
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
        page = run_page(run.info.experiment_id, run.info.run_id, mlflow.get_tracking_uri())
        print(f"main: the verdicts on the run's page in the MLflow UI: {page}", flush=True)
        return run.info.run_id


def write_report(driver: Driver, config: MainConfig, search_run_id: str | None = None) -> None:
    """The report of this run's steps: built by the `report` step, or copied from a finished report
    run over exactly the same step runs, linked search and code version (under the same reuse rule as steps)."""
    version = tracking.code_version("report").version
    runs = ",".join(sorted(r["run_id"] for r in driver.records))
    linked = f";search={search_run_id}" if search_run_id else ""  # only a linked search adds to the key
    inputs = hashlib.sha256(f"{version};{runs}{linked}".encode()).hexdigest()[:32]
    tracking.sweep_stale_runs("report", {REPORT_INPUTS_TAG: inputs}, [driver.experiment_id])
    previous = newest_finished("report", {REPORT_INPUTS_TAG: inputs}, [driver.experiment_id])
    output = tracking.local_path(config.report_dir)
    if previous is not None and reuse_allowed(config.reuse, "report") and reusable_by(config.reuse, previous):
        copy_artifacts(previous.info.run_id, "report", driver.main_run_id, output)
        copy_description(previous.data.tags["source_run_id"], driver.main_run_id)  # the verdicts on the run page
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
