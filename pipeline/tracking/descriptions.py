"""What the MLflow UI shows of a run beyond its figures: links to its page in the model-training view,
and its description (the Markdown MLflow renders at the top of the run page, tag `mlflow.note.content`)."""

from __future__ import annotations

import mlflow
from mlflow.tracking import MlflowClient

DESCRIPTION_TAG = "mlflow.note.content"
TRAINING_VIEW = "workflowType=machine_learning"  # MLflow 3's UI opens its GenAI view without it


def run_page(experiment_id: str, run_id: str, tracking_uri: str | None = None, artifact: str = "") -> str:
    """The run's page (or one of its artifacts) in the UI's model-training view: absolute under an http(s)
    server, else the UI's route relative to wherever the UI is served (what `mlflow ui` serves on that store)."""
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


def describe_run(run_id: str, markdown: str) -> None:
    """Set a run's description (its page in the UI renders it as Markdown), also of a run other than the
    active one, as the report does for the main run it reports on."""
    MlflowClient().set_tag(run_id, DESCRIPTION_TAG, markdown)


def copy_description(source_run_id: str, target_run_id: str) -> None:
    """Give `target_run_id` the description of `source_run_id`, if it has one (a reused report's verdicts)."""
    client = MlflowClient()
    note = client.get_run(source_run_id).data.tags.get(DESCRIPTION_TAG)
    if note is not None:
        client.set_tag(target_run_id, DESCRIPTION_TAG, note)
