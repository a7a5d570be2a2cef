"""Where a study lives: SQLite beside the MLflow database (one worker), a journal file (several workers on
one machine), or PostgreSQL (several machines); reachability is checked before any run opens."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import warnings
from contextlib import contextmanager
from pathlib import Path

import optuna
import sqlalchemy
from optuna.storages.journal import JournalFileBackend, JournalStorage
from sqlalchemy.engine import make_url

from pipeline.configs import SearchConfig
from pipeline.errors import InputError
from pipeline.tracking.local_files import local_folder


@dataclasses.dataclass(frozen=True)
class Storage:
    """An Optuna storage: kind (sqlite | postgresql | journal) and its URL or journal file path."""

    kind: str
    url: str

    @property
    def shown(self) -> str:
        """The storage as logged and printed: a PostgreSQL password is hidden."""
        if self.kind == "journal":
            return f"journal:{self.url}"
        if self.kind == "postgresql":
            return make_url(self.url).render_as_string(hide_password=True)
        return self.url

    @property
    def dashboard(self) -> str:
        """What optuna-dashboard takes to show this storage."""
        return self.url


def parse_storage(text: str) -> Storage:
    if text.startswith("journal:"):
        return Storage("journal", str(Path(text[len("journal:") :]).expanduser()))
    if text.startswith("sqlite:///"):
        return Storage("sqlite", text)
    return Storage("postgresql", text)


def storage_folder() -> Path:
    """Beside the local MLflow database (where `mlflow run` was started), else the working directory."""
    return local_folder()


def resolve_storage(config: SearchConfig) -> Storage:
    """The storage the study lives in, checked reachable (an InputError naming `storage` if not).

    auto: a study of this name already in the journal file or the SQLite file beside the MLflow
    database is continued there; a new one goes to SQLite for one worker, to the journal for
    several (SQLite serves one writer at a time).
    """
    if config.storage != "auto":
        storage = parse_storage(config.storage)
    else:
        folder = storage_folder()
        journal, sqlite = folder / "optuna-journal.log", folder / "optuna.db"
        storage = Storage("journal", str(journal)) if config.n_workers > 1 else Storage("sqlite", f"sqlite:///{sqlite}")
        for path, candidate in (
            (journal, Storage("journal", str(journal))),
            (sqlite, Storage("sqlite", f"sqlite:///{sqlite}")),
        ):
            if path.exists() and config.study_name in _study_names(candidate):
                storage = candidate
                break
    check_reachable(storage)
    return storage


def check_reachable(storage: Storage) -> None:
    if storage.kind in ("journal", "sqlite"):
        path = Path(storage.url if storage.kind == "journal" else storage.url[len("sqlite:///") :])
        folder = path.expanduser().resolve().parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise InputError(
                f"parameter 'storage': got {storage.shown!r}; its folder {folder} does not exist or is "
                "not writable; allowed: a file in an existing, writable folder"
            )
        return
    try:
        engine = sqlalchemy.create_engine(
            storage.url, poolclass=sqlalchemy.pool.NullPool, connect_args={"connect_timeout": 5}
        )
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
        engine.dispose()
    except ModuleNotFoundError as error:
        raise InputError(
            f"parameter 'storage': {storage.shown} needs a PostgreSQL driver ({error}); "
            "install it with `pip install 'psycopg[binary]'` (SQLAlchemy's default driver for postgresql://)"
        ) from None
    except Exception as error:  # OperationalError: refused, unknown host, no such database, bad password
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(
            f"parameter 'storage': cannot connect to {storage.shown} ({first_line}); allowed: a "
            "reachable PostgreSQL database (postgresql://USER@HOST:PORT/DB)"
        ) from None


def _study_names(storage: Storage) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return optuna.study.get_all_study_names(open_storage(storage))


def open_storage(storage: Storage, heartbeat: str | None = None, on_stale_trial=None):
    """Optuna's storage object. With `heartbeat` ("INTERVAL,GRACE" seconds, the search's `heartbeat`), an
    RDB storage records the heartbeats of the trials `study.optimize` runs, and fails a trial silent for
    GRACE seconds, calling `on_stale_trial(study, trial)` (pipeline/search/recovery.py). A journal file
    has no heartbeats: a dead worker's trials are recovered by the search that started it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if storage.kind == "journal":
            return JournalStorage(JournalFileBackend(storage.url))
        options = {}
        if heartbeat:
            interval, grace = (int(seconds) for seconds in heartbeat.split(","))
            options = {
                "heartbeat_interval": interval,
                "grace_period": grace,
                "heartbeat_stale_trial_callback": on_stale_trial,
            }
        if storage.kind == "sqlite":
            return optuna.storages.RDBStorage(storage.url, engine_kwargs={"connect_args": {"timeout": 60}}, **options)
        with advisory_lock(storage, "optuna-schema"):  # several machines creating the tables at once
            return optuna.storages.RDBStorage(storage.url, engine_kwargs={"pool_pre_ping": True}, **options)


@contextmanager
def advisory_lock(storage: Storage, name: str):
    """A PostgreSQL advisory lock (every machine that reaches the database), held while in the block
    and released by the server if this process dies. A no-op for other storages."""
    if storage.kind != "postgresql":
        yield
        return
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    engine = sqlalchemy.create_engine(storage.url, poolclass=sqlalchemy.pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": key})
            try:
                yield
            finally:
                connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    finally:
        engine.dispose()
