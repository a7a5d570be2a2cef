"""pipeline/search/artifacts.py:
The search's artifact store: where it goes, the dashboard command, and a grid uploaded to a trial."""

import io
import json
from pathlib import Path

import mlflow
import numpy as np
import optuna
import pytest
from optuna.artifacts import FileSystemArtifactStore
from PIL import Image

from pipeline.configs import SearchConfig
from pipeline.core.model.generation import png_bytes
from pipeline.errors import InputError
from pipeline.search.artifacts import artifact_folder, checked_folder, dashboard_command, upload_grid
from pipeline.search.storage import Storage


def test_the_store_sits_beside_the_study_file_unless_moved(tmp_path, monkeypatch):
    auto = SearchConfig()
    assert (
        artifact_folder(auto, Storage("sqlite", f"sqlite:///{tmp_path}/s/optuna.db"))
        == tmp_path / "s" / "optuna-artifacts"
    )
    assert (
        artifact_folder(auto, Storage("journal", str(tmp_path / "j" / "journal.log")))
        == tmp_path / "j" / "optuna-artifacts"
    )
    monkeypatch.chdir(tmp_path)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri("http://127.0.0.1:1")  # no SQLite file: the working directory
    try:
        assert artifact_folder(auto, Storage("postgresql", "postgresql://u@h/db")) == tmp_path / "optuna-artifacts"
    finally:
        mlflow.set_tracking_uri(previous)
    moved = SearchConfig(artifact_dir="elsewhere/grids")
    assert artifact_folder(moved, Storage("sqlite", "sqlite:////x/optuna.db")) == tmp_path / "elsewhere" / "grids"


def test_the_dashboard_command_quotes_what_needs_it():
    command = dashboard_command(Storage("journal", "/a b/j.log"), Path("/srv/grids"))
    assert command == "optuna-dashboard '/a b/j.log' --artifact-dir /srv/grids"


def test_an_uploaded_grid_is_an_artifact_of_its_trial(tmp_path):
    study = optuna.create_study()
    trial = study.ask()
    grid = (np.arange(60 * 60) % 256).astype(np.uint8).reshape(60, 60)
    artifact_id = upload_grid(trial, png_bytes(grid), tmp_path / "store")
    study.tell(trial, 1.0)
    [meta] = [json.loads(v) for k, v in study.trials[0].system_attrs.items() if k.startswith("artifacts:")]
    assert meta["artifact_id"] == artifact_id and meta["filename"] == "samples_grid.png"
    assert meta["mimetype"] == "image/png"
    with FileSystemArtifactStore(str(tmp_path / "store")).open_reader(artifact_id) as reader:
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(reader.read()))), grid)


def test_an_unwritable_artifact_dir_is_refused_naming_the_parameter(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    config = SearchConfig(artifact_dir=str(blocker / "grids"))
    with pytest.raises(
        InputError, match=r"^parameter 'artifact_dir': got .*a-file/grids'; cannot write to .*allowed: auto"
    ):
        checked_folder(config, Storage("sqlite", f"sqlite:///{tmp_path}/optuna.db"))
    assert checked_folder(SearchConfig(), Storage("sqlite", f"sqlite:///{tmp_path}/optuna.db")).is_dir()
