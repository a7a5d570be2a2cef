"""The report of a search run: does a Beta sampler beat N(0,1)? Read back from the tracking server only.

`report --source <search run id>` writes the same kind of report as for a study: the verdicts
first (F7, F8, G and H as the search logged them in verify/results.json: each finding's word and each
part's difference and 95 % interval, analysis/search_verdicts.py), then the searched distribution (its
moments beside N(0,1)'s, its matched normal, realism and diversity against the temperature sigma of
N(0, sigma) with the searched Beta marked at its own sd: analysis/search_figures.py), the verified
samplers' sample grids side by side, their scores (read from the verification's child runs, one per
sampler and seed) with both judges' accuracy at each sampler's sharpness, the trials' ranking of
latent sizes for what it is (one search, one seed, validation FID), Optuna's plots (history,
importances, the a/b contour: the matplotlib PNGs the search logged) and the provenance. The pages
are laid out by analysis/templates/search_report.html and search_report.md, with the study's CSS.
Once the report is logged on the search run, `describe` points the run's description at it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from analysis import figures, page, search_figures, search_verdicts, sources
from analysis.figures import plt
from analysis.page import IMAGE_FOLDER, Image
from analysis.provenance import version_text
from analysis.tables import FID_LABEL, FID_NAME, FID_NOTE
from pipeline import tracking
from pipeline.core.evaluation.two_judges import CNN_ACCURACY, KNN_ACCURACY, UNRELIABLE_BELOW
from pipeline.core.scores.spread import Summary, spread_text
from pipeline.tracking.verification import describe_search, verification_results

VERIFY_ARTIFACT = "verify/results.json"
VERDICTS_ARTIFACT = "verify/verdicts.txt"
REPORT_ARTIFACT = "report/report.html"  # where the report step logs the search's report on the search run
LINK_TAG = "pipeline.search_run_id"  # on a main run: the search its report links to (main -P search=)
OPTUNA_PLOTS = (
    ("optimization_history", f"Optimization history: each trial's validation {FID_NAME} and the best so far"),
    ("param_importances", f"Parameter importances (fANOVA) for the validation {FID_NAME}"),
    ("contour_a_b", f"Validation {FID_NAME} over Beta's a and b (contour of the trials)"),
)
COLUMNS = (
    "fid",
    "precision",
    "recall",
    "density",
    "coverage",
    "class_entropy",
    "classes_covered",
    "sharpness",
    CNN_ACCURACY,
    KNN_ACCURACY,
)
HEADINGS = {"fid": FID_LABEL, CNN_ACCURACY: "CNN acc. at its sharpness", KNN_ACCURACY: "k-NN acc. at its sharpness"}
MOMENT_HEADINGS = {
    "mean": "mean",
    "sd": "standard deviation",
    "skewness": "skewness",
    "excess_kurtosis": "excess kurtosis",
}


@dataclass
class SearchContent:
    title: str
    setup: str
    verdicts: list[search_verdicts.VerdictView]
    grids: Image | None
    table: list[list[str]]  # header first
    reliability: list[str]  # per sampler whose judges are unreliable at its sharpness
    ranking: list[list[str]]  # header first
    ranking_note: str
    plots: list[Image] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)  # how a part and a finding are decided
    provenance: list[tuple[str, str]] = field(default_factory=list)
    missing: str = ""  # why the verification part is empty
    moments: list[list[str]] = field(default_factory=list)  # header first; empty for an older record
    matched: str = ""  # the matched normal, in words
    temperatures: Image | None = None
    temperature_grids: Image | None = None
    values: list[list[str]] = field(default_factory=list)  # header first: every value the tests read, per seed
    trials: list[list[str]] = field(default_factory=list)  # header first: every trial, its state and why

    def images(self) -> list[Image]:
        shown = (self.temperatures, self.temperature_grids, self.grids, *self.plots)
        return [image for image in shown if image is not None]


def search_run(source: str) -> Run | None:
    """The search run `source` names (its run id), or None: `source` is then a main run or an experiment."""
    if not tracking.RUN_ID_PATTERN.match(source or ""):
        return None
    try:
        run = MlflowClient().get_run(source)
    except MlflowException:
        return None
    return run if run.data.tags.get(tracking.STEP_TAG) == "search" else None


def public_storage(storage: str) -> str:
    """The Optuna storage as the page shows it: without the machine's folders, as the tracking URI."""
    if storage.startswith("journal:"):
        return "journal:" + sources.public_path(storage.removeprefix("journal:"))
    return sources.public_uri(storage)


