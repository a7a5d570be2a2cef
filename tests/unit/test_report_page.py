"""analysis/page.py, analysis/page_html.py, analysis/page_markdown.py:
The report page opens with its answer: title, setup, convergence, then the verdict table as the first
table of the HTML and of the Markdown, within the first 1,000 pixels of the browser's screenshot; no
prose restatement; model metrics once per model cell; no ★ on metrics whose best is "closest to real"."""

from __future__ import annotations

import html as html_module
import re
from types import SimpleNamespace

import numpy as np
import pytest

from analysis import browser, page, page_html, page_markdown
from analysis.tables import HEADLINE, STARRED, Row, Table, best_rows
from analysis.verdicts import finding_verdicts
from pipeline.core.evaluation.scoring import SAMPLER_METRICS
from pipeline.core.scores.spread import Summary

SEEDS = (0, 1, 2)
# (experiment, cell, sampler, per-metric values over the seeds); nll and neg_elbo are the model's
ROWS = (
    (
        "E1",
        "bce-standard",
        "normal:0,1",
        {
            "fid": (140, 142, 150),
            "sharpness": (0.066, 0.066, 0.0665),
            "class_entropy": (2.27, 2.28, 2.27),
            "classes_covered": (10, 10, 10),
            "most_digits_share": (0.0800, 0.0801, 0.0802),
            "confident_share": (0.600, 0.601, 0.602),
        },
    ),
    (
        "E2",
        "bce-standard",
        "normal:1,2",
        {
            "fid": (210, 220, 260),
            "sharpness": (0.15, 0.16, 0.14),
            "class_entropy": (2.0, 2.05, 2.01),
            "classes_covered": (7, 9, 5),
        },
    ),
    (
        "E3",
        "bce-standard",
        "beta:0.25,0.25",
        {
            "fid": (470, 480, 520),
            "sharpness": (0.03, 0.032, 0.035),
            "class_entropy": (1.5, 1.7, 1.9),
            "classes_covered": (5, 5, 6),
        },
    ),
    (
        "E4",
        "mse-standard",
        "beta:0.25,0.25",
        {
            "fid": (500, 510, 560),
            "sharpness": (0.02, 0.025, 0.03),
            "class_entropy": (1.2, 1.4, 1.6),
            "classes_covered": (4, 5, 6),
        },
    ),
    (
        "E5",
        "bce-sampled-params",
        "normal:0,1",
        {
            "fid": (540, 549, 555),
            "sharpness": (0.0062, 0.0063, 0.0063),
            "class_entropy": (2.1, 2.13, 2.15),
            "classes_covered": (5, 6, 6),
        },
    ),
)
MODEL = {
    "bce-standard": {
        "nll": (-1966.0, -1960.0, -1971.0),
        "neg_elbo": (-1867.0, -1860.0, -1873.0),
        "active_units": (23, 24, 23),
    },
    "mse-standard": {"nll": (475.4, 475.5, 475.5), "neg_elbo": (477.2, 477.3, 477.3), "active_units": (12, 12, 13)},
    "bce-sampled-params": {
        "nll": (-1562.0, -1559.0, -1565.0),
        "neg_elbo": (-1459.0, -1457.0, -1461.0),
        "active_units": (89, 88, 91),
    },
}
REAL = {"fid_floor": 1.688, "sharpness_real": 0.1582, "class_entropy_real": 2.301, "confident_share_real": 0.97}


def _sampler_scores(cell: str, seed: int) -> dict[str, dict[str, float]]:
    """{sampler key: {metric: value}} of one evaluation: its samplers' scores at this seed."""
    found = {}
    for _, own_cell, sampler, scores in ROWS:
        if own_cell == cell:
            values = {metric: scores.get(metric, (0.5, 0.6, 0.7))[seed] for metric in SAMPLER_METRICS}
            values.update(
                {f"{name}_judge2": values[name] for name in ("classes_covered", "class_entropy", "most_digits_share")}
            )
            found[sampler.replace(":", "_").replace(",", "_")] = values
    return found


def _evaluation(cell: str, seed: int):
    metrics = {**REAL, **{name: values[seed] for name, values in MODEL[cell].items()}}
    samplers = _sampler_scores(cell, seed)
    return SimpleNamespace(
        cell=cell,
        seed=seed,
        run_id=f"{cell}-{seed}",
        metric=metrics.get,
        sampler_metric=lambda key, name: samplers.get(key, {}).get(name),
        run=SimpleNamespace(data=SimpleNamespace(tags={})),
    )


