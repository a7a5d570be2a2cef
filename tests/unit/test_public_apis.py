"""The CI check of public APIs (.ci/public_apis.py): each private or undocumented form is found, from the
syntax tree, and a file that uses only documented names passes."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

CHECKER = REPO / ".ci" / "public_apis.py"

BAD = """\
import torch
import torch._dynamo
import mlflow
import mlflow.store.artifact.utils.models as models
from mlflow.tracking.fluent import start_run
from mlflow.store.artifact.utils.models import _parse_model_uri
from mlflow._private import helper
from optuna.storages import _heartbeat
from sqlalchemy import _lookup

torch._C._get_tracing_state()
mlflow.tracking.multimedia.convert_to_pil_image
"""

CLEAN = """\
import mlflow
import mlflow.pytorch
import optuna
import torch
from mlflow.data.http_dataset_source import HTTPDatasetSource
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sqlalchemy.engine import make_url

torch.__version__, mlflow.__version__, torch.nn.functional.relu, optuna.trial.TrialState
mlflow.tracking.MlflowClient, mlflow.data.from_numpy, MlflowException.invalid_parameter_value
elsewhere._private = 1  # not a watched package
"""


def check(tmp_path, source: str) -> subprocess.CompletedProcess:
    path = tmp_path / "example.py"
    path.write_text(source)
    return subprocess.run([sys.executable, str(CHECKER), str(path)], capture_output=True, text=True)


def test_every_private_or_undocumented_form_is_found(tmp_path):
    result = check(tmp_path, BAD)
    assert result.returncode == 1
    found = [line.split(": ", 1)[1] for line in result.stdout.splitlines()]
    assert found == [
        "private module imported: torch._dynamo",
        "undocumented MLflow module imported: mlflow.store.artifact.utils.models",
        "undocumented MLflow module imported: mlflow.tracking.fluent",
        "undocumented MLflow module imported: mlflow.store.artifact.utils.models",
        "private name imported: from mlflow.store.artifact.utils.models import _parse_model_uri",
        "private module imported: mlflow._private",
        "private name imported: from optuna.storages import _heartbeat",
        "private name imported: from sqlalchemy import _lookup",
        "private attribute used: torch._C",
        "undocumented MLflow module used: mlflow.tracking.multimedia",
    ]
    assert [line.split(":")[1] for line in result.stdout.splitlines()] == [
        "2",
        "4",
        "5",
        "6",
        "6",
        "7",
        "8",
        "9",
        "11",
        "12",
    ]


def test_documented_names_pass(tmp_path):
    result = check(tmp_path, CLEAN)
    assert (result.returncode, result.stdout) == (0, "")


def test_the_project_uses_only_documented_names():
    result = subprocess.run([sys.executable, str(CHECKER)], capture_output=True, text=True, cwd=REPO)
    assert (result.returncode, result.stdout) == (0, "")
