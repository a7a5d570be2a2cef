"""The search's answer verified over seeds, on the test split.

A search ranks trials by one training seed's validation FID. After its trials, the best trial's
latent size is trained with each of `verify_seeds` at the search's training settings (the search's
own seed reuses its model; other seeds are trained once and reused by training configuration, as
the trials' models are), and five samplers are scored on the TEST split with the evaluate step's
scores and both judges (pipeline/core/evaluation/two_judges.py): the best Beta, the N(0,1)-like Beta(20,20) placed
as the search places its Betas, N(0,1), the study's Beta(0.25,0.25) and gmm:10. The verdicts apply
the report's seed-spread rule (pipeline/core/scores/spread.py):

- F7: the searched Beta is more realistic than N(0,1): FID lower, precision higher, recall higher,
  each its own part, so that a trade of precision for recall shows as a trade;
- F8: the study's Beta(0.25,0.25) is worse than N(0,1) at the searched latent size;
- G: how far the searched Beta is from gmm:10 (a prior fitted on the encoded training data).

Each (sampler, seed) is a child run of the search run (pipeline/tracking/verification.py) with the
plain metric names of the study's per-sampler runs and tags `verification`, `sampler`, `sampler_name`,
`seed`, `latent_size`: the one source of the scores, which the verdicts and the search report read
back. The search run gets the verdicts as tags and as its description (the table on its page in the
UI), `verify/results.json` (the setup and the verdicts), `verify/verdicts.txt` and each sampler's
sample grid of the first verify seed.
"""

from __future__ import annotations

import dataclasses
import math

import mlflow
from optuna.trial import TrialState

from pipeline import tracking
from pipeline.core import plots, search_space
from pipeline.core.evaluation import two_judges
from pipeline.core.evaluation.scoring import SAMPLER_METRICS, EvaluationContext
from pipeline.core.judges import knn
from pipeline.core.model.samplers import BetaSampler, Sampler, parse_sampler
from pipeline.core.scores.spread import (
    CONTRADICTED,
    HOLDS,
    SPREAD_RULE,
    Summary,
    claim_outcome,
    compare,
    overall,
    spread_text,
)
from pipeline.search.models import Models, train_config
from pipeline.search.study import best_trial, sample_counts
from pipeline.tracking.classifier_run import judge_for
from pipeline.tracking.verification import describe_search, log_scores, verification_results, verification_run

ARTIFACT = "verify/results.json"
VERDICTS = "verify/verdicts.txt"


LABELS = {
    "best_beta": "searched Beta",
    "normal_like_beta": "Beta(20,20) placed like N(0,1)",
    "normal_0_1": "N(0,1)",
    "study_beta": "Beta(0.25,0.25)",
    "gmm_10": "gmm:10",
}
METRICS = (*SAMPLER_METRICS, *knn.SAMPLER_METRICS, *two_judges.METRICS)
CLAIMS = {
    "F7": "The searched Beta is more realistic than N(0,1) at the searched latent size.",
    "F8": "The study's Beta(0.25,0.25) is worse than N(0,1) at the searched latent size.",
    "G": "gmm:10 (fitted on the encoded training data) is more realistic than the searched Beta.",
}
TRADE = "a trade"  # some realism parts hold and others are contradicted


def grid_path(name: str) -> str:
    """Where the sample grid of one verified sampler (first verify seed) lies on the search run."""
    return f"verify/{name}_grid.png"


def seeds_of(config) -> list[int]:
    """The verify seeds, in the order given ([] for none)."""
    return [] if config.verify_seeds == "none" else [int(seed) for seed in config.verify_seeds.split(",")]


def samplers_of(params: dict) -> dict[str, Sampler]:
    """The five samplers by name: the best trial's Beta placed by its mean and sd, Beta(20,20) placed at
    mean 0 and sd 1 as the search's baseline is, and the study's and evaluate's own."""
    best = BetaSampler(
        params["a"], params["b"], *search_space.placement(params["a"], params["b"], params["mean"], params["sd"])
    )
    a, b, mean, sd = search_space.NORMAL_LIKE_BETA
    return {
        "best_beta": best,
        "normal_like_beta": BetaSampler(a, b, *search_space.placement(a, b, mean, sd)),
        "normal_0_1": parse_sampler("normal:0,1"),
        "study_beta": parse_sampler("beta:0.25,0.25"),
        "gmm_10": parse_sampler("gmm:10"),
    }


# --- verdicts: plain functions of {sampler: {seed: {metric: value}}} ------------------------------


def summary(results: dict, name: str, metric: str) -> Summary:
    seeds = sorted(results.get(name, {}), key=int)
    return Summary.of([results[name][seed].get(metric, math.nan) for seed in seeds], seeds)


def part(results: dict, text: str, a: str, b: str, metric: str, expected: str) -> dict:
    """One part: `a`'s metric is expected to be `expected` ('greater'/'less') than `b`'s."""
    first, second = summary(results, a, metric), summary(results, b, metric)
    return {
        "text": text,
        "outcome": claim_outcome(first, second, expected),
        "evidence": f"{metric} {LABELS[a]} {spread_text(first)} vs {LABELS[b]} {spread_text(second)}",
    }


