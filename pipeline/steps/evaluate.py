"""The `evaluate` step: generation quality per sampler and the likelihood of one trained model.

It turns the study's by-eye judgements (docs/study.md, F1–F6) into metrics. Each sampler's
scores go to a child run of the evaluate run with the same metric names for every sampler (`fid`,
`precision`, ...) and tags that say which experiment, cell, sampler and training seed it is, so the
MLflow UI can group and compare what the report compares; the model's own figures stay on the evaluate
run. The context (classifier, real reference, floor) is built once and shared by all samplers
(pipeline/core/evaluation/scoring.py).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import mlflow
import numpy as np
from tqdm.auto import tqdm

from pipeline import tracking
from pipeline.configs import DEFAULT_SAMPLERS, EvaluateConfig
from pipeline.core import experiments, plots
from pipeline.core.data import datasets
from pipeline.core.devices import resolve_device
from pipeline.core.evaluation import two_judges
from pipeline.core.evaluation.scoring import (
    MODEL_METRICS,
    REAL_METRICS,
    REAL_ROW,
    SAMPLER_METRICS,
    EvaluationContext,
    check_fittable,
    format_table,
)
from pipeline.core.judges import disagreement, knn
from pipeline.core.model.samplers import GaussianMixtureSampler, Sampler, parse_samplers
from pipeline.core.stopwatch import Stopwatch
from pipeline.errors import InputError
from pipeline.tracking.classifier_run import classifier_for, judge_for
from pipeline.tracking.runs import SAMPLER_STEP, child_run

REFERENCE_SAMPLER = "gmm:10"


def sampler_specs(config: EvaluateConfig, train_run) -> list[Sampler]:
    """The samplers asked for, or the train run's own plus the gmm:10 yardstick."""
    if config.samplers != "auto":
        return parse_samplers(config.samplers)
    samplers = parse_samplers(tracking.run_param(train_run, "samplers", DEFAULT_SAMPLERS))
    reference = parse_samplers(REFERENCE_SAMPLER)[0]
    return samplers + ([reference] if reference not in samplers else [])


def train_run_data(run):
    """The prepared data the train run used, found by digest (cache) or rebuilt from its params."""
    missing = [name for name in ("data", "data_digest", "loss") if name not in run.data.params]
    if missing:
        raise InputError(
            f"parameter 'model': run {run.info.run_id} has no param(s) {', '.join(missing)}; "
            "allowed: the id of a train run"
        )
    digest = tracking.run_param(run, "data_digest")
    prepared = datasets.find_cached(digest)
    if prepared is None:
        prepared = tracking.resolve_data(
            tracking.run_param(run, "data"),
            float(tracking.run_param(run, "val_fraction", "0.1")),
            int(tracking.run_param(run, "seed", "0")),
            tracking.run_param(run, "data_root", "data"),
        )
    if prepared.digest != digest:
        raise InputError(
            f"parameter 'model': run {run.info.run_id} was trained on data with digest "
            f"{digest[:12]}, but its data now has digest {prepared.digest[:12]}"
        )
    return prepared


def log_sampler_artifacts(
    panels: plots.SamplerPanels,
    key: str,
    images,
    counts: np.ndarray,
    counts_judge2: np.ndarray,
    reference_shares: np.ndarray,
    disputed: disagreement.Dispute,
) -> None:
    """Both judges' class histograms as bar charts and tables, the plain sample grid (the report lays
    grids out itself), the sample grid beside the classifier's histogram, and the judges' confusion
    matrix with the samples they dispute most and random samples with both labels (the report's
    disputed-digits panels); logged in one batch."""
    shown = images[: plots.GRID_SIZE]
    grid = plots.grid_array(shown)
    pictures = panels.draw(grid, len(shown), counts, counts_judge2, key)
    with tracking.artifact_batch(f"evaluation/{key}") as batch:
        batch.table("class_histogram.json", histogram_table(counts, reference_shares))
        batch.table(f"class_histogram{knn.SUFFIX}.json", histogram_table(counts_judge2, reference_shares))
        batch.image("grid.png", grid)
        batch.image("samples_and_classes.png", pictures["samples_and_classes"])
        batch.image("class_histogram.png", pictures["classes"])
        batch.image(f"class_histogram{knn.SUFFIX}.png", pictures["classes_second_judge"])
        batch.file(disagreement.ARTIFACT, disputed.to_bytes())


def histogram_table(counts: np.ndarray, reference_shares: np.ndarray) -> dict:
    """A class histogram as the report reads it back: counts, shares and the test labels' shares."""
    return {
        "class": list(range(len(counts))),
        "count": counts.tolist(),
        "share": (counts / counts.sum()).round(5).tolist(),
        "test_share": reference_shares.round(5).tolist(),
    }


@dataclass(frozen=True)
class ScoredModel:
    """What every sampler's child run says of the model it scored: the evaluate run it sits under and the
    training (cell, seed, loss and forward pass)."""

    parent_run_id: str
    experiment_id: str
    loss: str
    forward: str
    seed: str

    @classmethod
    def of(cls, run, train_run) -> ScoredModel:
        param = functools.partial(tracking.run_param, train_run)
        return cls(
            run.info.run_id, run.info.experiment_id, param("loss"), param("forward", "standard"), param("seed", "0")
        )

    def sampler_run(self, sampler: Sampler) -> tuple[str, dict[str, str]]:
        """(run name, tags) of the sampler's child run: `E1 normal:0,1 seed 0`, or the cell for a sampler
        outside the study's experiments."""
        cell = experiments.cell_name(self.loss, self.forward)
        experiment = experiments.experiment_of(self.loss, self.forward, sampler.spec)
        tags = {"sampler": sampler.spec, "sampler_key": sampler.key, "cell": cell, "seed": self.seed}
        if experiment is not None:
            tags["experiment"] = experiment
        return f"{experiment or cell} {sampler.spec} seed {self.seed}", tags


