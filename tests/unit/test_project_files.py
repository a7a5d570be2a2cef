"""The project's files agree with each other: MLproject with the configs, conda.yaml with
pyproject.toml, and .ci/run with the README's two commands."""

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
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    conda = yaml.safe_load((REPO / "conda.yaml").read_text())
    pip_section = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    assert sorted(pip_section) == sorted(pyproject)


def test_ci_runs_the_readme_commands():
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", readme, flags=re.S)
    install_and_run, run_tests = blocks[0].strip(), blocks[1].strip()
    ci = (REPO / ".ci" / "run").read_text()
    assert install_and_run in ci and run_tests in ci
