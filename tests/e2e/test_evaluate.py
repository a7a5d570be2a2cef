"""End to end: `mlflow run . -e evaluate --env-manager local -P model=<train run id>` logs everything."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import entropy

from tests.helpers import SAMPLER_FORMS, artifact_paths

pytestmark = pytest.mark.slow

SAMPLER_METRICS = (
    "fid",
    "precision",
    "recall",
    "density",
    "coverage",
    "confidence",
    "class_entropy",
    "class_kl",
    "classes_covered",
    "max_class_share",
    "sharpness",
)
KEYS = ("normal_0_1", "normal_1_2", "beta_0.25_0.25", "gmm_10")  # the train run's samplers plus gmm:10
# each sampler's child run of an evaluation of the bce-standard seed-0 model: its name and experiment tag
NAMES = {
    "normal_0_1": ("E1 normal:0,1 seed 0", "E1"),
    "normal_1_2": ("E2 normal:1,2 seed 0", "E2"),
    "beta_0.25_0.25": ("E3 beta:0.25,0.25 seed 0", "E3"),
    "gmm_10": ("bce-standard gmm:10 seed 0", None),
}


def sampler_runs(client, run_id: str) -> dict:
    """The evaluate run's child runs, one per sampler, by sampler key."""
    experiment_id = client.get_run(run_id).info.experiment_id
    found = client.search_runs([experiment_id], f"tags.`mlflow.parentRunId` = '{run_id}'")
    return {run.data.tags["sampler_key"]: run for run in found if run.data.tags["pipeline.step"] == "evaluate_sampler"}


def same_metrics(a: dict, b: dict) -> bool:
    """Equal metric dicts, a NaN (not measured, e.g. no confident prediction) equal to a NaN; the
    step's timings (`time_*_s`) measure the machine, not the result: only their names must match."""
    return a.keys() == b.keys() and all(
        k.startswith("time_") or a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a
    )


@pytest.fixture(scope="module")
def evaluated(tracking, trained_run_id):
    run_id, output = tracking.mlflow_run("evaluate", {"model": trained_run_id, "n_samples": 300, "iwae_k": 5})
    return run_id, output


def test_each_sampler_is_a_child_run_with_the_same_metric_names_and_tags_that_say_what_it_is(tracking, evaluated):
    from pipeline.core.evaluation import scoring, two_judges
    from pipeline.core.judges import knn

    run_id, _ = evaluated
    children = sampler_runs(tracking.client, run_id)
    assert sorted(children) == sorted(KEYS)
    names = {*scoring.SAMPLER_METRICS, *knn.SAMPLER_METRICS, *two_judges.METRICS}
    assert set(SAMPLER_METRICS) < names
    specs = {
        "normal_0_1": "normal:0,1",
        "normal_1_2": "normal:1,2",
        "beta_0.25_0.25": "beta:0.25,0.25",
        "gmm_10": "gmm:10",
    }
    for key, child in children.items():
        assert child.info.status == "FINISHED" and child.info.run_name == NAMES[key][0]
        assert set(child.data.metrics) == names
        tags = child.data.tags
        assert (tags["sampler"], tags["cell"], tags["seed"], tags.get("experiment")) == (
            specs[key],
            "bce-standard",
            "0",
            NAMES[key][1],
        )
        assert {tags["max_class"], tags["max_class_judge2"]} <= {str(d) for d in range(10)}
    evaluation = tracking.client.get_run(run_id).data
    assert not [name for name in evaluation.metrics if "/" in name]  # one source of truth: the child runs
    assert not [name for name in evaluation.tags if name.startswith("max_class")]


