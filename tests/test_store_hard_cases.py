"""Hard cases for the SQLite store: group failures, leases, the inbox, the event log."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hookspecs.models import TaskEventType, TaskStatus
from orchestrator import AgentOrchestratorPluginOptions, AgentOrchestratorService, SqliteStore
from orchestrator._inbox import take_lease
from orchestrator.errors import RemoteControlError, StoreError
from orchestrator.remote import RemoteControl
from orchestrator.testing import FunctionProvider, succeed

sqlite_only = pytest.mark.parametrize("store_kind", ["sqlite"])


# -- writer thread --------------------------------------------------------------------------


async def test_bad_read_in_group_takes_unrelated_write_with_it(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    try:
        # Hold the writer briefly so the next two operations are committed as one group.
        slow = asyncio.ensure_future(store._call(lambda c: time.sleep(0.2)))
        await asyncio.sleep(0.05)
        write = asyncio.ensure_future(store.set_value("k", "committed"))
        bad = asyncio.ensure_future(store.read_events(after=2**64))
        await slow
        await asyncio.gather(write, bad, return_exceptions=True)
        assert write.exception() is None, write.exception()
        assert await store.get_value("k") == "committed"
    finally:
        await store.close()


async def test_writer_thread_survives_a_closed_loop(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    try:
        slow = asyncio.ensure_future(store._call(lambda c: time.sleep(0.3)))
        await asyncio.sleep(0.02)

        async def other_loop() -> None:
            # A caller on another loop gives up; its loop is closed before the write lands.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(store.get_value("x"), 0.01)

        await asyncio.to_thread(asyncio.run, other_loop())
        await slow
        await asyncio.sleep(0.1)
        assert await asyncio.wait_for(store.get_value("y"), 2) is None
    finally:
        await store.close()


# -- output history -------------------------------------------------------------------------


@sqlite_only
async def test_task_output_after_pruning(make_service: Any) -> None:
    service = await make_service(event_log_limit=3)
    task = await service.create_task("t")
    for i in range(10):
        await service.append_output(task.id, f"line {i}")
    store = service.store
    await service.stop()
    again = await make_service(event_log_limit=3, store=store)
    kept = (await again.get_task(task.id)).metadata.output
    assert kept == [f"line {i}" for i in range(10)]
    assert await again.get_task_output(task.id) == kept


# -- creation atomicity ---------------------------------------------------------------------


@sqlite_only
async def test_create_tasks_not_left_half_added(make_service: Any) -> None:
    service = await make_service()
    with pytest.raises(Exception):  # noqa: B017
        await service.create_tasks(
            [
                {"name": "fine", "task_id": "a"},
                {"name": "bad", "task_id": "b", "params": {"x": object()}},
            ]
        )
    assert await service.get_tasks() == []


# -- event following ------------------------------------------------------------------------


@sqlite_only
async def test_follow_events_no_gap_with_concurrent_batches(make_service: Any) -> None:
    service = await make_service()

    async def slow_handler(event: Any) -> None:
        await asyncio.sleep(0.05)

    service.on("task", slow_handler)
    follower = service.follow_events(after=0, event=TaskEventType.CREATED.value)
    seen: list[int] = []

    async def consume() -> None:
        while True:
            try:
                event = await follower.next(timeout=1.0)
            except TimeoutError:
                return
            seen.append(event.seq)

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0.1)  # replay done (empty log); following live events now
    await asyncio.gather(
        service.create_tasks([{"name": f"a{i}"} for i in range(3)]),
        service.create_tasks([{"name": f"b{i}"} for i in range(3)]),
    )
    await consumer
    follower.close()
    logged = [e.seq for e in await service.read_events() if e.type is TaskEventType.CREATED]
    assert seen == logged


# -- lease and inbox ------------------------------------------------------------------------


async def test_take_lease_force_does_not_steal_a_live_lease(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    other = SqliteStore(path)
    await other.open()
    dead_pid = 2**22 + 12345  # beyond pid_max on Linux defaults: never alive

    class Racing(SqliteStore):
        calls = 0

        async def acquire_lease(
            self, token: str, pid: int, host: str, *, replacing: str | None = None
        ) -> Any:
            Racing.calls += 1
            if Racing.calls == 2:
                # Another process saw the same dead owner and took over first.
                await other.acquire_lease("other", 1, host, replacing="dead")
            return await super().acquire_lease(token, pid, host, replacing=replacing)

    ours = Racing(path)
    await ours.open()
    try:
        import socket

        # The previous owner died on this host, leaving its lease behind.
        await other.acquire_lease("dead", dead_pid, socket.gethostname())
        with contextlib.suppress(Exception):
            await take_lease(ours, path)
        # "other" took a live lease first; it must still hold it.
        assert await other.renew_lease("other")
    finally:
        await ours.close()
        await other.close()


@sqlite_only
async def test_owner_stops_writing_after_losing_lease(make_service: Any, tmp_path: Path) -> None:
    path = tmp_path / "owned.db"
    service = await make_service(store=SqliteStore(path))
    task = await service.create_task("t")
    usurper = SqliteStore(path)
    await usurper.open()
    try:
        taken = await usurper.acquire_lease("usurper", 1, "elsewhere", replacing=service._lease)
        assert taken is None
        seq = await usurper.submit_command(task.id, "cancel")
        for _ in range(5):
            await usurper.renew_lease("usurper")
            await asyncio.sleep(0.1)
        state, _ = await usurper.command_outcome(seq)
        assert state == "pending"  # for the real owner, not the former one
        assert (await service.get_task(task.id)).metadata.status is TaskStatus.PENDING
    finally:
        await usurper.close()


OK_OPTIONS = AgentOrchestratorPluginOptions(providers=[FunctionProvider("ok", succeed)])


async def file_with_one_task(path: Path) -> str:
    """A store file holding one pending task, owned by nobody; the task's id."""
    async with await AgentOrchestratorService.start(
        options=OK_OPTIONS, store=SqliteStore(path)
    ) as first:
        return (await first.create_task("t")).id