def _table() -> Table:
    rows = []
    for name, cell, sampler, scores in ROWS:
        evaluations = [_evaluation(cell, seed) for seed in SEEDS]
        values = {metric: Summary.of(scores.get(metric, (0.5, 0.6, 0.7)), SEEDS) for metric in SAMPLER_METRICS}
        values.update({metric: Summary.of(MODEL[cell][metric], SEEDS) for metric in MODEL[cell]})
        for judged in ("classes_covered", "class_entropy", "most_digits_share"):
            values[f"{judged}_judge2"] = values[judged]
        real = {metric: Summary.of([value] * 3, SEEDS) for metric, value in REAL.items()}
        experiment = {
            "name": name,
            "study_id": name,
            "cell": cell,
            "sampler": sampler,
            "sampler_key": sampler.replace(":", "_").replace(",", "_"),
        }
        rows.append(Row(experiment, evaluations, values, real))
    table = Table("n_samples=1000 iwae_k=50 seed=0 classifier=" + "c" * 32, rows)
    for column in STARRED:
        table.best[column] = best_rows(
            {row.name: row.scores[column] for row in rows},
            "lower" if column in ("fid", "class_kl", "max_class_share", "max_class_share_confident") else "higher",
        )
    return table


def _content(converged: bool = True) -> page.Content:
    table = _table()
    verdicts = finding_verdicts(table, lambda row, suffix="": {seed: np.full(10, 0.1) for seed in SEEDS})
    png = page.Image(
        "samples.png",
        "sample grids",
        bytes.fromhex(
            "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
            "1f15c4890000000d49444154789c63f8cfc0f01f0005000201a1d9b2ef0000000049454e44ae426082"
        ),
    )
    return page.Content(
        title="VAE study report: preset quick, 2026-12-02, code 2f8d24f",
        setup="Setup: data mnist-5k; 5 experiments in 3 model cells; 50 epochs; training seeds 0, 1, 2; 1,000 "
        "samples per sampler; judges of class identity: a CNN (0.99) and a k-NN (0.97).",
        convergence="Convergence: all 9 trainings converged."
        if converged
        else "Warning: 2 of the trained models behind the verdicts were still improving fast.",
        converged=converged,
        verdicts=verdicts,
        disputes=["E5: the CNN names 3 in 3 of 3 seeds; the k-NN names 8 in 3 of 3 seeds."],
        verdict_key="✓ holds: every measured part holds beyond the spread over seeds.",
        samples=png,
        sample_headings=["E1: bce-standard"],
        samples_note="One column per experiment.",
        experiments=[("E1", "BCE", "standard", "normal:0,1")],
        tables=[table],
        table_labels=[""],
        loss_curves=None,
        latent=None,
        interpolation=None,
        latent_note="",
        rules="rules",
        provenance=[("code version", "2f8d24f on 21 of 21 runs")],
        runs=[
            ("main", "quick", "", "wrote this report", "", page.Link("abcdef12", "#/experiments/1/runs/" + "a" * 32))
        ],
    )


def _first_table_html(html: str) -> str:
    return re.search(r"<table[^>]*>.*?</table>", html, flags=re.DOTALL).group(0)


def _first_table_markdown(markdown: str) -> list[str]:
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return lines[start:end]


@pytest.mark.parametrize("converged", [True, False])
def test_the_verdict_table_is_the_first_table_of_the_html_and_the_markdown(converged):
    content = _content(converged)
    html, markdown = page_html.render_html(content), page_markdown.render_markdown(content)
    first = _first_table_html(html)
    assert "id='verdict-table'" in first
    assert re.findall(r"data-finding='(F\d)'", first) == [f"F{i}" for i in range(1, 7)]
    body = html[html.index("<body>") :]
    assert body.index("id='setup'") < body.index("id='convergence") < body.index("<table") < body.index("<h2")
    assert body.index("<h2 id='samples'>") < body.index("<h2 id='metrics'>") < body.index("<h2 id='appendix'>")
    table = _first_table_markdown(markdown)
    assert table[0] == "| finding | the write-up says | verdict | the numbers, clause by clause |"
    assert len(table) == 2 + 6
    description = page_markdown.run_description(content, "report/report.html")  # from the verdicts, not parsed
    assert description.split("\n\n")[0] == "\n".join(table)
    head = markdown[: markdown.index(table[0])]
    assert head.startswith("# VAE study report: preset quick, 2026-12-02, code 2f8d24f")
    assert "Setup: data mnist-5k" in head and ("Convergence: all 9" if converged else "Warning: 2 of") in head
    assert markdown.index("## Samples") < markdown.index("## Metrics")


