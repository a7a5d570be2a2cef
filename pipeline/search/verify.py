"""The search's answer verified over seeds, on the test split.

A search ranks trials by one training seed's validation FID. After its trials, the best trial's
latent size is trained with each of `verify_seeds` at the search's training settings (the search's
own seed reuses its model; other seeds are trained once and reused by training configuration, as
the trials' models are), and its samplers are scored on the TEST split with the evaluate step's
scores and both judges (pipeline/core/evaluation/two_judges.py): the best Beta, the N(0,1)-like
Beta(20,20) placed as the search places its Betas, N(0,1), the study's Beta(0.25,0.25), gmm:10, the
best Beta's matched normal (its mean and sd, without its shape) and N(0, sigma) at the temperatures
of pipeline/core/search_space.py, so that a Beta which is only a temperature shows as one.

The verdicts are the findings' (pipeline/core/findings: F7, F8, G and H on realism and diversity,
every sampler paired by seed); this module keeps no rule of its own.

Each (sampler, seed) is a child run of the search run (pipeline/tracking/verification.py) with the
plain metric names of the study's per-sampler runs and tags `verification`, `sampler`, `sampler_name`,
`seed`, `latent_size`: the one source of the scores, which the verdicts and the search report read
back. The search run gets the verdicts' words as tags and as its description (the table on its page in
the UI), `verify/results.json` (the setup, the searched Beta's moments, the verdicts with every part's
interval), `verify/verdicts.txt` and each sampler's sample grid of the first verify seed.
"""

from __future__ import annotations

import dataclasses
import math

import mlflow
from optuna.trial import TrialState

from pipeline import tracking
from pipeline.core import plots, search_space
from pipeline.core.evaluation import two_judges
from pipeline.core.evaluation.scoring import EvaluationContext
from pipeline.core.findings import SEARCH_FINDINGS, FindingVerdict, SamplerResults, evaluate_findings
from pipeline.core.findings.declarations import LABELS as FINDING_LABELS
from pipeline.core.findings.evaluator import COMBINING_RULE
from pipeline.core.findings.intervals import INTERVAL_RULE
from pipeline.core.model.samplers import BetaSampler, NormalSampler, Sampler, parse_sampler
from pipeline.search.models import Models, train_config
from pipeline.search.policy import RUN_ATTR, best_trial, sample_counts, trial_accounts
from pipeline.tracking.classifier_run import judge_for
from pipeline.tracking.verification import describe_search, log_scores, verification_results, verification_run

ARTIFACT = "verify/results.json"
VERDICTS = "verify/verdicts.txt"


TEMPERATURE_NAMES = {sigma: f"temperature_{sigma}" for sigma in search_space.TEMPERATURES}
LABELS = {  # the findings' samplers as they name them, and the verification's others
    **FINDING_LABELS,
    "normal_like_beta": "Beta(20,20) placed like N(0,1)",
    **{name: f"N(0, {sigma:g}²)" for sigma, name in TEMPERATURE_NAMES.items()},
}


def grid_path(name: str) -> str:
    """Where the sample grid of one verified sampler (first verify seed) lies on the search run."""
    return f"verify/{name}_grid.png"


def seeds_of(config) -> list[int]:
    """The verify seeds, in the order given ([] for none)."""
    return [] if config.verify_seeds == "none" else [int(seed) for seed in config.verify_seeds.split(",")]


def best_beta_of(params: dict) -> BetaSampler:
    """The best trial's Beta, placed by its mean and sd as the search placed it."""
    a, b = params["a"], params["b"]
    return BetaSampler(a, b, *search_space.placement(a, b, params["mean"], params["sd"]))


def moments_of(beta: BetaSampler) -> dict[str, float]:
    """The placed Beta's mean, sd, skewness and excess kurtosis."""
    return search_space.placed_beta_moments(beta.a, beta.b, beta.loc, beta.scale)


def matched_normal(beta: BetaSampler) -> NormalSampler:
    """N(mean, sd²) of the placed Beta: its location and spread without its shape."""
    moments = moments_of(beta)
    return NormalSampler(moments["mean"], moments["sd"])


def temperature_curve() -> dict[float, str]:
    """{sigma: sampler name} of the N(0, sigma) samplers, N(0,1) at sigma 1, by increasing sigma."""
    return dict(sorted({**TEMPERATURE_NAMES, 1.0: "normal_0_1"}.items()))


def samplers_of(params: dict) -> dict[str, Sampler]:
    """The verified samplers by name: the best trial's Beta, Beta(20,20) placed at mean 0 and sd 1 as the
    search's baseline is, the study's and evaluate's own, the Beta's matched normal and N(0, sigma) at
    each temperature (one scoring each per verify seed)."""
    best = best_beta_of(params)
    a, b, mean, sd = search_space.NORMAL_LIKE_BETA
    return {
        "best_beta": best,
        "normal_like_beta": BetaSampler(a, b, *search_space.placement(a, b, mean, sd)),
        "normal_0_1": parse_sampler("normal:0,1"),
        "study_beta": parse_sampler("beta:0.25,0.25"),
        "gmm_10": parse_sampler("gmm:10"),
        "matched_normal": matched_normal(best),
        **{name: NormalSampler(0.0, sigma) for sigma, name in TEMPERATURE_NAMES.items()},
    }


# --- verdicts: the findings' one evaluator on {sampler: {seed: {metric: value}}} -----------------


def verdicts(results: dict) -> list[FindingVerdict]:
    """F7, F8, G and H (pipeline/core/findings) on the verification's scores, every sampler paired by seed."""
    return evaluate_findings(SEARCH_FINDINGS, SamplerResults(results, LABELS))


