"""A store copied by :func:`tests.stores.make_empty_store` is the store MLflow creates there."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import mlflow
import pytest

from tests.stores import create_store, make_empty_store

# Slow, as the tests that use the helper are: nothing in the fast loop makes an MLflow store,
# and this one makes two (3 s), so it is checked beside the tests that rely on it.
pytestmark = pytest.mark.slow

# Set when a row is written, so they differ between any two stores made at different times.
TIMESTAMPS = {"creation_time", "last_update_time"}


def _clauses(sql: str | None) -> tuple[str, ...]:
    """A ``CREATE`` statement as its set of clauses, one per line as SQLAlchemy writes them.

    MLflow's migrations recreate tables with their constraints in an order that varies from one
    run to the next (two stores MLflow makes can differ in it), so the order is not compared.
    """
    return tuple(sorted(line.strip().rstrip(",") for line in (sql or "").splitlines()))


def _contents(db: Path) -> dict[str, object]:
    """Every table's schema and rows, timestamps left out."""
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
        schema = sorted((kind, name, _clauses(sql)) for kind, name, sql in rows)
        out: dict[str, object] = {"schema": schema}
        for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            cursor = con.execute(f'SELECT * FROM "{table}"')
            names = [d[0] for d in cursor.description]
            keep = [i for i, n in enumerate(names) if n not in TIMESTAMPS]
            out[table] = sorted(tuple(row[i] for i in keep) for row in cursor.fetchall())
    con.close()
    return out


def test_a_copy_is_the_store_mlflow_makes_in_the_same_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made, copied = tmp_path / "made", tmp_path / "copied"
    for folder in (made, copied):
        folder.mkdir()
    monkeypatch.chdir(made)  # the copy is made from elsewhere: its location must be set
    create_store(made / "mlflow.db")
    uri = make_empty_store(copied / "mlflow.db", cwd=copied)
    made_contents = _contents(made / "mlflow.db")
    copied_contents = _contents(copied / "mlflow.db")
    # Where MLflow puts the Default experiment's artifacts: the working directory it was made in.
    for contents, folder in ((made_contents, made), (copied_contents, copied)):
        (default,) = contents["experiments"]  # type: ignore[misc]
        assert default[1:3] == ("Default", str(folder.resolve() / "mlruns" / "0"))
        contents["experiments"] = [(*default[:2], "<cwd>/mlruns/0", *default[3:])]
    assert copied_contents == made_contents
    assert len(made_contents["schema"]) > 20  # type: ignore[arg-type]  # MLflow's tables, not none
    # and MLflow uses it as its own
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("copied")
    run = client.create_run(experiment)
    client.log_metric(run.info.run_id, "x", 1.0)
    assert client.get_run(run.info.run_id).data.metrics == {"x": 1.0}


def test_a_store_is_never_copied_over_another(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"")
    with pytest.raises(FileExistsError, match=r"mlflow\.db exists"):
        make_empty_store(db)