def test_each_verdict_is_said_once_with_the_numbers_that_decide_it():
    content = _content()
    html, markdown = page_html.render_html(content), page_markdown.render_markdown(content)
    # F1 holds on each of its three clauses, each by its primary: the 8th most frequent digit's share (both
    # judges) against half a uniform share, the share read as a digit and sharpness against the real digits'
    f1 = re.search(r"<tr data-finding='F1'>(.*?)</tr>", _first_table_html(html), flags=re.DOTALL).group(1)
    evidence = (
        "E1 covers most digits: holds (the 8th most frequent digit's share CNN 0.08010 vs 0.05, k-NN 0.08010 vs "
        "0.05, p < 0.0001 (Holm < 0.0001)); E1 noisy: fewer samples look like a digit than real digits: holds "
        "(share of samples read as a digit 0.6010 vs 0.97, p < 0.0001 (Holm < 0.0001)); E1 blurrier than real "
        "digits: holds (sharpness 0.0662 vs 0.1582, p < 0.0001 (Holm < 0.0001))"
    )
    assert [html_module.unescape(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", f1)[2:]] == ["holds", evidence]
    assert f"| **F1** | N(0,1): most digits, noisy and blurry | **holds** | {evidence} |" in _first_table_markdown(
        markdown
    )
    assert "primary" in markdown and "Holm" in markdown
    for verdict in content.verdicts:
        assert markdown.count(verdict.claim) == 1, verdict.finding  # the full claim: the definitions table only
        assert verdict.short_claim in _first_table_html(html)
    assert "Holds." not in html and "Holds." not in markdown  # no prose paragraph repeats the table
    assert markdown.count("Dominant digits and the judges' disagreement") == 1


def test_model_metrics_once_per_cell_and_no_star_where_best_is_closest_to_real():
    content = _content()
    html, markdown = page_html.render_html(content), page_markdown.render_markdown(content)
    metrics = re.search(r"<table class='metrics'.*?</table>", html, flags=re.DOTALL).group(0)
    header = re.findall(r"<th[^>]*>([^<]*)</th>", metrics)
    assert len(header) - 3 <= 9 and len(HEADLINE) == 9  # 3 naming columns, at most 9 headline metrics
    assert metrics.count("data-metric='nll'") == 3  # one per model cell, not one per sampler row
    assert "rowspan='3' data-metric='nll'" in metrics
    for column in ("sharpness", "class_entropy", "nll"):
        assert not re.search(rf"data-metric='{column}'>[^<]*★", html), column
        assert not re.search(rf"<td class='best' data-metric='{column}'", html), column
    assert re.search(r"<td class='best' data-metric='fid'>144 ± 5 ★</td>", metrics)  # E1's 140, 142, 150
    rows = [line for line in markdown.splitlines() if line.startswith("| **E")]
    nll = [line.split(" | ")[-1].rstrip(" |") for line in rows[:5]]
    assert nll[0] and nll[1] == nll[2] == "" and nll[3] and nll[4]  # E1-E3 share the bce-standard model
    for text in (html, markdown):  # values identical over seeds (coverage 10, 10, 10) are printed alone
        assert not re.search(r"± 0(?![.\d”])", text)  # the rule itself quotes “± 0”
    assert "1.688" in html and "no “± 0”" in html  # the real floor, and the rule stated


def test_the_browser_screenshot_shows_the_verdict_table_within_the_first_1000_pixels(tmp_path):
    path = tmp_path / "report.html"
    path.write_text(page_html.render_html(_content(converged=False)))  # the longer opening: the warning line
    checked = browser.check(path)
    assert not checked.skipped, f"{checked.skipped}: CI must install Debian's chromium and chromium-driver"
    assert checked.passed, checked.summary()
    first = checked.first_table
    assert first["id"] == "verdict-table" and first["class"] == "verdicts"
    assert 0 < first["top"] < first["bottom"] <= 1000, first
    assert checked.screenshot.startswith(b"\x89PNG")
