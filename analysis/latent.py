"""The latent space of each trained model, seen through its encoder and decoder.

Encoded test means projected to 2-D (PCA fitted on those means), coloured by digit, with each
sampler's draws projected on the same axes: it shows where a sampler puts its mass against where
the encoder put the data (Beta(0.25,0.25) on [0,1]^d lands where no digit was encoded). Below it,
decodes of the straight line between two test digits' means.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.decomposition import PCA

from analysis.figures import plt
from pipeline import tracking
from pipeline.core import plots
from pipeline.core.data import datasets
from pipeline.core.evaluation.scoring import gmm_fit_codes
from pipeline.core.model.samplers import needs_fit, parse_sampler
from pipeline.core.model.training import as_float_tensor
from pipeline.core.scores.likelihood import encoded_means
from pipeline.core.seeding import seeded

MAX_POINTS = 2000  # encoded test digits per panel: enough to see the clusters, cheap to encode
DRAWS = 300  # sampler draws per panel
STEPS = 8  # decodes between the two ends of an interpolation
PAIR = (3, 8)  # the digits interpolated between: the first test image of each
SEED = 0


@dataclass
class CellModel:
    cell: str
    seed: int
    run_id: str
    samplers: list[str]


def prepared_data(run) -> datasets.Prepared:
    """The prepared data of a train run: the local cache by digest, else rebuilt or downloaded from
    its params (a prepare_data run id is fetched from the tracking server)."""
    digest = tracking.run_param(run, "data_digest")
    prepared = datasets.find_cached(digest) if digest else None
    if prepared is None:
        prepared = tracking.resolve_data(
            tracking.run_param(run, "data"),
            float(tracking.run_param(run, "val_fraction", "0.1")),
            int(tracking.run_param(run, "seed", "0")),
            tracking.run_param(run, "data_root", "data"),
        )
    return prepared


def _draws(model, spec: str, train: torch.Tensor) -> np.ndarray:
    """DRAWS latent codes of a sampler; gmm:K is fitted first on encoded training means as evaluate does."""
    sampler = parse_sampler(spec)
    if needs_fit(sampler):
        rows = np.random.default_rng(SEED).permutation(len(train))[: gmm_fit_codes(len(train))]
        sampler = sampler.fit(encoded_means(model, train[torch.from_numpy(np.sort(rows))]), seed=SEED)
    with seeded(SEED):
        return sampler.sample(DRAWS, model.latent_size, "cpu").numpy()


def _pair_rows(labels: np.ndarray) -> tuple[int, int]:
    found = [np.flatnonzero(labels == digit) for digit in PAIR]
    if all(len(f) for f in found):
        return int(found[0][0]), int(found[1][0])
    return 0, min(1, len(labels) - 1)


@torch.no_grad()
def latent_figures(cells: list[CellModel], train_runs: dict[str, object]):
    """(latent map figure, interpolation figure) for one model per cell."""
    columns = max(len(c.samplers) for c in cells)
    latent_fig, axes = plt.subplots(len(cells), columns, figsize=(3.3 * columns, 3.2 * len(cells) + 0.6), squeeze=False)
    rows = []
    cmap = plt.get_cmap("tab10")
    for index, cell in enumerate(cells):
        run = train_runs[cell.cell]
        model = tracking.load_model(f"runs:/{cell.run_id}/model", torch.device("cpu"))
        prepared = prepared_data(run)
        test_images, test_labels = prepared.splits["test"]
        test = as_float_tensor(test_images[:MAX_POINTS], torch.device("cpu"))
        labels = test_labels[:MAX_POINTS]
        means = encoded_means(model, test).numpy()
        pca = PCA(n_components=2, random_state=SEED).fit(means)
        projected = pca.transform(means)
        train = as_float_tensor(prepared.splits["train"][0], torch.device("cpu"))
        explained = pca.explained_variance_ratio_
        for column in range(columns):
            axis = axes[index][column]
            if column >= len(cell.samplers):
                axis.set_axis_off()
                continue
            spec = cell.samplers[column]
            draws = pca.transform(_draws(model, spec, train))
            axis.scatter(projected[:, 0], projected[:, 1], c=cmap(labels % 10), s=3, alpha=0.6, linewidths=0)
            axis.scatter(draws[:, 0], draws[:, 1], c="black", marker="x", s=8, linewidths=0.6)
            axis.set_title(f"{cell.cell} · {spec}", fontsize=9)
            axis.set_xlabel(f"PC1 ({explained[0]:.0%})", fontsize=8)
            axis.set_ylabel(f"PC2 ({explained[1]:.0%})", fontsize=8)
            axis.tick_params(labelsize=7)
        first, second = _pair_rows(labels)
        weights = torch.linspace(0, 1, STEPS + 2)[1:-1, None]
        line = (1 - weights) * torch.from_numpy(means[first]) + weights * torch.from_numpy(means[second])
        rows.append((cell, torch.cat([test[first : first + 1], model.decode(line), test[second : second + 1]])))
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=cmap(d), label=str(d)) for d in range(10)]
    handles.append(plt.Line2D([], [], marker="x", linestyle="", color="black", label="sampler draws"))
    latent_fig.legend(handles=handles, loc="lower center", ncol=11, fontsize=8, frameon=False)
    latent_fig.tight_layout(rect=(0, 0.05, 1, 1))

    interpolation_fig, strips = plt.subplots(len(rows), 1, figsize=(10, 1.35 * len(rows) + 0.4), squeeze=False)
    for axis, (cell, images) in zip(strips[:, 0], rows):
        axis.imshow(plots.grid_array(images, nrow=len(images)), cmap="gray", vmin=0, vmax=255)
        axis.set_xticks([])
        axis.set_yticks([])
        axis.set_ylabel(f"{cell.cell}\nseed {cell.seed}", fontsize=8, rotation=0, ha="right", va="center")
    interpolation_fig.suptitle(
        f"test digit {PAIR[0]} → test digit {PAIR[1]}: the two real images at the ends, "
        f"decodes of {STEPS} points on the line between their encoded means",
        fontsize=9,
    )
    interpolation_fig.tight_layout()
    return latent_fig, interpolation_fig
