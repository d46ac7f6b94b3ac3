"""Hard cases for announcing changes, opening, creating and remote commands."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest

from hookspecs.models import TaskEvent, TaskStatus
from orchestrator import AgentOrchestratorPluginOptions, AgentOrchestratorService, SqliteStore
from orchestrator.errors import ConfigurationError, RemoteControlError
from orchestrator.remote import RemoteControl
from orchestrator.testing import FunctionProvider, succeed

sqlite_only = pytest.mark.parametrize("store_kind", ["sqlite"])


def _blocking_pause_handler(gate: asyncio.Event, blocked_id: list[str]) -> Any:
    async def handler(event: TaskEvent) -> None:
        if blocked_id and event.task_id == blocked_id[0]:
            await gate.wait()

    return handler


# -- announcing while another announcement is under way -------------------------------------


async def test_flush_returns_after_its_events_are_delivered(make_service: Any) -> None:
    service = await make_service()
    a = await service.create_task("a", "x")
    b = await service.create_task("b", "x")
    gate = asyncio.Event()
    seen: list[tuple[str, str]] = []
    service.on("task:paused", _blocking_pause_handler(gate, [a.id]))
    service.on("task:paused", lambda e: seen.append((e.type.value, e.task_id)))
    slow = asyncio.ensure_future(service.pause_task(a.id))
    await asyncio.sleep(0.05)  # a's handler is now awaiting the gate
    try:
        await service.pause_task(b.id)
        # pause_task(b) has returned: its event should have reached the handlers.
        assert ("task:paused", b.id) in seen
    finally:
        gate.set()
        await slow


async def test_handler_waiting_for_another_tasks_event_is_not_starved(make_service: Any) -> None:
    service = await make_service()
    a = await service.create_task("a", "x")
    b = await service.create_task("b", "x")
    outcome: list[str] = []
    cancelled = service.stream_events("task:cancelled")

    async def on_paused(event: TaskEvent) -> None:
        if event.task_id != a.id:
            return
        try:
            got = await cancelled.next(timeout=1.0)
            outcome.append(got.task_id)
        except TimeoutError:
            outcome.append("timeout")

    service.on("task:paused", on_paused)
    pausing = asyncio.ensure_future(service.pause_task(a.id))
    await asyncio.sleep(0.05)
    await service.cancel_task(b.id)  # its own coroutine used to deliver this event
    await pausing
    assert outcome == [b.id]


async def test_wait_for_task_returns_after_completed_event(make_service: Any) -> None:
    service = await make_service()
    a = await service.create_task("a", "x")
    b = await service.create_task("b", "x")
    gate = asyncio.Event()
    completed: list[str] = []
    service.on("task:paused", _blocking_pause_handler(gate, [a.id]))
    service.on("task:completed", lambda e: completed.append(e.task_id))
    slow = asyncio.ensure_future(service.pause_task(a.id))
    await asyncio.sleep(0.05)
    try:
        await service.start_task_execution(b.id)
        await asyncio.wait_for(service.wait_for_task(b.id), 2)
        assert b.id in completed
    finally:
        gate.set()
        await slow


async def test_a_cancelled_announcement_does_not_hold_back_another_tasks(make_service: Any) -> None:
    service = await make_service()
    a = await service.create_task("a", "x")
    b = await service.create_task("b", "x")
    gate = asyncio.Event()
    seen: list[str] = []
    service.on("task:paused", _blocking_pause_handler(gate, [a.id]))
    service.on("task:paused", lambda e: seen.append(e.task_id))
    slow = asyncio.ensure_future(service.pause_task(a.id))
    await asyncio.sleep(0.05)
    await service.pause_task(b.id)  # while a's announcement is still being delivered
    slow.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await slow

    assert b.id in seen


@sqlite_only
async def test_create_cancelled_during_delivery_keeps_memory_and_store_in_step(
    make_service: Any,
) -> None:
    service = await make_service()
    gate = asyncio.Event()

    async def slow_created(event: TaskEvent) -> None:
        await gate.wait()

    service.on("task:created", slow_created)
    creating = asyncio.ensure_future(service.create_task("late", "x"))
    await asyncio.sleep(0.1)
    creating.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await creating
    stored = {t.id for t in await service.store.load_tasks()}
    in_memory = {t.id for t in await service.get_tasks()}
    assert stored == in_memory


# -- remote commands -------------------------------------------------------------------------


@sqlite_only
async def test_expired_command_is_never_applied(make_service: Any, tmp_path: Path) -> None:
    path = tmp_path / "owned.db"
    service = await make_service(store=SqliteStore(path))
    a = await service.create_task("a", "x")
    b = await service.create_task("b", "x")

    async def slow_pause(event: TaskEvent) -> None:
        if event.task_id == a.id:
            await asyncio.sleep(0.6)

    service.on("task:paused", slow_pause)
    async with RemoteControl(path, timeout=5) as first, RemoteControl(path, timeout=0.3) as second:
        # Both commands are in the inbox before the owner's next poll.
        seq_a = await first._store.submit_command(a.id, "pause")
        with pytest.raises(RemoteControlError):
            await second.pause_task(b.id)
        del seq_a
    await asyncio.sleep(1.0)
    task = await service.get_task(b.id)
    assert task is not None
    assert task.metadata.status is not TaskStatus.PAUSED


# -- opening ---------------------------------------------------------------------------------


@sqlite_only
async def test_open_can_be_retried_after_failure(make_service: Any, tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    owner = await make_service(store=SqliteStore(path))
    options = AgentOrchestratorPluginOptions(providers=[FunctionProvider("ok", succeed)])
    late = AgentOrchestratorService(options=options, store=SqliteStore(path))
    with pytest.raises(ConfigurationError):
        await late.get_tasks()
    await owner.stop()
    try:
        assert await late.get_tasks() == []
    finally:
        with contextlib.suppress(Exception):
            await late.stop()
