"""pipeline/cli.py, pipeline/configs/:
Inputs that once crashed with a traceback: each exits 2 naming the parameter, and creates no run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.cli import main
from tests.conftest import write_idx_folder


def run_ids(tracking) -> set[str]:
    return {run.info.run_id for run in tracking.client.search_runs([tracking.experiment_id])}


def refused(tracking, capsys, argv: list[str], *expected: str) -> None:
    before = run_ids(tracking)
    assert main(argv) == 2
    error = capsys.readouterr().err
    for text in expected:
        assert text in error, error
    assert "Traceback" not in error
    assert run_ids(tracking) == before, "a run was created for refused input"


@pytest.mark.parametrize("step", ["train", "prepare_data"])
def test_a_negative_seed(tracking, capsys, step):
    refused(
        tracking, capsys, [step, "--seed", "-1"], "parameter 'seed': got -1; allowed: an integer in [0, 4294967295]"
    )


def test_a_validation_share_too_small_for_ten_classes(tracking, capsys):
    refused(
        tracking,
        capsys,
        ["train", "--val_fraction", "0.001", "--epochs", "1"],
        "parameter 'val_fraction': got 0.001, which holds out 4 of 4000 images for 10 classes",
        "allowed: a value in [0.0025, 0.9975]",
    )


def test_an_idx_folder_where_a_class_has_a_single_image(tracking, capsys, tmp_path):
    from pipeline.core.data.idx import write_idx

    folder = write_idx_folder(tmp_path / "idx", n_train=41)  # labels 0..9 four times, then one more 0
    write_idx(folder / "train-labels-idx1-ubyte", np.array([*(np.arange(40) % 9), 9], dtype=np.uint8))
    refused(
        tracking,
        capsys,
        ["prepare_data", "--dataset", f"idx:{folder}"],
        f"parameter 'dataset': idx:{folder}",
        "class 9 has a single training image",
    )
    refused(tracking, capsys, ["train", "--data", f"idx:{folder}"], "parameter 'data': idx:")


def test_a_prepared_file_that_is_not_an_archive(tracking, capsys, tmp_path):
    bogus = tmp_path / "bogus.npz"
    bogus.write_bytes(b"PK\x03\x04 this is not a zip archive")
    refused(tracking, capsys, ["train", "--data", str(bogus)], "parameter 'data'", "is not a prepared data file")


def test_a_prepared_file_whose_metadata_lacks_a_digest(tracking, capsys, tmp_path):
    arrays = {
        f"{split}_{kind}": np.zeros((2, 28, 28) if kind == "images" else 2, np.uint8 if kind == "images" else np.int64)
        for split in ("train", "val", "test")
        for kind in ("images", "labels")
    }
    path = tmp_path / "nodigest.npz"
    np.savez(path, meta=np.array(json.dumps({"source": "hand-made"})), **arrays)
    refused(tracking, capsys, ["train", "--data", str(path)], "parameter 'data'", "KeyError: 'digest'")


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--preset", "huge"], "parameter 'preset': got 'huge'; allowed: quick | study"),
        (["--seeds", ""], "parameter 'seeds': got ''"),
        (["--seeds", "0,x"], "parameter 'seeds': got '0,x'"),
        (["--seeds", "1,1"], "parameter 'seeds': got '1,1'"),
        (["--experiments", "E9"], "parameter 'experiments': got 'E9'"),
        (["--max_parallel", "0"], "parameter 'max_parallel': got '0'; allowed: an integer >= 1 | auto"),
        (["--backend_config", "/no/such.json"], "parameter 'backend_config'"),
        # settings the steps check: main builds every step's configuration before its run opens
        (["--epochs", "0"], "parameter 'epochs': got 0; allowed: >= 1"),
        (["--n_samples", "-10"], "parameter 'n_samples': got -10; allowed: >= 10"),
        (["--iwae_k", "0", "--experiments", "E1"], "parameter 'iwae_k': got 0; allowed: >= 1"),
        (["--lr", "-1"], "parameter 'lr': got -1.0; allowed: a number > 0"),
    ],
)
def test_main_refuses_bad_input_before_any_step(tracking, capsys, argv, expected):
    refused(tracking, capsys, ["main", *argv], expected)


def test_sample_zero_images(tracking, capsys):
    refused(tracking, capsys, ["sample", "--model", "0" * 32, "--n", "0"], "parameter 'n': got 0; allowed: >= 1")


def test_an_unknown_copy_scores_choice(tracking, capsys):
    refused(
        tracking,
        capsys,
        ["evaluate", "--model", "0" * 32, "--copy_scores", "always"],
        "parameter 'copy_scores': got 'always'; allowed: auto | replace | skip",
    )


@pytest.mark.parametrize("where", ["a file", "inside a file"])
def test_a_report_output_that_cannot_be_a_folder(tracking, capsys, tmp_path, where):
    """Refused before the report run opens (and before the report is built), not at the end with a traceback."""
    client = tracking.client
    main_run = client.create_run(tracking.experiment_id, tags={"pipeline.step": "main"}).info.run_id
    client.log_dict(main_run, {"preset": "quick", "settings": {}, "experiments": [], "steps": []}, "main/steps.json")
    client.set_terminated(main_run, "FINISHED")
    blocker = tmp_path / "report.html"
    blocker.write_text("a file where the report folder would go")
    output = blocker if where == "a file" else blocker / "report"
    refused(
        tracking,
        capsys,
        ["report", "--source", main_run, "--output", str(output)],
        f"parameter 'output': got {str(output)!r}; allowed: a folder that exists or can be created, and can be "
        f"written ({blocker} is a file)",
    )
