"""The generator as an MLflow pyfunc model: a request per row (sampler, n, seed), a PNG per image back.

It is what `mlflow models serve` answers with, so a user's program gets digits over HTTP. The model
holds one file (the decoder and any fitted `gmm:K` mixtures, pipeline/core/model/generation.py), a default
sampler in its model config (used when a row leaves `sampler` empty), an explicit signature so MLflow
checks requests, and only the code the generator imports. Bad rows raise an MlflowException with
INVALID_PARAMETER_VALUE, which the scoring server answers with HTTP 400 and the message.
"""

from __future__ import annotations

import base64
import shutil
import tempfile
import warnings
from pathlib import Path

import mlflow
import mlflow.pyfunc
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema
from mlflow.types.schema import AnyType

from pipeline.errors import InputError

ARTIFACT = "generator"  # the model's artifact path in a run, and its file's key in the model's artifacts
# `n` and `seed` are declared Any, not long: the scoring server casts a request to the signature's types
# before predict sees it, and a cast to long truncates ("n": 2.5 would draw 2 images). The generator checks
# they are whole numbers (pipeline/core/model/generation.py) and answers 400 naming the column.
SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "sampler", required=False), ColSpec(AnyType(), "n"), ColSpec(AnyType(), "seed")]),
    outputs=Schema(
        [ColSpec("string", "sampler"), ColSpec("long", "index"), ColSpec("long", "seed"), ColSpec("string", "png")]
    ),
)
# What loading the generator imports, copied beside it: nothing of the steps, plots or tracking.
PACKAGE = Path(__file__).resolve().parent
CODE = (
    "__init__.py",
    "errors.py",
    "serving.py",
    "core/__init__.py",
    "core/devices.py",
    "core/files.py",
    "core/seeding.py",
    "core/model/__init__.py",
    "core/model/checkpoints.py",
    "core/model/generation.py",
    "core/model/samplers.py",
    "core/model/vae.py",
)


class Generator(mlflow.pyfunc.PythonModel):
    """Decoder + samplers; predict turns request rows into one row per image with a base64 PNG."""

    def load_context(self, context):
        from pipeline.core.devices import resolve_device
        from pipeline.core.model.generation import load_generator

        self.device = resolve_device("auto")
        self.model, self.mixtures = load_generator(context.artifacts[ARTIFACT], self.device)
        self.default_sampler = (context.model_config or {}).get("default_sampler", "normal:0,1")

    def predict(self, context, model_input: pd.DataFrame, params=None):  # the hint: a frame, schema from SIGNATURE
        from pipeline.core.model.generation import generate_pngs, request_count, request_sampler, request_seed

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        requests, total = [], 0
        try:  # every row is checked before any image is made
            for row in frame.to_dict("records"):
                sampler = request_sampler(row.get("sampler"), self.default_sampler, self.mixtures)
                count = request_count(row.get("n"), total)
                total += count
                requests.append((sampler, count, request_seed(row.get("seed"))))
        except InputError as error:
            raise MlflowException.invalid_parameter_value(str(error)) from None
        rows = []
        for sampler, count, seed in requests:
            for index, png in enumerate(generate_pngs(self.model, sampler, count, seed, self.device)):
                rows.append(
                    {
                        "sampler": sampler.spec,
                        "index": index,
                        "seed": seed,
                        "png": base64.b64encode(png).decode("ascii"),
                    }
                )
        return pd.DataFrame(rows, columns=["sampler", "index", "seed", "png"])


def requirements() -> list[str]:
    """Pinned to what is loaded here: no inference (it would import and trace the model), no metadata scans."""
    import cloudpickle
    import numpy
    import pandas
    import PIL
    import torch

    return [
        f"torch=={torch.__version__.split('+')[0]}",
        f"mlflow=={mlflow.__version__}",
        f"cloudpickle=={cloudpickle.__version__}",
        f"numpy=={numpy.__version__}",
        f"pandas=={pandas.__version__}",
        f"pillow=={PIL.__version__}",
    ]


def log_generator(model, default_sampler: str, mixtures=()):
    """Log the generator of `model` (a VAE) to the active run at artifact path `generator`.

    `default_sampler` is a spec; a `gmm:K` default must be among the fitted `mixtures`. Returns MLflow's
    ModelInfo (its `model_uri` is what the registry takes).
    """
    from pipeline.core.model.generation import request_sampler, save_generator

    default = request_sampler(default_sampler, default_sampler, {sampler.spec: sampler for sampler in mixtures}).spec
    with tempfile.TemporaryDirectory(prefix="vae-generator-") as folder:
        weights = save_generator(Path(folder) / "generator.pt", model, list(mixtures))
        code = Path(folder) / "code" / PACKAGE.name
        for name in CODE:
            (code / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(PACKAGE / name, code / name)
        with warnings.catch_warnings():  # no input example on purpose: it would run a prediction at log time
            warnings.filterwarnings("ignore", message=".*An input example was not provided")
            return mlflow.pyfunc.log_model(
                name=ARTIFACT,
                python_model=Generator(),
                artifacts={ARTIFACT: str(weights)},
                code_paths=[str(code)],
                signature=SIGNATURE,
                pip_requirements=requirements(),
                model_config={"default_sampler": default},
            )
