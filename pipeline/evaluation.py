"""The `evaluate` step: generation quality per sampler and the likelihood of one trained model.

It turns the study's by-eye judgements (../shared/EXPERIMENTS.md, F1–F6) into metrics named
`{metric}/{sampler key}` (e.g. `fid/normal_0_1`), identical across runs so the MLflow compare
view lines them up. The real reference (test-split features through the evaluation classifier)
is computed once and shared by all samplers.
"""

from __future__ import annotations

import os
import time

import mlflow
import numpy as np
import torch
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from tqdm.auto import tqdm

from pipeline import classifier as classifiers
from pipeline import datasets, likelihood, plots, quality
from pipeline.configs import DEFAULT_SAMPLERS, EvaluateConfig
from pipeline.devices import resolve_device
from pipeline.errors import InputError
from pipeline.samplers import Sampler, needs_fit, parse_samplers
from pipeline.sampling import load_model
from pipeline.tracking import RUN_ID_PATTERN, get_run, log_config, run_param, start_step_run
from pipeline.training import as_float_tensor, draw_samples

REFERENCE_SAMPLER = "gmm:10"
GRID = 64
SAMPLER_METRICS = ("fid", "precision", "recall", "density", "coverage", "confidence", "class_entropy", "class_kl",
                   "classes_covered", "max_class_share", "sharpness")
MODEL_METRICS = ("neg_elbo", "nll", "active_units")
REAL_ROW = "real (train subset)"
GMM_FIT_CODES = 10_000  # EM on 54,000 x 100-d codes takes ~60 s on 2 cores, on 10,000 ~7 s


def sampler_specs(config: EvaluateConfig, train_run) -> list[Sampler]:
    """The samplers asked for, or the train run's own plus the gmm:10 yardstick."""
    if config.samplers:
        return parse_samplers(config.samplers)
    samplers = parse_samplers(run_param(train_run, "samplers", DEFAULT_SAMPLERS))
    reference = parse_samplers(REFERENCE_SAMPLER)[0]
    return samplers + ([reference] if reference not in samplers else [])


def train_run_data(run) -> datasets.Prepared:
    """The prepared data the train run used, found by digest (cache) or rebuilt from its params."""
    missing = [name for name in ("data", "data_digest", "loss") if name not in run.data.params]
    if missing:
        raise InputError(f"parameter 'model': run {run.info.run_id} has no param(s) {', '.join(missing)}; "
                         "allowed: the id of a train run")
    digest = run_param(run, "data_digest")
    prepared = datasets.find_cached(digest)
    if prepared is None:
        prepared = datasets.resolve(run_param(run, "data"), float(run_param(run, "val_fraction", "0.1")),
                                    int(run_param(run, "seed", "0")), run_param(run, "data_root", "data"))
    if prepared.digest != digest:
        raise InputError(f"parameter 'model': run {run.info.run_id} was trained on data with digest "
                         f"{digest[:12]}, but its data now has digest {prepared.digest[:12]}")
    return prepared


def _use_train_experiment(train_run) -> None:
    """Run beside the train run when not launched by `mlflow run` and no experiment is chosen."""
    chosen = ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")
    if not any(os.environ.get(name) for name in chosen):
        mlflow.set_experiment(experiment_id=train_run.info.experiment_id)


def log_sampler_artifacts(key: str, images: torch.Tensor, counts: np.ndarray, reference_shares: np.ndarray) -> None:
    """The class histogram as a bar chart and a table, and the sample grid beside the histogram."""
    folder = f"evaluation/{key}"
    figure = plots.class_histogram_figure(counts, f"{key}: predicted classes", reference_shares)
    mlflow.log_figure(figure, f"{folder}/class_histogram.png")
    plots.plt.close(figure)
    mlflow.log_table({"class": list(range(len(counts))), "count": counts.tolist(),
                      "share": (counts / counts.sum()).round(5).tolist(), "test_share": reference_shares.round(5).tolist()},
                     artifact_file=f"{folder}/class_histogram.json")
    figure = plots.samples_and_histogram_figure(images[:GRID], counts, key, reference_shares)
    mlflow.log_figure(figure, f"{folder}/samples_and_classes.png")
    plots.plt.close(figure)


def scalar_metrics(rows: dict[str, dict], model_metrics: dict, real: dict) -> dict[str, float]:
    """Every scalar under its logged name."""
    metrics = {f"{name}/{key}": float(row[name]) for key, row in rows.items() for name in SAMPLER_METRICS}
    return {**metrics, **model_metrics, **real}


def copy_to_train_run(train_run_id: str, metrics: dict[str, float], tags: dict[str, str]) -> None:
    """Put the evaluation's scalars on the train run too.

    The compare view compares the runs a user selects, and those are the train runs (one per
    experiment E1–E5, or per search trial): with the scores on the train runs themselves,
    `fid/normal_0_1` etc. become columns of the runs being compared, without hunting for each
    one's evaluation child. The evaluation run keeps the full record (artifacts, params).
    """
    now = int(time.time() * 1000)
    client = MlflowClient()
    client.log_batch(train_run_id, metrics=[Metric(key, value, now, 0) for key, value in metrics.items()])
    for key, value in tags.items():
        client.set_tag(train_run_id, key, value)


