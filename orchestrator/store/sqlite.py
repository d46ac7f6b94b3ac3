"""The durable default store: one SQLite file in WAL mode (see ``_writer`` for how it is written).

It holds each task as one JSON document, named values, the event log and the command inbox that
lets other processes control the file's owner.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from pydantic_core import PydanticSerializationError, to_json

from hookspecs.models import JsonValue, OrchestratedTask, TaskEvent, TaskEventType, now_ms
from orchestrator.errors import StoreError
from orchestrator.store._base import EventRecord
from orchestrator.store._schema import describe_database_error
from orchestrator.store._shared import Command, Lease
from orchestrator.store._writer import (
    _LEASE_KEY,
    _LEASE_MS,
    _UPSERT_VALUE,
    SqliteWriter,
    _fenced,
    _read_lease,
    _write_lease,
)

DEFAULT_FILE_NAME = "dagorch.db"
"""The database file's name inside the dagorch home folder."""


_IDS_PER_QUERY = 500
"""Ids bound in one ``IN (...)`` query (SQLite allows 32,766 variables; smaller keeps each
statement short)."""


def default_store_path(agent_id: str = "") -> Path:
    """``$DAGORCH_HOME/dagorch.db``, or ``.dagorch/dagorch.db`` in the current folder.

    With an agent id (a service started for an ElizaOS runtime) the file is
    ``agent-<id>.db`` beside it, so agents sharing a process and folder each own a file.
    """
    home = os.environ.get("DAGORCH_HOME", "").strip()
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in agent_id)
    return Path(home or ".dagorch") / (f"agent-{safe}.db" if safe else DEFAULT_FILE_NAME)


