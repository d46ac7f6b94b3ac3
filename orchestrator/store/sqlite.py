"""The durable default store: one SQLite file in WAL mode, written by one thread.

All reads and writes of a store go through a single connection owned by a writer thread, so the
event loop never blocks on the disk. Writes queued while a transaction is under way are committed
together in the next one (group commit), which keeps many concurrent runs cheap; a caller's
``await`` returns only once its write is committed. If a grouped transaction fails, its writes are
retried one by one, so one bad write cannot take the others with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from hookspecs.models import JsonValue, OrchestratedTask, TaskEvent, TaskEventType, now_ms
from orchestrator.errors import StoreError
from orchestrator.store._base import EventRecord
from orchestrator.store._schema import (
    APPLICATION_ID,
    check_existing_file,
    describe_database_error,
    migrate,
)
from orchestrator.store._shared import LEASE_SECONDS, Command, Lease

logger = logging.getLogger("dagorch.store")

DEFAULT_FILE_NAME = "dagorch.db"
"""The database file's name inside the dagorch home folder."""

_T = TypeVar("_T")
_Operation = Callable[[sqlite3.Connection], Any]
_STOP = object()
_GROUP_LIMIT = 512


def default_store_path(agent_id: str = "") -> Path:
    """``$DAGORCH_HOME/dagorch.db``, or ``.dagorch/dagorch.db`` in the current folder.

    With an agent id (a service started for an ElizaOS runtime) the file is
    ``agent-<id>.db`` beside it, so agents sharing a process and folder each own a file.
    """
    home = os.environ.get("DAGORCH_HOME", "").strip()
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in agent_id)
    return Path(home or ".dagorch") / (f"agent-{safe}.db" if safe else DEFAULT_FILE_NAME)