def test_evaluate_logs_every_metric_per_sampler_as_a_child_of_the_train_run(tracking, trained_run_id, evaluated):
    run_id, output = evaluated
    client = tracking.client
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags["pipeline.step"] == "evaluate"
    assert tags["mlflow.parentRunId"] == trained_run_id and tags["source_run_id"] == trained_run_id
    metrics = run.data.metrics
    children = sampler_runs(client, run_id)
    for key in KEYS:
        scores, sampler_tags = children[key].data.metrics, children[key].data.tags
        # The class scores must be those of the logged histogram, which must hold n_samples images.
        table = json.loads(
            Path(client.download_artifacts(run_id, f"evaluation/{key}/class_histogram.json")).read_text()
        )
        counts = np.array([row[table["columns"].index("count")] for row in table["data"]])
        assert counts.sum() == 300
        shares = counts / counts.sum()
        assert scores["class_entropy"] == pytest.approx(float(entropy(shares)), abs=1e-9)
        assert scores["classes_covered"] == int((shares >= 0.05).sum())
        assert scores["max_class_share"] == pytest.approx(float(shares.max()), abs=1e-9)
        assert sampler_tags["max_class"] == str(int(shares.argmax()))
        assert scores["fid"] > metrics["fid_floor"] >= 0.0
    assert metrics["class_entropy_real"] == pytest.approx(math.log(10), abs=1e-3)  # mnist-5k is balanced
    assert metrics["sharpness_real"] > 0
    assert metrics["nll"] < metrics["neg_elbo"]  # the IWAE bound is at least as tight as the ELBO

    # active units, recomputed from the logged model on the test split, must be the logged number
    import mlflow.pytorch
    import torch

    from pipeline.core.model.training import as_float_tensor
    from pipeline.core.scores import likelihood
    from pipeline.steps.evaluate import train_run_data

    model = mlflow.pytorch.load_model(f"runs:/{trained_run_id}/model", map_location="cpu")
    prepared = train_run_data(client.get_run(trained_run_id))
    test = as_float_tensor(prepared.splits["test"][0], torch.device("cpu"))
    assert metrics["active_units"] == likelihood.active_units(model, test)

    paths = artifact_paths(client, run_id)
    for key in KEYS:
        for name in ("class_histogram.png", "class_histogram.json", "samples_and_classes.png", "grid.png"):
            assert f"evaluation/{key}/{name}" in paths
    from PIL import Image

    grid = Image.open(client.download_artifacts(run_id, "evaluation/normal_0_1/grid.png"))
    assert grid.size == (484, 484)  # 64 digits, 8 x (28 + 2 border) + 2 px, twice upscaled
    assert "evaluation/summary.txt" in paths
    assert "fid_floor" in output and "normal_0_1" in output and "real (train subset)" in output


def test_both_judges_are_weighed_at_each_samplers_sharpness_and_the_disputed_digits_are_kept(tracking, evaluated):
    from pipeline.core.judges import disagreement

    run_id, _ = evaluated
    run = tracking.client.get_run(run_id)
    assert run.data.metrics["time_judges_at_sample_sharpness_s"] > 0
    children = sampler_runs(tracking.client, run_id)
    for key in KEYS:
        metrics, tags = children[key].data.metrics, children[key].data.tags
        for name in ("judge_acc_at_sample_sharpness", "judge2_acc_at_sample_sharpness", "samples_in_dispute"):
            assert 0.0 <= metrics[name] <= 1.0, f"{name}/{key}"
        sigma = metrics["blur_sigma_at_sample_sharpness"]
        assert 0.0 <= sigma <= 8.0
        if sigma > 0:  # blurrier than real digits: the real ones were blurred, and the judges lose accuracy
            assert metrics["sharpness"] < run.data.metrics["sharpness_real"]
        data = Path(
            tracking.client.download_artifacts(run_id, f"evaluation/{key}/{disagreement.ARTIFACT}")
        ).read_bytes()
        disputed = disagreement.Dispute.from_bytes(data)
        assert disputed.total == 300 and disputed.confusion.shape == (10, 10)
        # the matrix's rows are the CNN's classes, its columns the k-NN's: their argmax the dominant digits
        dominant = (str(disputed.confusion.sum(1).argmax()), str(disputed.confusion.sum(0).argmax()))
        assert dominant == (tags["max_class"], tags["max_class_judge2"])
        assert disputed.share_in_dispute == pytest.approx(metrics["samples_in_dispute"])
        assert disputed.kappa == pytest.approx(metrics["judges_kappa"]) and -1.0 <= disputed.kappa <= 1.0
        assert len(disputed.cell_images) == min(32, disputed.cell_count) and disputed.cell_images.shape[1:] == (28, 28)
        assert len(disputed.random_images) == len(disputed.random_cnn) == 32


