"""The search step's maths and input checks (fast), and its bad-input exits through the CLI (slow)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from pipeline.configs import SearchConfig
from pipeline.core import search_space
from pipeline.core.model.samplers import BetaSampler
from pipeline.errors import InputError

# --- placement of the Beta sampler -------------------------------------------------------------------


@pytest.mark.parametrize(
    "a, b, mean, sd",
    [(0.25, 0.25, 0.5, math.sqrt(1 / 6)), (20, 20, 0, 1), (0.05, 20, -1, 0.1), (3.5, 0.7, 0.3, 2.0), (1, 1, 0, 1)],
)
def test_placement_gives_the_asked_mean_and_sd_in_closed_form(a, b, mean, sd):
    loc, scale = search_space.placement(a, b, mean, sd)
    sampler = BetaSampler(a, b, loc, scale)
    # closed form: E = loc + scale a/(a+b), Var = scale^2 ab/((a+b)^2 (a+b+1))
    assert sampler.mean() == pytest.approx(loc + scale * a / (a + b))
    assert sampler.variance() == pytest.approx(scale**2 * a * b / ((a + b) ** 2 * (a + b + 1)))
    assert sampler.mean() == pytest.approx(mean, abs=1e-12)
    assert math.sqrt(sampler.variance()) == pytest.approx(sd, rel=1e-12)


def test_placed_samples_have_the_asked_moments():
    loc, scale = search_space.placement(2.0, 0.5, -0.3, 0.8)
    torch.manual_seed(0)
    z = BetaSampler(2.0, 0.5, loc, scale).sample(200_000, 1).double()
    assert float(z.mean()) == pytest.approx(-0.3, abs=0.01)
    assert float(z.std()) == pytest.approx(0.8, rel=0.01)


def test_the_study_beta_is_unplaced_and_beta_20_20_mimics_the_standard_normal():
    a, b, mean, sd = search_space.STUDY_BETA
    assert (a, b, mean) == (0.25, 0.25, 0.5) and sd**2 == pytest.approx(1 / 6)
    assert search_space.placement(a, b, mean, sd) == pytest.approx((0.0, 1.0))
    a, b, mean, sd = search_space.NORMAL_LIKE_BETA
    loc, scale = search_space.placement(a, b, mean, sd)
    grid = np.linspace(-5, 5, 2001)
    ks = np.abs(stats.beta(a, b, loc=loc, scale=scale).cdf(grid) - stats.norm.cdf(grid)).max()
    assert ks < 0.01  # the CDFs are within 1 % everywhere
    assert loc == pytest.approx(-scale / 2) and scale == pytest.approx(math.sqrt(164))  # Var Beta(20,20) = 1/164


def test_the_moments_of_a_placed_beta_are_the_closed_forms():
    # Beta(2,2) on [0,1]: mean 1/2, variance ab/((a+b)^2 (a+b+1)) = 4/80 = 1/20, symmetric, excess kurtosis
    # 6[(a-b)^2(a+b+1) - ab(a+b+2)] / (ab(a+b+2)(a+b+3)) = 6(-4 * 6)/(4 * 6 * 7) = -6/7
    moments = search_space.placed_beta_moments(2, 2, 0, 1)
    assert list(moments) == ["mean", "sd", "skewness", "excess_kurtosis"]
    assert moments["mean"] == pytest.approx(0.5) and moments["sd"] == pytest.approx(math.sqrt(1 / 20))
    assert moments["skewness"] == pytest.approx(0, abs=1e-12) and moments["excess_kurtosis"] == pytest.approx(-6 / 7)
    # placed at loc -1, scale 4: the mean and sd move, the shape (skewness, kurtosis) stays
    placed = search_space.placed_beta_moments(2, 2, -1, 4)
    assert (placed["mean"], placed["sd"]) == pytest.approx((1.0, 4 * math.sqrt(1 / 20)))
    assert placed["excess_kurtosis"] == pytest.approx(-6 / 7)
    # Beta(1,3): skewness 2(b-a)sqrt(a+b+1) / ((a+b+2) sqrt(ab)) = 4 sqrt(5) / (6 sqrt(3))
    assert search_space.placed_beta_moments(1, 3, 0, 1)["skewness"] == pytest.approx(
        4 * math.sqrt(5) / (6 * math.sqrt(3))
    )
    assert search_space.STANDARD_NORMAL_MOMENTS == {"mean": 0.0, "sd": 1.0, "skewness": 0.0, "excess_kurtosis": 0.0}


def test_both_baselines_lie_inside_the_default_ranges():
    config = SearchConfig()
    kept, left_out = search_space.baselines(
        search_space.Ranges(
            config.ab_min, config.ab_max, config.mean_min, config.mean_max, config.sd_min, config.sd_max
        )
    )
    assert left_out == []
    assert kept == [
        {"a": 0.25, "b": 0.25, "mean": 0.5, "sd": math.sqrt(1 / 6)},
        {"a": 20.0, "b": 20.0, "mean": 0.0, "sd": 1.0},
    ]
    kept, left_out = search_space.baselines(search_space.Ranges(0.05, 10, -1, 1, 0.1, 2))
    assert [p["a"] for p in kept] == [0.25] and left_out == ["N(0,1)-like Beta(20,20)"]


def test_sample_counts_grow_and_stop_at_the_cap():
    assert search_space.sample_counts((1000, 3000, 10000), 3600) == [1000, 3000, 3600]
    assert search_space.sample_counts((1000, 3000, 10000), 54000) == [1000, 3000, 10000]
    assert search_space.sample_counts((1000, 3000), 500) == [500]


def test_the_pareto_pick_is_the_balanced_trial():
    front = [(10.0, 1.0), (12.0, 2.0), (30.0, 2.2)]  # fid (min), class entropy (max)
    assert search_space.pick_pareto(front) == 1
    assert search_space.pick_pareto([(5.0, 1.0)]) == 0


# --- bad input: refused at construction, naming the parameter ----------------------------------------


@pytest.mark.parametrize(
    "values, parameter",
    [
        ({"ab_min": 5, "ab_max": 1}, "ab_max"),  # inverted
        ({"ab_min": 1, "ab_max": 1}, "ab_max"),  # empty
        ({"mean_min": 0.5, "mean_max": -0.5}, "mean_max"),
        ({"sd_min": 2, "sd_max": 2}, "sd_max"),
        ({"ab_min": 0}, "ab_min"),  # logarithmic scale
        ({"sd_min": -0.1}, "sd_min"),
        ({"objective": "ssim"}, "objective"),
        ({"objective": "class_entropy"}, "objective"),
        ({"latent_sizes": "2,,5"}, "latent_sizes"),
        ({"latent_sizes": "2,x"}, "latent_sizes"),
        ({"latent_sizes": "0,5"}, "latent_sizes"),
        ({"latent_sizes": "5,5"}, "latent_sizes"),
        ({"storage": "mysql://u@h/db"}, "storage"),
        ({"storage": "postgresql://"}, "storage"),
        ({"storage": "postgresql://u@h:99999/db"}, "storage"),
        ({"storage": "sqlite://relative"}, "storage"),
        ({"n_workers": 0}, "n_workers"),
        ({"n_trials": 0}, "n_trials"),
        ({"timeout": -1}, "timeout"),
        ({"heartbeat": "10"}, "heartbeat"),
        ({"heartbeat": "60,10"}, "heartbeat"),
        ({"heartbeat": "0,5"}, "heartbeat"),
        ({"n_samples": "3000,1000"}, "n_samples"),
        ({"pruner": "hyperband"}, "pruner"),
        ({"verify_seeds": "0,1,1"}, "verify_seeds"),
        ({"verify_seeds": "1,01"}, "verify_seeds"),
        ({"verify_seeds": "0;1"}, "verify_seeds"),
        ({"verify_seeds": ""}, "verify_seeds"),
        ({"verify_seeds": "-1"}, "verify_seeds"),
        ({"verify_seeds": str(2**32)}, "verify_seeds"),
    ],
)
def test_bad_search_settings_name_the_parameter(values, parameter):
    with pytest.raises(InputError, match=f"parameter '{parameter}'"):
        SearchConfig(**values)


def test_settings_are_stored_canonical():
    config = SearchConfig(latent_sizes=" 2, 5 ,10", n_samples="100, 200", n_workers="3", ab_min="0.1")
    assert (config.latent_sizes, config.n_samples, config.n_workers, config.ab_min) == ("2,5,10", "100,200", 3, 0.1)
    assert SearchConfig(verify_seeds=" 2, 0 ,7").verify_seeds == "2,0,7" and SearchConfig().verify_seeds == "1,2,3"
    assert SearchConfig(verify_seeds="none").verify_seeds == "none"


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, parameter",
    [
        (["--storage", "postgresql://nobody@127.0.0.1:1/optuna"], "storage"),  # unreachable
        (["--storage", "sqlite:////no/such/folder/optuna.db"], "storage"),
        (["--ab_min", "0"], "ab_min"),
        (["--objective", "nll"], "objective"),
        (["--latent_sizes", "2;5"], "latent_sizes"),
        (["--n_workers", "0"], "n_workers"),
        (["--verify_seeds", "0,1,0"], "verify_seeds"),  # duplicated
        (["--verify_seeds", "0,one"], "verify_seeds"),  # malformed
    ],
)
def test_bad_input_exits_2_before_any_run(tracking, args, parameter):
    study = f"bad-{parameter}-{len(args[1])}"
    result = tracking.python_step("search", "--study_name", study, *args)
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"parameter '{parameter}'" in result.stderr
    assert "Traceback" not in result.stderr
    assert tracking.client.search_runs([tracking.experiment_id], f"tags.`optuna.study_name` = '{study}'") == []
