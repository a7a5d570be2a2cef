"""Tracking owns every run's life: it creates runs (named when created), nests them, ends them with a status
and a reason, fails stale ones whose process is gone, and finds them (reuse); it also holds the references
to runs, models, checkpoints and data. Steps may log metrics, params and images into their own open run
with `mlflow.log_*`; no other module creates, ends or searches runs.

- runs: finding and ending runs, stale runs, child runs (search trials);
- step: a step's own run;
- code: the code version (a content hash of the files that decide a step's result, dirty, git commit);
- local_files: where the files the pipeline writes by default go (study files, report);
- reuse: configuration keys, reuse-or-launch and launching a step;
- params: a step's params logged and read back canonically;
- references: models and prepared data by reference, dataset inputs;
- artifacts: grids, figures, models, checkpoints, copied artifacts and scores;
- classifier_run: the evaluation classifier's run, found by source digest or trained once;
- registry: a generator registered under a name and an alias (only the drivers, main and search, register).

`from pipeline import tracking; tracking.step_run(...)`: the names steps use are re-exported here.
"""

from pipeline.tracking.artifacts import (  # noqa: F401
    CHECKPOINT_DIR,
    SETTINGS_TAG,
    artifact_batch,
    copy_artifacts,
    copy_scores,
    downloaded,
    has_checkpoints,
    load_latest_checkpoint,
    load_model,
    log_checkpoint,
    log_figure,
    log_model,
    log_samples,
)
from pipeline.tracking.code import (  # noqa: F401
    CODE_PATHS,
    CODE_TAG,
    COMMIT_TAG,
    DIRTY_TAG,
    PROJECT_ROOT,
    REPORT_PATHS,
    CodeVersion,
    code_version,
)
from pipeline.tracking.local_files import local_folder, local_path  # noqa: F401
from pipeline.tracking.params import (  # noqa: F401
    log_config,
    normalized_params,
    run_param,
)
from pipeline.tracking.references import (  # noqa: F401
    data_source,
    log_dataset_inputs,
    model_uri,
    resolve_data,
)
from pipeline.tracking.reuse import (  # noqa: F401
    KEY_TAG,
    NOT_IN_KEY,
    StepFailed,
    config_key,
    launch_step,
    reusable_by,
    reusable_run,
    reuse_allowed,
    reuse_or_launch,
    reuse_tags,
    runs_with_key,
    store_key,
)
from pipeline.tracking.runs import (  # noqa: F401
    DRIVER_TAG,
    KIND_TAG,
    PARENT_TAG,
    PROCESS_TAG,
    RUN_ID_PATTERN,
    STALE_REASON,
    STEP_TAG,
    TRAINING_KIND,
    OpenRun,
    child_run,
    children,
    current_experiment_id,
    end_failed,
    fail_stale_runs,
    fail_stale_runs_of,
    finished_runs,
    get_run,
    launched_run_id,
    mark_training_experiment,
    newest_finished,
    process_alive,
    process_tags,
    search_all_runs,
    use_experiment_of,
)
from pipeline.tracking.step import (  # noqa: F401
    SYSTEM_METRICS_INTERVAL_S,
    log_system_metrics_sample,
    step_run,
)
