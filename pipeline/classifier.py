"""The evaluation classifier: a small CNN that turns images into class probabilities and features.

Generation quality is judged through it (class histogram, confidence, FID and precision/recall on
its penultimate layer), so it is trained once per prepared dataset, logged as an MLflow run tagged
with the data digest, and found again by that digest instead of being retrained: every evaluation
of models trained on the same data then uses the very same feature space.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import mlflow
import numpy as np
import torch
import torch.nn.functional as F
from mlflow.tracking import MlflowClient
from torch import nn
from tqdm.auto import tqdm

STEP_TAG = "classifier"
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


def fit(train_images: torch.Tensor, train_labels: torch.Tensor, epochs: int = EPOCHS, seed: int = SEED,
        progress: bool = True) -> DigitClassifier:
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


def find_run(digest: str):
    """The newest finished classifier run for this data digest, in any experiment, or None."""
    runs = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.data_digest = '{digest}' and tags.`pipeline.step` = '{STEP_TAG}' "
        "and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    return runs[0] if runs else None


def train_and_log(prepared, device: torch.device, experiment_id: str) -> str:
    """Train on the prepared train split, log a classifier run in `experiment_id`; returns its id.

    The run is created with the client and entered by id, so it never resumes or nests under the
    step run that `mlflow run` announced through MLFLOW_RUN_ID; ending it unsets that variable
    (mlflow.end_run does), so it is put back for the step's own run to attach to.
    """
    step_run_id = os.environ.get("MLFLOW_RUN_ID")
    try:
        return _train_and_log(prepared, device, experiment_id)
    finally:
        if step_run_id:
            os.environ["MLFLOW_RUN_ID"] = step_run_id


def _train_and_log(prepared, device: torch.device, experiment_id: str) -> str:
    import mlflow.pytorch

    from pipeline.training import as_float_tensor

    def tensors(split):
        images, labels = prepared.splits[split]
        return as_float_tensor(images, device), torch.from_numpy(labels).to(device)

    train_x, train_y = tensors("train")
    test_x, test_y = tensors("test")
    val_x, val_y = tensors("val")
    steps_per_epoch = math.ceil(len(train_y) / BATCH_SIZE)
    epochs = max(EPOCHS, math.ceil(MIN_STEPS / steps_per_epoch))
    client = MlflowClient()
    run = client.create_run(experiment_id, tags={"pipeline.step": STEP_TAG, "data_digest": prepared.digest},
                            run_name=f"classifier-{prepared.digest[:8]}")
    with mlflow.start_run(run_id=run.info.run_id):
        mlflow.log_params({"epochs": epochs, "batch_size": BATCH_SIZE, "lr": LR, "seed": SEED, "max_shift": MAX_SHIFT,
                           "features": FEATURES, "data_digest": prepared.digest, "train_images": len(train_y)})
        started = time.perf_counter()
        model = fit(train_x, train_y, epochs=epochs)
        mlflow.log_metrics({
            "train_seconds": time.perf_counter() - started,
            "train_accuracy": accuracy(model, train_x, train_y),
            "val_accuracy": accuracy(model, val_x, val_y),
            "test_accuracy": accuracy(model, test_x, test_y),
        })
        mlflow.pytorch.log_model(
            model.to("cpu").eval(),
            name="model",
            serialization_format="pickle",  # the class's features() is needed, not only forward()
            code_paths=[str(Path(__file__).resolve().parent)],
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", f"mlflow=={mlflow.__version__}"],
        )
    return run.info.run_id


def load(run_id: str, device: torch.device) -> DigitClassifier:
    import mlflow.pytorch

    return mlflow.pytorch.load_model(f"runs:/{run_id}/model", map_location=device).to(device).eval()


def get_or_train(prepared, device: torch.device, experiment_id: str) -> tuple[DigitClassifier, str]:
    """The classifier for this data (by digest) and its run id; trained and logged the first time."""
    run = find_run(prepared.digest)
    run_id = run.info.run_id if run is not None else train_and_log(prepared, device, experiment_id)
    return load(run_id, device), run_id


def label_frequencies(labels: np.ndarray, classes: int = 10) -> np.ndarray:
    """Share of each class among labels: the reference the class histogram is compared with."""
    return np.bincount(labels, minlength=classes) / len(labels)
