"""The `report` step: the study's report, built only from what the tracking server holds.

`python -m pipeline report --source <main run id | experiment name> --output DIR` (or
`mlflow run . -e report`; the step is pipeline/steps/report.py) reads the main run's plan
(main/steps.json) and the train and evaluate runs it names, and writes DIR/report.html (self-
contained), DIR/report.md (+ DIR/images/) and DIR/report.png (a headless browser's screenshot of
the HTML). They are logged under `report/` of the report's own run and of the main run. With a
search run's id as the source it writes the search's report instead (analysis/search_report.py).
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import mlflow
import numpy as np
from mlflow.tracking import MlflowClient

from analysis import browser, dispute_panels, eye, figures, latent, page, search_report, sources, trainings
from analysis.figures import plt
from analysis.page_html import render_html
from analysis.page_markdown import render_markdown, run_description
from analysis.provenance import Record
from analysis.provenance import short as _short
from analysis.sources import StudyRuns
from analysis.tables import Row, Table, build_tables, trained_models
from analysis.verdicts import RULES as VERDICT_RULES
from analysis.verdicts import finding_verdicts
from pipeline import tracking
from pipeline.configs import ReportConfig
from pipeline.core.experiments import STUDY
from pipeline.core.files import atomic_path, writable_folder
from pipeline.core.judges import knn
from pipeline.core.model import convergence
from pipeline.errors import InputError
from pipeline.tracking.descriptions import describe_run

BROWSER_TAG = "report.browser_check"
FILES = ("report.html", "report.md", "report.png")


class ReportCheckFailed(RuntimeError):
    """The browser found an undecoded image or a console error in the written report."""


class Builder:
    """Gathers the report's content from the study's runs (downloads go to `folder`)."""

    def __init__(self, study: StudyRuns, folder: Path, report_run_id: str):
        self.study = study
        self.folder = folder
        self.report_run_id = report_run_id
        self.uri = mlflow.get_tracking_uri()
        self._shares: dict[tuple[str, str, str], np.ndarray | None] = {}
        self._histories: dict | None = None
        self.record = Record(study, self.uri, report_run_id)

    def shares_of(self, row: Row, suffix: str = "") -> dict[int, np.ndarray]:
        """Class shares per seed of a row by one judge (suffix "" the CNN, "_judge2" the k-NN), from
        the logged class histogram tables."""
        found = {}
        key = row.experiment["sampler_key"]
        for evaluation in row.evaluations:
            cache_key = (evaluation.run_id, key, suffix)
            if cache_key not in self._shares:
                counts = sources.class_counts(evaluation.run_id, key, self.folder, suffix)
                self._shares[cache_key] = None if counts is None or not counts.sum() else counts / counts.sum()
            if self._shares[cache_key] is not None:
                found[evaluation.seed] = self._shares[cache_key]
        return found

    def samples(self, table: Table | None) -> tuple[page.Image | None, list[str], str]:
        """One figure for all experiments, each at the lowest training seed, so the columns compare like with like."""
        if table is None or not table.rows:
            return None, [], "No evaluations: no sample grids."
        seed = min((e.seed for row in table.rows for e in row.evaluations), default=None)
        panels, headings, fallbacks = [], [], 0
        for row in table.rows:
            evaluation = next((e for e in row.evaluations if e.seed == seed), None)
            experiment = row.experiment
            name, sampler = experiment["name"], experiment["sampler"]
            title = f"{name.removesuffix(' ' + sampler)}\nsampler {sampler}"
            heading = f"{name}: {experiment['cell']}, sampler {sampler}"
            panel = figures.SamplePanel(title)
            if evaluation is not None:
                heading += f", training seed {seed} (evaluate run {_short(evaluation.run_id)})"
                folder = f"evaluation/{experiment['sampler_key']}"
                grid = sources.download(evaluation.run_id, f"{folder}/grid.png", self.folder)
                if grid is not None:
                    panel.grid = plt.imread(grid)
                    histogram = sources.class_histogram(evaluation.run_id, experiment["sampler_key"], self.folder)
                    if histogram is not None:
                        panel.counts, panel.reference = histogram
                else:  # no plain grid: the evaluate step's grid-beside-histogram figure fills the column
                    old = sources.download(evaluation.run_id, f"{folder}/samples_and_classes.png", self.folder)
                    if old is not None:
                        panel.fallback = plt.imread(old)
                        fallbacks += 1
                        heading += "; an older run without a plain grid: its own grid-beside-histogram figure"
                    else:
                        panel.missing = "no grid logged"
            else:
                heading += ": not evaluated under these settings"
                panel.missing = "not evaluated\nunder these settings"
            panels.append(panel)
            headings.append(heading)
        image = page.Image(
            "samples.png",
            "sample grids of every experiment, each class histogram under its grid",
            figures.png_bytes(figures.samples_figure(panels)),
        )
        note = (
            f"One column per experiment (at most {figures.SAMPLE_COLUMNS} side by side): 64 of the images its "
            f"evaluate run scored, and under them the classifier's histogram of all of them (dashed: the test "
            f"labels' shares; dotted: half a uniform share, the 'covered' line). Training seed {seed}, scores "
            "of the first table's setting."
        )
        if fallbacks:
            note += (
                f" {fallbacks} evaluate run(s) logged no plain grid (older code): their column shows the "
                "evaluate step's own figure, the grid beside its histogram."
            )
        return image, headings, note

    def histories(self) -> dict:
        """Train and validation loss per epoch of every training, fetched once."""
        if self._histories is None:
            self._histories = {
                key: {name: sources.metric_history(run.info.run_id, name) for name in ("train_loss", "val_loss")}
                for key, run in self.study.train.items()
            }
        return self._histories

    def loss_curves(self, improving: set) -> page.Image | None:
        histories = self.histories()
        if not any(points for history in histories.values() for points in history.values()):
            return None
        return page.Image(
            "loss_curves.png",
            "train and validation loss of every training; ▲ still improving fast",
            figures.png_bytes(figures.loss_curves_figure(histories, improving)),
        )

    def latent(self) -> tuple[page.Image | None, page.Image | None, str]:
        samplers: dict[str, list[str]] = defaultdict(list)
        for experiment in self.study.experiments:
            if experiment["sampler"] not in samplers[experiment["cell"]]:
                samplers[experiment["cell"]].append(experiment["sampler"])
        cells, runs = [], {}
        for cell, specs in samplers.items():
            seeds = sorted(seed for c, seed in self.study.train if c == cell)
            if seeds:
                run = self.study.train[(cell, seeds[0])]
                cells.append(latent.CellModel(cell, seeds[0], run.info.run_id, specs))
                runs[cell] = run
        if not cells:
            return None, None, "No trained model of this study is on the server."
        try:
            latent_fig, interpolation_fig = latent.latent_figures(cells, runs)
        except InputError as error:  # a model or its data cannot be fetched: say so on the page
            return None, None, f"The latent views could not be drawn: {error}"
        used = ", ".join(f"{c.cell} seed {c.seed} (train run {_short(c.run_id)})" for c in cells)
        note = (
            f"One model per cell, the lowest training seed: {used}. Coloured points: the encoder's means "
            f"E[z|x] of the test digits (the first {latent.MAX_POINTS} at most), projected to 2-D "
            f"by a PCA fitted on those means; black crosses: {latent.DRAWS} draws of each sampler (seed "
            f"{latent.SEED}; gmm:K fitted on encoded training means as the evaluate step does), projected on "
            "the same axes. A sampler whose crosses fall where no digit was encoded decodes into images "
            "the decoder never learned."
        )
        latent_image = page.Image(
            "latent_space.png",
            "encoded test means and sampler draws, PCA",
            figures.png_bytes(latent_fig),
            "Encoded test means (colour: digit) and sampler draws (black), first two principal "
            "components of the means.",
        )
        interpolation_image = page.Image(
            "interpolations.png",
            "interpolations between two test digits",
            figures.png_bytes(interpolation_fig),
            f"Decodes along the straight line between the encoded means of the first test "
            f"{latent.PAIR[0]} and the first test {latent.PAIR[1]}.",
        )
        return latent_image, interpolation_image, note

    def dispute_panels(self, table: Table) -> list[page.Image]:
        """One disputed-digits panel per experiment with evaluations (analysis/dispute_panels.py)."""
        images = []
        for row in dispute_panels.disputed_rows(table):
            drawn = dispute_panels.panel(row, self.folder)
            if drawn is not None:
                png, caption = drawn
                images.append(
                    page.Image(
                        dispute_panels.file_name(row), f"digits the judges dispute under {row.name}", png, caption
                    )
                )
        return images

    def linked_search(self, provenance: list, runs: list) -> None:
        """The search `main -P search=` linked to this study: its verdicts in the provenance, its run (and
        the report logged under its report/ artifacts) in the runs table."""
        search_id = self.study.main.data.tags.get(search_report.LINK_TAG)
        run = search_report.search_run(search_id) if search_id else None
        if run is None:
            if search_id:
                provenance.append(("linked search", f"{_short(search_id)}: no longer on the tracking server"))
            return
        verdicts = (
            ", ".join(
                f"{k.removeprefix('verdict_')} {v}"
                for k, v in sorted(run.data.tags.items())
                if k.startswith("verdict_")
            )
            or "no verification logged"
        )
        study_name = run.data.tags.get("optuna.study_name", "?")
        provenance.append(
            (
                "linked search",
                f"study {study_name}, search run {_short(search_id)} (its report: the "
                f"report/ artifacts of that run); verdicts over seeds: {verdicts}",
            )
        )
        runs.append(
            (
                "search",
                f"study {study_name}: its report under report/",
                "",
                run.info.status,
                "",
                page.Link(_short(search_id), sources.run_link(run, self.uri)),
            )
        )

    def content(self) -> page.Content:
        study = self.study
        tables = build_tables(study)
        labels = [f"settings {i + 1}" if len(tables) > 1 else "" for i in range(len(tables))]
        primary = tables[0] if tables else Table("no evaluations", [])
        verdicts = finding_verdicts(primary, self.shares_of)
        converged = trainings.judge_trainings(self.histories())
        behind = trainings.mark_preliminary(verdicts, converged)
        samples, sample_headings, samples_note = self.samples(tables[0] if tables else None)
        latent_image, interpolation_image, latent_note = self.latent()
        provenance, runs = self.record.provenance(tables, labels, converged)
        self.linked_search(provenance, runs)
        warning = trainings.warning(verdicts, converged, behind)
        answers = eye.session_answers(study.main.info.run_id, self.folder)  # the eye, where a session exists
        return page.Content(
            title=self.record.title(),
            setup=self.record.setup(),
            convergence=warning or trainings.converged_line(converged),
            converged=not warning,
            verdicts=verdicts,
            disputes=eye.judge_lines(primary, self.folder, answers),
            eye=eye.section(study.main.info.run_id, answers),
            verdict_key=VERDICT_KEY + (f" Verdicts use {labels[0]}." if len(tables) > 1 else ""),
            samples=samples,
            sample_headings=sample_headings,
            samples_note=samples_note,
            experiments=[(e.study_id, e.loss.upper(), e.forward, e.sampler) for e in STUDY],
            tables=tables,
            table_labels=labels,
            loss_curves=self.loss_curves({key for key, state in converged.items() if state.still_improving}),
            latent=latent_image,
            interpolation=interpolation_image,
            latent_note=latent_note,
            rules=RULES + (SINGLE_SEED if len(study.seeds) < 2 else ""),
            provenance=provenance,
            runs=runs,
            dispute_panels=self.dispute_panels(primary),
            trainings=trained_models(study),
            settings_json=json.loads(
                sources.public(
                    json.dumps({"preset": study.plan.get("preset"), "settings": study.plan.get("settings", {})})
                )
            ),
        )


VERDICT_KEY = (
    "holds: every tested clause holds; contradicted: every decided clause is contradicted; in part: some "
    "clauses hold and some do not (each named); unsettled: no clause decided. Each clause is decided by one "
    "primary test after Holm's correction over the study's primary tests (its raw and adjusted p beside it); "
    "the other metrics are evidence and decide nothing; a sensitivity row (a reading beyond the write-up) "
    "decides no word. Every test, with the rules: “Verdicts part by part”; every value they read, per seed and "
    "judge: the appendix."
)
RULES = " ".join(
    [
        VERDICT_RULES,
        (
            "Primary metrics, each declared with its reason before the confirmation's seeds were run "
            "(pipeline/core/findings/declarations.py): realism is fidelity, decided by density; diversity between "
            "samplers by coverage (density and coverage at k = 5, Naeem et al. 2020; precision and recall at "
            "k = 3, Kynkäänniemi et al. 2019); “covers most digits” and “diverse” by the 8th most frequent "
            "digit's share against half a uniform share (at least 8 of the 10 digits come up); noisy by the share "
            "of samples the CNN reads as one digit with 90 % of its probability, against the real digits' or "
            "another sampler's; blurry and sharper by sharpness; unclear by the CNN's confidence; “3 comes up more "
            "often than the others” by digit 3's lead over the largest other digit, by both judges. FID, a "
            "distance between whole distributions that mixes fidelity with diversity, is evidence here. "
            f"Class identity and coverage are judged by the CNN and a {knn.NAME}. "
            "Marks: ✓ holds, ✗ contradicted, ~ unsettled, ? judge-dependent, · not tested or not measured. A "
            "verdict is preliminary when a model behind it was still improving fast: its validation loss fell "
            f"more than {convergence.THRESHOLD:.0%} over the last tenth of its epochs (at least one epoch)."
        ),
    ]
)
SINGLE_SEED = " This study has a single training seed: no interval is available, so no finding is decided."


def _write(path: Path, data: bytes) -> None:
    """Atomically, and readable by others like any report (mkstemp makes files private)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
        tmp.chmod(0o644)


