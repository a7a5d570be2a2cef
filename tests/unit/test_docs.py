"""The docs stay honest: in every Markdown file of the repository (the published reports under
analysis/results included), every `mlflow run` / `python -m pipeline` command names an entry point
that exists and only parameters that entry point has, in MLproject and in pipeline/configs/ alike;
every option of `mlflow run` itself is one MLflow knows; every relative link, and every repository
path written in backticks, points to a file or folder of the repository."""

from __future__ import annotations

import re
import shlex
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from pipeline.configs import STEP_CONFIGS
from tests.conftest import REPO

SKIPPED_FOLDERS = {".venv", ".git", "node_modules", ".ruff_cache", ".pytest_cache", "mlruns"}
# Paths the docs name as they will be once the other open branches have merged (issue 21 moves these
# modules, issues 22 and 25 write these pages). The lead removes an entry when its branch has merged.
# the one place outside the repository the docs may name: the team machines' copy of the full datasets
DATA_OUTSIDE = "../shared/data"
TOP_LEVEL = ("pipeline/", "analysis/", "tests/", "benchmarks/", "docs/", ".ci/")
TOP_FILES = {"MLproject", "conda.yaml", "pyproject.toml", "README.md", "CONTRIBUTING.md", "CHANGELOG.md", "LICENSE"}
PLACEHOLDER = r"[A-Z_]+|\.\.\.|<[^>]*>"  # STEP, NAME, ..., <step>: a command pattern, not a command
COMMAND = re.compile(r"(mlflow run\b|python3? -m (?:pipeline|analysis\.report)(?=\s))")


def markdown_files() -> list[Path]:
    return sorted(path for path in REPO.rglob("*.md") if not SKIPPED_FOLDERS & set(path.relative_to(REPO).parts[:-1]))


def entry_points() -> dict[str, set[str]]:
    project = yaml.safe_load((REPO / "MLproject").read_text())
    return {name: set(entry.get("parameters", {})) for name, entry in project["entry_points"].items()}


def mlflow_run_options() -> dict[str, bool]:
    """`mlflow run`'s own options, each with whether it takes a value (from MLflow's click command)."""
    from mlflow.cli import run

    return {opt: not param.is_flag for param in run.params if hasattr(param, "is_flag") for opt in param.opts}


def code_texts(text: str) -> list[str]:
    """Fenced code blocks (continuation lines joined) and inline code spans: where commands are written."""
    found = []
    for block in re.findall(r"```[^\n]*\n(.*?)```", text, flags=re.DOTALL):
        found += re.sub(r"\\\n\s*", " ", block).splitlines()
    outside = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    found += re.findall(r"`([^`\n]+)`", outside)
    return found


def commands(text: str) -> list[list[str]]:
    """Every command line in the code of `text`, as tokens from the command's first word to the end
    of that command (a comment, `&&`, `;` or `|` ends it)."""
    found = []
    for code in code_texts(text):
        for match in COMMAND.finditer(code):
            rest = re.split(r"\s(?:#|&&|;|\|)\s?", code[match.start() :])[0]
            try:
                tokens = shlex.split(rest)
            except ValueError:
                tokens = rest.split()
            found.append(tokens)
    return found


def problems_of_command(tokens: list[str], points: dict[str, set[str]], options: dict[str, bool]) -> list[str]:
    problems = []
    if tokens[:2] == ["mlflow", "run"]:
        entry, given, index = "main", [], 2
        while index < len(tokens):
            token = tokens[index]
            if token in ("-P", "--param-list"):
                given.append(tokens[index + 1].split("=", 1)[0] if index + 1 < len(tokens) else "")
                index += 2
            elif token in ("-e", "--entry-point"):
                entry = tokens[index + 1] if index + 1 < len(tokens) else ""
                index += 2
            elif token.startswith("-"):
                name = token.split("=", 1)[0]
                if name not in options:
                    problems.append(f"`mlflow run` has no option {name}")
                index += 2 if options.get(name) and "=" not in token else 1
            else:
                index += 1
    else:
        module = tokens[2]
        if module == "analysis.report":
            entry, rest = "report", tokens[3:]
        elif len(tokens) > 3:
            entry, rest = tokens[3], tokens[4:]
        else:
            return [f"no step named in {' '.join(tokens)}"]
        given = [token[2:].split("=", 1)[0] for token in rest if token.startswith("--") and token != "--help"]
    if re.fullmatch(PLACEHOLDER, entry):  # `mlflow run . -e NAME -P key=value`: a pattern, not a command
        return problems
    if entry not in points:
        return problems + [f"no entry point {entry!r} in MLproject"]
    if entry not in STEP_CONFIGS:
        return problems + [f"no config for {entry!r} in pipeline/configs/"]
    in_config = {f.name for f in fields(STEP_CONFIGS[entry])}
    for name in given:
        if name not in points[entry]:
            problems.append(f"entry point {entry!r} has no parameter {name!r} in MLproject")
        if name not in in_config:
            problems.append(f"entry point {entry!r} has no parameter {name!r} in pipeline/configs/")
    return problems


