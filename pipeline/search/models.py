"""The trials' models, one per latent size: a finished train run of the same configuration, code and
data digest is reused, otherwise one is trained once (a real `train` step, child of the search run)."""

from __future__ import annotations

import torch

from pipeline import tracking
from pipeline.configs import SearchConfig, TrainConfig
from pipeline.process import processes
from pipeline.search.storage import advisory_lock
from pipeline.tracking.reuse import launch_step, reuse_or_launch


def train_config(config: SearchConfig, latent_size: int) -> TrainConfig:
    """The training configuration of a trial's model: the cache key (with the data digest)."""
    return TrainConfig(
        data=config.data,
        latent_size=latent_size,
        hidden_size=config.hidden_size,
        epochs=config.epochs,
        batch_size=config.batch_size,
        precision=config.precision,
        seed=config.seed,
        device=config.device,
        sample_every=0,
        checkpoint_every=config.epochs,
    )


class Models:
    """Trained models by latent size: a finished train run of the same configuration, code and data
    digest is reused; otherwise one is trained once, under a lock, as a child of the search run."""

    def __init__(self, config: SearchConfig, job, digest: str, device: torch.device):
        self.config, self.job, self.digest, self.device = config, job, digest, device
        self.loaded: dict[int, tuple[str, torch.nn.Module]] = {}
        processes.export_for_steps({"OMP_NUM_THREADS": str(job.threads)})

    def run_id(self, latent_size: int) -> str:
        train = train_config(self.config, latent_size)

        def launch(resume: str | None) -> str:
            print(f"search: training the model for latent size {latent_size} ({self.config.epochs} epochs)", flush=True)
            return launch_step(
                "train",
                train,
                self.job.search_run_id,
                self.job.experiment_id,
                name=f"train z{latent_size}",
                env_manager="local",
                extra={"resume": resume} if resume else {},
            )

        run_id, _ = reuse_or_launch(
            "train",
            train,
            self.job.experiment_id,
            reuse="dirty",
            launch=launch,
            accept=lambda run: tracking.run_param(run, "data_digest") == self.digest,
            shared_lock=lambda name: advisory_lock(self.job.storage, name),
        )
        return run_id

    def get(self, latent_size: int) -> tuple[str, torch.nn.Module]:
        if latent_size not in self.loaded:
            run_id = self.run_id(latent_size)
            self.loaded[latent_size] = (run_id, tracking.load_model(f"runs:/{run_id}/model", self.device))
        return self.loaded[latent_size]