class SqliteStore:
    """Tasks, named values and their history in one SQLite file (``default_store_path()``)."""

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, busy_timeout: float = 10.0
    ) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        self.busy_timeout = busy_timeout
        """Seconds to wait for a lock another process holds before failing."""
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._connection: sqlite3.Connection | None = None
        self._fence_token: str | None = None
        """Once this store's service owns the file, writes commit only while it still does."""

    # -- lifecycle --------------------------------------------------------------------------

    async def open(self) -> None:
        """Check the file (refusing one that is not ours), create or migrate it, start writing."""
        if self._thread is not None:
            return
        self._connection = await asyncio.to_thread(self._connect)
        self._thread = threading.Thread(
            target=self._serve, name=f"dagorch-sqlite:{self.path}", daemon=True
        )
        self._thread.start()

    async def close(self) -> None:
        """Commit what is queued, stop the writer thread and close the file."""
        thread = self._thread
        if thread is None:
            return
        self._thread = None
        self._queue.put(_STOP)
        await asyncio.to_thread(thread.join)
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _connect(self) -> sqlite3.Connection:
        path = self.path
        check_existing_file(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=self.busy_timeout
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(path, f"cannot open the database: {exc}") from exc
        try:
            connection.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(path, f"cannot switch to WAL mode (journal mode is {mode})")
            connection.execute("PRAGMA synchronous = NORMAL")
            migrate(connection, path)
        except sqlite3.Error as exc:
            connection.close()
            raise StoreError(path, describe_database_error(exc)) from exc
        except BaseException:
            connection.close()
            raise
        return connection

    # -- the writer thread ------------------------------------------------------------------

    def _serve(self) -> None:
        connection = self._connection
        assert connection is not None
        try:
            while True:
                first = self._queue.get()
                if first is _STOP:
                    return
                group = [first]
                stop = False
                while len(group) < _GROUP_LIMIT:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stop = True
                        break
                    group.append(item)
                try:
                    self._run_group(connection, group)
                except Exception:
                    logger.exception("The writer of %s failed on a group of writes", self.path)
                if stop:
                    return
        finally:
            self._fail_queued()

    def _fail_queued(self) -> None:
        # Nobody waits forever on a store that has stopped writing.
        closed = StoreError(self.path, "the store was closed before this write")
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP:
                _wake([item], [(item[2], None, closed)])

    def _run_group(self, connection: sqlite3.Connection, group: list[Any]) -> None:
        """One transaction for the group; each write in its own savepoint, so one that fails is
        undone alone and the others still commit."""
        try:
            connection.execute("BEGIN IMMEDIATE")
            fenced = self._fence_token is not None and not self._holds_lease(connection)
        except sqlite3.Error as exc:
            _rollback(connection)
            error = StoreError(self.path, describe_database_error(exc))
            _wake(group, [(future, None, error) for _, _, future in group])
            return
        outcomes: list[_Outcome] = []
        for index, (operation, _, future) in enumerate(group):
            if fenced and getattr(operation, "fenced", False):
                lost = StoreError(self.path, "another orchestrator has taken over this file")
                outcomes.append((future, None, lost))
                continue
            try:
                connection.execute("SAVEPOINT write")
                result = operation(connection)
                connection.execute("RELEASE write")
            except Exception as exc:
                failure: BaseException = (
                    StoreError(self.path, describe_database_error(exc))
                    if isinstance(exc, sqlite3.Error)
                    else exc
                )
                if not connection.in_transaction:
                    # SQLite rolled the whole transaction back (a full disk does): report this
                    # write's failure and run the others again, in a new transaction.
                    _wake([group[index]], [(future, None, failure)])
                    others = group[:index] + group[index + 1 :]
                    if others:
                        self._run_group(connection, others)
                    return
                with contextlib.suppress(sqlite3.Error):
                    connection.execute("ROLLBACK TO write")
                    connection.execute("RELEASE write")
                outcomes.append((future, None, failure))
            else:
                outcomes.append((future, result, None))
        try:
            connection.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(connection)
            error = StoreError(self.path, describe_database_error(exc))
            outcomes = [(future, None, error) for future, _, _ in outcomes]
        _wake(group, outcomes)

    def _holds_lease(self, connection: sqlite3.Connection) -> bool:
        held = _read_lease(connection)
        return held is not None and held.token == self._fence_token

    async def _call(self, operation: Callable[[sqlite3.Connection], _T]) -> _T:
        if self._thread is None:
            raise StoreError(self.path, "the store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        self._queue.put((operation, loop, future))
        return await asyncio.shield(future)

    # -- the Store protocol -----------------------------------------------------------------

    async def load_tasks(self) -> list[OrchestratedTask]:
        """Every stored task, oldest first."""
        rows = await self._call(
            lambda c: c.execute("SELECT doc FROM tasks ORDER BY seq").fetchall()
        )
        return [OrchestratedTask.from_dict(json.loads(doc)) for (doc,) in rows]

    logs_events = True
    """Events are logged in the same transaction as the change they describe."""

    async def put_tasks(
        self, tasks: Sequence[OrchestratedTask], events: Sequence[EventRecord] = ()
    ) -> int | None:
        """Insert or replace these tasks and log these events in one transaction."""
        rows = [(task.id, _document(task)) for task in tasks]
        logged = [
            (ts, kind, task_id, None if data is None else json.dumps(data))
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

        return await self._call(_fenced(write))

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

    async def read_output(self, task_id: str) -> list[str] | None:
        """Every output line of the task still in the event log, oldest first."""
        rows = await self._call(
            lambda c: c.execute(
                "SELECT data FROM events WHERE task_id = ? AND type = ? ORDER BY seq",
                (task_id, TaskEventType.OUTPUT.value),
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


def _fenced(operation: _Operation) -> _Operation:
    """Mark a write that may commit only while this store's service still owns the file."""
    operation.fenced = True  # type: ignore[attr-defined]
    return operation


_LEASE_KEY = "owner"
_LEASE_MS = int(LEASE_SECONDS * 1000)


def _read_lease(connection: sqlite3.Connection) -> Lease | None:
    row = connection.execute("SELECT value FROM kv WHERE key = ?", (_LEASE_KEY,)).fetchone()
    if row is None:
        return None
    data = json.loads(row[0])
    return Lease(
        str(data["token"]), int(data["pid"]), int(data["heartbeat_ms"]), str(data.get("host", ""))
    )


def _write_lease(connection: sqlite3.Connection, lease: Lease) -> None:
    value = json.dumps(
        {
            "token": lease.token,
            "pid": lease.pid,
            "heartbeat_ms": lease.heartbeat_ms,
            "host": lease.host,
        }
    )
    connection.execute(_UPSERT_VALUE, (_LEASE_KEY, value))


_UPSERT_TASK = (
    "INSERT INTO tasks (id, doc) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc"
)
_INSERT_EVENT = "INSERT INTO events (ts, type, task_id, data) VALUES (?, ?, ?, ?)"
_UPSERT_VALUE = "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"


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


_Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]


def _wake(group: list[Any], outcomes: list[_Outcome]) -> None:
    # One wake-up per event loop for the whole group: waking the loop costs more than the write.
    by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
    for (_, loop, _), outcome in zip(group, outcomes, strict=True):
        by_loop.setdefault(loop, []).append(outcome)
    for loop, settled in by_loop.items():
        # A caller whose event loop has closed is not there to be told.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle_all, settled)


def _settle_all(outcomes: list[_Outcome]) -> None:
    for future, result, error in outcomes:
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


def _rollback(connection: sqlite3.Connection) -> None:
    if connection.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            connection.execute("ROLLBACK")


__all__ = ["APPLICATION_ID", "DEFAULT_FILE_NAME", "SqliteStore", "default_store_path"]