def format_table(rows: dict[str, dict], model_metrics: dict, real: dict) -> str:
    """A plain-text table: one row per sampler (and the real train subset), then the model's scores."""
    header = ["sampler", *SAMPLER_METRICS, "max_class"]
    lines = [header]
    for key, row in rows.items():
        cells = [key]
        for name in (*SAMPLER_METRICS, "max_class"):
            value = row[name]
            cells.append(str(value) if isinstance(value, int) else f"{value:.4g}")
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.rjust(width) if i else cell.ljust(width) for i, (cell, width) in enumerate(zip(line, widths)))
            for line in lines]
    text.insert(1, "  ".join("-" * width for width in widths))
    extra = {**real, **model_metrics}
    text.append("")
    text.append("  ".join(f"{name} {value:.4g}" for name, value in extra.items()))
    return "\n".join(text)


def measure(model, sampler: Sampler, n: int, seed: int, device, classifier, reference: quality.Reference):
    """(images, metrics, class counts) of one sampler: decode n draws, classify, score."""
    images = draw_samples(model, sampler, n, seed, device)
    features, probabilities = classifiers.embed(classifier, images)
    metrics, counts = quality.image_set_metrics(images, features, probabilities, reference)
    return images, metrics, counts


def evaluate(config: EvaluateConfig) -> str:
    """Run the `evaluate` step; returns the MLflow run id of the evaluation (a child of the train run)."""
    if not RUN_ID_PATTERN.match(config.model):
        raise InputError(f"parameter 'model': got {config.model!r}; allowed: a train run id (32 hex digits)")
    train_run = get_run(config.model, "model")
    if train_run.data.tags.get("pipeline.step", "train") != "train":
        raise InputError(f"parameter 'model': run {config.model} is a {train_run.data.tags['pipeline.step']!r} run; "
                         "allowed: the id of a train run")
    samplers = sampler_specs(config, train_run)
    device = resolve_device(config.device)
    prepared = train_run_data(train_run)
    loss = run_param(train_run, "loss")
    model = load_model(f"runs:/{config.model}/model", device)
    _use_train_experiment(train_run)
    classifier, classifier_run_id = classifiers.get_or_train(prepared, device, train_run.info.experiment_id)

    with start_step_run("evaluate") as run:
        log_config(config)
        mlflow.set_tags({"mlflow.parentRunId": config.model, "source_run_id": config.model,
                         "classifier_run_id": classifier_run_id, "data_digest": prepared.digest})
        split = {name: as_float_tensor(images, device) for name, (images, _) in prepared.splits.items()}
        test_labels = prepared.splits["test"][1]
        test_features, _ = classifiers.embed(classifier, split["test"])
        reference = quality.Reference.build(test_features, test_labels)

        # The real train subset through the very same path as generated images: the floor.
        generator = np.random.default_rng(config.seed)
        subset = generator.choice(len(split["train"]), size=min(config.n_samples, len(split["train"])), replace=False)
        real_images = split["train"][torch.from_numpy(np.sort(subset)).to(device)]
        features, probabilities = classifiers.embed(classifier, real_images)
        real_row, _ = quality.image_set_metrics(real_images, features, probabilities, reference)
        real = {"fid_floor": real_row["fid"], "sharpness_real": quality.sharpness(split["test"]),
                "class_entropy_real": float(quality.entropy(reference.label_shares))}
        mlflow.log_param("fid_floor_size", len(subset))

        rows: dict[str, dict] = {}
        latent_means = None
        for sampler in tqdm(samplers, desc="evaluate", unit="sampler"):
            if needs_fit(sampler):
                if latent_means is None:  # the encoded means of a seeded subset of the train split
                    codes = np.random.default_rng(config.seed).permutation(len(split["train"]))[:GMM_FIT_CODES]
                    latent_means = likelihood.encoded_means(model, split["train"][torch.from_numpy(np.sort(codes)).to(device)])
                sampler = sampler.fit(latent_means, seed=config.seed)
            images, metrics, counts = measure(model, sampler, config.n_samples, config.seed, device, classifier, reference)
            rows[sampler.key] = metrics
            mlflow.log_metrics({f"{name}/{sampler.key}": float(metrics[name]) for name in SAMPLER_METRICS})
            mlflow.set_tag(f"max_class/{sampler.key}", str(metrics["max_class"]))
            log_sampler_artifacts(sampler.key, images, counts, reference.label_shares)

        model_metrics = {
            "neg_elbo": likelihood.neg_elbo(model, split["test"], loss, config.seed),
            "nll": likelihood.iwae_nll(model, split["test"], config.iwae_k, loss, config.seed),
            "active_units": likelihood.active_units(model, split["test"]),
        }
        mlflow.log_metrics({**model_metrics, **real})
        copy_to_train_run(config.model, scalar_metrics(rows, model_metrics, real),
                          {"evaluation_run_id": run.info.run_id,
                           **{f"max_class/{key}": str(row["max_class"]) for key, row in rows.items()}})
        table = format_table({**rows, REAL_ROW: real_row}, model_metrics, real)
        mlflow.log_text(table, "evaluation/summary.txt")
        print(f"evaluation run {run.info.run_id} of train run {config.model} "
              f"({config.n_samples} samples per sampler, iwae_k={config.iwae_k}):")
        print(table)
        return run.info.run_id
