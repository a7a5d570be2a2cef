"""The `report` step: the study's report, built only from what the tracking server holds.

`python -m pipeline report --source <main run id | experiment name> --output DIR` (or `mlflow run . -e
report`). The report itself (what it reads, what it writes and logs, the browser check) is analysis/report.py.
"""

from __future__ import annotations

from analysis import report as reports
from pipeline.configs import ReportConfig


def report(config: ReportConfig) -> str:
    """Run the `report` step; returns the report run's id. The source is checked before any run opens."""
    return reports.report(config)
