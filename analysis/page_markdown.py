"""The report as Markdown, with its images as PNG files under images/ beside it: the same content as
the HTML page (analysis/page_html.py)."""

from __future__ import annotations

import json

from analysis.dispute_panels import PANELS_NOTE
from analysis.page import (
    APPENDIX_NOTE,
    COLUMN_NAMES,
    IMAGE_FOLDER,
    SEPARATE_SETTINGS,
    TABLE_NOTE,
    Content,
    Image,
    experiment_cells,
    model_value,
    real_line,
)
from analysis.tables import HEADLINE, MODEL_METRICS, SAMPLER_METRICS, Table
from pipeline.core.scores.spread import NUMBERS_RULE, spread_text


def _md(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_row(cells) -> str:
    return "| " + " | ".join(cells) + " |"


def _md_metrics(table: Table, columns: tuple[str, ...], model_columns: tuple[str, ...]) -> list[str]:
    names = [COLUMN_NAMES.get(c, c) for c in (*columns, *model_columns)]
    lines = [_md_row(["experiment", "cell", "sampler", *names]), "|" + " --- |" * 3 + " ---: |" * len(names)]
    for group in table.by_cell():
        for index, row in enumerate(group):
            name, cell, sampler = (_md(text) for text in experiment_cells(row))
            cells = [f"**{name}**" if row.study_id else name, cell, sampler]
            for column in columns:
                text = _md(spread_text(row.scores[column]))
                cells.append(f"**{text}** ★" if row.name in table.best.get(column, set()) else text)
            cells += [_md(model_value(group, c)) if index == 0 else "" for c in model_columns]
            lines.append(_md_row(cells))
    return lines


def _md_models(table: Table) -> list[str]:
    lines = [_md_row(["model cell", "trainings", *MODEL_METRICS]), "| --- |" + " ---: |" * (1 + len(MODEL_METRICS))]
    lines += [
        _md_row(
            [
                _md(group[0].experiment["cell"]),
                str(len(group[0].seeds)),
                *(_md(model_value(group, c)) for c in MODEL_METRICS),
            ]
        )
        for group in table.by_cell()
    ]
    return lines


def _md_image(image: Image) -> str:
    return f"![{_md(image.alt)}]({IMAGE_FOLDER}/{image.name})"


def render_markdown(content: Content) -> str:
    out = [f"# {content.title}", "", content.setup, ""]
    out += [content.convergence if content.converged else f"> **{content.convergence}**", ""]
    out += [_md_row(["finding", "the write-up says", "verdict", "decided by"]), "| --- | --- | --- | --- |"]
    out += [
        _md_row([f"**{v.finding}**", _md(v.short_claim), f"**{_md(v.word)}**", _md(v.deciding_text())])
        for v in content.verdicts
    ]
    out += ["", content.verdict_key, ""]
    if content.disputes:
        out += ["**Dominant digits and the judges' disagreement** (what the table cannot hold):", ""]
        out += [f"- {_md(line)}" for line in content.disputes] + [""]
    out += ["## Samples", ""]
    if content.samples is not None:
        out += [_md_image(content.samples), ""]
    out += [content.samples_note, ""] + [f"- {_md(heading)}" for heading in content.sample_headings] + [""]
    if content.dispute_panels:
        out += ["### The digits the judges dispute", "", PANELS_NOTE, ""]
        out += [f"{_md_image(i)}\n\n*{_md(i.caption)}*\n" for i in content.dispute_panels]
    out += [
        "## The experiments and the findings",
        "",
        "| experiment | loss | forward pass | sampler |",
        "| --- | --- | --- | --- |",
    ]
    out += [_md_row(_md(v) for v in row) for row in content.experiments]
    out += ["", "| finding | the write-up's claim |", "| --- | --- |"]
    out += [_md_row([v.finding, _md(v.claim)]) for v in content.verdicts]
    out += ["", "## Metrics", "", f"{NUMBERS_RULE} {TABLE_NOTE}", ""]
    if len(content.tables) > 1:
        out += [f"> {SEPARATE_SETTINGS}", ""]
    if not content.tables:
        out += ["No evaluate run of this study is on the server: nothing to tabulate.", ""]
    for table, label in zip(content.tables, content.table_labels):
        if len(content.tables) > 1:
            out += [f"### {label} (see Provenance)", ""]
        out += _md_metrics(table, HEADLINE[:-1], HEADLINE[-1:]) + [""]
        if real := real_line(table):
            out += [f"Real data through the same code: {real}", ""]
    out += [
        "## Verdicts part by part",
        "",
        "| finding | verdict | measured parts and their numbers |",
        "| --- | --- | --- |",
    ]
    out += [
        _md_row([f"**{v.finding}**", _md(v.word), "<br>".join(_md(f"{mark} {text}") for mark, text in v.lines())])
        for v in content.verdicts
    ]
    out += ["", content.rules, ""]
    out += [
        "## Loss curves",
        "",
        _md_image(content.loss_curves) if content.loss_curves else "No loss history logged.",
        "",
    ]
    out += ["## The latent space", "", content.latent_note, ""]
    for image in (content.latent, content.interpolation):
        if image is not None:
            out += [_md_image(image), "", f"*{image.caption}*", ""]
    out += ["## Provenance", "", "| | |", "| --- | --- |"]
    out += [_md_row([_md(label), _md(value)]) for label, value in content.provenance]
    versions = any(version for _, _, version, _, _, _ in content.runs)
    header = [
        "step",
        "what",
        *(["code version"] if versions else []),
        "status",
        "convergence (validation loss)",
        "run (MLflow UI)",
    ]
    out += ["", "### Runs", "", _md_row(header), "|" + " --- |" * len(header)]
    out += [
        _md_row(
            [
                _md(step),
                _md(what),
                *([_md(version)] if versions else []),
                _md(status),
                _md(state),
                f"[{link.label}]({link.href})",
            ]
        )
        for step, what, version, status, state, link in content.runs
    ]
    out += ["", "## Appendix: every score", "", APPENDIX_NOTE, ""]
    for table, label in zip(content.tables, content.table_labels):
        if len(content.tables) > 1:
            out += [f"### {label}", ""]
        out += _md_metrics(table, SAMPLER_METRICS, ()) + ["", *_md_models(table), ""]
    out += ["### Preset and settings", "", "```json", json.dumps(content.settings_json, indent=2), "```", ""]
    return "\n".join(out)
