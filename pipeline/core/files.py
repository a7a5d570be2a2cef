"""Writing files so that nothing half-written is ever left where a reader looks."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from pipeline.errors import bad_parameter


@contextmanager
def atomic_path(path: Path):
    """Yield a temporary path in the same folder; on success it replaces `path`, on error it is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def writable_folder(parameter: str, value: str, path: Path) -> Path:
    """`path` when it is a folder, or can be made one, that can be written; else an InputError naming
    `parameter`. Creates nothing: input refused before a step starts leaves nothing behind."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        problem = f"{existing} is a file"
    elif not os.access(existing, os.W_OK | os.X_OK):
        problem = f"{existing} cannot be written"
    else:
        return path
    raise bad_parameter(parameter, value, f"a folder that exists or can be created, and can be written ({problem})")