def is_score(name: str) -> bool:
    """Whether a metric or tag name is one of evaluate's scores, model-level or a sampler's under its key, so
    that copy_scores=replace clears every one measured under other settings from the train run."""
    return (
        name.split("/")[0]
        in (*SAMPLER_METRICS, *knn.SAMPLER_METRICS, *two_judges.METRICS, "max_class", f"max_class{knn.SUFFIX}")
        or name in MODEL_METRICS
        or name in REAL_METRICS
    )


def settings_text(config: EvaluateConfig, classifier_run_id: str) -> str:
    """What makes two evaluations' scores comparable: sample count, importance samples, seed, classifier."""
    return f"n_samples={config.n_samples} iwae_k={config.iwae_k} seed={config.seed} classifier={classifier_run_id}"


def checked_train_run(model: str):
    """The train run `model` names; an InputError naming `model` for anything else."""
    if not tracking.RUN_ID_PATTERN.match(model):
        raise InputError(f"parameter 'model': got {model!r}; allowed: a train run id (32 hex digits)")
    train_run = tracking.get_run(model, "model")
    step = train_run.data.tags.get(tracking.STEP_TAG, "train")
    if step != "train":
        raise InputError(f"parameter 'model': run {model} is a {step!r} run; allowed: the id of a train run")
    return train_run


@dataclass
class Scores:
    """Every sampler's scores by sampler key (the summary table's rows), and the gmm:K fitted on the way,
    which the logged generator keeps."""

    rows: dict[str, dict] = field(default_factory=dict)
    mixtures: list[GaussianMixtureSampler] = field(default_factory=list)


def score_samplers(
    context: EvaluationContext, model, samplers: list[Sampler], judge2, watch: Stopwatch, scored_model: ScoredModel
) -> Scores:
    """Score each sampler's images, have both judges classify them, log its metrics into its own child run
    and its pictures under evaluation/<key>/ of the evaluate run."""
    scores = Scores()
    shares = context.reference.label_shares
    panels = plots.SamplerPanels(knn.NAME, shares)
    digits = two_judges.real_digits(context)  # blurred to each sampler's sharpness: the judges' accuracy there
    for sampler in tqdm(samplers, desc="evaluate", unit="sampler"):
        score = two_judges.score_sampler(context, model, sampler, judge2, digits, watch)
        scored, both = score.scored, score.judged
        key = scored.sampler.key
        scores.rows[key] = scored.metrics
        if isinstance(scored.sampler, GaussianMixtureSampler):
            scores.mixtures.append(scored.sampler)
        name, tags = scored_model.sampler_run(scored.sampler)
        with child_run(SAMPLER_STEP, name, scored_model.parent_run_id, scored_model.experiment_id, tags) as run:
            run.log(score.metrics, score.dominant)
        log_sampler_artifacts(panels, key, scored.images, scored.counts, both.counts, shares, both.dispute)
    panels.close()
    return scores


def evaluate(config: EvaluateConfig) -> str:
    """Run the `evaluate` step as a child of the train run; returns the evaluation's MLflow run id."""
    train_run = checked_train_run(config.model)
    samplers = sampler_specs(config, train_run)
    device = resolve_device(config.device)
    prepared = train_run_data(train_run)
    check_fittable(samplers, prepared.counts()["train"])
    model = tracking.load_model(f"runs:/{config.model}/model", device)
    experiment_id = tracking.use_experiment_of(train_run)
    launch = tracking.launch_context()
    classifier, classifier_run_id = classifier_for(
        prepared, device, experiment_id or train_run.info.experiment_id, parent_run_id=launch.run_id or config.model
    )
    judge2 = judge_for(classifier_run_id, prepared)
    settings = settings_text(config, classifier_run_id)

    tags = {
        "source_run_id": config.model,
        "classifier_run_id": classifier_run_id,
        "data_digest": prepared.digest,
        "source_digest": prepared.source_digest,
        tracking.SETTINGS_TAG: settings,
    }
    with tracking.step_run(
        "evaluate",
        f"evaluate {train_run.info.run_name}",
        config,
        parent_run_id=config.model,
        experiment_id=experiment_id,
        tags=tags,
        launch=launch,
    ) as run:
        tracking.log_config(config)
        watch = Stopwatch()  # scoring (reference, samplers, both judges, likelihood) against the step's fixed costs
        with watch("scoring"):
            context = EvaluationContext.build(classifier, prepared, device, config.n_samples, config.seed)
        mlflow.log_param("fid_floor_size", min(config.n_samples, prepared.counts()["train"]))
        scores = score_samplers(context, model, samplers, judge2, watch, ScoredModel.of(run, train_run))
        with watch("scoring"):
            model_metrics = context.model_metrics(model, tracking.run_param(train_run, "loss"), config.iwae_k)
        mlflow.log_metrics({**model_metrics, **context.real, **watch.metrics()})
        outcome = tracking.copy_scores(
            config.model, {**model_metrics, **context.real}, {}, settings, run.info.run_id, config.copy_scores, is_score
        )
        mlflow.set_tag("scores_on_train_run", outcome)
        table = format_table({**scores.rows, REAL_ROW: context.real_row}, {**context.real, **model_metrics})
        mlflow.log_text(table, "evaluation/summary.txt")
        print(f"evaluation run {run.info.run_id} of train run {config.model} ({settings}):")
        print(table)
        print(f"scores on the train run: {outcome}")
        from pipeline.serving import log_generator  # mlflow.pyfunc: paid only here, at the end

        log_generator(model, samplers[0].spec, scores.mixtures)
        return run.info.run_id
