"""pipeline/serving.py:
The generator pyfunc model through MLflow itself: logged, loaded back, requests checked by its signature."""

import base64
import io
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from mlflow.exceptions import MlflowException
from PIL import Image

from pipeline.core.model.samplers import parse_sampler
from pipeline.core.model.vae import VAE
from pipeline.errors import InputError
from pipeline.serving import log_generator
from tests.helpers import COUNT_ALLOWED, SAMPLER_FORMS, SEED_ALLOWED


@pytest.fixture(scope="module")
def logged(tracking):
    torch.manual_seed(0)
    model = VAE(latent_size=4, hidden_size=16).eval()
    mixture = parse_sampler("gmm:2").fit(torch.randn(40, 4), seed=0)
    with mlflow.start_run() as run:
        info = log_generator(model, "beta:2,2", [mixture])
    return run.info.run_id, info, mlflow.pyfunc.load_model(info.model_uri)


def images(frame: pd.DataFrame) -> np.ndarray:
    return np.stack([np.asarray(Image.open(io.BytesIO(base64.b64decode(png)))) for png in frame["png"]])


def test_the_model_is_at_generator_with_its_signature_config_and_pins(logged):
    run_id, info, _ = logged
    assert info.name == "generator" and info.run_id == run_id
    assert [(c.name, repr(c.type), c.required) for c in info.signature.inputs.inputs] == [
        ("sampler", "string", False),
        ("n", "Any", True),  # checked by the generator: a cast to long would truncate 2.5 to 2
        ("seed", "Any", True),
    ]
    assert info.signature.outputs.input_names() == ["sampler", "index", "seed", "png"]
    local = Path(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/generator"))
    requirements = (local / "requirements.txt").read_text().split()
    assert {r.split("==")[0] for r in requirements} == {"torch", "mlflow", "cloudpickle", "numpy", "pandas", "pillow"}
    assert "default_sampler: beta:2,2" in (local / "MLmodel").read_text()


def test_predict_returns_a_png_row_per_image_seeded(logged):
    _, _, model = logged
    request = pd.DataFrame(
        [
            {"sampler": "normal:0,1", "n": 3, "seed": 0},
            {"sampler": "gmm:2", "n": 2, "seed": 5},
            {"sampler": None, "n": 1, "seed": 0},
        ]
    )
    out = model.predict(request)
    assert list(out.columns) == ["sampler", "index", "seed", "png"]
    assert out["sampler"].tolist() == ["normal:0,1"] * 3 + ["gmm:2"] * 2 + ["beta:2,2"]  # empty: the default
    assert out["index"].tolist() == [0, 1, 2, 0, 1, 0] and out["seed"].tolist() == [0, 0, 0, 5, 5, 0]
    assert images(out).shape == (6, 28, 28)
    again = model.predict(request)
    assert again["png"].tolist() == out["png"].tolist()
    other = model.predict(pd.DataFrame([{"sampler": "normal:0,1", "n": 3, "seed": 1}]))
    assert other["png"].tolist() != out["png"].tolist()[:3]


@pytest.mark.parametrize(
    "rows, message",
    [
        (
            [{"sampler": "uniform:0,1", "n": 2, "seed": 0}],
            "column 'sampler': sampler spec 'uniform:0,1': unknown kind 'uniform'; "
            f"allowed forms: {SAMPLER_FORMS} (gmm:K only as fitted: gmm:2)",
        ),
        (
            [{"sampler": "gmm:10", "n": 2, "seed": 0}],
            "column 'sampler': got 'gmm:10', but this generator holds no fitted mixture for it; "
            f"allowed forms: {SAMPLER_FORMS} (gmm:K only as fitted: gmm:2)",
        ),
        ([{"sampler": "normal:0,1", "n": 0, "seed": 0}], f"column 'n': got 0; {COUNT_ALLOWED}"),
        ([{"sampler": "normal:0,1", "n": 1025, "seed": 0}], f"column 'n': got 1025; {COUNT_ALLOWED}"),
        (  # the limit holds for all rows together
            [{"sampler": "normal:0,1", "n": 1000, "seed": 0}, {"sampler": "normal:0,1", "n": 25, "seed": 1}],
            f"column 'n': got 25 after 1000 images in earlier rows; {COUNT_ALLOWED}",
        ),
        (
            [{"sampler": "normal:0,1", "n": 2, "seed": -1}],
            f"column 'seed': got -1; {SEED_ALLOWED}",
        ),
    ],
)
def test_bad_rows_raise_invalid_parameter_value_naming_the_column_and_what_is_allowed(logged, rows, message):
    _, _, model = logged
    with pytest.raises(MlflowException) as error:
        model.predict(pd.DataFrame(rows))
    assert error.value.error_code == "INVALID_PARAMETER_VALUE" and error.value.get_http_status_code() == 400
    assert error.value.message == message


def test_the_signature_refuses_a_request_without_n(logged):
    _, _, model = logged
    with pytest.raises(MlflowException, match=re.escape("Model is missing inputs ['n']")):
        model.predict(pd.DataFrame([{"sampler": "normal:0,1", "seed": 0}]))


def test_a_gmm_default_needs_its_mixture(tracking):
    with mlflow.start_run(), pytest.raises(InputError, match="column 'sampler'.*no fitted mixture"):
        log_generator(VAE(4, 16), "gmm:10")


def test_loading_uses_only_the_code_shipped_with_the_model(logged, tmp_path):
    """A fresh process imports the pipeline package from the model's own code folder, and it suffices."""
    _, info, _ = logged
    script = (
        "import sys, mlflow, pandas as pd\n"
        f"m = mlflow.pyfunc.load_model({info.model_uri!r})\n"
        "m.predict(pd.DataFrame([{'sampler': 'gmm:2', 'n': 1, 'seed': 0}]))\n"
        "print(sys.modules['pipeline'].__file__)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "/code/pipeline/__init__.py" in result.stdout.strip().splitlines()[-1]