def test_evaluate_logs_the_second_judge_beside_the_cnn_for_every_sampler(tracking, evaluated):
    run_id, _ = evaluated
    client = tracking.client
    tags = client.get_run(run_id).data.tags
    paths = artifact_paths(client, run_id, "evaluation")
    children = sampler_runs(client, run_id)
    for key in KEYS:
        metrics, judged = children[key].data.metrics, children[key].data.tags
        path = client.download_artifacts(run_id, f"evaluation/{key}/class_histogram_judge2.json")
        table = json.loads(Path(path).read_text())
        counts = np.array([row[table["columns"].index("count")] for row in table["data"]])
        shares = counts / counts.sum()
        assert counts.sum() == 300
        assert judged["max_class_judge2"] == str(int(np.argmax(counts)))
        assert metrics["max_class_share_judge2"] == pytest.approx(shares.max())
        assert metrics["classes_covered_judge2"] == (shares >= 0.05).sum()
        covered = shares[shares > 0]
        assert metrics["class_entropy_judge2"] == pytest.approx(-(covered * np.log(covered)).sum())
        assert metrics["judges_agree"] == float(judged["max_class"] == judged["max_class_judge2"])
        assert f"evaluation/{key}/class_histogram_judge2.png" in paths
    classifier = client.get_run(tags["classifier_run_id"])  # the judge lives in the classifier run, fitted once
    assert classifier.data.metrics["judge2_test_accuracy"] >= 0.93  # measured 0.945 on mnist-5k's test split
    assert classifier.data.params["judge2_components"] == "50"
    assert "judge2/knn_pca.npz" in artifact_paths(client, classifier.info.run_id)


def test_the_model_level_scores_are_copied_onto_the_train_run(tracking, trained_run_id, evaluated):
    run_id, _ = evaluated
    train = tracking.client.get_run(trained_run_id)
    evaluation = tracking.client.get_run(run_id)
    for name in ("nll", "neg_elbo", "active_units", "fid_floor"):
        assert train.data.metrics[name] == evaluation.data.metrics[name]
    assert not [name for name in train.data.metrics if name.startswith("fid/")]  # the samplers' are child runs'
    assert not [name for name in train.data.tags if name.startswith("max_class")]
    assert train.data.tags["evaluation_run_id"] == run_id
    settings = evaluation.data.tags["scores.settings"]
    assert train.data.tags["scores.settings"] == settings
    assert settings == f"n_samples=300 iwae_k=5 seed=0 classifier={evaluation.data.tags['classifier_run_id']}"


@pytest.fixture(scope="module")
def quick_evaluation(tracking, trained_run_id, evaluated):
    """A second evaluation of the trained model under other settings (one sampler, 40 samples): the
    train run's data before it, its run id and its output."""
    before = tracking.client.get_run(trained_run_id).data
    run_id, output = tracking.mlflow_run(
        "evaluate", {"model": trained_run_id, "samplers": "normal:0,1", "n_samples": 40, "iwae_k": 2}
    )
    return before, run_id, output