def word(parts: list[dict]) -> str:
    """The finding's word (the report's rule), except that realism parts which hold beside parts that
    are contradicted are called a trade, with both named, rather than a plain contradiction."""
    outcomes = [p["outcome"] for p in parts]
    if HOLDS in outcomes and CONTRADICTED in outcomes:
        held = ", ".join(p["text"] for p in parts if p["outcome"] == HOLDS)
        lost = ", ".join(p["text"] for p in parts if p["outcome"] == CONTRADICTED)
        return f"{TRADE}: {held} holds; {lost} contradicted"
    return overall(outcomes)


def realism_parts(results: dict, better: str, worse: str, label: str) -> list[dict]:
    """`better` more realistic than `worse`: FID lower, precision higher, recall higher."""
    return [
        part(results, f"{label}: FID lower", better, worse, "fid", "less"),
        part(results, f"{label}: precision higher", better, worse, "precision", "greater"),
        part(results, f"{label}: recall higher", better, worse, "recall", "greater"),
    ]


def verdicts(results: dict) -> list[dict]:
    """F7, F8 and G, each {finding, claim, outcome, parts, notes}."""
    found = []
    for finding, better, worse in (
        ("F7", "best_beta", "normal_0_1"),
        ("F8", "normal_0_1", "study_beta"),
        ("G", "gmm_10", "best_beta"),
    ):
        parts = realism_parts(results, better, worse, f"{LABELS[better]} vs {LABELS[worse]}")
        found.append(
            {"finding": finding, "claim": CLAIMS[finding], "outcome": word(parts), "parts": parts, "notes": []}
        )
    like, normal = summary(results, "normal_like_beta", "fid"), summary(results, "normal_0_1", "fid")
    found[0]["notes"].append(
        f"The N(0,1)-like baseline: fid {LABELS['normal_like_beta']} {spread_text(like)} vs "
        f"N(0,1) {spread_text(normal)} ({compare(like, normal)})."
    )
    gap = summary(results, "best_beta", "fid").mean - summary(results, "gmm_10", "fid").mean
    if math.isfinite(gap):
        found[2]["notes"].append(f"The searched Beta's mean FID is {gap:+.4g} from gmm:10's.")
    return found


def verdict_text(found: list[dict], header: str) -> str:
    lines = [header, SPREAD_RULE, ""]
    for verdict in found:
        lines.append(f"{verdict['finding']}: {verdict['claim']} -> {verdict['outcome']}")
        lines += [f"  - {p['text']}: {p['evidence']}: {p['outcome']}" for p in verdict["parts"]]
        lines += [f"  {note}" for note in verdict["notes"]]
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
    """Train (or reuse) the best latent size per verify seed, score the five samplers on the test split,
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
        f"on the test split, {count} samples per sampler",
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
    mlflow.set_tags({f"verdict_{v['finding']}": v["outcome"] for v in found})
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
        "verdicts": found,
        "spread_rule": SPREAD_RULE,
        "real": context.real,
        "latent_sizes": latent_ranking(study),
        "latent_sizes_note": "one search, one training seed, validation FID: not a ranking over seeds",
    }
    mlflow.log_dict(record, ARTIFACT)
    header = (
        f"best trial {best.number} ({rule}), latent {latent_size}, {samplers['best_beta'].spec}; "
        f"seeds {config.verify_seeds}; test split, {count} samples per sampler"
    )
    text = verdict_text(found, header)
    mlflow.log_text(text, VERDICTS)
    describe_search(job.search_run_id, job.experiment_id, record, VERDICTS)
    print(text, flush=True)
    return record


def score_seed(context, judges, model, samplers: dict[str, Sampler], seed: int, job, tags: dict, with_grids: bool):
    """Each sampler scored with one seed's model, each in its own verification run under the search run
    (plain metric names, as the study's per-sampler runs); the first verify seed's sample grids also on
    the search run (the five side by side in the report)."""
    judge2, digits = judges
    for name, sampler in samplers.items():
        with verification_run(
            job.search_run_id, job.experiment_id, name, LABELS[name], sampler.spec, seed, tags
        ) as run_id:
            scored = context.scored(model, sampler)
            both = two_judges.judge_samples(context, judge2, scored, digits)
            metrics = {**{m: float(scored.metrics[m]) for m in SAMPLER_METRICS}, **both.metrics}
            classes = {"max_class": str(scored.metrics["max_class"]), f"max_class{knn.SUFFIX}": str(both.dominant)}
            log_scores(run_id, {m: v for m, v in metrics.items() if m in METRICS}, classes)
        if with_grids:
            mlflow.log_image(plots.grid_array(scored.images[: plots.GRID_SIZE]), artifact_file=grid_path(name))


def model_for(config, job, latent_size: int, seed: int, device):
    """(train run id, model) of the best latent size trained with `seed` at the search's settings: a
    finished training of that configuration is reused (the search's own seed: its trials' model)."""
    seeded = dataclasses.replace(config, seed=seed)
    train = train_config(seeded, latent_size)
    digest = tracking.resolve_data(config.data, train.val_fraction, seed, train.data_root).digest
    return Models(seeded, job, digest, device).get(latent_size)
