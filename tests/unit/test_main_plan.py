"""What main plans: F4's second part (E4 against the MSE model sampled from N(0,1))
is measured by one more evaluation of E4's model, with no new training; and the search its report
links to."""

from __future__ import annotations

import pytest

from pipeline.configs import MainConfig
from pipeline.core import study
from pipeline.steps import main


@pytest.mark.parametrize("preset", ["quick", "study"])
def test_both_presets_evaluate_the_mse_model_with_n01_without_training_it_again(preset):
    config = MainConfig(preset=preset)
    settings = main.resolve_settings(config)
    experiments = study.select(settings["experiments"])
    assert [e.study_id for e in experiments if e.study_id] == ["E1", "E2", "E3", "E4", "E5"]
    assert [(e.cell, e.sampler) for e in experiments if not e.study_id] == [("mse-standard", "normal:0,1")]
    cells = {cell.name: cell for cell in main.cells_of(experiments)}
    assert sorted(cells) == ["bce-sampled-params", "bce-standard", "mse-standard"]
    mse = cells["mse-standard"]
    assert mse.samplers == ["beta:0.25,0.25", "normal:0,1"]  # Beta first: the cell's generator keeps E4's sampler
    stand_in = "0" * 32
    # the training is E4's as before (the same reuse key), the evaluation adds the N(0,1) sampler
    assert main.train_config(config, settings, mse, 0, stand_in).samplers == "beta:0.25,0.25"
    assert main.evaluate_config(config, settings, mse, stand_in).samplers == "beta:0.25,0.25+normal:0,1"
    assert (
        main.train_config(config, settings, cells["bce-standard"], 0, stand_in).samplers
        == "normal:0,1+normal:1,2+beta:0.25,0.25"
    )


def test_a_list_of_study_ids_is_exactly_those_and_the_grid_trains_every_sampler():
    assert [e.name for e in study.select("E1,E4")] == ["E1", "E4"]
    grid = study.select("grid")
    assert not any(e.evaluate_only for e in grid) and len(grid) == 16
    cells = {cell.name: cell for cell in main.cells_of(grid)}
    assert cells["mse-standard"].trained_samplers == list(study.GRID_SAMPLERS)


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