class SqliteStore(SqliteWriter):
    """Tasks, named values and their history in one SQLite file (``default_store_path()``)."""

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, busy_timeout: float = 10.0
    ) -> None:
        super().__init__(
            Path(path) if path is not None else default_store_path(), busy_timeout=busy_timeout
        )

    async def load_tasks(self) -> list[OrchestratedTask]:
        """Every stored task, oldest first."""
        rows = await self._call(
            lambda c: c.execute("SELECT doc FROM tasks ORDER BY seq").fetchall()
        )
        return [OrchestratedTask.from_dict(json.loads(doc)) for (doc,) in rows]

    logs_events = True
    """Events are logged in the same transaction as the change they describe."""

    writes_at_once = False
    """Writes go to the writer thread and are awaited."""

    keeps_copies = True
    """Each task is kept as a JSON document."""

    def read_task(self, task_id: str) -> OrchestratedTask | None:
        """One task, read on a connection of the caller's own (WAL: readers never wait)."""
        return self.read_tasks([task_id])[0]

    def read_tasks(self, task_ids: Sequence[str]) -> list[OrchestratedTask | None]:
        """Several tasks as one committed state of the file (each None when it is not there),
        in the order given: ``read_task`` for each would see any write made in between."""
        docs: dict[str, str] = {}
        try:
            with self._read_lock:
                reader = self._reader()
                reader.execute("BEGIN")
                try:
                    for start in range(0, len(task_ids), _IDS_PER_QUERY):
                        chunk = list(task_ids[start : start + _IDS_PER_QUERY])
                        marks = ",".join("?" * len(chunk))
                        query = f"SELECT id, doc FROM tasks WHERE id IN ({marks})"
                        docs.update(reader.execute(query, chunk).fetchall())
                finally:
                    # Ends the read snapshot: left open, it would pin this connection to the
                    # file as it was at the first read.
                    reader.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(self.path, describe_database_error(exc)) from exc
        return [
            None
            if (doc := docs.get(task_id)) is None
            else OrchestratedTask.from_dict(json.loads(doc))
            for task_id in task_ids
        ]

    async def put_tasks(
        self, tasks: Sequence[OrchestratedTask], events: Sequence[EventRecord] = ()
    ) -> int | None:
        """Insert or replace these tasks and log these events in one transaction."""
        return await asyncio.shield(self.submit_tasks(tasks, events))

    def submit_tasks(
        self, tasks: Sequence[OrchestratedTask], events: Sequence[EventRecord] = ()
    ) -> asyncio.Future[int | None]:
        """``put_tasks`` without waiting: the write is queued at once, in order with every
        other write, and the future gives the first event's number once it is committed."""
        rows = [(task.id, _document(task)) for task in tasks]
        logged = [
            (ts, kind, task_id, None if data is None else _json_text(data))
            for kind, task_id, data, ts in events
        ]

        def write(connection: sqlite3.Connection) -> int | None:
            if rows:
                connection.executemany(_UPSERT_TASK, rows)
            if not logged:
                return None
            connection.executemany(_INSERT_EVENT, logged)
            last = connection.execute("SELECT last_insert_rowid()").fetchone()[0]
            return int(last) - len(logged) + 1

        return self._submit(_fenced(write))

    async def read_events(self, after: int = 0, limit: int = 1000) -> list[TaskEvent]:
        """Logged events numbered above ``after``, oldest first."""
        rows = await self._call(
            lambda c: c.execute(
                "SELECT seq, ts, type, task_id, data FROM events WHERE seq > ? ORDER BY seq"
                " LIMIT ?",
                (after, limit),
            ).fetchall()
        )
        return [
            TaskEvent(
                seq=seq,
                timestamp=ts,
                type=TaskEventType(kind),
                task_id=task_id,
                data=None if data is None else json.loads(data),
            )
            for seq, ts, kind, task_id, data in rows
        ]

    async def last_event_seq(self) -> int | None:
        """The highest event number ever given (the log's AUTOINCREMENT counter, which pruning
        does not lower); 0 before the first event."""
        row = await self._call(
            lambda c: c.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        )
        return 0 if row is None else int(row[0])

    async def read_output(self, task_id: str) -> list[str] | None:
        """Every output line of the task still in the event log, oldest first."""
        rows = await self._call(
            lambda c: c.execute(
                "SELECT data FROM events WHERE task_id = ? AND type = 'task:output' ORDER BY seq",
                (task_id,),
            ).fetchall()
        )
        return [line for (data,) in rows for line in json.loads(data)["output"]]

    async def prune_events(self, keep: int) -> int:
        """Delete all but the newest ``keep`` events."""

        def prune(connection: sqlite3.Connection) -> int:
            cursor = connection.execute(
                "DELETE FROM events WHERE seq <= (SELECT max(seq) FROM events) - ?", (keep,)
            )
            return int(cursor.rowcount)

        return await self._call(_fenced(prune))

    async def delete_task(self, task_id: str) -> None:
        """Remove a task."""
        await self._call(_fenced(lambda c: c.execute("DELETE FROM tasks WHERE id = ?", (task_id,))))

    async def get_value(self, key: str) -> JsonValue:
        """A named value, or None."""
        row = await self._call(
            lambda c: c.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        )
        return None if row is None else json.loads(row[0])

    async def set_value(self, key: str, value: JsonValue) -> None:
        """Set or (with None) remove a named value."""
        if value is None:
            await self._call(_fenced(lambda c: c.execute("DELETE FROM kv WHERE key = ?", (key,))))
            return
        text = json.dumps(value)
        await self._call(_fenced(lambda c: c.execute(_UPSERT_VALUE, (key, text))))

    # -- sharing between processes ----------------------------------------------------------

    async def acquire_lease(
        self, token: str, pid: int, host: str, *, replacing: str | None = None
    ) -> Lease | None:
        """Take the lease unless another live one blocks; None when taken. ``replacing`` takes
        over a live lease only while it is still the one with that token (its owner is dead)."""

        def acquire(connection: sqlite3.Connection) -> Lease | None:
            held = _read_lease(connection)
            now = now_ms()
            live = held is not None and now - held.heartbeat_ms < _LEASE_MS
            if held is not None and live and held.token not in (token, replacing):
                return held
            _write_lease(connection, Lease(token, pid, now, host))
            return None

        blocking = await self._call(acquire)
        if blocking is None:
            self._fence_token = token  # only once the lease is committed
        return blocking

    async def renew_lease(self, token: str) -> bool:
        """Refresh our heartbeat; False when the lease is someone else's now."""

        def renew(connection: sqlite3.Connection) -> bool:
            held = _read_lease(connection)
            if held is None or held.token != token:
                return False
            _write_lease(connection, Lease(token, held.pid, now_ms(), held.host))
            return True

        return await self._call(renew)

    async def release_lease(self, token: str) -> None:
        """Give the lease up if it is ours."""

        def release(connection: sqlite3.Connection) -> None:
            held = _read_lease(connection)
            if held is not None and held.token == token:
                connection.execute("DELETE FROM kv WHERE key = ?", (_LEASE_KEY,))
                self._fence_token = None
            # Otherwise the lease is another orchestrator's: this store stays fenced, so a
            # write still queued here cannot overwrite the new owner's data.

        await self._call(release)

    async def current_lease(self) -> Lease | None:
        """The live lease, if any."""

        def current(connection: sqlite3.Connection) -> Lease | None:
            held = _read_lease(connection)
            if held is None or now_ms() - held.heartbeat_ms >= _LEASE_MS:
                return None
            return held

        return await self._call(current)

    async def submit_command(self, task_id: str, action: str) -> int:
        """Queue a command for the owner."""
        row = (now_ms(), task_id, action)
        return await self._call(
            lambda c: int(
                c.execute(
                    "INSERT INTO commands (ts, task_id, action) VALUES (?, ?, ?)", row
                ).lastrowid
                or 0
            )
        )

    async def expire_command(self, seq: int) -> bool:
        """Withdraw a command nobody has applied yet; False if it was applied meanwhile."""

        def expire(connection: sqlite3.Connection) -> bool:
            cursor = connection.execute(
                "UPDATE commands SET state = 'expired' WHERE seq = ? AND state = 'pending'", (seq,)
            )
            return cursor.rowcount == 1

        return await self._call(expire)

    async def pending_commands(self) -> list[Command]:
        """Commands not yet applied, oldest first."""
        rows = await self._call(
            lambda c: c.execute(
                "SELECT seq, task_id, action FROM commands WHERE state = 'pending' ORDER BY seq"
            ).fetchall()
        )
        return [Command(seq, task_id, action) for seq, task_id, action in rows]

    async def claim_command(self, seq: int) -> bool:
        """Take a pending command to apply it; False if it was withdrawn or taken already."""

        def claim(connection: sqlite3.Connection) -> bool:
            cursor = connection.execute(
                "UPDATE commands SET state = 'applying' WHERE seq = ? AND state = 'pending'",
                (seq,),
            )
            return cursor.rowcount == 1

        return await self._call(_fenced(claim))

    async def finish_command(self, seq: int, state: str, message: str) -> None:
        """Record what became of a command this owner claimed."""
        await self._call(
            _fenced(
                lambda c: c.execute(
                    "UPDATE commands SET state = ?, message = ? WHERE seq = ? AND state = 'applying'",
                    (state, message, seq),
                )
            )
        )

    async def command_outcome(self, seq: int) -> tuple[str, str | None]:
        """A command's state and message."""
        row = await self._call(
            lambda c: c.execute(
                "SELECT state, message FROM commands WHERE seq = ?", (seq,)
            ).fetchone()
        )
        if row is None:
            raise StoreError(self.path, f"no command {seq}")
        return str(row[0]), row[1]


