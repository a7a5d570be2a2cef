"""docs/parameters.md, pipeline/configs, MLproject: the reference of every entry point's parameters is
generated from the configs (name, default, what it takes, as `python -m pipeline STEP --help` prints them)
and MLproject's types; adding or changing a parameter leaves this page stale, and this test fails until
the page reads what `parameters_doc()` writes."""

from __future__ import annotations

import dataclasses
import re

import yaml

from pipeline.configs import STEP_CONFIGS
from tests.conftest import REPO

DOC = REPO / "docs" / "parameters.md"
TABLES = re.compile(r"<!-- parameters tables: generated from pipeline/configs and MLproject -->\n(.*?)\n<!-- end", re.S)


def cell(text: str) -> str:
    """Markdown table cell: a literal `|` escaped."""
    return text.replace("|", "\\|")


def parameters_doc() -> str:
    """One table per entry point, in the order `python -m pipeline --help` lists them."""
    project = yaml.safe_load((REPO / "MLproject").read_text())["entry_points"]
    parts = []
    for step, config in STEP_CONFIGS.items():
        declared = project[step]["parameters"]
        what = config.__doc__.split(":", 1)[1].strip().split("\n\n")[0].replace("\n", " ")
        rows = [f"### `{step}`", "", what, "", "| parameter | type | default | what it takes |", "|---|---|---|---|"]
        for f in dataclasses.fields(config):
            default = "required" if f.default == "" else f"`{f.default}`"
            takes = f.metadata["help"]
            if f.metadata.get("choices"):
                takes += f" (one of: {', '.join(f'`{c}`' for c in f.metadata['choices'])})"
            rows.append(f"| `{f.name}` | {declared[f.name]['type']} | {cell(default)} | {cell(takes)} |")
        parts.append("\n".join(rows))
    return "\n\n".join(parts)


def test_the_parameters_page_is_generated_from_the_configs():
    found = TABLES.search(DOC.read_text())
    assert found, f"{DOC}: no generated parameters tables"
    assert found.group(1) == parameters_doc(), f"docs/parameters.md is out of date; it should read:\n{parameters_doc()}"


def test_a_new_parameter_would_make_the_page_stale(monkeypatch):
    """The check bites: a config with one more field gives another page."""
    from pipeline.configs import TrainConfig
    from pipeline.configs.fields import param

    before = parameters_doc()
    extended = dataclasses.make_dataclass(
        "TrainConfig", [("dummy_knob", int, param(3, "a knob no step has"))], bases=(TrainConfig,), frozen=True
    )
    extended.__doc__ = TrainConfig.__doc__
    monkeypatch.setitem(STEP_CONFIGS, "train", extended)
    project = yaml.safe_load((REPO / "MLproject").read_text())
    project["entry_points"]["train"]["parameters"]["dummy_knob"] = {"type": "float", "default": 3}
    monkeypatch.setattr(yaml, "safe_load", lambda _text: project)
    after = parameters_doc()
    assert after != before and "| `dummy_knob` | float | `3` | a knob no step has |" in after
