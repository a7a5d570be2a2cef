"""End to end: `mlflow run . -e evaluate --env-manager local -P model=<train run id>` logs everything."""

from __future__ import annotations

import math

import pytest

pytestmark = pytest.mark.slow

SAMPLER_METRICS = ("fid", "precision", "recall", "density", "coverage", "confidence", "class_entropy", "class_kl",
                   "classes_covered", "max_class_share", "sharpness")
KEYS = ("normal_0_1", "normal_1_2", "beta_0.25_0.25", "gmm_10")  # the train run's samplers plus gmm:10


def artifact_paths(client, run_id, path=""):
    paths = []
    for item in client.list_artifacts(run_id, path):
        paths += artifact_paths(client, run_id, item.path) if item.is_dir else [item.path]
    return paths


@pytest.fixture(scope="module")
def evaluated(tracking, trained_run_id):
    run_id, output = tracking.mlflow_run("evaluate", {"model": trained_run_id, "n_samples": 300, "iwae_k": 5})
    return run_id, output


def test_evaluate_logs_every_metric_per_sampler_as_a_child_of_the_train_run(tracking, trained_run_id, evaluated):
    run_id, output = evaluated
    client = tracking.client
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags["pipeline.step"] == "evaluate"
    assert tags["mlflow.parentRunId"] == trained_run_id and tags["source_run_id"] == trained_run_id
    metrics = run.data.metrics
    for key in KEYS:
        for name in SAMPLER_METRICS:
            assert f"{name}/{key}" in metrics, f"{name}/{key}"
        assert 0.0 <= metrics[f"class_entropy/{key}"] <= math.log(10) + 1e-9
        assert 1 <= metrics[f"classes_covered/{key}"] <= 10
        assert 0.1 <= metrics[f"max_class_share/{key}"] <= 1.0
        assert 0.0 <= metrics[f"precision/{key}"] <= 1.0 and 0.0 <= metrics[f"recall/{key}"] <= 1.0
        assert 0.1 <= metrics[f"confidence/{key}"] <= 1.0
        assert metrics[f"fid/{key}"] > metrics["fid_floor"] >= 0.0
        assert tags[f"max_class/{key}"] in {str(d) for d in range(10)}
    assert metrics["class_entropy_real"] == pytest.approx(math.log(10), abs=1e-3)  # mnist-5k is balanced
    assert metrics["sharpness_real"] > 0
    assert 0 <= metrics["active_units"] <= 100
    assert metrics["nll"] < metrics["neg_elbo"] + 1.0  # the IWAE bound is at least as tight as the ELBO

    paths = artifact_paths(client, run_id)
    for key in KEYS:
        for name in ("class_histogram.png", "class_histogram.json", "samples_and_classes.png"):
            assert f"evaluation/{key}/{name}" in paths
    assert "evaluation/summary.txt" in paths
    assert "fid_floor" in output and "normal_0_1" in output and "real (train subset)" in output


def test_scores_are_copied_onto_the_train_run(tracking, trained_run_id, evaluated):
    run_id, _ = evaluated
    train = tracking.client.get_run(trained_run_id)
    evaluation = tracking.client.get_run(run_id)
    for key in KEYS:
        assert train.data.metrics[f"fid/{key}"] == evaluation.data.metrics[f"fid/{key}"]
        assert train.data.tags[f"max_class/{key}"] == evaluation.data.tags[f"max_class/{key}"]
    assert train.data.metrics["nll"] == evaluation.data.metrics["nll"]
    assert train.data.tags["evaluation_run_id"] == run_id


def test_classifier_is_logged_once_and_reused_by_digest(tracking, trained_run_id, evaluated):
    first_id, _ = evaluated
    digest = tracking.client.get_run(trained_run_id).data.params["data_digest"]
    classifier_id = tracking.client.get_run(first_id).data.tags["classifier_run_id"]
    classifier = tracking.client.get_run(classifier_id)
    assert classifier.data.tags["pipeline.step"] == "classifier" and classifier.data.tags["data_digest"] == digest
    assert classifier.data.metrics["test_accuracy"] >= 0.9
    import mlflow.pytorch

    from pipeline.classifier import DigitClassifier

    assert isinstance(mlflow.pytorch.load_model(f"runs:/{classifier_id}/model", map_location="cpu"), DigitClassifier)

    second_id, _ = tracking.mlflow_run("evaluate", {"model": trained_run_id, "samplers": "normal:0,1",
                                                    "n_samples": 50, "iwae_k": 2})
    second = tracking.client.get_run(second_id)
    assert second.data.tags["classifier_run_id"] == classifier_id
    assert "fid/normal_0_1" in second.data.metrics and "fid/gmm_10" not in second.data.metrics
    found = tracking.client.search_runs([tracking.experiment_id],
                                        f"tags.data_digest = '{digest}' and tags.`pipeline.step` = 'classifier'")
    assert len(found) == 1


@pytest.mark.parametrize("args, named", [
    (["--n_samples", "3"], "n_samples"),
    (["--iwae_k", "0"], "iwae_k"),
    (["--samplers", "gmm:0"], "gmm"),
])
def test_bad_input_exits_2_naming_the_parameter(tracking, trained_run_id, args, named):
    result = tracking.python_step("evaluate", "--model", trained_run_id, *args)
    assert result.returncode == 2, result.stderr[-2000:]
    assert named in result.stderr


def test_unknown_or_wrong_kind_of_run_exits_2(tracking, prepared_run_id):
    for model in ("0" * 32, "not-a-run", prepared_run_id):
        result = tracking.python_step("evaluate", "--model", model)
        assert result.returncode == 2, result.stderr[-2000:]
        assert "parameter 'model'" in result.stderr
