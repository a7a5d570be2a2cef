"""pipeline/configs/search.py:
A password in the search's `storage` URL is refused before anything opens: `mlflow run` logs every -P
value as a param, so a password there would sit in the tracking store in clear."""

from __future__ import annotations

import pytest

from pipeline.cli import main
from pipeline.configs import SearchConfig
from pipeline.errors import InputError

SECRET = "s3cr3t-Pw"
ALTERNATIVES = ("PGPASSWORD", "~/.pgpass", "service file")


@pytest.mark.parametrize(
    "storage, shown",
    [
        (f"postgresql://u:{SECRET}@127.0.0.1/x", "postgresql://u:***@127.0.0.1/x"),
        (f"postgresql+psycopg://u:{SECRET}@db:5432/optuna", "postgresql+psycopg://u:***@db:5432/optuna"),
        (f"postgresql://u@db/optuna?sslmode=require&password={SECRET}", "?sslmode=require&password=***"),
        (f"postgresql://u:{SECRET}@db:99999/optuna", "postgresql://u:***@db:99999/optuna"),  # bad port as well
        ("postgresql://u:@db/optuna", "postgresql://u:***@db/optuna"),  # an empty password is a password
    ],
)
def test_a_password_in_storage_is_refused_naming_the_parameter_and_the_alternatives(storage, shown):
    with pytest.raises(InputError) as error:
        SearchConfig(storage=storage)
    message = str(error.value)
    assert message.startswith("parameter 'storage': got '") and shown in message
    assert all(word in message for word in ALTERNATIVES), message
    assert SECRET not in message


def test_other_malformed_storages_never_repeat_a_password():
    with pytest.raises(InputError, match=r"^parameter 'storage': got 'mysql://u:\*\*\*@db/x'; allowed: auto \|"):
        SearchConfig(storage=f"mysql://u:{SECRET}@db/x")


def test_a_storage_without_password_passes():
    assert (
        SearchConfig(storage="postgresql://u@127.0.0.1:5432/optuna").storage == "postgresql://u@127.0.0.1:5432/optuna"
    )


def run_ids(tracking) -> set[str]:
    return {run.info.run_id for run in tracking.client.search_runs([tracking.experiment_id])}


def test_the_command_exits_2_without_a_run_or_the_password(tracking, capsys):
    before = run_ids(tracking)
    assert main(["search", "--storage", f"postgresql://u:{SECRET}@127.0.0.1/x", "--n_trials", "1"]) == 2
    out, err = capsys.readouterr()
    assert "parameter 'storage'" in err and "PGPASSWORD" in err
    assert SECRET not in out + err
    assert run_ids(tracking) == before
