"""Generation for serving: the generator file round-trips, requests are checked, PNGs are seeded."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.core.model.generation import (
    MAX_IMAGES,
    generate_pngs,
    load_generator,
    request_count,
    request_sampler,
    request_seed,
    save_generator,
)
from pipeline.core.model.samplers import draw_samples, parse_sampler
from pipeline.core.model.vae import VAE
from pipeline.errors import InputError

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return VAE(latent_size=4, hidden_size=16).eval()


@pytest.fixture(scope="module")
def mixture(model):
    torch.manual_seed(1)
    return parse_sampler("gmm:2").fit(torch.randn(50, 4), seed=0)


def decoded(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def test_saved_generator_decodes_like_the_model_and_keeps_its_mixture(model, mixture, tmp_path):
    path = save_generator(tmp_path / "generator.pt", model, [mixture])
    state = torch.load(path, weights_only=True)
    assert sorted(state["decoder"]) == [
        "decoder_hidden.bias",
        "decoder_hidden.weight",
        "decoder_output.bias",
        "decoder_output.weight",
    ]  # the encoder is not shipped
    loaded, mixtures = load_generator(path, CPU)
    assert list(mixtures) == ["gmm:2"]
    for sampler in (parse_sampler("normal:0,1"), mixture):
        expected = draw_samples(model, sampler, 6, seed=3, device=CPU)
        got = draw_samples(loaded, mixtures.get(sampler.spec, sampler), 6, seed=3, device=CPU)
        assert torch.equal(expected, got)


def test_pngs_are_28x28_grayscale_and_seeded(model):
    sampler = parse_sampler("beta:0.5,0.5,-1,2")
    first = generate_pngs(model, sampler, 4, 7, CPU)
    assert len(first) == 4 and all(png.startswith(b"\x89PNG") for png in first)
    pixels = np.stack([decoded(png) for png in first])
    assert pixels.shape == (4, 28, 28) and pixels.dtype == np.uint8
    expected = (draw_samples(model, sampler, 4, 7, CPU).reshape(4, 28, 28) * 255).round().to(torch.uint8).numpy()
    assert np.array_equal(pixels, expected)
    assert generate_pngs(model, sampler, 4, 7, CPU) == first
    assert generate_pngs(model, sampler, 4, 8, CPU) != first


def test_request_sampler_default_canonical_and_fitted(mixture):
    mixtures = {"gmm:2": mixture}
    for empty in (None, float("nan"), "", "  ", "default"):
        assert request_sampler(empty, "beta:2,2", mixtures).spec == "beta:2,2"
    assert request_sampler("normal:0.0, 1", "beta:2,2", mixtures).spec == "normal:0,1"
    assert request_sampler("gmm:2", "beta:2,2", mixtures) is mixture


@pytest.mark.parametrize(
    "spec, says",
    [
        ("uniform:0,1", "unknown kind 'uniform'"),
        ("normal:0", "normal takes 2 values"),
        ("beta:-1,1", "A must be positive"),
        ("gmm:3", "holds no fitted mixture"),
    ],
)
def test_request_sampler_errors_name_the_column_and_the_forms(mixture, spec, says):
    with pytest.raises(InputError) as error:
        request_sampler(spec, "normal:0,1", {"gmm:2": mixture})
    message = str(error.value)
    assert message.startswith("column 'sampler':") and says in message
    assert "normal:LOC,SCALE" in message and "beta:A,B" in message and "gmm:2" in message


def test_request_sampler_without_mixtures_says_none_is_fitted():
    with pytest.raises(InputError, match=r"no fitted mixture.*as fitted: none"):
        request_sampler("gmm:10", "normal:0,1", {})


def test_request_count_and_seed_limits():
    assert request_count(1) == 1 and request_count(np.int64(MAX_IMAGES)) == MAX_IMAGES and request_count(4.0) == 4
    for bad in (0, -3, MAX_IMAGES + 1, 2.5, "4", None):
        with pytest.raises(InputError, match=rf"^column 'n': got .*; allowed: a whole number from 1 to {MAX_IMAGES}"):
            request_count(bad)
    with pytest.raises(InputError, match=f"after {MAX_IMAGES - 2} images in earlier rows"):
        request_count(3, total_before=MAX_IMAGES - 2)
    assert request_seed(0) == 0 and request_seed(np.int64(2**40)) == 2**40
    for bad in (-1, 1.5, None):
        with pytest.raises(InputError, match=r"^column 'seed': got .*; allowed: a whole number from 0 to"):
            request_seed(bad)


@pytest.mark.parametrize("bad", [2.5, np.float64(2.5), 1e-9 + 3, True, np.bool_(True), "2", float("nan")])
def test_a_count_or_seed_that_is_not_a_whole_number_is_refused_naming_the_column(bad):
    with pytest.raises(InputError, match=r"^column 'n': got "):
        request_count(bad)
    with pytest.raises(InputError, match=r"^column 'seed': got "):
        request_seed(bad)


def test_a_whole_float_count_and_seed_are_taken_as_integers():
    assert request_count(np.float64(8.0)) == 8 and type(request_count(np.float64(8.0))) is int
    assert request_seed(1e18) == 10**18