_UPSERT_TASK = (
    "INSERT INTO tasks (id, doc) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc"
)
_INSERT_EVENT = "INSERT INTO events (ts, type, task_id, data) VALUES (?, ?, ?, ?)"


def _json_text(value: object) -> str:
    """JSON text for an event's data: pydantic's serializer, six times faster than ``json.dumps``
    on these small dicts, else ``json.dumps``.

    Event data holds only strings, numbers, booleans, None, lists and string-keyed dicts, for
    which both give the same JSON (pydantic's without the optional spaces and without escaping
    non-ASCII text). Unlike ``json.dumps``, pydantic's also writes bytes, sets, dates and models
    instead of refusing them; nothing puts those in event data."""
    try:
        return to_json(value).decode()
    except PydanticSerializationError:
        return json.dumps(value)


def _document(task: OrchestratedTask) -> str:
    """The task as JSON text, the same as ``json.dumps(task.to_dict())``."""
    md = task.metadata
    plain = (
        not task.extra
        and not md.extra
        and (md.result is None or not md.result.extra)
        and all(not step.extra for step in md.steps)
    )
    # pydantic's own serializer is five times faster, and gives the same text when no model
    # carries unknown keys to merge back in.
    if plain:
        return task.model_dump_json(by_alias=True, exclude_none=True)
    return json.dumps(task.to_dict())


__all__ = ["DEFAULT_FILE_NAME", "SqliteStore", "default_store_path"]
