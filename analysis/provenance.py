"""What the report says about where its numbers come from: the title (preset, date, code version),
the setup line, and the provenance rows and runs table, each hash and the evaluation settings stated
once, short (run ids 8 characters, digests 12, commits 7), each run linked to its MLflow UI page."""

from __future__ import annotations

import math
import re
import subprocess
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from analysis import page, sources
from analysis.sources import StudyRuns
from analysis.tables import Table
from pipeline.core.judges import knn
from pipeline.core.scores.spread import number
from pipeline.tracking.code import CODE_TAG, COMMIT_TAG, DIRTY_TAG
from pipeline.tracking.params import run_param


def short(run_id: str) -> str:
    return run_id[:8]


class Record:
    """The study's provenance, read once from the tracking server."""

    def __init__(self, study: StudyRuns, uri: str, report_run_id: str):
        self.study, self.uri, self.report_run_id = study, uri, report_run_id
        self._classifiers: list[Run] | None = None

    def classifiers(self) -> list[Run]:
        """The classifier runs (the judges) the study's evaluations used, fetched once."""
        if self._classifiers is None:
            ids = sorted({e.run.data.tags.get("classifier_run_id") for e in self.study.evaluations} - {None})
            client, self._classifiers = MlflowClient(), []
            for classifier_id in ids:
                try:
                    self._classifiers.append(client.get_run(classifier_id))
                except MlflowException:  # deleted since: provenance lists what is left
                    pass
        return self._classifiers

    def judges(self) -> str:
        """Both judges with their test accuracy, as their classifier runs logged it."""
        found = []
        for run in self.classifiers():
            metrics = run.data.metrics
            second = metrics.get("judge2_test_accuracy")
            found.append(
                f"a CNN (test accuracy {number(metrics.get('test_accuracy', math.nan))}) and a {knn.NAME} "
                f"({number(second) if second is not None else 'not logged: evaluations before the second judge'})"
            )
        return "; ".join(found) or "none recorded"

    def precision(self) -> str:
        """The train runs' precision ("32" for runs from before the setting: they trained in float32), with
        each value's count of runs where they differ."""
        counts = Counter(run_param(run, "precision", "32") for run in self.study.train.values())
        if len(counts) <= 1:
            return next(iter(counts), "32")
        (first, n), *others = sorted(counts.items())
        return f"{first} on {n} of {counts.total()} train runs, " + ", ".join(f"{v} on {k}" for v, k in others)

    def setup(self) -> str:
        """One line: data, epochs, training precision, seeds, samples per sampler, judges."""
        study, settings = self.study, self.study.plan.get("settings", {})
        cells = sorted({e["cell"] for e in study.experiments})
        n_samples = settings.get("n_samples")
        samples = f"{n_samples:,}" if isinstance(n_samples, int) else str(n_samples)
        return (
            f"Setup: data {sources.public(str(settings.get('data', '?')))}; {len(study.experiments)} experiments "
            f"in {len(cells)} model cells; {settings.get('epochs', '?')} epochs; training precision "
            f"{self.precision()}; training seeds "
            f"{', '.join(map(str, study.seeds)) or 'none'}; {samples} samples per sampler (nll with "
            f"{settings.get('iwae_k', '?')} importance samples); judges of class identity: {self.judges()}."
        )

    def provenance(self, tables: list[Table], labels: list[str], converged: dict) -> tuple[list, list]:
        """(label, value) rows, each hash and the evaluation settings stated once, and the runs table."""
        runs = [(step, what, run) for step, what, run in self.study.runs()]
        runs += [
            ("classifier", f"the judges, on source data {r.data.tags.get('source_digest', '?')[:12]}", r)
            for r in self.classifiers()
        ]
        versions = Counter(version_text(r) for _, _, r in runs)
        settings = Counter(e.settings for e in self.study.evaluations)
        label_of = dict(zip((t.settings for t in tables), labels))
        rows = self._rows(len(runs), versions, settings, label_of)
        if len(tables) > 1:
            rows.append(("verdicts computed on", labels[0]))
        if self.study.missing:
            rows.append(
                (
                    "runs named by main/steps.json but missing on the server",
                    ", ".join(short(r) for r in self.study.missing),
                )
            )
        listed = self._runs_table(runs, len(versions) == 1, len(settings) > 1, label_of, converged)
        return [(label, sources.public(value)) for label, value in rows], listed

    def _rows(self, runs: int, versions: Counter, settings: Counter, label_of: dict) -> list[tuple[str, str]]:
        study, main = self.study, self.study.main
        digests = Counter(r.data.params.get("data_digest", "?")[:12] for r in study.train.values())
        sources_ = Counter(e.run.data.tags.get("source_digest", "?")[:12] for e in study.evaluations)
        return [
            (
                "main run",
                (
                    f"{main.info.run_name} ({short(main.info.run_id)}), preset {study.plan.get('preset')}: "
                    f"the run that wrote this report{' (it ends after logging it)' if _running(main) else ''}"
                ),
            ),
            ("report run", short(self.report_run_id)),
            ("tracking server", sources.public_uri(self.uri)),
            ("code version", "; ".join(f"{v} on {n} of {runs} runs" for v, n in versions.most_common())),
            ("findings declared", declarations_text(study.train.values())),
            ("data digest", "; ".join(f"{d} ({n} train runs)" for d, n in sorted(digests.items())) or "none"),
            (
                "source data digest",
                "; ".join(f"{d} ({n} evaluate runs)" for d, n in sorted(sources_.items())) or "none",
            ),
            (
                "evaluation settings",
                "; ".join(
                    f"{label_of.get(s, '') + ': ' if len(settings) > 1 else ''}{_short_settings(s)} ({n} runs)"
                    for s, n in settings.items()
                )
                or "none",
            ),
            (
                "identifiers",
                (
                    "run ids and hashes are shortened (8 and 12 characters; code versions 7); each run's "
                    "link opens its page in the MLflow UI"
                ),
            ),
        ]

    def _runs_table(self, runs: list, one_version: bool, several_settings: bool, label_of: dict, converged: dict):
        """(step, what, code version or "", status, convergence, link) per run."""
        main = self.study.main
        trained = {run.info.run_id: key for key, run in self.study.train.items()}
        evaluated = {e.run_id: e.settings for e in self.study.evaluations}
        listed = []
        for step, what, run in runs:
            state = converged[trained[run.info.run_id]].text() if run.info.run_id in trained else ""
            if run.info.run_id in evaluated:
                setting = label_of.get(evaluated[run.info.run_id], "")
                what = f"{what.split(';')[0]}{'; ' + setting if several_settings else ''}"
            status = "wrote this report" if run is main and _running(main) else run.info.status
            listed.append(
                (
                    step,
                    sources.public(what),
                    "" if one_version else version_text(run),
                    status,
                    state,
                    page.Link(short(run.info.run_id), sources.run_link(run, self.uri)),
                )
            )
        return listed

    def title(self) -> str:
        """The preset, the study's date (its main run's start, UTC) and the short code version."""
        main = self.study.main
        day = datetime.fromtimestamp(main.info.start_time / 1000, tz=UTC).strftime("%Y-%m-%d")
        trained = Counter(version_text(run) for run in self.study.train.values())  # a main run without the tag
        version = version_text(main) if main.data.tags.get(CODE_TAG) or not trained else trained.most_common(1)[0][0]
        return f"VAE study report: preset {self.study.plan.get('preset')}, {day}, code {version}"


