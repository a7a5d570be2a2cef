"""Quality against training length, for choosing a preset's epochs: one JSON line per checkpoint.

Trains the study's model (latent 100, hidden 392) on a dataset with the given loss, forward pass,
batch size and learning rate, and at each checkpoint epoch prints the validation -ELBO and the
N(0,1) sampler's FID, recall, precision and classes covered (1,000 samples against the test split,
scored in the evaluation classifier's features, as `evaluate` scores them). No MLflow: the core only.

    python benchmarks/quality_vs_epochs.py --batch-size 64 --epochs 10,30,40,60,80 --seeds 0
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from pipeline.core.data import datasets
from pipeline.core.evaluation.scoring import EvaluationContext
from pipeline.core.judges import cnn
from pipeline.core.model import training
from pipeline.core.model.samplers import parse_sampler
from pipeline.core.model.vae import VAE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="mnist-5k")
    parser.add_argument("--loss", default="bce")
    parser.add_argument("--forward", default="standard")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--epochs", default="10,20,40,60,80,100", help="checkpoints, a comma list")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--sampler", default="normal:0,1")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    checkpoints = sorted(int(e) for e in args.epochs.split(","))
    device = torch.device("cpu")
    prepared = datasets.resolve_local(args.data, 0.1, 0, "data")
    net, _, _ = cnn.train_on(prepared, device, progress=False)
    context = EvaluationContext.build(net, prepared, device, 1000, 0)
    split = {name: training.as_float_tensor(images, device) for name, (images, _) in prepared.splits.items()}
    for seed in (int(s) for s in args.seeds.split(",")):
        torch.manual_seed(seed)
        model = VAE(100, 392, args.forward)
        optimizer = training.make_optimizer(model, args.lr, device)
        started = time.perf_counter()
        for epoch in range(1, checkpoints[-1] + 1):
            training.train_epoch(model, optimizer, split["train"], args.batch_size, args.loss)
            if epoch not in checkpoints:
                continue
            val = (training.evaluate_epoch(model, split["val"], args.loss) / len(split["val"]))[0].item()
            _, _, metrics, _ = context.score(model, parse_sampler(args.sampler))
            print(
                json.dumps(
                    {
                        "seed": seed,
                        "batch_size": args.batch_size,
                        "epoch": epoch,
                        "val_loss": round(val, 2),
                        "train_s": round(time.perf_counter() - started, 1),
                        **{k: round(float(metrics[k]), 3) for k in ("fid", "recall", "precision", "classes_covered")},
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
