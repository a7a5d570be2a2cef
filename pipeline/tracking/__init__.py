"""Tracking owns every run's life: it creates runs (named when created), nests them, ends them with a status
and a reason, fails stale ones whose process is gone, and finds them (reuse); it also holds the references
to runs, models, checkpoints and data. Steps may log metrics, params and images into their own open run
with `mlflow.log_*`; no other module creates, ends or searches runs.

- runs: finding and ending runs, stale runs, child runs (search trials);
- step: a step's own run;
- reuse: configuration keys, code versions, reuse-or-launch and launching a step;
- params: a step's params logged and read back canonically;
- references: models and prepared data by reference, dataset inputs;
- artifacts: grids, figures, models, checkpoints, copied artifacts and scores.

`from pipeline import tracking; tracking.step_run(...)`: the names steps use are re-exported here.
"""

from pipeline.tracking.runs import (  # noqa: F401
    child_run, children, current_experiment_id, DRIVER_TAG, end_failed, fail_stale_runs, fail_stale_runs_of, finished_runs,
    get_run, KIND_TAG, launched_run_id, mark_training_experiment, newest_finished, OpenRun, PARENT_TAG, process_alive,
    PROCESS_TAG, process_tags, RUN_ID_PATTERN, search_all_runs, STALE_REASON, STEP_TAG, TRAINING_KIND,
    use_experiment_of,
)
from pipeline.tracking.params import (  # noqa: F401
    log_config, normalized_params, run_param,
)
from pipeline.tracking.artifacts import (  # noqa: F401
    artifact_batch, CHECKPOINT_DIR, copy_artifacts, copy_scores, downloaded, has_checkpoints, load_latest_checkpoint,
    load_model, log_checkpoint, log_figure, log_model, log_samples, SETTINGS_TAG, skip_installed_package_scan,
)
from pipeline.tracking.reuse import (  # noqa: F401
    CODE_TAG, code_version, config_key, DIRTY_TAG, KEY_TAG, launch_step, NOT_IN_KEY, PROJECT_ROOT, reusable_run,
    reuse_allowed, reuse_or_launch, reuse_tags, runs_with_key, SOURCE_GLOBS, StepFailed, store_key,
)
from pipeline.tracking.step import (  # noqa: F401
    log_system_metrics_sample, step_run, SYSTEM_METRICS_INTERVAL_S,
)
from pipeline.tracking.references import (  # noqa: F401
    data_source, log_dataset_inputs, model_uri, resolve_data,
)
