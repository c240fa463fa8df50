"""Where a study's tracking store is, and what lies beside it; no MLflow import.

The command line checks these before it starts anything, and ``orchestrator.runner`` decides with
:func:`is_new_store` whether Ray starts beside the store's creation; MLflow's import (~1 s) then
happens in that time (``orchestrator.tracking`` talks to MLflow).
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


def sqlite_path(uri: str) -> str | None:
    """The database file of a ``sqlite:///`` URI, None for any other store."""
    prefix = "sqlite:///"
    return uri[len(prefix) :] if uri.startswith(prefix) else None


def state_folder(tracking_uri: str) -> Path:
    """Where invocations keep claims, checkpoints, Tune's state, the Optuna journal of the store at ``tracking_uri``."""
    database = sqlite_path(tracking_uri)
    if database is not None:
        database_path = Path(database).resolve()
        return database_path.with_name(database_path.name + ".state")
    return Path(".sweep-state").resolve()


def absolute_tracking_uri(uri: str) -> str:
    """Make a local SQLite URI absolute: Ray runs trials in other working directories."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(Path(uri[len(prefix) :]).resolve())
    return uri


class BrokenStore(Exception):
    """The tracking store cannot be opened (one line: the URI and MLflow's first line)."""


def check_store_folder(uri: str) -> None:
    """A SQLite store is made only in a folder that exists: a mistyped path is an error, not a new empty store."""
    database = sqlite_path(uri)
    if database is not None and database != ":memory:" and not Path(database).parent.is_dir():
        raise BrokenStore(f"{uri}: the folder {Path(database).parent} does not exist")


def is_new_store(uri: str) -> bool:
    """Whether ``uri`` names a SQLite store not made yet (no file, or an empty one): nothing ran in it."""
    database = sqlite_path(uri)
    if database is None or database == ":memory:":
        return False
    path = Path(database)
    return not path.exists() or path.stat().st_size == 0
