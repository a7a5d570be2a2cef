"""pipeline/steps/report.py:
`report` refuses a source that names no main run: exit status 2, the parameter named, no run made and
no folder written."""

from __future__ import annotations

import pytest

from tests.e2e.report_study import run_id


@pytest.fixture(scope="module")
def prepared(tracking) -> str:
    """A real run that is not a main run: a prepare_data run."""
    return run_id(tracking.python_step("prepare_data"))


@pytest.mark.slow
@pytest.mark.parametrize("source", ["0" * 32, "no-such-experiment", "not-a-main-run"])
def test_a_bad_source_exits_2_naming_it_and_creates_no_run(tracking, prepared, tmp_path, source):
    if source == "not-a-main-run":
        source = prepared
    before = len(tracking.client.search_runs([tracking.experiment_id], max_results=1000))
    result = tracking.python_step("report", "--source", source, "--output", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr[-3000:]
    assert "parameter 'source'" in result.stderr
    assert len(tracking.client.search_runs([tracking.experiment_id], max_results=1000)) == before
    assert not (tmp_path / "out").exists()
