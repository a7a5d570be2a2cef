"""The report as Markdown, with its images as PNG files under images/ beside it: the same content as
the HTML page (analysis/page_html.py), laid out by analysis/templates/report.md."""

from __future__ import annotations

from analysis import page


def render_markdown(content: page.Content) -> str:
    return page.render("report.md", **page.study_context(content))


def verdict_table(markdown: str) -> str:
    """The first table of the Markdown report: its verdicts."""
    lines = markdown.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), len(lines))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join(lines[start:end])


def run_description(markdown: str, report_link: str) -> str:
    """The main run's description on its page in the MLflow UI: the verdict table and where the report is."""
    return f"{verdict_table(markdown)}\n\nThe whole report, with every part and the rules: [report/report.html]({report_link})\n"
