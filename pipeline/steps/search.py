"""The `search` step: an Optuna study over the latent size and a placed Beta sampler.

Each trial picks a latent size and a Beta(a, b) shape plus the sampler's own mean and standard
deviation (the placement z = loc + scale * Beta(a, b) is derived: pipeline/core/search_space.py),
and scores the sampler's FID against the VALIDATION split on growing sample counts, so the pruner
stops hopeless trials early. The test split is kept for the end: the best trial's sampler is
measured there beside the same model's N(0, 1) and gmm:10 samplers, then verified over the
training seeds `verify_seeds` with the F7/F8 verdicts (pipeline/search/verify.py), each sampler and
seed its own child run, the verdicts as the search run's description.

Tracking: the search is a parent run; every training is a child `train` run (launched as a real
MLflow project step, reused by training configuration and data digest across trials, workers and
reruns, trained once under a lock); every trial is a nested child run with its params, its Optuna
trial number as a param, its metrics and its sample grid. Pruned trials end KILLED with a
`pruned` tag. The parent logs the counts, the best trial, Optuna's plots (PNG and one offline
HTML page) and the test-split reference figures.

The study's storage, policy, models and workers live in pipeline/search/; this module drives them.
`n_trials` counts the trials this invocation adds, pruned ones included, exactly.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
import warnings
from pathlib import Path

import mlflow
import numpy as np
import optuna
from optuna.trial import TrialState

from pipeline import tracking
from pipeline.configs import SearchConfig
from pipeline.core import plots, search_space
from pipeline.core.devices import resolve_device
from pipeline.core.evaluation.scoring import EvaluationContext
from pipeline.core.model.samplers import BetaSampler, GaussianMixtureSampler, parse_sampler
from pipeline.errors import InputError
from pipeline.process import processes
from pipeline.search.artifacts import artifact_folder, checked_folder, dashboard_command
from pipeline.search.models import train_config
from pipeline.search.policy import (
    FINISHED,
    MEDIAN_STARTUP_TRIALS,
    MODEL_ATTR,
    RUN_ATTR,
    best_trial,
    check_study,
    create_or_load,
    is_mine,
    sample_counts,
    sampler_seed,
)
from pipeline.search.storage import resolve_storage
from pipeline.search.verify import verify
from pipeline.search.workers import REPORTED_METRICS, TRIAL_STEP, Job, Worker, run_workers
from pipeline.serving import log_generator
from pipeline.tracking.classifier_run import classifier_for
from pipeline.tracking.registry import register_generator
from pipeline.tracking.verification import VERIFY_STEP

REFERENCE_SAMPLERS = (("normal_0_1", "normal:0,1"), ("gmm_10", "gmm:10"))
BEST_GENERATOR, BEST_ALIAS = "vae-generator", "best-beta"  # models:/vae-generator@best-beta: the newest search's best


def search(config: SearchConfig) -> str:
    """Run the `search` step; returns the search run's id. Every input check comes first."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per model load otherwise
    storage = resolve_storage(config)
    check_study(config, storage)
    checked_folder(config, storage)
    device = resolve_device(config.device)
    train = train_config(config, 1)
    prepared = tracking.resolve_data(config.data, train.val_fraction, config.seed, train.data_root)
    threads = max(1, processes.usable_cores() // config.n_workers)
    tags = {"optuna.study_name": config.study_name, "optuna.storage": storage.shown, "data_digest": prepared.digest}
    processes.exit_on_sigterm()
    with tracking.step_run("search", f"search {config.study_name}", config, tags=tags) as run:
        tracking.log_config(config)
        run_id, experiment_id = run.info.run_id, run.info.experiment_id
        for step in ("search", TRIAL_STEP, VERIFY_STEP):  # runs of a search killed earlier
            tracking.sweep_stale_runs(step, experiment_ids=[experiment_id])
        classifier, classifier_run_id = classifier_for(prepared, device, experiment_id, run_id)
        mlflow.set_tag("classifier_run_id", classifier_run_id)
        study, notes = create_or_load(config, storage)
        notes += log_pruning(config)
        for note in notes:
            print(f"search: {note}", flush=True)
        trials_before = len([t for t in study.get_trials(deepcopy=False) if t.state != TrialState.WAITING])
        mlflow.log_param("sampler_seed", sampler_seed(config, trials_before, 0, storage))
        started = time.time()
        job = Job(
            config=dataclasses.asdict(config),
            storage=storage,
            search_run_id=run_id,
            experiment_id=experiment_id,
            trials_before=trials_before,
            deadline=started + config.timeout if config.timeout > 0 else None,
            threads=threads,
        )
        if config.n_workers == 1:
            Worker(job, classifier, prepared).run()
        else:
            notes += run_workers(job, study)
        elapsed = time.time() - started
        if notes:
            mlflow.log_text("\n".join(notes), "search_log.txt")
        summarize(study, config, storage, run_id, experiment_id, elapsed, classifier, prepared, device)
        check_all_finished(study, config, job)
        verify(study, config, job, classifier, classifier_run_id, prepared, device)  # F7, F8 over verify_seeds
        return run_id


def log_pruning(config: SearchConfig) -> list[str]:
    """Tag the search run with its pruner; the note for the log when there is none to be had."""
    if config.objective == "fid":
        median = f"MedianPruner(n_startup_trials={MEDIAN_STARTUP_TRIALS})"
        mlflow.set_tag("pruning", median if config.pruner == "median" else "none")
        return []
    mlflow.set_tag("pruning", "off (two objectives: Optuna cannot prune multi-objective studies)")
    return [
        "pruning is off: Optuna cannot prune multi-objective studies (trial.report raises); each "
        "trial is scored once, at the largest sample count"
    ]


def check_all_finished(study: optuna.Study, config: SearchConfig, job: Job) -> None:
    """Fail the search run, saying why, when fewer than n_trials of its trials finished before the deadline."""
    finished = sum(is_mine(t, job.search_run_id) for t in study.get_trials(deepcopy=False, states=FINISHED))
    if finished < config.n_trials and (job.deadline is None or time.time() < job.deadline):
        mlflow.set_tag("failure_reason", f"{finished} of {config.n_trials} trials finished: workers failed")
        raise RuntimeError(
            f"search: only {finished} of n_trials={config.n_trials} trials finished; the workers "
            f"failed (see their output above and search_log.txt on run {job.search_run_id})"
        )


def summarize(study, config, storage, run_id, experiment_id, elapsed, classifier, prepared, device) -> None:
    """Counts, the best trial, the test-split reference figures and Optuna's plots on the search run."""
    trials = study.get_trials(deepcopy=False)
    mine = [t for t in trials if is_mine(t, run_id)]
    finished = [t for t in mine if t.state in FINISHED]
    trainings = tracking.children(run_id, "train", experiment_id)
    counts = {
        "trials": len(finished),
        "trials_complete": sum(t.state == TrialState.COMPLETE for t in mine),
        "trials_pruned": sum(t.state == TrialState.PRUNED for t in mine),
        "trials_failed": sum(t.state == TrialState.FAIL for t in mine),
        "trainings": len(trainings),
        "study_trials": sum(t.state in FINISHED for t in trials),
        "search_seconds": elapsed,
        "trials_per_minute": len(finished) / max(elapsed, 1e-9) * 60,
    }
    mlflow.log_metrics(counts)
    print(
        f"search: {counts['trials']} trials this run ({counts['trials_complete']} complete, {counts['trials_pruned']} "
        f"pruned, {counts['trials_failed']} failed), {counts['trainings']} trainings, {elapsed:.0f} s; the study "
        f"has {counts['study_trials']} finished trials in {storage.shown}",
        flush=True,
    )
    command = dashboard_command(storage, artifact_folder(config, storage))
    mlflow.set_tag("optuna.dashboard", command)
    print(f"search: watch the study and each trial's samples with `{command}`", flush=True)
    best, rule = best_trial(study, config)
    if best is None:
        mlflow.set_tag("best_trial", "none: no complete trial")
        return
    mlflow.log_params({f"best_{name}": value for name, value in best.params.items()})
    mlflow.log_param("best_trial_number", best.number)
    names = ["fid"] if config.objective == "fid" else ["fid", "class_entropy"]
    mlflow.log_metrics({f"best_{name}": value for name, value in zip(names, best.values)})
    mlflow.set_tags({"best_run": best.user_attrs.get(RUN_ATTR, ""), "best_rule": rule})
    a, b, mean, sd = (best.params[k] for k in ("a", "b", "mean", "sd"))
    loc, scale = search_space.placement(a, b, mean, sd)
    best_sampler = BetaSampler(a, b, loc, scale)
    mlflow.set_tag("best_sampler", best_sampler.spec)
    print(
        f"search: best trial {best.number} ({rule}): latent {best.params['latent_size']} {best_sampler.spec}, "
        + ", ".join(f"{n} {v:.4g}" for n, v in zip(names, best.values)),
        flush=True,
    )
    model, mixtures = test_figures(best, best_sampler, config, classifier, prepared, device)
    if model is not None:  # the best sampler as the default of a generator with the best trial's decoder
        log_generator(model, best_sampler.spec, mixtures)
        register_generator(
            run_id, BEST_GENERATOR, BEST_ALIAS, tags={"study_name": config.study_name, "trial_number": str(best.number)}
        )
    log_plots(study, config)


def test_figures(best, best_sampler, config, classifier, prepared, device) -> tuple:
    """The best sampler on the TEST split beside the same model's N(0,1) and gmm:10: reference lines.
    Returns (the best trial's model, the gmm:10 fitted on it), or (None, []) when it cannot be loaded."""
    model_run_id = best.user_attrs.get(MODEL_ATTR)
    try:
        model = tracking.load_model(f"runs:/{model_run_id}/model", device)
    except InputError as error:
        mlflow.set_tag("test_figures", f"skipped: {error}")
        return None, []
    count = sample_counts(config, prepared)[-1]
    context = EvaluationContext.build(classifier, prepared, device, count, config.seed, reference_split="test")
    rows, mixtures = {}, []
    for name, sampler in (("best_beta", best_sampler), *((n, parse_sampler(s)) for n, s in REFERENCE_SAMPLERS)):
        fitted, images, metrics, _ = context.score(model, sampler)
        mixtures += [fitted] if isinstance(fitted, GaussianMixtureSampler) else []
        rows[name] = metrics
        mlflow.log_metrics({f"test_{metric}/{name}": float(metrics[metric]) for metric in REPORTED_METRICS})
        mlflow.log_image(plots.grid_array(images[: plots.GRID_SIZE]), artifact_file=f"best/{name}_grid.png")
    mlflow.log_metrics({f"test_{name}": value for name, value in context.real.items()})
    mlflow.log_params({"test_n_samples": count, "test_model_run_id": model_run_id})
    lines = [
        f"test split, {count} samples per sampler, model {model_run_id} (latent {best.params['latent_size']})",
        f"{'sampler':<12}{'fid':>10}{'precision':>11}{'recall':>9}{'class_entropy':>15}",
    ]
    for name, metrics in rows.items():
        lines.append(
            f"{name:<12}{metrics['fid']:>10.4g}{metrics['precision']:>11.4g}{metrics['recall']:>9.4g}"
            f"{metrics['class_entropy']:>15.4g}"
        )
    lines.append(f"fid_floor (real train subset) {context.real['fid_floor']:.4g}")
    mlflow.log_text("\n".join(lines), "best/test_figures.txt")
    print("\n".join(lines), flush=True)
    return model, mixtures


def plot_specs(study: optuna.Study, config: SearchConfig) -> list[tuple[str, str, dict]]:
    """(artifact name, optuna.visualization function name, keyword arguments) of each plot."""
    if config.objective == "fid":
        target = {}
    else:
        target = {"target": lambda t: t.values[0], "target_name": "fid"}
    specs = [
        ("optimization_history", "plot_optimization_history", target),
        ("param_importances", "plot_param_importances", target),
        ("contour_a_b", "plot_contour", {"params": ["a", "b"], **target}),
        ("slices", "plot_slice", target),
    ]
    if config.objective != "fid":
        specs.append(("pareto_front", "plot_pareto_front", {"target_names": ["fid", "class_entropy"]}))
    return specs


def log_plots(study: optuna.Study, config: SearchConfig) -> None:
    """Optuna's plots as PNG (matplotlib) and all of them on one interactive HTML page that opens
    offline (plotly.js inside the page, once; MLflow's log_figure of plotly loads it from a CDN)."""
    import matplotlib.pyplot as plt  # late, as the next two: plotly and pyplot load only when plots are drawn
    import optuna.visualization as interactive
    import optuna.visualization.matplotlib as static

    skipped, parts = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, function, kwargs in plot_specs(study, config):
            try:
                axes = getattr(static, function)(study, **kwargs)
                figure = np.asarray(axes).flat[0].figure
                figure.set_size_inches(max(figure.get_size_inches()[0], 8), max(figure.get_size_inches()[1], 5))
                mlflow.log_figure(figure, f"optuna/{name}.png")
                plt.close(figure)
            except Exception as error:  # e.g. importances need two complete trials
                plt.close("all")
                skipped.append(f"{name}.png: {error}")
            try:
                figure = getattr(interactive, function)(study, **kwargs)
                parts.append(
                    f"<h2>{name.replace('_', ' ')}</h2>" + figure.to_html(full_html=False, include_plotlyjs=not parts)
                )
            except Exception as error:
                skipped.append(f"{name} (html): {error}")
    if parts:
        page = (
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Optuna study "
            f"{config.study_name}</title></head><body><h1>Optuna study {config.study_name}</h1>"
            + "".join(parts)
            + "</body></html>"
        )
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "study.html"
            path.write_text(page, encoding="utf-8")
            mlflow.log_artifact(str(path), "optuna")
    if skipped:
        mlflow.log_text("\n".join(skipped), "optuna/skipped_plots.txt")
