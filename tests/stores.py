"""Fresh MLflow tracking stores for tests, copied from one migrated empty store.

MLflow creates a SQLite store by running its Alembic migrations: about 1.7 s on this machine,
for every test that wants a store of its own (and in every subprocess that opens a new one).
:func:`make_empty_store` has MLflow create one store per test process and then gives each
caller a copy of it, adjusted as MLflow itself would have made it there: the only row that
depends on where a store is made is the ``Default`` experiment's artifact location
(``<working directory>/mlruns/0``); its creation and update times stay the template's, seconds
earlier. ``tests/test_stores.py`` checks that a copy is what MLflow makes, table by table and
row by row, the times aside.
"""

from __future__ import annotations

import atexit
import shutil
import sqlite3
import tempfile
from functools import cache
from pathlib import Path

DEFAULT_EXPERIMENT_ID = 0


def _backup(source: Path, target: Path) -> None:
    """Copy a SQLite database with SQLite's own backup, consistent even if it is open."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def create_store(db: Path) -> str:
    """A new store at ``db``, made by MLflow (its migrations run); returns its URI."""
    import mlflow

    uri = f"sqlite:///{db}"
    mlflow.MlflowClient(tracking_uri=uri).search_experiments()
    return uri


@cache
def _template() -> Path:
    """This process's migrated empty store, made once and removed when the process exits."""
    folder = Path(tempfile.mkdtemp(prefix="mlflow-template-"))
    atexit.register(shutil.rmtree, folder, True)
    db = folder / "mlflow.db"
    create_store(db)
    return db


def make_empty_store(db: Path, cwd: Path | None = None) -> str:
    """A store at ``db`` as MLflow would create it from working directory ``cwd``.

    Parameters
    ----------
    db : pathlib.Path
        Where the SQLite file goes; its folder must exist and the file must not.
    cwd : pathlib.Path, optional
        The working directory of the process that would have created it (default: this
        process's): MLflow puts the ``Default`` experiment's artifacts in ``<cwd>/mlruns/0``.

    Returns
    -------
    str
        The store's ``sqlite:///`` URI.
    """
    if db.exists():
        raise FileExistsError(f"db: {db} exists; expected a path with no file")
    _backup(_template(), db)
    where = (cwd or Path.cwd()).resolve() / "mlruns" / str(DEFAULT_EXPERIMENT_ID)
    with sqlite3.connect(db) as con:
        con.execute(
            "UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?",
            (str(where), DEFAULT_EXPERIMENT_ID),
        )
    con.close()
    return f"sqlite:///{db}"
