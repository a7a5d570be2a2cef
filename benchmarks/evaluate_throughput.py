"""Evaluation throughput: one sampler's generation metrics on 10,000 images, and the likelihood.

Times, with the study's model (VAE(100, 392)) and the evaluation classifier's architecture:
- `reference_seconds`: the once-per-evaluation work: test-split features, FID statistics, k-NN radii;
- `sampler_seconds`: one sampler's metrics as the evaluate step computes them (decode n draws,
  classify, FID, class histogram, confidence, precision/recall, sharpness), with a breakdown;
- `gmm_fit_seconds`: encoding 10,000 training images and fitting gmm:10 (once per evaluation);
- `likelihood_seconds`: test −ELBO, the IWAE NLL at `iwae_k` and active units on the test split.
Weights are left at their initialization: the cost does not depend on them. The machine is
shared and noisy, so each timing is repeated and the JSON keeps every raw value beside the
median. Only the JSON goes to stdout.

    python benchmarks/evaluate_throughput.py [--data idx:DIR|mnist-5k] [--n-samples 10000] [--iwae-k 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from pipeline.core.data import datasets
from pipeline.core.evaluation.scoring import GMM_FIT_CODES, EvaluationContext
from pipeline.core.judges import cnn
from pipeline.core.model.samplers import draw_samples, parse_sampler
from pipeline.core.model.training import as_float_tensor
from pipeline.core.model.vae import VAE
from pipeline.core.scores import likelihood, quality

FULL_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "MNIST" / "raw"
TARGET_SAMPLER_SECONDS = 10.0


def timed(function, repeats: int):
    values, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        values.append(round(time.perf_counter() - started, 3))
    return {"median": statistics.median(values), "all": values}, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=f"idx:{FULL_MNIST}" if FULL_MNIST.exists() else "mnist-5k")
    parser.add_argument("--n-samples", type=int, default=10_000)
    parser.add_argument("--iwae-k", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    device = torch.device("cpu")
    prepared = datasets.prepare(args.data)
    split = {name: as_float_tensor(images, device) for name, (images, _) in prepared.splits.items()}
    torch.manual_seed(0)
    model = VAE(100, 392).eval()
    net = cnn.DigitClassifier().eval()
    sampler = parse_sampler("normal:0,1")
    print(f"data {args.data}: {prepared.counts()}", file=sys.stderr)

    def context():  # the shared part: reference features and radii, the real floor
        return EvaluationContext.build(net, prepared, device, args.n_samples, 0)

    reference_time, built = timed(context, args.repeats)
    ref = built.reference
    sampler_time, _ = timed(lambda: built.score(model, sampler), args.repeats)

    images = draw_samples(model, sampler, args.n_samples, 0, device)
    features, probabilities = cnn.embed(net, images)
    parts = {
        "decode": timed(lambda: draw_samples(model, sampler, args.n_samples, 0, device), args.repeats)[0]["median"],
        "classify": timed(lambda: cnn.embed(net, images), args.repeats)[0]["median"],
        "fid": timed(lambda: quality.frechet_distance(ref.stats, features), args.repeats)[0]["median"],
        "precision_recall": timed(
            lambda: quality.precision_recall(
                ref.features, features, real_radii=ref.radii(min(len(ref.features), len(features)))
            ),
            args.repeats,
        )[0]["median"],
        "sharpness": timed(lambda: quality.sharpness(images), args.repeats)[0]["median"],
    }
    codes = split["train"][:GMM_FIT_CODES]
    gmm_time, _ = timed(lambda: parse_sampler("gmm:10").fit(likelihood.encoded_means(model, codes)), 1)

    def likelihood_measures():
        loss = "bce"
        return (
            likelihood.neg_elbo(model, split["test"], loss),
            likelihood.iwae_nll(model, split["test"], args.iwae_k, loss),
            likelihood.active_units(model, split["test"]),
        )

    likelihood_time, _ = timed(likelihood_measures, args.repeats)
    result = {
        "data": args.data,
        "n_samples": args.n_samples,
        "test_images": len(split["test"]),
        "iwae_k": args.iwae_k,
        "torch_threads": torch.get_num_threads(),
        "reference_seconds": reference_time,
        "sampler_seconds": sampler_time,
        "sampler_breakdown_median_seconds": parts,
        "gmm_fit_seconds": gmm_time,
        "likelihood_seconds": likelihood_time,
        "target_sampler_seconds": TARGET_SAMPLER_SECONDS,
        "sampler_within_target": sampler_time["median"] < TARGET_SAMPLER_SECONDS,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
