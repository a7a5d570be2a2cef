"""The report's self-contained HTML page: images as data: URIs, inline CSS, no script, nothing fetched.
It lays out a `page.Content`; analysis/page_markdown.py lays out the same content as Markdown."""

from __future__ import annotations

import html
import json

from analysis.dispute_panels import PANELS_NOTE
from analysis.page import (
    APPENDIX_NOTE,
    COLUMN_NAMES,
    SEPARATE_SETTINGS,
    TABLE_NOTE,
    Content,
    Image,
    direction_text,
    experiment_cells,
    model_value,
    real_line,
)
from analysis.tables import HEADLINE, MODEL_METRICS, SAMPLER_METRICS, Table
from pipeline.core.scores.spread import NUMBERS_RULE, spread_text

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:16px auto;max-width:1360px;color:#1b1b1b;
line-height:1.4;padding:0 16px}
h1{font-size:1.45em;margin:0.3em 0}h2{margin-top:1.8em;border-bottom:1px solid #ccc}h3{font-size:1.05em}
p{margin:0.35em 0}
table{border-collapse:collapse;font-size:12px;margin:8px 0}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:right;white-space:nowrap}
th{background:#f3f3f3}td.name,th.name{text-align:left}
tr.study td.name{font-weight:bold;background:#fff6d6}td.wrap{white-space:normal}td.best{background:#d9f2d9;font-weight:bold}
.scroll{overflow-x:auto}.note{color:#555;font-size:0.9em}.warn{background:#fff0f0;border-left:4px solid #c33;padding:4px 10px}
.ok{border-left:4px solid #2e8b57;padding:2px 10px}.setup{border-left:4px solid #999;padding:2px 10px}
figure{margin:0;border:1px solid #e3e3e3;padding:6px}figure img{width:100%;height:auto}
figcaption{font-size:0.85em;color:#444}img.wide{max-width:100%;height:auto}
table.verdicts{font-size:13px;width:100%}table.verdicts td{vertical-align:top}
td.word.holds{color:#2e8b57}td.word.contradicted{color:#c33}td.word.inconclusive{color:#a67400}
.word{font-weight:bold}code{font-size:0.9em}ul.disputes{margin:0.3em 0;font-size:0.9em}
pre{background:#f7f7f7;padding:8px;overflow-x:auto;font-size:12px}
"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _verdict_css(word: str) -> str:
    return "holds" if word.startswith("holds") else "contradicted" if word == "contradicted" else "inconclusive"


def _img(image: Image, css: str = "") -> str:
    return f"<img{css} src='{image.data_uri()}' alt='{_e(image.alt)}'>"


WIDE = " class='wide'"


def _html_verdicts(content: Content) -> list[str]:
    out = [
        (
            "<table class='verdicts' id='verdict-table'><thead><tr><th class='name'>finding</th>"
            "<th class='name'>the write-up says</th><th class='name'>verdict</th>"
            "<th class='name'>decided by</th></tr></thead><tbody>"
        )
    ]
    for verdict in content.verdicts:
        out.append(
            f"<tr data-finding='{verdict.finding}'><td class='name'><b>{verdict.finding}</b></td>"
            f"<td class='name wrap'>{_e(verdict.short_claim)}</td>"
            f"<td class='name word {_verdict_css(verdict.outcome)}'>{_e(verdict.word)}</td>"
            f"<td class='name wrap'>{_e(verdict.deciding_text())}</td></tr>"
        )
    out.append("</tbody></table>")
    out.append(f"<p class='note'>{_e(content.verdict_key)}</p>")
    if content.disputes:
        out.append(
            "<p class='note' id='disputes'><b>Dominant digits and the judges' disagreement</b> "
            "(what the table cannot hold):</p><ul class='disputes'>"
        )
        out += [f"<li>{_e(line)}</li>" for line in content.disputes]
        out.append("</ul>")
    return out


def _html_metrics(table: Table, columns: tuple[str, ...], model_columns: tuple[str, ...], label: str) -> str:
    head = ["<th class='name'>experiment</th><th class='name'>cell</th><th class='name'>sampler</th>"]
    head += [
        f"<th title='{_e(direction_text(c))}'>{_e(COLUMN_NAMES.get(c, c))}</th>" for c in (*columns, *model_columns)
    ]
    lines = [
        (
            f"<div class='scroll'><table class='metrics' data-settings='{_e(table.settings)}' data-label='{_e(label)}'>"
            f"<thead><tr>{''.join(head)}</tr></thead><tbody>"
        )
    ]
    for group in table.by_cell():
        for index, row in enumerate(group):
            cells = [f"<td class='name'>{_e(text)}</td>" for text in experiment_cells(row)]
            for column in columns:
                best = row.name in table.best.get(column, set())
                text = spread_text(row.scores[column]) + (" ★" if best else "")
                css = " class='best'" if best else ""
                cells.append(f"<td{css} data-metric='{column}'>{_e(text)}</td>")
            if index == 0:  # the model's own metrics: once per model cell
                cells += [
                    f"<td rowspan='{len(group)}' data-metric='{column}'>{_e(model_value(group, column))}</td>"
                    for column in model_columns
                ]
            css = " class='study'" if row.study_id else ""
            lines.append(f"<tr{css} data-experiment='{_e(row.name)}'>{''.join(cells)}</tr>")
    lines.append("</tbody></table></div>")
    return "\n".join(lines)


def _html_models(table: Table) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in MODEL_METRICS)
    lines = [
        f"<table class='models'><thead><tr><th class='name'>model cell</th><th>trainings</th>{head}</tr></thead><tbody>"
    ]
    for group in table.by_cell():
        values = "".join(f"<td data-metric='{c}'>{_e(model_value(group, c))}</td>" for c in MODEL_METRICS)
        lines.append(
            f"<tr data-cell='{_e(group[0].experiment['cell'])}'><td class='name'>{_e(group[0].experiment['cell'])}"
            f"</td><td>{len(group[0].seeds)}</td>{values}</tr>"
        )
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _heading(label: str, count: int) -> str:
    return f"<h3>{_e(label)} (see Provenance)</h3>" if count > 1 else ""


def render_html(content: Content) -> str:
    out = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>{_e(content.title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_e(content.title)}</h1>",
        f"<p class='setup' id='setup'>{_e(content.setup)}</p>",
    ]
    if content.converged:
        out.append(f"<p class='ok' id='convergence'>{_e(content.convergence)}</p>")
    else:
        out.append(f"<p class='warn' id='convergence-warning'><b>{_e(content.convergence)}</b></p>")
    out += _html_verdicts(content)

    out.append("<h2 id='samples'>Samples</h2>")
    if content.samples is not None:
        out.append(f"<figure>{_img(content.samples, WIDE)}<figcaption>{_e(content.samples_note)}<ul>")
        out += [f"<li>{_e(heading)}</li>" for heading in content.sample_headings]
        out.append("</ul></figcaption></figure>")
    else:
        out.append(f"<p class='note'>{_e(content.samples_note)}</p>")
    if content.dispute_panels:
        out.append(f"<h3 id='disputed-digits'>The digits the judges dispute</h3><p class='note'>{_e(PANELS_NOTE)}</p>")
        out += [
            f"<figure>{_img(i, WIDE)}<figcaption>{_e(i.caption)}</figcaption></figure>" for i in content.dispute_panels
        ]

    out.append("<h2 id='study'>The experiments and the findings</h2>")
    out.append(
        "<table class='experiments'><thead><tr><th class='name'>experiment</th><th class='name'>loss</th>"
        "<th class='name'>forward pass</th><th class='name'>sampler</th></tr></thead><tbody>"
    )
    out += ["<tr>" + "".join(f"<td class='name'>{_e(v)}</td>" for v in row) + "</tr>" for row in content.experiments]
    out.append(
        "</tbody></table><table class='findings'><thead><tr><th class='name'>finding</th>"
        "<th class='name'>the write-up's claim</th></tr></thead><tbody>"
    )
    out += [
        f"<tr><td class='name'>{v.finding}</td><td class='name wrap'>{_e(v.claim)}</td></tr>" for v in content.verdicts
    ]
    out.append("</tbody></table>")

    out.append("<h2 id='metrics'>Metrics</h2>")
    out.append(f"<p class='note'>{_e(NUMBERS_RULE)} {_e(TABLE_NOTE)}</p>")
    if len(content.tables) > 1:
        out.append(f"<p class='warn'>{_e(SEPARATE_SETTINGS)}</p>")
    if not content.tables:
        out.append("<p class='warn'>No evaluate run of this study is on the server: nothing to tabulate.</p>")
    for table, label in zip(content.tables, content.table_labels):
        out.append(_heading(label, len(content.tables)))
        out.append(_html_metrics(table, HEADLINE[:-1], HEADLINE[-1:], label))
        if real := real_line(table):
            out.append(f"<p class='note'>Real data through the same code: {_e(real)}</p>")

    out.append("<h2 id='parts'>Verdicts part by part</h2>")
    out.append(
        "<table class='parts'><thead><tr><th class='name'>finding</th><th class='name'>verdict</th>"
        "<th class='name'>measured parts and their numbers</th></tr></thead><tbody>"
    )
    for verdict in content.verdicts:
        lines = "<br>".join(f"{_e(mark)} {_e(text)}" for mark, text in verdict.lines())
        out.append(
            f"<tr id='{verdict.finding}'><td class='name'><b>{verdict.finding}</b></td>"
            f"<td class='name'>{_e(verdict.word)}</td><td class='name wrap'>{lines}</td></tr>"
        )
    out.append(f"</tbody></table><p class='note'>{_e(content.rules)}</p>")

    out.append("<h2 id='loss'>Loss curves</h2>")
    out.append(_img(content.loss_curves, WIDE) if content.loss_curves else "<p>No loss history logged.</p>")

    out.append("<h2 id='latent'>The latent space</h2>")
    out.append(f"<p class='note'>{_e(content.latent_note)}</p>")
    for image in (content.latent, content.interpolation):
        if image is not None:
            out.append(f"<figure>{_img(image, WIDE)}<figcaption>{_e(image.caption)}</figcaption></figure>")

    out.append("<h2 id='provenance'>Provenance</h2><table class='provenance'>")
    out += [
        f"<tr><td class='name'>{_e(label)}</td><td class='name wrap'>{_e(value)}</td></tr>"
        for label, value in content.provenance
    ]
    versions = any(version for _, _, version, _, _, _ in content.runs)
    out.append(
        "</table><h3>Runs</h3><div class='scroll'><table class='runs'><thead><tr><th class='name'>step</th>"
        "<th class='name'>what</th>"
        + ("<th class='name'>code version</th>" if versions else "")
        + "<th class='name'>status</th><th class='name'>convergence (validation loss)</th>"
        "<th class='name'>run (MLflow UI)</th></tr></thead><tbody>"
    )
    for step, what, version, status, state, link in content.runs:
        out.append(
            f"<tr><td class='name'>{_e(step)}</td><td class='name wrap'>{_e(what)}</td>"
            + (f"<td class='name'>{_e(version)}</td>" if versions else "")
            + f"<td class='name'>{_e(status)}</td><td class='name'>{_e(state)}</td>"
            f"<td class='name'><a href='{_e(link.href)}'>{_e(link.label)}</a></td></tr>"
        )
    out.append("</tbody></table></div>")

    out.append("<h2 id='appendix'>Appendix: every score</h2>")
    out.append(f"<p class='note'>{_e(APPENDIX_NOTE)}</p>")
    for table, label in zip(content.tables, content.table_labels):
        out.append(_heading(label, len(content.tables)))
        out.append(_html_metrics(table, SAMPLER_METRICS, (), label).replace("class='metrics'", "class='all-metrics'"))
        out.append(_html_models(table))
    out.append(f"<h3>Preset and settings</h3><pre>{_e(json.dumps(content.settings_json, indent=2))}</pre>")
    out.append("</body></html>")
    return "\n".join(out)
