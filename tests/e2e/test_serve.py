"""pipeline/serving.py:
Served for real: a 1-epoch `mlflow run` train, its generator registered under an alias,
the real `mlflow models serve` on 127.0.0.1 answering POST /invocations with decodable 28x28 PNGs."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from pipeline.core.model.generation import MAX_IMAGES
from pipeline.tracking.registry import register_generator
from tests.e2e.servers import free_port, post_json, serve_command, server
from tests.helpers import COUNT_ALLOWED, SAMPLER_FORMS, SEED_ALLOWED

pytestmark = pytest.mark.slow

NAME, ALIAS = "vae-generator-serve-test", "best-beta"


@pytest.fixture(scope="module")
def served(tracking, mlflow_run, prepared_run_id, tmp_path_factory):
    """The URL of a real scoring server for models:/NAME@ALIAS; the server is stopped afterwards."""
    train_id = mlflow_run(
        "train", {"data": prepared_run_id, "epochs": 1, "sample_every": 0, "samplers": "beta:0.5,0.5,-1,2+normal:0,1"}
    )
    register_generator(train_id, NAME, ALIAS)
    port = free_port()
    command = serve_command(f"models:/{NAME}@{ALIAS}", port)
    url = f"http://127.0.0.1:{port}"
    with server(command, f"{url}/ping", tmp_path_factory.mktemp("serve") / "serve.log", env=tracking.env()):
        yield url


def invoke(url: str, *rows: dict) -> tuple[int, dict]:
    return post_json(f"{url}/invocations", {"dataframe_records": list(rows)})


def pngs(body: dict) -> list[bytes]:
    return [base64.b64decode(row["png"]) for row in body["predictions"]]


def test_the_served_generator_answers_with_four_28x28_pngs_seeded(served):
    status, body = invoke(served, {"sampler": "normal:0,1", "n": 4, "seed": 0})
    assert status == 200, body
    rows = body["predictions"]
    assert [(r["sampler"], r["index"], r["seed"]) for r in rows] == [("normal:0,1", i, 0) for i in range(4)]
    images = np.stack([np.asarray(Image.open(io.BytesIO(png))) for png in pngs(body)])
    assert images.shape == (4, 28, 28) and images.dtype == np.uint8 and images.max() > images.min()
    assert pngs(invoke(served, {"sampler": "normal:0,1", "n": 4, "seed": 0})[1]) == pngs(body)
    assert pngs(invoke(served, {"sampler": "normal:0,1", "n": 4, "seed": 1})[1]) != pngs(body)


def test_a_row_without_sampler_gets_the_default_and_rows_come_back_in_order(served):
    status, body = invoke(served, {"n": 2, "seed": 3}, {"sampler": "normal:0,1", "n": 1, "seed": 3})
    assert status == 200, body
    assert [r["sampler"] for r in body["predictions"]] == ["beta:0.5,0.5,-1,2"] * 2 + ["normal:0,1"]


@pytest.mark.parametrize(
    "rows, message",
    [
        (
            [{"sampler": "uniform:0,1", "n": 4, "seed": 0}],
            "column 'sampler': sampler spec 'uniform:0,1': unknown kind 'uniform'; "
            f"allowed forms: {SAMPLER_FORMS} (gmm:K only as fitted: none)",
        ),
        (
            [{"sampler": "gmm:10", "n": 4, "seed": 0}],
            "column 'sampler': got 'gmm:10', but this generator holds no fitted mixture for it; "
            f"allowed forms: {SAMPLER_FORMS} (gmm:K only as fitted: none)",
        ),
        ([{"sampler": "normal:0,1", "n": 0, "seed": 0}], f"column 'n': got 0; {COUNT_ALLOWED}"),
        ([{"sampler": "normal:0,1", "n": MAX_IMAGES + 1, "seed": 0}], f"column 'n': got 1025; {COUNT_ALLOWED}"),
        (  # the limit is per request: rows together
            [{"n": 1000, "seed": 0}, {"n": 25, "seed": 1}],
            f"column 'n': got 25 after 1000 images in earlier rows; {COUNT_ALLOWED}",
        ),
        ([{"sampler": "normal:0,1", "n": 1, "seed": -1}], f"column 'seed': got -1; {SEED_ALLOWED}"),
    ],
)
def test_bad_requests_get_400_naming_the_column_and_what_is_allowed_without_a_traceback(served, rows, message):
    status, body = invoke(served, *rows)
    assert status == 400, body
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert body["message"].endswith(f"Error: {message}")  # the scoring server quotes the request before it
    assert "Traceback" not in str(body) and "stack_trace" not in body


def test_a_request_of_exactly_the_limit_is_answered(served):
    status, body = invoke(served, {"n": 1000, "seed": 0}, {"sampler": "normal:0,1", "n": MAX_IMAGES - 1000, "seed": 1})
    assert status == 200, body
    assert len(body["predictions"]) == MAX_IMAGES == 1024


@pytest.mark.parametrize(
    "field, value, allowed", [("n", "four", COUNT_ALLOWED), ("n", 2.5, COUNT_ALLOWED), ("seed", "zero", SEED_ALLOWED)]
)
def test_a_value_that_is_not_a_whole_number_is_a_400_naming_the_column(served, field, value, allowed):
    """`n` and `seed` are declared `any` in the signature, so the generator sees the value as sent (a cast to
    long would have truncated 2.5 to 2) and refuses it by name."""
    status, body = invoke(served, {"sampler": "normal:0,1", "n": 4, "seed": 0, field: value})
    assert status == 400, body
    assert body["error_code"] == "INVALID_PARAMETER_VALUE", body
    assert body["message"].endswith(f"Error: column '{field}': got {value!r}; {allowed}"), body
