"""main registers (issue 14 §2): each cell's generator from its lowest seed as vae-generator-<cell>@main,
with the gmm:10 its evaluation fitted; a second main (every step reused) adds no version."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest

pytestmark = pytest.mark.slow

TINY = {"experiments": "bce-standard", "seeds": "1,0", "epochs": 1, "latent_size": 4, "hidden_size": 16,
        "n_samples": 100, "iwae_k": 2, "reuse": "dirty", "max_parallel": 2}
NAME = "vae-generator-bce-standard"


def steps(tracking, main_id: str) -> list[dict]:
    return json.loads(Path(tracking.client.download_artifacts(main_id, "main/steps.json")).read_text())["steps"]


def test_main_registers_the_lowest_seed_generator_once(tracking, tmp_path):
    client = tracking.client
    experiment = client.create_experiment("main-registry", artifact_location=(tmp_path / "artifacts").as_uri())
    main_id, _ = tracking.mlflow_run("main", {**TINY, "report_dir": tmp_path / "r1"}, experiment_id=experiment)
    evaluations = {r["seed"]: r["run_id"] for r in steps(tracking, main_id) if r["step"] == "evaluate"}
    version = client.get_model_version_by_alias(NAME, "main")
    assert version.run_id == evaluations[0] and version.tags["main_run_id"] == main_id
    assert not client.search_model_versions(f"name = '{NAME}' and run_id = '{evaluations[1]}'")

    generator = mlflow.pyfunc.load_model(f"models:/{NAME}@main")
    out = generator.predict(pd.DataFrame([{"sampler": "gmm:10", "n": 3, "seed": 0}, {"n": 1, "seed": 0}]))
    assert out["sampler"].tolist() == ["gmm:10"] * 3 + ["normal:0,1"]  # the cell's first sampler is the default

    again, _ = tracking.mlflow_run("main", {**TINY, "report_dir": tmp_path / "r2"}, experiment_id=experiment)
    assert all(r["reused"] for r in steps(tracking, again))
    assert len(client.search_model_versions(f"name = '{NAME}' and run_id = '{evaluations[0]}'")) == 1
    assert client.get_model_version_by_alias(NAME, "main").version == version.version