def exists(path: Path) -> bool:
    if not path.resolve().is_relative_to(REPO.resolve()):
        return False  # outside the repository: a clone does not have it
    return path.exists()


def link_problems(path: Path, text: str) -> list[str]:
    problems = []
    outside = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    for target in re.findall(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", outside):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL, or an anchor (the report's links into the MLflow UI)
        if not exists(path.parent / target.split("#")[0]):
            problems.append(f"link {target!r} points to nothing in the repository")
    for span in re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.DOTALL)):
        candidate = span.strip().split("::")[0]
        if re.fullmatch(r"\.\./[\w./-]+", candidate) and not candidate.startswith(DATA_OUTSIDE):
            problems.append(f"path `{candidate}` lies outside the repository (a clone does not have it)")
            continue
        if " " in candidate or not (candidate.startswith(TOP_LEVEL) or candidate in TOP_FILES):
            continue
        if not re.fullmatch(r"[\w./-]+", candidate) or "<" in candidate:
            continue
        if not exists(REPO / candidate):
            problems.append(f"path `{candidate}` is not in the repository")
    return problems


FILES = markdown_files()


def test_the_docs_are_found_and_hold_commands():
    names = {path.relative_to(REPO).as_posix() for path in FILES}
    assert {
        "README.md",
        "CONTRIBUTING.md",
        "docs/study.md",
        "docs/evaluation.md",
        "docs/search.md",
        "docs/serving.md",
        "docs/architecture.md",
        "docs/speed.md",
        "docs/results.md",
    } <= names
    readme = commands((REPO / "README.md").read_text())
    assert ["mlflow", "run", ".", "--env-manager", "local"] in readme  # the README's first command
    assert sum(len(commands(path.read_text())) for path in FILES) >= 20


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.relative_to(REPO).as_posix())
def test_every_command_names_an_entry_point_and_its_parameters(path):
    points, options = entry_points(), mlflow_run_options()
    problems = [
        f"{' '.join(tokens)}: {problem}"
        for tokens in commands(path.read_text())
        for problem in problems_of_command(tokens, points, options)
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.relative_to(REPO).as_posix())
def test_every_relative_link_and_path_is_in_the_repository(path):
    problems = link_problems(path, path.read_text())
    assert not problems, "\n".join(problems)


def test_the_checks_catch_what_they_are_for():
    points, options = entry_points(), mlflow_run_options()
    bad = "```\nmlflow run . -e search --env-manager local -P n_trial=3 -P timeout=5\n```\n"
    assert problems_of_command(commands(bad)[0], points, options) == [
        "entry point 'search' has no parameter 'n_trial' in MLproject",
        "entry point 'search' has no parameter 'n_trial' in pipeline/configs/",
    ]
    assert not problems_of_command(commands("`python -m pipeline STEP --help`")[0], points, options)
    assert problems_of_command(commands("`mlflow run . -e serve`")[0], points, options) == [
        "no entry point 'serve' in MLproject"
    ]
    assert problems_of_command(commands("`mlflow run . --env-mgr local`")[0], points, options) == [
        "`mlflow run` has no option --env-mgr"
    ]
    assert problems_of_command(commands("`python -m pipeline train --epoch 2`")[0], points, options) == [
        "entry point 'train' has no parameter 'epoch' in MLproject",
        "entry point 'train' has no parameter 'epoch' in pipeline/configs/",
    ]
    assert not problems_of_command(
        commands("`python -m pipeline train --epochs 2 --data_root data`")[0], points, options
    )
    page = REPO / "docs" / "page.md"
    text = (
        "[study](study.md) [shared](../../shared/DESIGN.md) [x](nothing.md) `pipeline/nope.py` "
        "`../shared/EXPERIMENTS.md` `idx:../shared/data/MNIST/raw` `../shared/data`"
    )
    assert link_problems(page, text) == [
        "link '../../shared/DESIGN.md' points to nothing in the repository",
        "link 'nothing.md' points to nothing in the repository",
        "path `pipeline/nope.py` is not in the repository",
        "path `../shared/EXPERIMENTS.md` lies outside the repository (a clone does not have it)",
    ]
