"""The report as Markdown, with its images as PNG files under images/ beside it: the same content as
the HTML page (analysis/page_html.py), laid out by analysis/templates/report.md."""

from __future__ import annotations

from analysis import page


def render_markdown(content: page.Content) -> str:
    return page.render("report.md", **page.study_context(content))


def run_description(content: page.Content, report_link: str) -> str:
    """The main run's description on its page in the MLflow UI: the verdict table, rendered by the
    template report.md includes, and where the report is."""
    table = page.render("verdicts.md", c=content).strip()
    return f"{table}\n\nThe whole report, with every part and the rules: [report/report.html]({report_link})\n"
