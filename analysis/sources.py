"""Reading a study back out of the tracking server: the main run, its plan, and the step runs it names.

Everything comes through MlflowClient and artifact downloads, never from local files the steps
wrote, so the report builds the same against a remote server as against the local SQLite store.
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from pipeline import tracking
from pipeline.errors import InputError
from pipeline.tracking.descriptions import run_page
from pipeline.tracking.runs import SAMPLER_STEP, children_of, finished_runs

PLAN_ARTIFACT = "main/steps.json"
MAIN_STEP = "main"


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


@dataclass
class Evaluation:
    """One evaluate run of one trained model (cell, seed), as main recorded it, with its samplers' child
    runs by sampler key: the model's figures are the evaluate run's metrics, a sampler's its child's."""

    cell: str
    seed: int
    run: Run
    train_run_id: str
    samplers: dict[str, Run] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return self.run.info.run_id

    @property
    def settings(self) -> str:
        """The exact evaluation settings (sample count, importance samples, seed, classifier run)."""
        return self.run.data.tags.get(tracking.SETTINGS_TAG, "settings not recorded")

    def metric(self, name: str) -> float | None:
        """A model-level metric of the evaluate run (nll, fid_floor, ...)."""
        return _finite(self.run.data.metrics.get(name))

    def sampler_metric(self, sampler_key: str, name: str) -> float | None:
        """A metric of the sampler's child run (fid, precision, ...); None when it was not scored."""
        child = self.samplers.get(sampler_key)
        return None if child is None else _finite(child.data.metrics.get(name))

    def sampler_tag(self, sampler_key: str, name: str) -> str | None:
        """A tag of the sampler's child run (max_class, max_class_judge2, ...)."""
        child = self.samplers.get(sampler_key)
        return None if child is None else child.data.tags.get(name)


@dataclass
class StudyRuns:
    """The main run, its plan (main/steps.json) and the step runs the plan names."""

    main: Run
    plan: dict
    train: dict[tuple[str, int], Run] = field(default_factory=dict)
    evaluations: list[Evaluation] = field(default_factory=list)
    prepare: list[Run] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # run ids the plan names that the server no longer has

    @property
    def experiments(self) -> list[dict]:
        return self.plan.get("experiments", [])

    @property
    def seeds(self) -> list[int]:
        return sorted({seed for _, seed in self.train})

    def runs(self) -> list[tuple[str, str, Run]]:
        """(step, what it is in the plan, run) for every run of the study, main first."""
        listed = [("main", str(self.plan.get("preset", "")), self.main)]
        listed += [("prepare_data", r.info.run_name or "", r) for r in self.prepare]
        listed += [("train", f"{cell} seed {seed}", self.train[(cell, seed)]) for cell, seed in sorted(self.train)]
        listed += [
            ("evaluate", f"{e.cell} seed {e.seed}; {e.settings}", e.run)
            for e in sorted(self.evaluations, key=lambda e: (e.cell, e.seed, e.run_id))
        ]
        return listed


def _has_plan(client: MlflowClient, run_id: str) -> bool:
    try:
        return any(item.path == PLAN_ARTIFACT for item in client.list_artifacts(run_id, PLAN_ARTIFACT.split("/")[0]))
    except Exception:  # an unreachable artifact store reads as no plan
        return False


def find_main_run(source: str) -> Run:
    """The main run that `source` names: a main run id, or an experiment name (its newest finished
    main run that holds main/steps.json). An InputError naming 'source' otherwise."""
    client = MlflowClient()
    if tracking.RUN_ID_PATTERN.match(source):
        try:
            run = client.get_run(source)
        except Exception:
            run = None
        if run is not None:
            step = run.data.tags.get(tracking.STEP_TAG)
            if step != MAIN_STEP:
                raise InputError(
                    f"parameter 'source': run {source} is a {step!r} run; allowed: a main run id "
                    "| an experiment name | a search run id"
                )
            if not _has_plan(client, source):
                raise InputError(
                    f"parameter 'source': main run {source} has no artifact {PLAN_ARTIFACT} "
                    "(it has not finished its steps yet?)"
                )
            return run
    experiment = client.get_experiment_by_name(source)
    if experiment is None:
        raise InputError(
            f"parameter 'source': got {source!r}, which is neither a run nor an experiment in "
            f"{mlflow.get_tracking_uri()}; allowed: a main run id | an experiment name | a search run id"
        )
    for run in finished_runs(MAIN_STEP, experiment_ids=[experiment.experiment_id]):
        if _has_plan(client, run.info.run_id):
            return run
    raise InputError(
        f"parameter 'source': experiment {source!r} has no finished main run with {PLAN_ARTIFACT}; "
        "allowed: a main run id | an experiment name"
    )


def load_plan(run_id: str, folder: Path) -> dict:
    local = MlflowClient().download_artifacts(run_id, PLAN_ARTIFACT, str(folder))
    return json.loads(Path(local).read_text())


