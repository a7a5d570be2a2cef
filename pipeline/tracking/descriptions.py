"""What the MLflow UI shows of a run beyond its figures: links to its page in the model-training view,
and its description (the Markdown MLflow renders at the top of the run page, tag `mlflow.note.content`)."""

from __future__ import annotations

import mlflow
from mlflow.tracking import MlflowClient

DESCRIPTION_TAG = "mlflow.note.content"
TRAINING_VIEW = "workflowType=machine_learning"  # MLflow 3's UI opens its GenAI view without it


def run_page(experiment_id: str, run_id: str, artifact: str = "", tracking_uri: str | None = None) -> str:
    """The run's page (or one of its artifacts) in the UI's model-training view: absolute under an http(s)
    server, else the UI's route relative to wherever the UI is served."""
    route = f"#/experiments/{experiment_id}/runs/{run_id}" + (f"/artifacts/{artifact}" if artifact else "")
    route += f"?{TRAINING_VIEW}"
    uri = tracking_uri or mlflow.get_tracking_uri()
    return f"{uri.rstrip('/')}/{route}" if uri.startswith(("http://", "https://")) else route


def markdown_cell(text: str) -> str:
    """`text` as one cell of a Markdown table."""
    return " ".join(str(text).split()).replace("|", "\\|")


def verdict_table(heading: str, rows: list[tuple[str, str, str]], link_text: str, link: str) -> str:
    """A run description: a heading, a table of (finding, claim, verdict) rows and a link to the details."""
    lines = [heading, "", "| finding | claim | verdict |", "|---|---|---|"]
    lines += [f"| {markdown_cell(f)} | {markdown_cell(c)} | **{markdown_cell(v)}** |" for f, c, v in rows]
    return "\n".join([*lines, "", f"Details: [{link_text}]({link})"])


def describe(run_id: str, markdown: str) -> None:
    """Set the run's description, shown rendered on its page in the UI."""
    MlflowClient().set_tag(run_id, DESCRIPTION_TAG, markdown)
