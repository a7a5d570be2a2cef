"""The report as Markdown, with its images as PNG files under images/ beside it: the same content as
the HTML page (analysis/page_html.py), laid out by analysis/templates/report.md."""

from __future__ import annotations

from analysis import page


def render_markdown(content: page.Content) -> str:
    return page.render("report.md", **page.study_context(content))