def collect(main: Run, folder: Path) -> StudyRuns:
    """The runs main/steps.json names, fetched from the server; ids it no longer has are listed as missing."""
    client = MlflowClient()
    study = StudyRuns(main, load_plan(main.info.run_id, folder))

    def fetch(run_id: str) -> Run | None:
        try:
            return client.get_run(run_id)
        except Exception:
            study.missing.append(run_id)
            return None

    for step in study.plan.get("steps", []):
        run = fetch(step["run_id"])
        if run is None:
            continue
        if step["step"] == "prepare_data":
            study.prepare.append(run)
        elif step["step"] == "train":
            study.train[(step["cell"], int(step["seed"]))] = run
        elif step["step"] == "evaluate":
            study.evaluations.append(Evaluation(step["cell"], int(step["seed"]), run, step.get("train_run_id", "")))
    attach_samplers(study.evaluations)
    if study.missing:
        warnings.warn(f"runs named by {PLAN_ARTIFACT} but not on the server: {', '.join(study.missing)}", stacklevel=2)
    return study


def attach_samplers(evaluations: list[Evaluation]) -> None:
    """Each evaluation's finished sampler runs by sampler key, fetched in one search for the whole study."""
    found = children_of([e.run for e in evaluations], SAMPLER_STEP)
    for evaluation in evaluations:
        for child in sorted(found.get(evaluation.run_id, []), key=lambda run: run.info.start_time):
            if child.info.status == "FINISHED":
                evaluation.samplers[child.data.tags.get("sampler_key", "")] = child


@contextmanager
def quiet_downloads():
    """No progress bar per artifact download: the report fetches dozens of small files."""
    name = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    saved = os.environ.get(name)
    os.environ.setdefault(name, "false")
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)


def metric_history(run_id: str, key: str) -> list[tuple[int, float]]:
    """(step, value) of a per-epoch metric, in step order."""
    return sorted((m.step, m.value) for m in MlflowClient().get_metric_history(run_id, key))


def download(run_id: str, path: str, folder: Path) -> Path | None:
    """One artifact of a run into `folder`, or None when the run does not have it."""
    target = folder / run_id
    target.mkdir(parents=True, exist_ok=True)
    try:
        return Path(MlflowClient().download_artifacts(run_id, path, str(target)))
    except Exception:
        return None


def class_histogram(
    run_id: str, sampler_key: str, folder: Path, suffix: str = ""
) -> tuple[np.ndarray, np.ndarray | None] | None:
    """(predicted-class counts, the test labels' shares) as the evaluation logged them in
    evaluation/<key>/class_histogram<suffix>.json (suffix "_judge2": the second judge's); None when
    the run has no such table."""
    local = download(run_id, f"evaluation/{sampler_key}/class_histogram{suffix}.json", folder)
    if local is None:
        return None
    table = json.loads(local.read_text())
    columns = table["columns"]
    rows = sorted(table["data"], key=lambda row: row[columns.index("class")])
    counts = np.array([row[columns.index("count")] for row in rows], dtype=float)
    reference = (
        np.array([row[columns.index("test_share")] for row in rows], dtype=float) if "test_share" in columns else None
    )
    return counts, reference


def class_counts(run_id: str, sampler_key: str, folder: Path, suffix: str = "") -> np.ndarray | None:
    """The predicted-class counts the evaluation logged as a table (evaluation/<key>/class_histogram<suffix>.json)."""
    found = class_histogram(run_id, sampler_key, folder, suffix)
    return None if found is None else found[0]


def run_link(run: Run, tracking_uri: str, artifact: str = "") -> str:
    """The run's page (or one of its artifacts) in the MLflow UI's model-training view: absolute under an
    http(s) server, else the UI's relative route."""
    return run_page(run.info.experiment_id, run.info.run_id, tracking_uri, artifact=artifact)


# --- what the page may say about the machine it was built on ------------------------------------

_ABSOLUTE = re.compile(r"(?:(?<=idx:)|(?<![\w/#.:~-]))/[^\s;,'\"()]+")


def public_path(path: str) -> str:
    """A path as the page shows it: relative to the working directory when it lies there or beside it
    (`../shared/data/MNIST/raw`), else only its last two parts."""
    relative = os.path.relpath(path)
    if not relative.startswith(os.path.join(os.pardir, os.pardir)):
        return relative
    return "…/" + "/".join(Path(path).parts[-2:])


def public(text: str) -> str:
    """`text` with every absolute path made public (dataset sources, data roots, run names)."""
    return _ABSOLUTE.sub(lambda match: public_path(match.group(0)), text)


def public_uri(uri: str) -> str:
    """A tracking URI without its local folder: `sqlite:///mlflow.db`; server URIs as they are."""
    scheme, _, rest = uri.partition(":")
    if scheme not in ("sqlite", "file") or not rest.startswith("//"):
        return uri
    path = "/" + rest.lstrip("/")
    relative = os.path.relpath(path)
    return f"{scheme}:///{relative if not relative.startswith(os.pardir) else Path(path).name}"
