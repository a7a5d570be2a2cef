"""pipeline/steps/main.py:
What main plans: the preset's settings, typed, with the user's overrides; the step configurations
built from them; F4's second part (E4 against the MSE model sampled from N(0,1)) measured by one more
evaluation of E4's model, with no new training; and the search its report links to."""

from __future__ import annotations

import dataclasses

import pytest

from pipeline.configs import EvaluateConfig, JudgesConfig, MainConfig, PrepareDataConfig, TrainConfig
from pipeline.core import experiments
from pipeline.errors import InputError
from pipeline.steps import main


def test_the_plan_is_the_presets_settings_typed_with_the_users_overrides():
    config = MainConfig(preset="quick", epochs="7", seeds="3,1", lr="1e-2", precision="bf16-mixed")
    plan = main.make_plan(config, experiments.PRESETS["quick"])
    assert plan.settings == experiments.Settings(
        experiments="study",
        data="mnist-5k",
        epochs=7,
        seeds=(3, 1),
        latent_size=100,
        hidden_size=392,
        batch_size=64,
        lr=0.01,
        n_samples=1000,
        iwae_k=50,
        precision="bf16-mixed",
    )
    assert plan.prepare == PrepareDataConfig(dataset="mnist-5k", seed=0, data_root="data")
    assert [(cell.name, seed) for cell, seed in plan.trainings] == [
        ("bce-standard", 3),
        ("bce-standard", 1),
        ("mse-standard", 3),
        ("mse-standard", 1),
        ("bce-sampled-params", 3),
        ("bce-sampled-params", 1),
    ]
    bce = plan.cells[0]
    assert plan.train_config(bce, 3, "d" * 32) == TrainConfig(
        data="d" * 32,
        loss="bce",
        forward="standard",
        latent_size=100,
        hidden_size=392,
        epochs=7,
        batch_size=64,
        lr=0.01,
        seed=3,
        precision="bf16-mixed",
        samplers="normal:0,1+normal:1,2+beta:0.25,0.25",
    )
    assert plan.evaluate_config(bce, "t" * 32) == EvaluateConfig(
        model="t" * 32,
        samplers="normal:0,1+normal:1,2+beta:0.25,0.25+normal:1,1.41421",
        n_samples=1000,
        iwae_k=50,
        seed=0,
    )
    assert plan.judges_config("d" * 32) == JudgesConfig(data="d" * 32)
    record = plan.record([{"step": "evaluate"}, {"step": "train"}, {"step": "judges"}, {"step": "prepare_data"}])
    steps = [r["step"] for r in record["steps"]]
    assert record["preset"] == "quick" and steps == ["prepare_data", "judges", "train", "evaluate"]
    assert record["settings"] == {
        "experiments": "study",
        "data": "mnist-5k",
        "epochs": 7,
        "seeds": [3, 1],
        "latent_size": 100,
        "hidden_size": 392,
        "batch_size": 64,
        "lr": 0.01,
        "n_samples": 1000,
        "iwae_k": 50,
        "precision": "bf16-mixed",
    }


def test_a_prepare_data_run_id_as_data_needs_no_prepare_step_and_the_study_preset_is_its_own():
    plan = main.make_plan(MainConfig(preset="study", data="a" * 32), experiments.PRESETS["study"])
    assert plan.prepare is None and plan.settings.data == "a" * 32
    assert (plan.settings.epochs, plan.settings.seeds, plan.settings.batch_size, plan.settings.n_samples) == (
        100,
        (0, 1, 2),
        128,
        10000,
    )
    assert plan.train_config(plan.cells[0], 2, plan.settings.data).data == "a" * 32
    assert plan.train_config(plan.cells[0], 2, plan.settings.data).precision == "32"  # what the study published


def test_a_setting_no_step_accepts_is_refused_by_the_plan():
    with pytest.raises(InputError, match="parameter 'epochs': got 0; allowed: >= 1"):
        main.make_plan(MainConfig(epochs="0"), experiments.PRESETS["quick"])
    with pytest.raises(InputError, match="parameter 'n_samples': got 5; allowed: >= 10"):
        main.make_plan(MainConfig(n_samples="5"), experiments.PRESETS["quick"])