def write_files(content: page.Content, folder: Path) -> None:
    """report.html, report.md and images/ into `folder`."""
    _write(folder / "report.html", render_html(content).encode("utf-8"))
    _write(folder / "report.md", render_markdown(content).encode("utf-8"))
    for image in content.images():
        _write(folder / page.IMAGE_FOLDER / image.name, image.png)


def publish(staged: Path, output: Path) -> None:
    """Copy the staged report into the output folder, each file replaced atomically; a screenshot
    left there by an earlier report goes when this one has none."""
    for path in sorted(staged.rglob("*")):
        if path.is_file():
            _write(output / path.relative_to(staged), path.read_bytes())
    if not (staged / "report.png").exists():
        (output / "report.png").unlink(missing_ok=True)


def report(config: ReportConfig) -> str:
    """Run the `report` step; returns the report run's id. The source is checked before any run opens."""
    with sources.quiet_downloads():
        return _report(config)


def _report(config: ReportConfig) -> str:
    searched = search_report.search_run(config.source)  # a search run's id: the search's report
    source = searched or sources.find_main_run(config.source)
    source_id = source.info.run_id
    output = writable_folder("output", config.output, tracking.local_path(config.output))  # relative: beside mlflow.db
    with tempfile.TemporaryDirectory(prefix="vae-report-") as tmp:
        downloads, staged = Path(tmp) / "downloads", Path(tmp) / "report"
        study = None if searched else sources.collect(source, downloads)
        with tracking.step_run(
            "report",
            f"report {source.info.run_name}",
            config,
            parent_run_id=source_id,
            experiment_id=tracking.use_experiment_of(source),
            tags={"source_run_id": source_id},
        ) as run:
            tracking.log_config(config)
            if searched:
                search_report.write_files(search_report.content(searched, downloads), staged, _write)
            else:
                content = Builder(study, downloads, run.info.run_id).content()
                write_files(content, staged)
            check = browser.check(staged / "report.html")
            if check.screenshot:
                _write(staged / "report.png", check.screenshot)
            publish(staged, output)
            mlflow.set_tag(BROWSER_TAG, check.summary())
            mlflow.log_artifacts(str(staged), "report")
            MlflowClient().log_artifacts(source_id, str(staged), "report")
            if searched:  # the answer on the run's page in the UI, linking the report just logged there
                search_report.describe(searched, downloads)
            else:
                link = sources.run_link(run, mlflow.get_tracking_uri(), "report/report.html")
                describe_run(source_id, run_description(content, link))
            print(
                f"report: {output / 'report.html'}, {output / 'report.md'}"
                f"{', ' + str(output / 'report.png') if check.screenshot else ''}; browser check {check.summary()}"
            )
            if check.skipped:
                print(
                    f"warning: browser check skipped: {check.skipped}; the report was written and logged without it",
                    file=sys.stderr,
                )
            elif not check.passed:
                raise ReportCheckFailed(
                    f"the report at {output / 'report.html'} failed the browser check: {check.summary()}"
                )
            return run.info.run_id
