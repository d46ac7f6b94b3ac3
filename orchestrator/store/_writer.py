"""The writer thread behind ``SqliteStore``: one connection, group commit, savepoints, fencing.

All reads and writes go through a single connection owned by one thread, so the event loop never
blocks on the disk. Writes queued while a transaction is under way are committed together in the
next one, each in its own savepoint: a write that fails is undone alone. A caller's ``await``
returns once its write is committed. Once the store's service owns the file (its lease), writes
marked ``_fenced`` commit only while the lease is still its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from orchestrator.errors import StoreError
from orchestrator.store._schema import check_existing_file, describe_database_error, migrate
from orchestrator.store._shared import LEASE_SECONDS, Lease

logger = logging.getLogger("dagorch.store")

_T = TypeVar("_T")
_Operation = Callable[[sqlite3.Connection], Any]
_STOP = object()
_GROUP_LIMIT = 512


class SqliteWriter:
    """Owns the file's connection and the thread that uses it."""

    def __init__(self, path: Path, *, busy_timeout: float = 10.0) -> None:
        self.path = path
        """The database file."""
        self.busy_timeout = busy_timeout
        """Seconds to wait for a lock another process holds before failing."""
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._connection: sqlite3.Connection | None = None
        self._fence_token: str | None = None
        """Once this store's service owns the file, writes commit only while it still does."""
        self._read_connection: sqlite3.Connection | None = None
        self._read_lock = threading.Lock()
        """Held while the read connection is used: callers on several threads share it, and a
        read transaction must not take in another thread's statements."""

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
        if self._read_connection is not None:
            self._read_connection.close()
            self._read_connection = None
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

    def _reader(self) -> sqlite3.Connection:
        """A read-only connection for short reads made on the caller's thread, opened on first
        use; WAL lets it read committed data while the writer writes."""
        if self._thread is None:
            raise StoreError(self.path, "the store is not open")
        if self._read_connection is None:
            try:
                uri = f"{self.path.resolve().as_uri()}?mode=ro"
                self._read_connection = sqlite3.connect(
                    uri, uri=True, check_same_thread=False, timeout=self.busy_timeout
                )
            except sqlite3.Error as exc:
                raise StoreError(self.path, describe_database_error(exc)) from exc
        return self._read_connection

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
        """One transaction for the group. Tried first without savepoints (three statements
        fewer per write); if any write fails, the transaction is rolled back and run again
        with each write in its own savepoint, so only the failing one is undone."""
        if len(group) > 1 and self._run_group_at_once(connection, group):
            return
        self._run_group_apart(connection, group)

    def _run_group_at_once(self, connection: sqlite3.Connection, group: list[Any]) -> bool:
        """True when the whole group committed; False (nothing committed) when it must be
        run write by write."""
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            # Locked by another process past the busy timeout, say: no point trying again.
            _rollback(connection)
            error = StoreError(self.path, describe_database_error(exc))
            _wake(group, [(future, None, error) for _, _, future in group])
            return True
        try:
            if self._fence_token is not None and not self._holds_lease(connection):
                _rollback(connection)
                return False
            results = [operation(connection) for operation, _, _ in group]
            connection.execute("COMMIT")
        except Exception:
            _rollback(connection)
            return False
        outcomes: list[_Outcome] = [
            (future, result, None) for (_, _, future), result in zip(group, results, strict=True)
        ]
        _wake(group, outcomes)
        return True

    def _run_group_apart(self, connection: sqlite3.Connection, group: list[Any]) -> None:
        try:
            connection.execute("BEGIN IMMEDIATE")
            fenced = self._fence_token is not None and not self._holds_lease(connection)
        except Exception as exc:
            # A malformed lease record (not only a database error) must fail this group, not
            # leave its writers waiting and the transaction open.
            _rollback(connection)
            cause = (
                describe_database_error(exc)
                if isinstance(exc, sqlite3.Error)
                else f"unreadable lease record ({type(exc).__name__}: {exc})"
            )
            _wake(group, [(future, None, StoreError(self.path, cause)) for _, _, future in group])
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
                        self._run_group_apart(connection, others)
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
        return await asyncio.shield(self._submit(operation))

    def _submit(self, operation: Callable[[sqlite3.Connection], _T]) -> asyncio.Future[_T]:
        """Queue ``operation`` now (so writes keep the order they were made in); the future
        settles once it is committed."""
        if self._thread is None:
            raise StoreError(self.path, "the store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        self._queue.put((operation, loop, future))
        return future

    # -- the Store protocol -----------------------------------------------------------------


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


_UPSERT_VALUE = "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"


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