def test_every_preset_setting_is_a_main_parameter_typed_as_the_settings_declare():
    defaults = {f.name: f.default for f in dataclasses.fields(MainConfig)}
    assert all(defaults[name] == "preset" for name in experiments.SETTING_TYPES)
    assert experiments.Settings.parse("seeds", "3,1") == (3, 1) and experiments.Settings.parse("lr", "1e-2") == 0.01
    assert experiments.Settings.parse("epochs", "7") == 7 and experiments.Settings.parse("data", "mnist") == "mnist"
    with pytest.raises(InputError, match=r"parameter 'lr': got 'fast'; allowed: a number \| preset"):
        MainConfig(lr="fast")
    with pytest.raises(InputError, match=r"parameter 'iwae_k': got '2.5'; allowed: an integer \| preset"):
        MainConfig(iwae_k="2.5")


def test_the_help_states_each_presets_value():
    helps = {f.name: f.metadata["help"] for f in dataclasses.fields(MainConfig)}
    assert helps["epochs"] == "training epochs (quick: 50, study: 100)"
    assert helps["latent_size"] == "latent dimensions (100)"
    assert helps["precision"].endswith("32 | bf16-mixed (see train's) (32)")
    assert helps["seeds"].endswith("(quick: 0,1, study: 0,1,2)")
    assert helps["preset"] == (
        "quick: study experiments on mnist-5k, 50 epochs, 2 seeds | study: study experiments on mnist, 100 epochs, 3 seeds"
    )


@pytest.mark.parametrize("preset", ["quick", "study"])
def test_both_presets_evaluate_the_mse_model_with_n01_without_training_it_again(preset):
    plan = main.make_plan(MainConfig(preset=preset), experiments.PRESETS[preset])
    assert [e.study_id for e in plan.experiments if e.study_id] == ["E1", "E2", "E3", "E4", "E5"]
    assert [(e.cell, e.sampler) for e in plan.experiments if not e.study_id] == [
        ("mse-standard", "normal:0,1"),
        ("bce-standard", "normal:1,1.41421"),  # the sensitivity rows: N(1,2) as variance 2, E5 with Beta
        ("bce-sampled-params", "beta:0.25,0.25"),
    ]
    cells = {cell.name: cell for cell in plan.cells}
    assert sorted(cells) == ["bce-sampled-params", "bce-standard", "mse-standard"]
    mse = cells["mse-standard"]
    assert mse.samplers == ("beta:0.25,0.25", "normal:0,1")  # Beta first: the cell's generator keeps E4's sampler
    stand_in = "0" * 32
    # the training is E4's as before (the same reuse key), the evaluation adds the N(0,1) sampler
    assert plan.train_config(mse, 0, stand_in).samplers == "beta:0.25,0.25"
    assert plan.evaluate_config(mse, stand_in).samplers == "beta:0.25,0.25+normal:0,1"
    assert plan.train_config(cells["bce-standard"], 0, stand_in).samplers == "normal:0,1+normal:1,2+beta:0.25,0.25"
    assert plan.evaluate_config(cells["bce-standard"], stand_in).samplers.endswith("+normal:1,1.41421")


def test_a_list_of_study_ids_is_exactly_those_and_the_grid_trains_every_sampler():
    assert [e.name for e in experiments.select("E1,E4")] == ["E1", "E4"]
    grid = experiments.select("grid")
    assert not any(e.evaluate_only for e in grid) and len(grid) == 16
    cells = {cell.name: cell for cell in main.cells_of(grid)}
    assert cells["mse-standard"].trained_samplers == experiments.GRID_SAMPLERS


def test_main_links_a_search_by_run_id_or_study_name_and_refuses_anything_else(tracking, capsys):
    from mlflow.tracking import MlflowClient

    from pipeline.cli import main as cli

    client = MlflowClient()

    def finished(step: str, study_name: str) -> str:
        run = client.create_run(tracking.experiment_id, tags={"pipeline.step": step, "optuna.study_name": study_name})
        client.set_terminated(run.info.run_id, "FINISHED")
        return run.info.run_id

    older, newer = finished("search", "linked"), finished("search", "linked")
    train = finished("train", "linked")
    assert main.resolve_search("none") is None
    assert main.resolve_search(older) == older
    assert main.resolve_search("linked") == newer  # a study name: its newest finished search run
    runs_before = len(client.search_runs([tracking.experiment_id]))
    for value, reason in (
        (train, "is not a search run"),
        ("no-such-study", "no finished search run of study"),
        ("0" * 32, "no run"),
        ("a'b", "the study name of"),
    ):
        assert cli(["main", "--search", value]) == 2, value
        error = capsys.readouterr().err
        assert "parameter 'search'" in error and reason in error, error
    assert len(client.search_runs([tracking.experiment_id])) == runs_before  # refused before main's run opened
