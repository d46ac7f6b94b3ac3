"""The SQLite schema, how a file is recognised as ours, and migrations between versions."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from orchestrator.errors import StoreError

APPLICATION_ID = 0x64616772
"""Stored in the file header (``PRAGMA application_id``): ``dagr``, marking a dagorch database."""

SCHEMA_VERSION = 4
"""The schema this version writes (``PRAGMA user_version``)."""

_V1 = (
    "CREATE TABLE tasks (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,"
    " doc TEXT NOT NULL)",
    "CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


def _create_v1(connection: sqlite3.Connection) -> None:
    for statement in _V1:
        connection.execute(statement)


def _add_event_log(connection: sqlite3.Connection) -> None:
    connection.execute(
        "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL,"
        " type TEXT NOT NULL, task_id TEXT NOT NULL, data TEXT)"
    )


def _add_command_inbox(connection: sqlite3.Connection) -> None:
    connection.execute(
        "CREATE TABLE commands (seq INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL,"
        " task_id TEXT NOT NULL, action TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending',"
        " message TEXT)"
    )


def _index_events_by_task(connection: sqlite3.Connection) -> None:
    # Only output is read back by task (a task's whole output history); indexing just those
    # events keeps the other event writes cheap.
    connection.execute(
        "CREATE INDEX output_by_task ON events (task_id, seq) WHERE type = 'task:output'"
    )


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _create_v1,
    2: _add_event_log,
    3: _add_command_inbox,
    4: _index_events_by_task,
}
"""``MIGRATIONS[n]`` moves a database from schema ``n - 1`` to ``n`` (0 is an empty file)."""


def check_existing_file(path: Path) -> None:
    """Refuse, without changing it, a file that is not a dagorch database or is too new."""
    if not path.exists():
        return
    if path.is_dir():
        raise StoreError(path, "is a directory, not a database file")
    if path.stat().st_size == 0:
        return
    try:
        probe = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreError(path, f"cannot open the database: {exc}") from exc
    try:
        # One read transaction: another process may be creating the schema right now, and the
        # three answers must come from the same snapshot of the file.
        probe.isolation_level = None
        probe.execute("BEGIN")
        application_id = probe.execute("PRAGMA application_id").fetchone()[0]
        version = probe.execute("PRAGMA user_version").fetchone()[0]
        tables = probe.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        probe.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        raise StoreError(path, describe_database_error(exc)) from exc
    finally:
        probe.close()
    # A file of ours carries our application id. The one exception is a file nobody has used
    # yet: no id, no tables, no version (another program's empty file has set one of those).
    unused = application_id == 0 and tables == 0 and version == 0
    if application_id != APPLICATION_ID and not unused:
        raise StoreError(path, "is not a dagorch database (it belongs to another program)")
    if version > SCHEMA_VERSION:
        raise StoreError(
            path,
            f"was written by a newer dagorch (schema {version}); this version reads schemas up "
            f"to {SCHEMA_VERSION}. Upgrade dagorch to open it.",
        )


def migrate(connection: sqlite3.Connection, path: Path) -> None:
    """Bring the database to ``SCHEMA_VERSION``, one migration per transaction.

    The version is read again under the write lock, so two processes opening a new file at once
    do not both run the same migration.
    """
    while True:
        connection.execute("BEGIN IMMEDIATE")
        try:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(path, f"was written by a newer dagorch (schema {version})")
            if version == SCHEMA_VERSION:
                connection.execute("COMMIT")
                return
            MIGRATIONS[version + 1](connection)
            connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            connection.execute(f"PRAGMA user_version = {version + 1}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise


def describe_database_error(exc: sqlite3.Error) -> str:
    """What an SQLite error says about the file, in words a user can act on."""
    name = getattr(exc, "sqlite_errorname", "")
    if name == "SQLITE_NOTADB":
        return f"is not a dagorch database ({exc})"
    if name == "SQLITE_CORRUPT":
        return f"is damaged ({exc}); restore it from a backup or move it aside"
    return f"database error: {exc}"
