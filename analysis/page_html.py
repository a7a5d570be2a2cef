"""The report's self-contained HTML page: images as data: URIs, inline CSS, no script, nothing fetched.
It lays out a `page.Content` with analysis/templates/report.html (autoescaped); analysis/page_markdown.py
lays out the same content as Markdown."""

from __future__ import annotations

from analysis import page


def render_html(content: page.Content) -> str:
    return page.render("report.html", **page.study_context(content))
