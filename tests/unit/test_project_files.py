"""MLproject, conda.yaml, pyproject.toml, .ci/run:
The project's files agree with each other: MLproject with the configs, conda.yaml with
pyproject.toml, and .ci/run with the README's two commands."""

import ast
import dataclasses
import re
import tomllib

import yaml

from pipeline.configs import STEP_CONFIGS
from tests.conftest import REPO


def test_mlproject_lists_the_config_fields_with_the_same_defaults():
    project = yaml.safe_load((REPO / "MLproject").read_text())
    assert project["conda_env"] == "conda.yaml"
    for step, config_class in STEP_CONFIGS.items():
        entry = project["entry_points"][step]
        fields = {f.name: f.default for f in dataclasses.fields(config_class)}
        assert set(entry["parameters"]) == set(fields), step
        for name, spec in entry["parameters"].items():
            if fields[name] == "":  # required: model, source
                assert "default" not in spec, f"{step}.{name} must be required"
                continue
            assert str(spec["default"]) == str(fields[name]), f"{step}.{name}"
            assert f"--{name} {{{name}}}" in entry["command"], f"{step}.{name} not passed on"


def test_conda_env_and_pyproject_list_the_same_dependencies():
    """conda.yaml (what `mlflow run` builds with conda) installs the dependencies and the report's browser check."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    conda = yaml.safe_load((REPO / "conda.yaml").read_text())
    pip_section = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    assert sorted(pip_section) == sorted(project["dependencies"] + project["optional-dependencies"]["browser"])


def test_the_test_extra_installs_what_the_tests_import_and_the_ci_checks():
    """README command 1 installs `.[test]`: the browser check, optuna-dashboard and the lint tools come with it."""
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "vae-study-pipeline[browser,dashboard,lint]" in extras["test"]
    names = {re.split(r"[<>=\[]", requirement)[0] for requirement in extras["test"] + extras["lint"]}
    assert {"pytest", "torchmetrics", "pyyaml", "ruff", "deptry", "import-linter"} <= names


def test_ci_runs_the_readme_commands():
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", readme, flags=re.S)
    install_and_run, run_tests = blocks[0].strip(), blocks[1].strip()
    ci = (REPO / ".ci" / "run").read_text()
    assert install_and_run in ci and run_tests in ci
    checks = "ruff check && ruff format --check && deptry . && lint-imports"
    assert ci.index(install_and_run) < ci.index(checks) < ci.index(run_tests)


def test_the_license_is_apache_2_in_the_file_the_metadata_and_the_readme():
    text = (REPO / "LICENSE").read_text()
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert (
        "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text and "END OF TERMS AND CONDITIONS" in text
    )
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    assert "Licensed under the Apache License 2.0 ([LICENSE](LICENSE))" in (REPO / "README.md").read_text()


def test_the_version_is_the_changelogs_newest_release():
    """CHANGELOG.md (Keep a Changelog) has a release section per version, newest first, after Unreleased."""
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    changelog = (REPO / "CHANGELOG.md").read_text()
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})$", changelog, flags=re.M)
    assert re.search(r"^## \[Unreleased\]$", changelog, flags=re.M)
    assert releases and releases[0][0] == version and version.startswith("0.")
    versions = [tuple(int(part) for part in v.split(".")) for v, _ in releases]
    dates = [date for _, date in releases]
    assert versions == sorted(versions, reverse=True) and dates == sorted(dates, reverse=True)
    assert "pipeline/core/{model,data,scores,judges,evaluation}/" in changelog


def test_each_test_file_is_named_after_what_it_tests_or_names_it_first():
    """tests/unit/test_<module>.py for a module (or package) of that name; otherwise the docstring's first
    line names what the file tests, as paths in the repository, before a colon."""
    code = [REPO / room for room in ("pipeline", "analysis", "benchmarks", ".ci")]
    modules = {path.stem for room in code for path in room.glob("**/*.py")}
    modules |= {path.name for room in code for path in room.glob("**/") if path.is_dir()}
    for test_file in sorted((REPO / "tests").glob("*/test_*.py")):
        if test_file.stem.removeprefix("test_") in modules:
            continue
        first = ast.get_docstring(ast.parse(test_file.read_text()), clean=False).splitlines()[0]
        subjects, colon, _ = first.partition(": ") if ": " in first else first.partition(":")
        assert colon, f"{test_file.relative_to(REPO)}: the first line names no module: {first!r}"
        missing = [path for path in subjects.split(", ") if not (REPO / path).exists()]
        assert not missing, f"{test_file.relative_to(REPO)} names paths that do not exist: {missing}"
