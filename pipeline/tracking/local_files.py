"""Where the files the pipeline writes by default go: the study's SQLite or journal file and its
optuna-artifacts/ folder, and the report.

`mlflow run` runs every step with the project folder as its working directory, wherever the user started
it, but it hands the steps the tracking URI it resolved there: with MLflow's default, `mlflow.db` in the
folder where `mlflow run` was started. So the files go beside the local tracking database (where the user
ran the command, or where MLFLOW_TRACKING_URI puts the database); with a tracking server there is no local
database, and they go to the working directory (under `mlflow run`, the project folder, where .gitignore
lists them). See docs/reuse.md.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

import mlflow


def local_folder() -> Path:
    """The folder of the local tracking store (SQLite file or ./mlruns), else the working directory; absolute."""
    uri = mlflow.get_tracking_uri()
    parsed = urlparse(uri)
    if uri.startswith("sqlite:///"):
        store = Path(unquote(uri[len("sqlite:///") :].split("?")[0]))
    elif parsed.scheme == "file":
        store = Path(url2pathname(parsed.path))
    elif not parsed.scheme or len(parsed.scheme) == 1:  # a plain path (a Windows drive letter is no scheme)
        store = Path(uri)
    else:
        return Path.cwd()
    return store.expanduser().resolve().parent


def local_path(path: str | Path) -> Path:
    """`path` made absolute: as given when absolute (or `~/...`), else inside local_folder()."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else local_folder() / path