def verdict_text(found: list[FindingVerdict], header: str) -> str:
    """verify/verdicts.txt: the setup, the rules, and per finding its word and every part's interval."""
    lines = [header, INTERVAL_RULE, COMBINING_RULE, ""]
    for verdict in found:
        lines.append(f"{verdict.finding}: {verdict.claim} -> {verdict.word}")
        lines += [f"  {line}" for line in verdict.lines()]
    return "\n".join(lines)


def latent_ranking(study) -> list[dict]:
    """Per latent size, the trials' best validation FID: one search, one seed (what the ranking rests on)."""
    best: dict[int, dict] = {}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        size, fid = int(trial.params["latent_size"]), float(trial.values[0])
        entry = best.setdefault(size, {"latent_size": size, "trials": 0, "best_validation_fid": math.inf})
        entry["trials"] += 1
        entry["best_validation_fid"] = min(entry["best_validation_fid"], fid)
    return sorted(best.values(), key=lambda e: e["best_validation_fid"])


# --- the verification itself ---------------------------------------------------------------------


def verify(study, config, job, classifier, classifier_run_id: str, prepared, device) -> dict | None:
    """Train (or reuse) the best latent size per verify seed, score the samplers on the test split,
    each (sampler, seed) its own child run of the search run; the verdicts, read back from those runs, on
    the search run (tags, description, files); returns the record (None: nothing to do)."""
    seeds = seeds_of(config)
    best, rule = best_trial(study, config)
    if not seeds or best is None:
        mlflow.set_tag("verify", "skipped: " + ("verify_seeds=none" if not seeds else "no complete trial"))
        return None
    latent_size = int(best.params["latent_size"])
    samplers = samplers_of(best.params)
    count = sample_counts(config, prepared)[-1]
    print(
        f"search: verifying the best trial {best.number} (latent {latent_size}) over seeds {config.verify_seeds} "
        f"on the test split, {len(samplers)} samplers, {count} samples per sampler",
        flush=True,
    )
    context = EvaluationContext.build(classifier, prepared, device, count, config.seed, reference_split="test")
    judges = (judge_for(classifier_run_id, prepared), two_judges.real_digits(context))
    models: dict[str, str] = {}
    for seed in seeds:
        models[str(seed)], model = model_for(config, job, latent_size, seed, device)
        tags = {"latent_size": str(latent_size), "model_run_id": models[str(seed)]}
        score_seed(context, judges, model, samplers, seed, job, tags, with_grids=seed == seeds[0])
    found = verdicts(verification_results(job.search_run_id, job.experiment_id))
    mlflow.set_tags({f"verdict_{v.finding}": v.word for v in found})
    record = {
        "best_trial": best.number,
        "best_rule": rule,
        "latent_size": latent_size,
        "seeds": seeds,
        "n_samples": count,
        "split": "test",
        "model_run_ids": models,
        "samplers": {name: sampler.spec for name, sampler in samplers.items()},
        "labels": LABELS,
        "moments": {"best_beta": moments_of(samplers["best_beta"]), "normal_0_1": search_space.STANDARD_NORMAL_MOMENTS},
        "temperatures": {f"{sigma:g}": name for sigma, name in temperature_curve().items()},
        "verdicts": [v.to_dict() for v in found],
        "rules": [INTERVAL_RULE, COMBINING_RULE],
        "real": context.real,
        "latent_sizes": latent_ranking(study),
        "trials": trial_accounts(study, job.search_run_id, failure_reason),
        "latent_sizes_note": "one search, one training seed, validation FID: not a ranking over seeds",
    }
    publish(job, record, found, f"seeds {config.verify_seeds}")
    return record


def failure_reason(trial) -> str:
    """A failed trial's reason, as its run was ended with it."""
    run_id = trial.user_attrs.get(RUN_ATTR)
    return mlflow.MlflowClient().get_run(run_id).data.tags.get("failure_reason", "") if run_id else ""


def publish(job, record: dict, found: list[FindingVerdict], seeds: str) -> None:
    """The record and the verdicts on the search run: results.json, verdicts.txt, its description."""
    mlflow.log_dict(record, ARTIFACT)
    header = (
        f"best trial {record['best_trial']} ({record['best_rule']}), latent {record['latent_size']}, "
        f"{record['samplers']['best_beta']}; {seeds}; test split, {record['n_samples']} samples per sampler"
    )
    text = verdict_text(found, header)
    mlflow.log_text(text, VERDICTS)
    describe_search(job.search_run_id, job.experiment_id, record, VERDICTS)
    print(text, flush=True)


def score_seed(context, judges, model, samplers: dict[str, Sampler], seed: int, job, tags: dict, with_grids: bool):
    """Each sampler scored with one seed's model, each in its own verification run under the search run
    (plain metric names, as the study's per-sampler runs); the first verify seed's sample grids also on
    the search run (the five side by side in the report)."""
    judge2, digits = judges
    for name, sampler in samplers.items():
        with verification_run(
            job.search_run_id, job.experiment_id, name, LABELS[name], sampler.spec, seed, tags
        ) as run_id:
            score = two_judges.score_sampler(context, model, sampler, judge2, digits)
            log_scores(run_id, score.metrics, score.dominant)
        if with_grids:
            mlflow.log_image(plots.grid_array(score.scored.images[: plots.GRID_SIZE]), artifact_file=grid_path(name))


def model_for(config, job, latent_size: int, seed: int, device):
    """(train run id, model) of the best latent size trained with `seed` at the search's settings: a
    finished training of that configuration is reused (the search's own seed: its trials' model)."""
    seeded = dataclasses.replace(config, seed=seed)
    train = train_config(seeded, latent_size)
    digest = tracking.resolve_data(config.data, train.val_fraction, seed, train.data_root).digest
    return Models(seeded, job, digest, device).get(latent_size)
