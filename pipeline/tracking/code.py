"""The code version a step's run carries: a content hash of the files that decide the step's result, the git
commit, and whether those files differ from it (dirty).

The version is the hash of (path, git blob id) of exactly those files, so a commit that touches only the
README, docs or tests, an untracked notes file or a search's `optuna.db` beside the code change nothing,
and a tree whose files equal a commit's has that commit's version. It is read from git at every step's
start-up (three quick git commands, once per process); outside a git checkout the files are hashed the way
git hashes them, and the tree counts as dirty, since no commit vouches for it. See docs/reuse.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
from pathlib import Path

CODE_TAG = "pipeline.code_version"
DIRTY_TAG = "pipeline.code_dirty"
COMMIT_TAG = "pipeline.code_commit"
PROJECT_ROOT = Path(__file__).resolve().parents[2]

# The files that decide a step's result, relative to the project root: every change to them is a new
# code version, and every uncommitted change (or untracked file under them) makes the tree dirty.
CODE_PATHS = (
    "pipeline",  # the steps, the core, tracking, the search: all the code a step runs
    "MLproject",  # the entry points' commands and parameter defaults
    "conda.yaml",  # the dependency pins of the environment `mlflow run` builds for the steps
)
# Left out on purpose: pyproject.toml (its dependency list is kept equal to conda.yaml's by
# tests/unit/test_project_files.py, and the rest configures ruff, pytest and import-linter), README.md,
# docs/, tests/, benchmarks/, .ci/, .gitignore, and anything untracked outside pipeline/.
REPORT_PATHS = (*CODE_PATHS, "analysis")  # the report step also runs analysis/: a new layout is a new report only
# What the pipeline writes into analysis/ (the published reports) is its output, not its code: committing a
# regenerated report changes no version and leaves no tree dirty. A git pathspec, also read by _from_files.
OUTPUT_PATHS = ("analysis/results",)
UNCOMMITTED = "not a git checkout"


@dataclasses.dataclass(frozen=True)
class CodeVersion:
    version: str  # `code:` and 16 hex digits of the content hash
    dirty: bool  # the files differ from `commit` (or there is no commit)
    commit: str  # the git commit HEAD, or "" outside a git checkout
    changed: tuple[str, ...] = ()  # what makes it dirty: the first few changed paths, or UNCOMMITTED

    def tags(self) -> dict[str, str]:
        return {CODE_TAG: self.version, DIRTY_TAG: str(self.dirty).lower(), COMMIT_TAG: self.commit or "none"}

    def described(self) -> str:
        """One line for people: the version, the commit and what differs from it."""
        if not self.commit:  # not a git checkout, or no commit yet
            return f"{self.version} ({', '.join(self.changed)})"
        differs = f", changed: {', '.join(self.changed)}" if self.dirty else ""
        return f"{self.version} (commit {self.commit[:12]}{differs})"


_VERSIONS: dict[tuple[str, ...], CodeVersion] = {}


def paths_of(step: str | None) -> tuple[str, ...]:
    return REPORT_PATHS if step in ("report", "eye") else CODE_PATHS  # eye reads the study through analysis/


def code_version(step: str | None = None) -> CodeVersion:
    """The code version of `step` (every step has CODE_PATHS' version; `report` and `eye` also hash analysis/),
    computed once per process."""
    paths = paths_of(step)
    if paths not in _VERSIONS:
        _VERSIONS[paths] = version_of(PROJECT_ROOT, paths)
    return _VERSIONS[paths]


def version_of(root: Path, paths: tuple[str, ...] = CODE_PATHS) -> CodeVersion:
    """The code version of `paths` under the project folder `root`, from git, else from the files."""
    return _from_git(root, paths) or _from_files(root, paths)


def _pathspecs(paths: tuple[str, ...]) -> list[str]:
    """`paths` for git, with the pipeline's own output under them excluded."""
    return [*paths, *(f":(exclude){out}" for out in OUTPUT_PATHS if any(out.startswith(f"{p}/") for p in paths))]


def _is_output(relative: str) -> bool:
    return any(relative == out or relative.startswith(f"{out}/") for out in OUTPUT_PATHS)


def _content_hash(blobs: list[tuple[str, str]]) -> str:
    sha = hashlib.sha256()
    for path, blob in sorted(blobs):
        sha.update(f"{path}\0{blob}\n".encode())
    return f"code:{sha.hexdigest()[:16]}"


def _from_git(root: Path, paths: tuple[str, ...]) -> CodeVersion | None:
    """The version from git's index and status, or None when `root` is not in a git checkout (or git is missing)."""

    def git(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        # --no-optional-locks: `status` must not take the index lock other steps' `git status` may hold.
        return subprocess.run(
            ["git", "--no-optional-locks", *args],
            cwd=root,
            input=stdin,
            capture_output=True,
            check=False,
            text=True,
            timeout=60,
        )

    try:
        status = git("status", "--porcelain", "-z", "--untracked-files=all", "--", *_pathspecs(paths))
        if status.returncode != 0:
            return None
        head = git("rev-parse", "--verify", "--quiet", "HEAD")
        commit = head.stdout.strip() if head.returncode == 0 else ""
        changed = _status_paths(status.stdout)
        if not changed and commit:  # the index is the commit: its blob ids are the files' hashes
            listed = git("ls-files", "-s", "-z", "--", *_pathspecs(paths)).stdout.split("\0")
            blobs = [(name, entry.split()[1]) for entry, _, name in (e.partition("\t") for e in listed if e)]
            return CodeVersion(_content_hash(blobs), False, commit)
        listed = git(
            "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", *_pathspecs(paths)
        ).stdout.split("\0")
        files = sorted({name for name in listed if name and (root / name).is_file()})
        ids = git("hash-object", "--stdin-paths", stdin="".join(f"{name}\n" for name in files)).stdout.split()
        if len(ids) != len(files):
            return None
        return CodeVersion(_content_hash(list(zip(files, ids))), True, commit, tuple(changed[:5]) or ("no commit",))
    except (OSError, subprocess.SubprocessError):
        return None


def _status_paths(porcelain: str) -> list[str]:
    """The paths of `git status --porcelain -z` (a rename's original path skipped)."""
    entries, paths = porcelain.split("\0"), []
    skip = False
    for entry in entries:
        if skip or len(entry) < 4:
            skip = False
            continue
        paths.append(entry[3:])
        skip = entry[0] in "RC"
    return paths


def _from_files(root: Path, paths: tuple[str, ...]) -> CodeVersion:
    """Outside git: the same content hash, each file hashed as a git blob (so a copy of a commit's files has
    that commit's version), bytecode caches left out; dirty, as no commit vouches for the files."""
    blobs = []
    for name in paths:
        top = root / name
        for path in sorted([top] if top.is_file() else top.rglob("*")):
            relative = path.relative_to(root).as_posix()
            if (
                path.is_file()
                and "__pycache__" not in path.parts
                and path.suffix != ".pyc"
                and not _is_output(relative)
            ):
                data = path.read_bytes()
                blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # git's blob id
                blobs.append((relative, blob))
    return CodeVersion(_content_hash(blobs), True, "", (UNCOMMITTED,))