def summary_of(record: dict, name: str, metric: str) -> Summary:
    """One sampler's metric over the verify seeds (`record["results"]`: read from the verification runs)."""
    per_seed = record["results"].get(name, {})
    seeds = sorted(per_seed, key=int)
    return Summary.of([per_seed[seed].get(metric, math.nan) for seed in seeds], seeds)


def reliability_line(record: dict, name: str) -> str:
    """'' when both judges reach UNRELIABLE_BELOW on real digits as blurry as this sampler's samples."""
    label = record["labels"][name]
    weak = []
    for metric, judge in ((CNN_ACCURACY, "the CNN"), (KNN_ACCURACY, "the k-NN")):
        accuracy = summary_of(record, name, metric)
        if accuracy.n and accuracy.mean < UNRELIABLE_BELOW:
            weak.append(f"{judge} {spread_text(accuracy)}")
    if not weak:
        return ""
    return (
        f"{label}: unreliable judge(s) at its samples' sharpness (accuracy on real test digits blurred as much, "
        f"under {UNRELIABLE_BELOW}): {'; '.join(weak)}; its class counts (class_entropy, classes_covered) rest on them."
    )


def grids_figure(record: dict, grids: dict[str, Path]):
    """The samplers' grids side by side, each titled with its label, spec and FID over seeds."""
    names = list(record["samplers"])
    figure, axes = plt.subplots(1, len(names), figsize=(3.4 * len(names), 4.1))
    for axis, name in zip(axes, names):
        axis.set_axis_off()
        fid = spread_text(summary_of(record, name, "fid"))
        axis.set_title(f"{record['labels'][name]}\n{record['samplers'][name]}\n{FID_LABEL} {fid}", fontsize=8)
        if name in grids:
            axis.imshow(plt.imread(grids[name]), cmap="gray")
        else:
            axis.text(0.5, 0.5, "no grid logged", ha="center", va="center")
    figure.tight_layout()
    return figure


def content(run: Run, folder: Path) -> SearchContent:
    """Everything the search report shows, downloaded from `run` into `folder`."""
    run_id, params, tags = run.info.run_id, run.data.params, run.data.tags
    study = tags.get("optuna.study_name", params.get("study_name", "?"))
    title = f"Search {study}: is there a Beta sampler better than N(0,1)?"
    local = sources.download(run_id, VERIFY_ARTIFACT, folder)
    record = json.loads(local.read_text()) if local is not None else None
    if record is not None:  # the scores: the verification's child runs, the one source of them
        record["results"] = verification_results(run_id, run.info.experiment_id)
    setup = setup_line(run)
    plots = optuna_plots(run_id, folder)
    provenance = provenance_rows(run, study)
    if record is None:
        missing = (
            "This search run has no verification (verify/results.json): it ran with verify_seeds=none, "
            f"or before verification existed; its tag says: {tags.get('verify', 'nothing')}."
        )
        return SearchContent(title, setup, [], None, [], [], [], "", plots, [], provenance, missing)
    setup += (
        f" The best trial ({record['best_rule']}) is verified at latent size {record['latent_size']} over "
        f"training seeds {', '.join(map(str, record['seeds']))} on the TEST split, {record['n_samples']} "
        "samples per sampler."
    )
    provenance += [(f"model, seed {seed}", model) for seed, model in record["model_run_ids"].items()]
    return SearchContent(
        title,
        setup,
        [search_verdicts.view(v) for v in record["verdicts"]],
        grids_image(record, run_id, folder),
        sampler_table(record),
        [line for line in (reliability_line(record, name) for name in record["samplers"]) if line],
        latent_size_ranking(record),
        record.get("latent_sizes_note", ""),
        plots,
        record.get("rules", [record.get("spread_rule", "")]),
        provenance,
        moments=moments_table(record),
        matched=matched_text(record),
        temperatures=temperature_image(record),
        temperature_grids=temperature_grids_image(record, run_id, folder),
        values=search_verdicts.value_table(record),
        trials=trial_table(record),
    )


