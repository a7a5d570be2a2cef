"""The evaluation classifier: a small CNN that turns images into class probabilities and features.

Generation quality is judged through it (class histogram, confidence, FID and precision/recall on
its penultimate layer), so it is trained once per source dataset (train and validation pooled,
whatever the split seed) and found again by the source digest instead of being retrained: every
evaluation of models trained on the same source then uses the very same feature space. Finding
and logging it is tracking's part.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from pipeline.core.model.training import as_float_tensor

FEATURES = 128
EPOCHS = 4
MIN_STEPS = 600  # small data (mnist-5k: 29 steps/epoch) gets more epochs: 95.1% -> ~97.5% test accuracy
BATCH_SIZE = 128
LR = 2e-3
SEED = 0
MAX_SHIFT = 2  # pixels of random translation: light augmentation that is free on tensors
INFER_BATCH = 2048
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


class DigitClassifier(nn.Module):
    """LeNet-style CNN: two 5x5 conv+pool stages, a 128-unit feature layer, 10 logits.

    Input is what the VAE decodes: (N, 784) or (N, 1, 28, 28) floats in [0, 1].
    """

    def __init__(self, features: int = FEATURES, classes: int = 10):
        super().__init__()
        self.num_features = features
        self.conv1 = nn.Conv2d(1, 16, 5)  # 28 -> 24 -> pool 12
        self.conv2 = nn.Conv2d(16, 32, 5)  # 12 -> 8 -> pool 4
        self.hidden = nn.Linear(32 * 4 * 4, features)
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(features, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate layer (after ReLU): the space FID and precision/recall are measured in."""
        x = (x.reshape(-1, 1, 28, 28) - MNIST_MEAN) / MNIST_STD
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return F.relu(self.hidden(x.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


@torch.no_grad()
def embed(classifier: DigitClassifier, images: torch.Tensor, batch_size: int = INFER_BATCH):
    """(features, softmax probabilities) for flat images in [0, 1], in batches, without gradients.

    Channels-last weights: the CPU convolutions run about twice as fast in that layout.
    """
    classifier.eval().to(memory_format=torch.channels_last)
    features, probabilities = [], []
    for start in range(0, images.shape[0], batch_size):
        f = classifier.features(images[start : start + batch_size])
        features.append(f)
        probabilities.append(torch.softmax(classifier.head(f), dim=1))
    return torch.cat(features), torch.cat(probabilities)


@torch.no_grad()
def accuracy(classifier: DigitClassifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    _, probabilities = embed(classifier, images)
    return (probabilities.argmax(1) == labels).float().mean().item()


def _shift(batch: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Translate each image by a random integer offset up to max_shift pixels (zero fill)."""
    n = batch.shape[0]
    padded = F.pad(batch.reshape(n, 1, 28, 28), (max_shift,) * 4)
    dx, dy = torch.randint(0, 2 * max_shift + 1, (2,)).tolist()  # one offset per batch: a single slice
    return padded[:, :, dy : dy + 28, dx : dx + 28]


def fit(
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    epochs: int = EPOCHS,
    seed: int = SEED,
    progress: bool = True,
) -> DigitClassifier:
    """Adam with a one-cycle schedule over shuffled tensors, random shifts as augmentation."""
    device = train_images.device
    torch.manual_seed(seed)
    model = DigitClassifier().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    steps = epochs * -(-train_images.shape[0] // BATCH_SIZE)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=LR, total_steps=steps)
    bar = tqdm(total=steps, desc="classifier", unit="step", disable=not progress, mininterval=2)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(train_images.shape[0], device=device)
        for start in range(0, len(order), BATCH_SIZE):
            index = order[start : start + BATCH_SIZE]
            batch = _shift(train_images[index], MAX_SHIFT)
            loss = F.cross_entropy(model(batch), train_labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            bar.update()
    bar.close()
    return model.eval()


def train_on(prepared, device: torch.device, progress: bool = True) -> tuple[DigitClassifier, dict, dict]:
    """(classifier, params, metrics) trained on the pooled train + validation images of `prepared`.

    Pooled in a canonical order and seeded with SEED, so every split of one source (any `seed`,
    any `val_fraction`) gets the very same classifier; accuracy is measured on the test split.
    """
    images, labels = prepared.pooled_training_set()
    train_x, train_y = as_float_tensor(images, device), torch.tensor(labels, device=device)
    test_x = as_float_tensor(prepared.splits["test"][0], device)
    test_y = torch.tensor(prepared.splits["test"][1], device=device)
    epochs = max(EPOCHS, math.ceil(MIN_STEPS / math.ceil(len(train_y) / BATCH_SIZE)))
    started = time.perf_counter()
    model = fit(train_x, train_y, epochs=epochs, progress=progress)
    params = {
        "epochs": epochs,
        "batch_size": BATCH_SIZE,
        "lr": LR,
        "seed": SEED,
        "max_shift": MAX_SHIFT,
        "features": FEATURES,
        "train_images": len(train_y),
    }
    metrics = {
        "train_seconds": time.perf_counter() - started,
        "train_accuracy": accuracy(model, train_x, train_y),
        "test_accuracy": accuracy(model, test_x, test_y),
    }
    return model, params, metrics
