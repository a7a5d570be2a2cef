"""README.md, CONTRIBUTING.md, docs/, tests/docs_examples.py:
The docs stay honest: in every Markdown file of the repository (the published reports under
analysis/results included), every `mlflow run` / `python -m pipeline` command names an entry point
that exists and only parameters that entry point has, in MLproject and in pipeline/configs/ alike;
every option of `mlflow run` itself is one MLflow knows; every relative link, and every repository
path written in backticks, points to a file or folder of the repository."""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from pipeline.configs import STEP_CONFIGS
from tests.conftest import REPO
from tests.docs_examples import blocks, example

SKIPPED_FOLDERS = {".venv", ".git", "node_modules", ".ruff_cache", ".pytest_cache", "mlruns"}
# the one place outside the repository the docs may name: the team machines' copy of the full datasets
DATA_OUTSIDE = "../shared/data"
TOP_LEVEL = ("pipeline/", "analysis/", "tests/", "benchmarks/", "docs/", ".ci/")
TOP_FILES = {"MLproject", "conda.yaml", "pyproject.toml", "README.md", "CONTRIBUTING.md", "CHANGELOG.md", "LICENSE"}
PLACEHOLDER = r"[A-Z_]+|\.\.\.|<[^>]*>"  # STEP, NAME, ..., <step>: a command pattern, not a command
COMMAND = re.compile(r"(mlflow run\b|python3? -m (?:pipeline|analysis\.report)(?=\s))")


TEMPLATES = REPO / "analysis" / "templates"  # Jinja2 templates of the report pages: code, not docs


def markdown_files() -> list[Path]:
    return sorted(
        path
        for path in REPO.rglob("*.md")
        if not SKIPPED_FOLDERS & set(path.relative_to(REPO).parts[:-1]) and not path.is_relative_to(TEMPLATES)
    )


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
        "docs/team.md",
        "docs/reuse.md",
        "CHANGELOG.md",
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


# The pages a reader runs commands from: each command block there is an example a test runs, or is
# marked as one that cannot run on a test machine (tests/docs_examples.py).
PAGES = ["README.md", "CONTRIBUTING.md", *sorted(f"docs/{path.name}" for path in (REPO / "docs").glob("*.md"))]
COMMAND_LANGUAGES = {"bash", "sh", "console", "shell"}
EXAMPLE_CALL = re.compile(r"""example\(\s*["']([^"']+)["']\s*,\s*["']([\w-]+)["']\s*\)""")


def examples_read_by_tests() -> set[tuple[str, str]]:
    """(page, name) of every `example("<page>", "<name>")` call in a test file under tests/."""
    return {
        (page, name) for path in (REPO / "tests").rglob("*.py") for page, name in EXAMPLE_CALL.findall(path.read_text())
    }


@pytest.mark.parametrize("page", PAGES)
def test_every_block_has_a_language_and_every_command_block_a_marker(page):
    problems = []
    for block in blocks(page):
        first = block.body.strip().splitlines()[0] if block.body.strip() else ""
        if not block.lang:
            problems.append(f"a block without a language tag: {first!r}")
        elif block.lang in COMMAND_LANGUAGES and not (block.name or block.reason):
            problems.append(
                f"a {block.lang} block with neither <!-- example: NAME --> nor <!-- not run here: ... -->: {first!r}"
            )
    assert not problems, "\n".join(problems)


def test_every_named_example_is_read_by_a_test():
    named = {(page, block.name) for page in PAGES for block in blocks(page) if block.name}
    assert {("README.md", "install-and-run"), ("README.md", "run-tests")} <= named
    unread = sorted(named - examples_read_by_tests())
    assert not unread, "examples no test reads: " + ", ".join(f'example("{p}", "{n}")' for p, n in unread)


def test_ci_runs_the_readme_examples_verbatim_install_first():
    ci = (REPO / ".ci" / "run").read_text()
    install_and_run = example("README.md", "install-and-run").strip()
    run_tests = example("README.md", "run-tests").strip()
    assert install_and_run in ci and run_tests in ci
    assert ci.index(install_and_run) < ci.index(run_tests)


def test_the_readme_opens_with_requirements_and_the_two_commands_before_the_answer():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    first_table = readme.index("\n| ")
    python = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert python.startswith(">=")
    assert f"Python {python[2:]} or later" in readme[:first_table]
    for needed in (
        "A CPU is enough",
        "`device=auto`",
        "<!-- example: install-and-run -->",
        "<!-- example: run-tests -->",
    ):
        assert needed in readme[:first_table], needed
    assert readme.index("## The answer") > readme.index("<!-- example: run-tests -->")


def test_every_finding_in_the_readme_answer_is_defined_there():
    readme = (REPO / "README.md").read_text()
    shown = set(re.findall(r"^\| (F\d|G|H) \| \*\*", readme, flags=re.M))
    defined = set(re.findall(r"^- \*\*(F\d|G|H)\*\*: ", readme, flags=re.M))
    assert shown == {f"F{i}" for i in range(1, 9)} | {"G", "H"}
    assert shown <= defined


# Reference pages, not logs: no first person, no "this pass", no internal issue numbers.
LOG_WORDS = re.compile(r"\b(I|we) (did|found|measured|left)|this pass|issue [0-9]+", re.I)
# A password in a URL (scheme://USER:PASSWORD@HOST): `mlflow run` logs every -P value as a param.
PASSWORD_IN_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:[^@\s/]+@", re.I)
READER_FILES = [
    path for path in FILES if path.relative_to(REPO).as_posix() in {*PAGES, "CHANGELOG.md", "analysis/README.md"}
]


@pytest.mark.parametrize("path", READER_FILES, ids=lambda path: path.relative_to(REPO).as_posix())
def test_the_docs_are_reference_pages_without_secrets(path):
    text = path.read_text()
    assert not LOG_WORDS.findall(text), [m.group(0) for m in LOG_WORDS.finditer(text)]
    assert not PASSWORD_IN_URL.search(text), PASSWORD_IN_URL.search(text)


def test_the_reference_checks_catch_what_they_are_for():
    assert LOG_WORDS.search("a figure I measured") and LOG_WORDS.search("see issue 24")
    assert LOG_WORDS.search("in this pass") and not LOG_WORDS.search("a measured figure")
    assert PASSWORD_IN_URL.search("-P storage=postgresql://alice:secret@db:5432/optuna")
    assert not PASSWORD_IN_URL.search("-P storage=postgresql://alice@db:5432/optuna")
    assert not PASSWORD_IN_URL.search("http://127.0.0.1:5000/#/experiments/3")
    assert EXAMPLE_CALL.findall("body = example('docs/page.md', 'a-name')") == [("docs/page.md", "a-name")]
