"""Sampler registry: moments against closed forms, canonical specs and every spec error."""

import pytest
import torch

from pipeline.core.model.samplers import BetaSampler, NormalSampler, parse_sampler, parse_samplers
from pipeline.errors import InputError


@pytest.mark.parametrize(
    "spec, mean, variance",
    [
        ("normal:0,1", 0.0, 1.0),
        ("normal:1,2", 1.0, 4.0),  # scale is the standard deviation
        ("beta:0.25,0.25", 0.5, 1 / 6),  # the write-up's "0.2" is 1/6 exactly
        ("beta:2,5", 2 / 7, 10 / (49 * 8)),
        ("beta:0.25,0.25,-1,2", 0.0, 4 / 6),
    ],
)
def test_moments_match_closed_forms(spec, mean, variance):
    sampler = parse_sampler(spec)
    assert sampler.mean() == pytest.approx(mean) and sampler.variance() == pytest.approx(variance)
    torch.manual_seed(0)
    z = sampler.sample(20_000, 50).double()
    assert z.shape == (20_000, 50)
    assert z.mean().item() == pytest.approx(mean, abs=0.01 + 0.003 * variance**0.5)
    assert z.var().item() == pytest.approx(variance, rel=0.02)


def test_beta_support_and_seeded_draws():
    sampler = parse_sampler("beta:0.25,0.25")
    torch.manual_seed(5)
    a = sampler.sample(100, 10)
    torch.manual_seed(5)
    b = sampler.sample(100, 10)
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1


def test_canonical_spec_and_metric_key():
    assert parse_sampler("normal:1.0, 2").spec == "normal:1,2"
    assert parse_sampler("beta:0.25,0.25").key == "beta_0.25_0.25"
    assert parse_sampler("beta:0.25,0.25,0,1") == BetaSampler(0.25, 0.25)
    assert parse_sampler("beta:1,1,-2,4").key == "beta_1_1_-2_4"
    assert [s.spec for s in parse_samplers("normal:0,1;normal:1,2;beta:0.25,0.25")] == [
        "normal:0,1",
        "normal:1,2",
        "beta:0.25,0.25",
    ]
    assert isinstance(parse_samplers(" normal:0,1 ; ")[0], NormalSampler)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("gauss:0,1", "unknown kind 'gauss'"),
        ("normal", "no values after 'normal:'"),
        ("normal:0", "normal takes 2 values"),
        ("normal:0,1,2", "normal takes 2 values"),
        ("normal:a,1", "values must be numbers"),
        ("normal:0,nan", "finite numbers"),
        ("normal:0,0", "SCALE must be positive"),
        ("normal:0,-1", "SCALE must be positive"),
        ("beta:0.25", "beta takes 2 values"),
        ("beta:1,2,3", "beta takes 2 values"),
        ("beta:0,1", "A must be positive"),
        ("beta:1,-1", "B must be positive"),
        ("beta:1,1,0,0", "SCALE must be positive"),
    ],
)
def test_spec_errors_name_the_spec(spec, message):
    with pytest.raises(InputError) as raised:
        parse_sampler(spec)
    assert f"sampler spec {spec!r}" in str(raised.value) and message in str(raised.value)


def test_list_errors():
    with pytest.raises(InputError, match="parameter 'samplers'"):
        parse_samplers(" ; ")
    with pytest.raises(InputError, match="'normal:0,1' is given twice"):
        parse_samplers("normal:0,1;normal:0.0,1.0")