def setup_line(run: Run) -> str:
    """The search's settings in one line; a data path as the page may show it (no machine's folders)."""
    params = run.data.params
    return (
        f"Data {sources.public(params.get('data', '?'))}, latent sizes {params.get('latent_sizes', '?')}, "
        f"{int(run.data.metrics.get('trials', 0))} trials this run ({params.get('epochs', '?')} epochs per model, "
        f"batch {params.get('batch_size', '?')}), objective {params.get('objective', '?')} on the validation split."
    )


def optuna_plots(run_id: str, folder: Path) -> list[Image]:
    plots = []
    for name, caption in OPTUNA_PLOTS:
        path = sources.download(run_id, f"optuna/{name}.png", folder)
        if path is not None:
            plots.append(Image(f"optuna_{name}.png", caption, path.read_bytes(), caption))
    return plots


def provenance_rows(run: Run, study: str) -> list[tuple[str, str]]:
    params, tags = run.data.params, run.data.tags
    return [
        ("search run", run.info.run_id),
        ("code version", version_text(run)),  # content hash at commit, +dirty when edited
        ("study", study),
        ("storage", public_storage(tags.get("optuna.storage", "?"))),
        ("best trial", f"{params.get('best_trial_number', '?')} ({tags.get('best_rule', '?')})"),
        ("best sampler", tags.get("best_sampler", "?")),
        ("tracking", sources.public_uri(mlflow.get_tracking_uri())),
    ]


def subset(record: dict, names: list[str]) -> dict:
    """The record with only these samplers (in this order), for a figure of some of them."""
    return {**record, "samplers": {name: record["samplers"][name] for name in names if name in record["samplers"]}}


def curve_names(record: dict) -> list[str]:
    """The N(0, sigma) samplers by increasing sigma (N(0,1) among them); none in an older record."""
    return [name for _, name in sorted((float(sigma), name) for sigma, name in record.get("temperatures", {}).items())]


def downloaded_grids(record: dict, run_id: str, folder: Path) -> dict[str, Path]:
    grids = {}
    for name in record["samplers"]:
        path = sources.download(run_id, f"verify/{name}_grid.png", folder)
        if path is not None:
            grids[name] = path
    return grids


def grids_image(record: dict, run_id: str, folder: Path) -> Image:
    grids = downloaded_grids(record, run_id, folder)
    temperatures = set(curve_names(record)) - {"normal_0_1"}
    shown = subset(record, [name for name in record["samplers"] if name not in temperatures])
    return Image(
        "search_samples.png",
        "sample grids of the verified samplers",
        figures.png_bytes(grids_figure(shown, grids)),
        f"64 samples of each sampler from the seed-{record['seeds'][0]} model; {FID_LABEL} mean ± std over seeds. "
        + FID_NOTE,
    )


def temperature_grids_image(record: dict, run_id: str, folder: Path) -> Image | None:
    names = curve_names(record)
    if not names:
        return None
    return Image(
        "search_temperature_samples.png",
        "sample grids of N(0, sigma squared) at each temperature",
        figures.png_bytes(grids_figure(subset(record, names), downloaded_grids(subset(record, names), run_id, folder))),
        f"N(0, σ²) at each temperature, 64 samples from the seed-{record['seeds'][0]} model.",
    )


def temperature_figure_of(record: dict):
    """The temperature figure of this record's scores (analysis/search_figures.py)."""
    curve = sorted((float(sigma), name) for sigma, name in record["temperatures"].items())
    metrics = {metric for _, _, drawn in search_figures.PANELS for metric in drawn}
    scores = {m: [summary_of(record, name, m) for _, name in curve] for m in metrics}
    marks = {
        record["labels"][name]: {m: summary_of(record, name, m) for m in metrics}
        for name in ("best_beta", "matched_normal")
    }
    return search_figures.temperature_figure(
        [sigma for sigma, _ in curve], scores, marks, record["moments"]["best_beta"]["sd"]
    )