@contextlib.asynccontextmanager
async def owner_not_reading_its_inbox(path: Path) -> AsyncIterator[None]:
    """Holds the file's lease without applying commands (an owner stalled, or stopping)."""
    holder = SqliteStore(path)
    await holder.open()
    await holder.acquire_lease("holder", 1, "elsewhere")
    try:
        yield
    finally:
        await holder.release_lease("holder")
        await holder.close()


async def status_once_owned_again(path: Path, task_id: str) -> TaskStatus:
    """The task's status after a new owner has read its inbox several times."""
    async with await AgentOrchestratorService.start(
        options=OK_OPTIONS, store=SqliteStore(path)
    ) as later:
        await asyncio.sleep(0.4)
        return (await later.get_task(task_id)).metadata.status


async def test_timed_out_remote_command_not_applied_later(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    task_id = await file_with_one_task(path)
    async with owner_not_reading_its_inbox(path):
        with pytest.raises(RemoteControlError):
            async with RemoteControl(path, timeout=0.3) as remote:
                await remote.cancel_task(task_id)

    assert await status_once_owned_again(path, task_id) is TaskStatus.PENDING


async def test_a_remote_command_whose_sender_gave_up_is_not_applied_later(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    task_id = await file_with_one_task(path)
    async with owner_not_reading_its_inbox(path), RemoteControl(path, timeout=30) as remote:
        sending = asyncio.ensure_future(remote.cancel_task(task_id))
        await asyncio.sleep(0.2)
        sending.cancel()  # Ctrl-C, or the caller's own time limit
        with contextlib.suppress(asyncio.CancelledError):
            await sending

    assert await status_once_owned_again(path, task_id) is TaskStatus.PENDING


async def test_a_remote_command_the_owner_is_still_applying_at_the_timeout_is_waited_for(
    tmp_path: Path,
) -> None:
    path = tmp_path / "r.db"
    options = AgentOrchestratorPluginOptions(
        providers=[FunctionProvider("ok", succeed)], handler_timeout=2
    )
    async with await AgentOrchestratorService.start(
        options=options, store=SqliteStore(path)
    ) as owner:
        task = await owner.create_task("t")

        async def slow_handler(event: Any) -> None:
            await asyncio.sleep(0.45)  # the owner claims the command, then takes this long

        owner.on("task:paused", slow_handler)
        async with RemoteControl(path, timeout=0.3) as remote:
            await remote.pause_task(task.id)

        assert (await owner.get_task(task.id)).metadata.status is TaskStatus.PAUSED


@sqlite_only
async def test_a_malformed_lease_record_fails_the_write_naming_it(
    make_service: Any, tmp_path: Path
) -> None:
    path = tmp_path / "owned.db"
    service = await make_service(store=SqliteStore(path))
    task = await service.create_task("t")
    other = sqlite3.connect(path)
    good = other.execute("SELECT value FROM kv WHERE key = 'owner'").fetchone()[0]
    with other:
        other.execute("UPDATE kv SET value = '{\"token\": \"x\"}' WHERE key = 'owner'")

    try:
        # Not a timeout around the call: store writes are shielded from cancellation.
        renaming = asyncio.ensure_future(service.rename_task(task.id, "renamed"))
        done, _ = await asyncio.wait({renaming}, timeout=5)
        assert done, "the write is still waiting for the store"
        with pytest.raises(StoreError, match="unreadable lease record"):
            renaming.result()
    finally:
        with other:
            other.execute("UPDATE kv SET value = ? WHERE key = 'owner'", (good,))
        other.close()

    await service.rename_task(task.id, "renamed after all")
    assert (await service.get_task(task.id)).name == "renamed after all"


async def test_remote_control_of_a_store_that_does_not_exist_is_refused_and_creates_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "missing" / "nowhere.db"

    with pytest.raises(RemoteControlError, match="no such store"):
        async with RemoteControl(path) as remote:
            await remote.pause_task("t")

    assert not path.exists() and not path.parent.exists()


async def test_a_command_for_an_owner_that_just_died_is_applied_at_once(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    task_id = await file_with_one_task(path)
    crashed = subprocess.Popen([sys.executable, "-c", "pass"])
    crashed.wait()  # its pid now belongs to no process
    dead = SqliteStore(path)  # the lease the crashed owner left, still fresh
    await dead.open()
    await dead.acquire_lease("crashed", crashed.pid, socket.gethostname())
    await dead.close()

    started = time.monotonic()
    async with RemoteControl(path, timeout=3) as remote:
        await remote.pause_task(task_id)

    assert time.monotonic() - started < 3
    assert await status_once_owned_again(path, task_id) is TaskStatus.PAUSED