DECLARATIONS = ("pipeline/core/findings/declarations.py", "pipeline/core/findings/reasons.py")


def declarations_text(trainings) -> str:
    """The commit that last changed the findings' declarations before the trainings' code commit: what
    the verdicts were declared as before these runs, as git records it."""
    commits = Counter(run.data.tags.get(COMMIT_TAG, "none") for run in trainings)
    commit = commits.most_common(1)[0][0] if commits else "none"
    if commit == "none":
        return "the trainings record no git commit"
    found = subprocess.run(
        ["git", "log", "-1", "--format=%h %cs", commit, "--", *DECLARATIONS],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1], check=False,
    )  # fmt: skip
    if found.returncode != 0 or not found.stdout.strip():
        return f"not found in this checkout's history (the trainings' commit {commit[:7]})"
    declared, day = found.stdout.split()
    return f"{declared} ({day}), {', '.join(DECLARATIONS)} as committed before the trainings' code ({commit[:7]})"


def _running(run: Run) -> bool:
    return run.info.status == "RUNNING"


def version_text(run: Run) -> str:
    """A run's code version, short: its content hash (7 characters) at its git commit (7), +dirty when the
    code differed from that commit (pipeline/tracking/code.py)."""
    tags = run.data.tags
    version = tags.get(CODE_TAG)
    if version is None:
        return "not recorded"
    kind, _, value = version.partition(":")
    text = value[:7] if kind == "code" else f"{kind}:{value[:7]}"
    commit = tags.get(COMMIT_TAG, "none")
    if commit != "none":
        text += f" at {commit[:7]}"
    return text + ("+dirty" if tags.get(DIRTY_TAG) == "true" else "")


def _short_settings(settings: str) -> str:
    """The evaluation settings with the classifier run id shortened."""
    return re.sub(r"(classifier=)([0-9a-f]{32})", lambda m: m.group(1) + short(m.group(2)), settings)