def temperature_image(record: dict) -> Image | None:
    if not record.get("temperatures") or "moments" not in record:
        return None
    sd = record["moments"]["best_beta"]["sd"]
    return Image(
        "search_temperatures.png",
        "realism and diversity of N(0, sigma squared) against sigma, with the searched Beta and its matched normal",
        figures.png_bytes(temperature_figure_of(record)),
        f"N(0, σ²) at σ = {', '.join(f'{float(s):g}' for s in record['temperatures'])} (blue), the searched Beta "
        f"(red star) and its matched normal (green diamond) at their standard deviation {sd:.4g} (dotted line); "
        "mean ± sd over the verify seeds.",
    )


def moments_table(record: dict) -> list[list[str]]:
    """The searched Beta's moments beside N(0,1)'s (empty for a record without them)."""
    moments = record.get("moments")
    if not moments:
        return []
    table = [["distribution", "spec", *MOMENT_HEADINGS.values()]]
    for name in ("best_beta", "normal_0_1"):
        values = [f"{round(moments[name][m], 12) + 0.0:.4g}" for m in MOMENT_HEADINGS]  # no 1e-17, no -0
        table.append([record["labels"][name], record["samplers"][name], *values])
    return table


def matched_text(record: dict) -> str:
    spec = record["samplers"].get("matched_normal")
    if spec is None:
        return ""
    return (
        f"Matched normal: {spec}, the normal with the searched Beta's mean and standard deviation, verified like "
        "the other samplers: where it scores like the searched Beta, the Beta's shape adds nothing beyond its "
        "location and scale (finding H)."
    )


def sampler_table(record: dict) -> list[list[str]]:
    table = [["sampler", "spec", *(HEADINGS.get(c, c) for c in COLUMNS)]]
    for name, spec in record["samplers"].items():
        table.append([record["labels"][name], spec, *(spread_text(summary_of(record, name, c)) for c in COLUMNS)])
    return table


def latent_size_ranking(record: dict) -> list[list[str]]:
    ranking = [["latent size", "trials (complete)", f"best validation {FID_LABEL}"]]
    ranking += [
        [str(e["latent_size"]), str(e["trials"]), f"{e['best_validation_fid']:.4g}"]
        for e in record.get("latent_sizes", [])
    ]
    return ranking


def trial_table(record: dict) -> list[list[str]]:
    """Every trial this search ran: its state, latent size, validation value and why it ended so."""
    trials = record.get("trials", [])
    table = [["trial", "state", "latent size", f"validation {FID_LABEL}", "why"]]
    for t in trials:
        value = "–" if t["value"] is None else f"{t['value']:.4g}"
        table.append([str(t["number"]), t["state"], str(t["latent_size"]), value, t["why"]])
    return table if trials else []


def render_html(c: SearchContent) -> str:
    return page.render("search_report.html", c=c, title=c.title)


def render_markdown(c: SearchContent) -> str:
    """The Markdown page; a verdict's clauses and parts share one table cell."""
    verdict_rows = [[v.finding, v.claim, f"**{v.word}**", search_verdicts.evidence_cell(v)] for v in c.verdicts]
    return page.render("search_report.md", c=c, verdict_rows=verdict_rows)


def write_files(content: SearchContent, folder: Path, write) -> None:
    """report.html, report.md and images/ into `folder`; `write(path, bytes)` writes one file."""
    write(folder / "report.html", render_html(content).encode("utf-8"))
    write(folder / "report.md", render_markdown(content).encode("utf-8"))
    for image in content.images():
        write(folder / IMAGE_FOLDER / image.name, image.png)


def describe(run: Run, folder: Path) -> None:
    """The search run's description (its verdict table) linking the search report when one is logged on
    the run, else the verdicts file; nothing for a search without verification."""
    run_id = run.info.run_id
    local = sources.download(run_id, VERIFY_ARTIFACT, folder)
    if local is None:
        return
    logged = {item.path for item in MlflowClient().list_artifacts(run_id, REPORT_ARTIFACT.split("/")[0])}
    artifact = REPORT_ARTIFACT if REPORT_ARTIFACT in logged else VERDICTS_ARTIFACT
    describe_search(run_id, run.info.experiment_id, json.loads(local.read_text()), artifact)
