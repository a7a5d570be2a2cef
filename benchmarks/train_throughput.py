"""Training throughput: this pipeline's loop in float32 and in bf16-mixed, against the standard PyTorch
VAE example's loop.

Times one epoch over the 60,000 MNIST training images with the study's model (VAE(100, 392)) for
`pipeline.core.model.training.train_epoch` in both precisions (`precision=32` and `bf16-mixed`: the
forward pass under bfloat16 autocast) and for a reference loop in the style of the PyTorch VAE example
(torchvision dataset + DataLoader + ToTensor, BCE on sigmoid outputs, plain Adam), side by side in
one process, and measures the device's float32 matmul rate to say how close the pipeline gets to it
(its bfloat16 matmul rate too: below the float32 one, the device has no native bf16).

The machine is shared and noisy (its matmul rate alone swings by 30% from second to second), so the
loops alternate (the order rotates every round), each epoch is repeated and the medians reported,
and each pipeline epoch is bracketed by float32 matmul measurements: its matmul fraction compares it
with the rate measured around it, not at another moment (for bf16-mixed, the fraction of the float32
floor: above 1 when bf16 beats it). The JSON keeps every raw timing. Only the JSON goes to stdout;
progress goes to stderr.

    python benchmarks/train_throughput.py [--repeats 3] [--batch-sizes 128 1024] [--data IDX_FOLDER]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets, transforms

from pipeline.core.data.idx import read_idx_split
from pipeline.core.model.training import as_float_tensor, make_optimizer, train_epoch
from pipeline.core.model.vae import VAE

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "MNIST" / "raw"
TRAIN_IMAGES = 60_000
LATENT, HIDDEN, LR = 100, 392, 1e-3
LOOPS = ("pipeline", "pipeline_bf16", "reference")  # pipeline_bf16: train_epoch with precision="bf16-mixed"
PRECISION_OF = {"pipeline": "32", "pipeline_bf16": "bf16-mixed"}
TARGETS = {"speedup_b128": 1.5, "matmul_fraction_b1024": 0.75, "bf16_speedup_b128": 1.35}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def clock(device: torch.device) -> float:
    """perf_counter after the device has finished its queued work (CUDA runs asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def flops_per_epoch(model: VAE, images: int) -> float:
    """Matmul FLOPs of one epoch: 2 per multiply-add, times 3 for forward + backward (the usual
    convention, also DESIGN.md's 264 GFLOP; the unneeded input gradient of layer 1 is not subtracted)."""
    multiply_adds = sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear))
    return 6.0 * multiply_adds * images


def matmul_gflops(device: torch.device, size: int, repeats: int, dtype=torch.float32) -> list[float]:
    """Rate of a size x size matmul in `dtype`, one figure per repeat (the caller takes the best)."""
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
    a @ b  # warm-up
    rates = []
    for _ in range(repeats):
        start = clock(device)
        a @ b
        rates.append(2 * size**3 / (clock(device) - start) / 1e9)
    return rates


class UInt8Images(Dataset):
    """torchvision.datasets.MNIST's item path for arrays: PIL image -> transform, with a label."""

    def __init__(self, images: np.ndarray, transform):
        self.images, self.transform = images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return self.transform(Image.fromarray(self.images[index])), 0  # 2-D uint8: mode "L"


def reference_dataset(data: Path, images: np.ndarray) -> Dataset:
    """torchvision's MNIST when `data` is a torchvision layout (<root>/MNIST/raw), else the same item
    path over the arrays the pipeline reads (generated data, or an IDX folder of another layout)."""
    if data.is_dir() and data.name == "raw" and data.parent.name == "MNIST":
        return datasets.MNIST(root=str(data.parent.parent), train=True, download=False, transform=transforms.ToTensor())
    return UInt8Images(images, transforms.ToTensor())