def test_classifier_is_logged_once_and_reused_by_digest(tracking, trained_run_id, evaluated, quick_evaluation):
    first_id, _ = evaluated
    digest = tracking.client.get_run(trained_run_id).data.tags["source_digest"]
    classifier_id = tracking.client.get_run(first_id).data.tags["classifier_run_id"]
    classifier = tracking.client.get_run(classifier_id)
    assert classifier.data.tags["pipeline.step"] == "classifier" and classifier.data.tags["source_digest"] == digest
    assert classifier.data.metrics["test_accuracy"] >= 0.9
    import mlflow.pytorch

    from pipeline.core.judges.cnn import DigitClassifier

    assert isinstance(mlflow.pytorch.load_model(f"runs:/{classifier_id}/model", map_location="cpu"), DigitClassifier)

    second = tracking.client.get_run(quick_evaluation[1])
    assert second.data.tags["classifier_run_id"] == classifier_id
    assert list(sampler_runs(tracking.client, second.info.run_id)) == ["normal_0_1"]
    found = tracking.client.search_runs(
        [tracking.experiment_id], f"tags.source_digest = '{digest}' and tags.`pipeline.step` = 'classifier'"
    )
    assert len(found) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--n_samples", "3"], "parameter 'n_samples': got 3; allowed: >= 10"),
        (["--iwae_k", "0"], "parameter 'iwae_k': got 0; allowed: >= 1"),
        (["--copy_scores", "always"], "parameter 'copy_scores': got 'always'; allowed: auto | replace | skip"),
    ],
)
def test_bad_input_exits_2_naming_the_parameter_and_what_is_allowed(tracking, trained_run_id, args, message):
    result = tracking.python_step("evaluate", "--model", trained_run_id, *args)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == f"error: {message}"


def test_a_bad_sampler_spec_exits_2_naming_the_parameter_and_the_forms(tracking, trained_run_id):
    result = tracking.python_step("evaluate", "--model", trained_run_id, "--samplers", "normal:0,1+gmm:0")
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        "error: parameter 'samplers': sampler spec 'gmm:0': gmm takes one whole number K >= 1 (components); "
        f"allowed forms: {SAMPLER_FORMS}"
    )


def test_unknown_or_wrong_kind_of_run_exits_2(tracking, prepared_run_id):
    for model in ("0" * 32, "not-a-run", prepared_run_id):
        result = tracking.python_step("evaluate", "--model", model)
        assert result.returncode == 2, result.stderr[-2000:]
        assert "parameter 'model'" in result.stderr


def test_scores_of_other_settings_never_silently_replace_those_on_the_train_run_and_come_back_identical(
    tracking, trained_run_id, evaluated, quick_evaluation
):
    first_id, _ = evaluated
    before, quick_id, output = quick_evaluation
    assert "not copied" in output and "copy_scores=replace" in output
    quick = tracking.client.get_run(quick_id)
    assert quick.data.tags["scores_on_train_run"].startswith("not copied")
    after = tracking.client.get_run(trained_run_id).data
    assert same_metrics(after.metrics, before.metrics)
    assert after.tags["scores.settings"] == before.tags["scores.settings"]
    assert after.tags["evaluation_run_id"] == first_id

    try:  # the session's train run gets other scores for a moment: they are put back whatever happens
        replaced_id, _ = tracking.mlflow_run(
            "evaluate",
            {"model": trained_run_id, "samplers": "normal:0,1", "n_samples": 40, "iwae_k": 2, "copy_scores": "replace"},
        )
        replaced = tracking.client.get_run(trained_run_id).data
        measured = tracking.client.get_run(replaced_id).data.metrics
        assert replaced.tags["scores.settings"].startswith("n_samples=40 iwae_k=2 seed=0")
        assert replaced.metrics["nll"] == measured["nll"]
        assert replaced.metrics["train_loss"] == before.metrics["train_loss"]  # the train run's own metrics stay
    finally:  # the 300-sample scores, for the tests that read them
        restore = {"model": trained_run_id, "n_samples": 300, "iwae_k": 5, "copy_scores": "replace"}
        again_id, _ = tracking.mlflow_run("evaluate", restore)
    # the same evaluation again gives identical metrics: the model's, put back on the train run, and each sampler's
    assert same_metrics(tracking.client.get_run(trained_run_id).data.metrics, before.metrics)
    assert again_id != first_id
    assert same_metrics(tracking.client.get_run(again_id).data.metrics, tracking.client.get_run(first_id).data.metrics)
    first, again = sampler_runs(tracking.client, first_id), sampler_runs(tracking.client, again_id)
    assert sorted(first) == sorted(again) == sorted(KEYS)
    assert all(same_metrics(first[key].data.metrics, again[key].data.metrics) for key in KEYS)
