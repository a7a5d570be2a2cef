"""The report as a page: one self-contained HTML file (images as data: URIs, inline CSS, no script,
nothing fetched) and a Markdown file with the same content (images as PNG files beside it)."""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field

from analysis.stats import DIRECTIONS, SPREAD_RULE, Summary, spread_text
from analysis.tables import COLUMNS, REAL_METRICS, Table
from analysis.verdicts import Verdict

IMAGE_FOLDER = "images"


@dataclass
class Image:
    """A picture of the report: embedded in the HTML, a file beside the Markdown."""

    name: str  # file name under images/
    alt: str
    png: bytes
    caption: str = ""

    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass
class Link:
    label: str
    href: str


@dataclass
class Content:
    """Everything the page shows, already measured: the renderers only lay it out."""

    title: str
    summary: list[str]
    tables: list[Table]
    samples: Image | None  # every experiment's grid, its class histogram under it, in one figure
    sample_headings: list[str]  # per experiment: which run and seed its column shows
    samples_note: str
    loss_curves: Image | None
    latent: Image | None
    interpolation: Image | None
    latent_note: str
    verdicts: list[Verdict]
    verdict_note: str
    provenance: list[tuple[str, str]]  # (label, value)
    runs: list[tuple[str, str, str, str, str, Link]]  # (step, what, code version, status, convergence, link)
    settings_json: dict = field(default_factory=dict)
    warning: str = ""  # opens the page: models behind verdicts were still improving fast

    def images(self) -> list[Image]:
        return [i for i in (self.samples, self.loss_curves, self.latent, self.interpolation) if i is not None]


def direction_text(column: str) -> str:
    direction = DIRECTIONS.get(column)
    if direction is None:
        return "not ranked"
    if direction.startswith("closer:"):
        return f"best: closest to {direction.split(':', 1)[1]}"
    return f"best: {direction}"


def settings_heading(index: int, table: Table, count: int) -> str:
    seeds = sorted({e.seed for row in table.rows for e in row.evaluations})
    prefix = f"Table {index + 1} of {count}: " if count > 1 else ""
    return (f"{prefix}scores measured with {table.settings} "
            f"({table.measured} evaluate runs, training seeds {', '.join(map(str, seeds)) or 'none'})")


SEPARATE_SETTINGS = ("These evaluations were made under different settings (sample count, importance samples, "
                     "evaluation seed or classifier run): their scores are never averaged or ranked together, "
                     "so each setting has its own table and the best marks hold within a table only.")
TABLE_NOTE = ("Each cell: mean ± sample standard deviation over training seeds (n − 1); “(1 seed)” where only one "
              "seed was evaluated. ★ marks the best mean of a column. Lower is better for fid, class_kl, "
              "max_class_share, max_class_share_confident, neg_elbo and nll; class_entropy and sharpness are best "
              "closest to the real test digits' value (noise is sharp too); higher is better for the rest; "
              "active_units is not ranked. Rows E1–E5 are the write-up's own experiments.")