def reference_epoch(model: VAE, optimizer, loader: DataLoader, device: torch.device, max_batches=None) -> float:
    """The PyTorch VAE example's train(): per-batch transfer, BCE of sigmoid outputs summed, KL, .item()."""
    model.train()
    train_loss = 0.0
    for index, (data, _) in enumerate(loader):
        if index == max_batches:
            break
        data = data.to(device).view(-1, 784)
        optimizer.zero_grad()
        logits, mu, logvar = model(data)
        bce = F.binary_cross_entropy(torch.sigmoid(logits), data, reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        loss = bce + kld
        loss.backward()
        train_loss += loss.item()
        optimizer.step()
    return train_loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per loop and batch size")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 1024])
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help="IDX folder with the training split; generated data of MNIST's shape if absent",
    )
    parser.add_argument("--matmul-size", type=int, help="default 2048 (4096 on CUDA, where 2048 takes ~1 ms)")
    parser.add_argument("--warmup-batches", type=int, default=20)
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    args.matmul_size = args.matmul_size or (4096 if device.type == "cuda" else 2048)
    if args.data.is_dir():
        images, _ = read_idx_split(args.data, "train")
        source = str(args.data)
    else:
        images = np.random.default_rng(0).integers(0, 256, (TRAIN_IMAGES, 28, 28), dtype=np.uint8)
        source = "generated"
    log(f"device {device}, {torch.get_num_threads()} threads, data {source}: {len(images)} images")
    tensor = as_float_tensor(np.array(images), device)  # writable copy: torch warns on read-only arrays
    reference_data = reference_dataset(args.data, images)
    loader_options = {"num_workers": 1, "pin_memory": True} if device.type == "cuda" else {}  # the example's

    def run(name: str, batch: int, max_batches: int | None = None) -> float:
        """Seconds for one epoch (or its first max_batches batches) of a fresh model with one loop."""
        torch.manual_seed(0)
        model = VAE(LATENT, HIDDEN).to(device)
        if name in PRECISION_OF:
            optimizer = make_optimizer(model, LR, device)
            images = tensor if max_batches is None else tensor[: max_batches * batch]
            epoch = lambda: train_epoch(model, optimizer, images, batch, "bce", PRECISION_OF[name])
        else:
            optimizer = torch.optim.Adam(model.parameters(), lr=LR)
            loader = DataLoader(reference_data, batch_size=batch, shuffle=True, **loader_options)
            epoch = lambda: reference_epoch(model, optimizer, loader, device, max_batches)
        start = clock(device)
        epoch()
        return clock(device) - start

    for batch in args.batch_sizes:  # warm-up: kernels, allocator, DataLoader machinery
        for name in LOOPS:
            run(name, batch, args.warmup_batches)

    load_before = os.getloadavg()
    bf16_matmul = matmul_gflops(device, args.matmul_size, 3, torch.bfloat16)
    raw = {name: {str(b): [] for b in args.batch_sizes} for name in LOOPS}
    around = {name: {str(b): [] for b in args.batch_sizes} for name in PRECISION_OF}  # float32 matmul before + after
    for round_ in range(args.repeats):
        for batch in args.batch_sizes:
            for name in LOOPS[round_ % len(LOOPS) :] + LOOPS[: round_ % len(LOOPS)]:
                before = matmul_gflops(device, args.matmul_size, 3) if name in PRECISION_OF else []
                seconds = run(name, batch)
                if name in PRECISION_OF:
                    around[name][str(batch)].append(before + matmul_gflops(device, args.matmul_size, 3))
                raw[name][str(batch)].append(seconds)
                log(f"round {round_ + 1}/{args.repeats} batch {batch}: {name} {seconds:.2f} s")
    bf16_matmul += matmul_gflops(device, args.matmul_size, 3, torch.bfloat16)

    result = {
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "load_average_before_after": [load_before[0], os.getloadavg()[0]],
        "data": source,
        "images": len(images),
        "repeats": args.repeats,
        **summary(raw, around, flops_per_epoch(VAE(LATENT, HIDDEN), len(images)), len(images)),
        "matmul_size": args.matmul_size,
        "matmul_gflops_bf16": max(bf16_matmul),
    }
    result["raw_seconds"] = raw
    result["raw_matmul_gflops_around_pipeline_epochs"] = around
    result["raw_matmul_gflops_bf16"] = bf16_matmul
    result["targets"] = {
        key: {"target": target, "value": result.get(key), "met": result.get(key, 0) >= target}
        for key, target in TARGETS.items()
    }
    print(json.dumps(result, indent=2))


def matmul_fraction(flops: float, epochs: list[float], around: list[list[float]]) -> float:
    """Each epoch against the float32 matmul rate measured just before and after it, so both figures come
    from the same state of the shared machine; the median over epochs is the headline figure."""
    return statistics.median(flops / t / 1e9 / max(m) for t, m in zip(epochs, around))


def summary(raw: dict, around: dict, flops: float, images: int) -> dict:
    """Medians, speed-ups and matmul fractions per batch size, and fp32 against bf16-mixed side by side."""
    seconds = {name: {b: statistics.median(times) for b, times in sizes.items()} for name, sizes in raw.items()}
    best = max(rate for loop in around.values() for epochs in loop.values() for samples in epochs for rate in samples)
    result = {"gflop_per_epoch": flops / 1e9, "matmul_gflops": best, "seconds_per_epoch": seconds}
    precisions = {}
    for b in seconds["pipeline"]:
        fp32, bf16 = seconds["pipeline"][b], seconds["pipeline_bf16"][b]
        result[f"speedup_b{b}"] = seconds["reference"][b] / fp32
        result[f"pipeline_gflops_b{b}"] = flops / fp32 / 1e9
        result[f"matmul_fraction_b{b}"] = matmul_fraction(flops, raw["pipeline"][b], around["pipeline"][b])
        # Unpaired and more pessimistic: the median epoch against the best matmul of the whole run.
        result[f"matmul_fraction_b{b}_of_best_matmul"] = result[f"pipeline_gflops_b{b}"] / best
        result[f"bf16_speedup_b{b}"] = fp32 / bf16
        steps = math.ceil(images / int(b))
        precisions[b] = {
            "fp32_seconds_per_epoch": fp32,
            "bf16_mixed_seconds_per_epoch": bf16,
            "fp32_ms_per_step": 1000 * fp32 / steps,
            "bf16_mixed_ms_per_step": 1000 * bf16 / steps,
            "ratio_bf16_over_fp32": bf16 / fp32,
            "fp32_matmul_fraction": result[f"matmul_fraction_b{b}"],
            "bf16_mixed_fraction_of_fp32_matmul_floor": matmul_fraction(
                flops, raw["pipeline_bf16"][b], around["pipeline_bf16"][b]
            ),
        }
    result["fp32_vs_bf16_mixed"] = precisions
    return result


if __name__ == "__main__":
    main()
