"""The `judges` step: the evaluation's two classifiers for the source of a prepare_data run.

Every evaluation of a source scores its samples with the same CNN and the same pixel k-NN
(pipeline/tracking/classifier_run.py finds them by the source's digest, in any experiment). Trained
here, main starts them as soon as the data is prepared, beside the first trainings, instead of on
the first evaluation's critical path; a source whose judges exist only loads them.
"""

from __future__ import annotations

import mlflow

from pipeline import tracking
from pipeline.configs import JudgesConfig
from pipeline.core.devices import resolve_device
from pipeline.errors import InputError
from pipeline.tracking.classifier_run import classifier_for, judge_for


def judges(config: JudgesConfig) -> str:
    """Train (or find) the CNN and fit (or find) the k-NN of the data's source; returns the run id."""
    data_run = tracking.get_run(config.data, "data")
    step = data_run.data.tags.get(tracking.STEP_TAG)
    if step != "prepare_data":
        raise InputError(f"parameter 'data': run {config.data} is a {step!r} run; allowed: a prepare_data run id")
    device = resolve_device(config.device)
    prepared = tracking.resolve_data(config.data)
    name = f"judges {data_run.info.run_name.removeprefix('prepare_data ')}"
    tags = {"source_digest": prepared.source_digest, "data_digest": prepared.digest}
    experiment_id = tracking.use_experiment_of(data_run)
    with tracking.step_run("judges", name, config, config.data, experiment_id, tags) as run:  # beside its data
        tracking.log_config(config)
        _, classifier_run_id = classifier_for(prepared, device, run.info.experiment_id, run.info.run_id)
        judge_for(classifier_run_id, prepared)
        mlflow.set_tag("classifier_run_id", classifier_run_id)
        print(
            f"judges run {run.info.run_id}: classifier run {classifier_run_id} for source {prepared.source_digest[:12]}"
        )
        return run.info.run_id