# --- HTML ----------------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1360px;color:#1b1b1b;
line-height:1.45;padding:0 16px}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ccc}h3{font-size:1.05em}
table{border-collapse:collapse;font-size:12px;margin:8px 0}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:right;white-space:nowrap}
th{background:#f3f3f3;position:sticky;top:0}td.name,th.name{text-align:left}
tr.study td.name{font-weight:bold;background:#fff6d6}td.wrap{white-space:normal;word-break:break-all}td.best{background:#d9f2d9;font-weight:bold}
.scroll{overflow-x:auto}.note{color:#555;font-size:0.9em}.warn{background:#fff0f0;border-left:4px solid #c33;padding:6px 10px}
figure{margin:0;border:1px solid #e3e3e3;padding:6px}figure img{width:100%;height:auto}
figcaption{font-size:0.85em;color:#444}img.wide{max-width:100%;height:auto}
.verdict{margin:10px 0;padding:8px 12px;border-left:5px solid #999}
.verdict.holds{border-color:#2e8b57}.verdict.contradicted{border-color:#c33}.verdict.inconclusive{border-color:#d89a00}
table.verdicts{font-size:13px;max-width:100%}table.verdicts td{vertical-align:top}
td.word.holds{color:#2e8b57}td.word.contradicted{color:#c33}td.word.inconclusive{color:#a67400}
.word{font-weight:bold;text-transform:uppercase;font-size:0.85em}code{font-size:0.9em}
pre{background:#f7f7f7;padding:8px;overflow-x:auto;font-size:12px}
"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _html_table(table: Table) -> str:
    head = ["<th class='name'>experiment</th><th class='name'>cell</th><th class='name'>sampler</th><th>seeds</th>"]
    head += [f"<th title='{_e(direction_text(c))}'>{_e(c)}</th>" for c in COLUMNS]
    lines = [f"<div class='scroll'><table class='metrics' data-settings='{_e(table.settings)}'><thead>"
             f"<tr>{''.join(head)}</tr></thead><tbody>"]
    for row in table.rows:
        experiment = row.experiment
        cells = [f"<td class='name'>{_e(experiment['name'])}</td>",
                 f"<td class='name'>{_e(experiment['cell'])}</td>", f"<td class='name'>{_e(experiment['sampler'])}</td>",
                 f"<td>{len(row.seeds)}</td>"]
        for column in COLUMNS:
            best = row.name in table.best.get(column, set())
            text = spread_text(row.scores[column]) + (" ★" if best else "")
            css = " class='best'" if best else ""
            cells.append(f"<td{css} data-metric='{column}'>{_e(text)}</td>")
        css = " class='study'" if experiment.get("study_id") else ""
        lines.append(f"<tr{css} data-experiment='{_e(experiment['name'])}'>{''.join(cells)}</tr>")
    lines.append("</tbody></table></div>")
    real = _real_line(table)
    if real:
        lines.append(f"<p class='note'>Real data through the same code: {_e(real)}</p>")
    return "\n".join(lines)


def _real_line(table: Table) -> str:
    parts = []
    for metric in REAL_METRICS:  # one value per evaluate run (rows of one cell share their runs)
        by_run = {e.run_id: e.metric(metric) for row in table.rows for e in row.evaluations if e.metric(metric) is not None}
        if by_run:
            parts.append(f"{metric} {spread_text(Summary.of(list(by_run.values())))}")
    return ", ".join(parts)


WIDE = " class='wide'"


def _verdict_css(word: str) -> str:
    return "holds" if word.startswith("holds") else "contradicted" if word == "contradicted" else "inconclusive"


def _img(image: Image, css: str = "") -> str:
    return f"<img{css} src='{image.data_uri()}' alt='{_e(image.alt)}'>"


def render_html(content: Content) -> str:
    out = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
           "<meta name='viewport' content='width=device-width,initial-scale=1'>",
           f"<title>{_e(content.title)}</title><style>{CSS}</style></head><body>",
           f"<h1>{_e(content.title)}</h1>"]
    if content.warning:
        out.append(f"<p class='warn' id='convergence-warning'><b>{_e(content.warning)}</b></p>")
    out += [f"<p>{_e(line)}</p>" for line in content.summary]

    out.append("<h2 id='metrics'>1. Metrics</h2>")
    out.append(f"<p class='note'>{_e(TABLE_NOTE)}</p>")
    if len(content.tables) > 1:
        out.append(f"<p class='warn'>{_e(SEPARATE_SETTINGS)}</p>")
    if not content.tables:
        out.append("<p class='warn'>No evaluate run of this study is on the server: nothing to tabulate.</p>")
    for index, table in enumerate(content.tables):
        out.append(f"<h3 class='settings'>{_e(settings_heading(index, table, len(content.tables)))}</h3>")
        out.append(_html_table(table))

    out.append("<h2 id='samples'>2. Samples</h2>")
    out.append(f"<p class='note'>{_e(content.samples_note)}</p>")
    if content.samples is not None:
        out.append(f"<figure>{_img(content.samples, WIDE)}<figcaption><ul>")
        out += [f"<li>{_e(heading)}</li>" for heading in content.sample_headings]
        out.append("</ul></figcaption></figure>")

    out.append("<h2 id='loss'>3. Loss curves</h2>")
    out.append(_img(content.loss_curves, WIDE) if content.loss_curves else "<p>No loss history logged.</p>")

    out.append("<h2 id='latent'>4. The latent space</h2>")
    out.append(f"<p class='note'>{_e(content.latent_note)}</p>")
    for image in (content.latent, content.interpolation):
        if image is not None:
            out.append(f"<figure>{_img(image, WIDE)}<figcaption>{_e(image.caption)}</figcaption></figure>")

    out.append("<h2 id='verdicts'>5. Verdicts on the write-up's findings</h2>")
    out.append("<table class='verdicts'><thead><tr><th class='name'>finding</th><th class='name'>verdict</th>"
               "<th class='name'>measured parts and the numbers that decide them</th></tr></thead><tbody>")
    for verdict in content.verdicts:
        lines = "<br>".join(f"{_e(mark)} {_e(text)}" for mark, text in verdict.lines())
        out.append(f"<tr data-finding='{verdict.finding}'><td class='name'><b>{verdict.finding}</b></td>"
                   f"<td class='name word {_verdict_css(verdict.outcome)}'>{_e(verdict.word)}</td>"
                   f"<td class='name wrap'>{lines}</td></tr>")
    out.append("</tbody></table>")
    out.append(f"<p class='note'>{_e(SPREAD_RULE)} {_e(content.verdict_note)}</p>")
    for verdict in content.verdicts:
        out.append(f"<div class='verdict {_verdict_css(verdict.outcome)}' id='{verdict.finding}'><b>{verdict.finding}</b> "
                   f"<span class='word'>{_e(verdict.word)}</span><br><i>Write-up: {_e(verdict.claim)}</i><br>"
                   f"{_e(verdict.sentences())}</div>")

    out.append("<h2 id='provenance'>6. Provenance</h2><table>")
    out += [f"<tr><td class='name'>{_e(label)}</td><td class='name wrap'>{_e(value)}</td></tr>"
            for label, value in content.provenance]
    out.append("</table><h3>Runs</h3><div class='scroll'><table><thead><tr><th class='name'>step</th>"
               "<th class='name'>what</th><th class='name'>code version</th><th class='name'>status</th>"
               "<th class='name'>convergence (validation loss)</th><th class='name'>run id (MLflow UI)</th></tr></thead><tbody>")
    for step, what, version, status, state, link in content.runs:
        out.append(f"<tr><td class='name'>{_e(step)}</td><td class='name wrap'>{_e(what)}</td><td class='name'>{_e(version)}</td>"
                   f"<td class='name'>{_e(status)}</td><td class='name'>{_e(state)}</td>"
                   f"<td class='name'><a href='{_e(link.href)}'>{_e(link.label)}</a></td></tr>")
    out.append("</tbody></table></div>")
    out.append(f"<h3>Preset and settings</h3><pre>{_e(json.dumps(content.settings_json, indent=2))}</pre>")
    out.append("</body></html>")
    return "\n".join(out)


# --- Markdown ------------------------------------------------------------------------------------

def _md(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(table: Table) -> list[str]:
    lines = ["| experiment | cell | sampler | seeds | " + " | ".join(COLUMNS) + " |",
             "|" + " --- |" * 3 + " ---: |" + " ---: |" * len(COLUMNS)]
    for row in table.rows:
        experiment = row.experiment
        name = _md(experiment["name"])
        if experiment.get("study_id"):
            name = f"**{name}**"
        cells = [name, _md(experiment["cell"]), _md(experiment["sampler"]), str(len(row.seeds))]
        for column in COLUMNS:
            text = _md(spread_text(row.scores[column]))
            cells.append(f"**{text}** ★" if row.name in table.best.get(column, set()) else text)
        lines.append("| " + " | ".join(cells) + " |")
    real = _real_line(table)
    if real:
        lines += ["", f"Real data through the same code: {real}"]
    return lines


def _md_image(image: Image) -> str:
    return f"![{_md(image.alt)}]({IMAGE_FOLDER}/{image.name})"


def render_markdown(content: Content) -> str:
    out = [f"# {content.title}", ""]
    if content.warning:
        out += [f"> **{content.warning}**", ""]
    out += [line + "\n" for line in content.summary]
    out += ["## 1. Metrics", "", TABLE_NOTE, ""]
    if len(content.tables) > 1:
        out += [f"> {SEPARATE_SETTINGS}", ""]
    for index, table in enumerate(content.tables):
        out += [f"### {settings_heading(index, table, len(content.tables))}", ""]
        out += _md_table(table) + [""]
    out += ["## 2. Samples", "", content.samples_note, ""]
    if content.samples is not None:
        out += [_md_image(content.samples), ""] + [f"- {_md(heading)}" for heading in content.sample_headings] + [""]
    out += ["## 3. Loss curves", "", _md_image(content.loss_curves) if content.loss_curves else "No loss history logged.", ""]
    out += ["## 4. The latent space", "", content.latent_note, ""]
    for image in (content.latent, content.interpolation):
        if image is not None:
            out += [_md_image(image), "", f"*{image.caption}*", ""]
    out += ["## 5. Verdicts on the write-up's findings", "", "| finding | verdict | measured parts and the numbers that decide them |",
            "| --- | --- | --- |"]
    out += [f"| **{verdict.finding}** | {_md(verdict.word)} | "
            f"{'<br>'.join(_md(f'{mark} {text}') for mark, text in verdict.lines())} |" for verdict in content.verdicts]
    out += ["", f"{SPREAD_RULE} {content.verdict_note}", ""]
    for verdict in content.verdicts:
        out += [f"- **{verdict.finding}: {verdict.word}.** *Write-up: {verdict.claim}* {verdict.sentences()}", ""]
    out += ["## 6. Provenance", "", "| | |", "| --- | --- |"]
    out += [f"| {_md(label)} | {_md(value)} |" for label, value in content.provenance]
    out += ["", "### Runs", "", "| step | what | code version | status | convergence (validation loss) | run id (MLflow UI) |",
            "| --- | --- | --- | --- | --- | --- |"]
    out += [f"| {_md(step)} | {_md(what)} | {_md(version)} | {_md(status)} | {_md(state)} | [{link.label}]({link.href}) |"
            for step, what, version, status, state, link in content.runs]
    out += ["", "### Preset and settings", "", "```json", json.dumps(content.settings_json, indent=2), "```", ""]
    return "\n".join(out)
