"""Concurrent changes are never lost, even on a store whose writes really suspend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import anyio.lowlevel

from hookspecs.models import JsonValue, OrchestratedTask
from orchestrator import TaskStatus


class SuspendingStore:
    """A store that serialises each task when handed it, then yields before keeping the copy,
    as a database driver would."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.values: dict[str, JsonValue] = {}

    async def open(self) -> None:
        await anyio.lowlevel.checkpoint()

    async def close(self) -> None:
        await anyio.lowlevel.checkpoint()

    async def load_tasks(self) -> list[OrchestratedTask]:
        await anyio.lowlevel.checkpoint()
        return [OrchestratedTask.from_dict(row) for row in self.rows.values()]

    logs_events = False
    writes_at_once = False

    async def read_events(self, after: int = 0, limit: int = 1000) -> list[Any]:
        return []

    async def prune_events(self, keep: int) -> int:
        return 0

    async def read_output(self, task_id: str) -> None:
        return None

    async def put_tasks(self, tasks: Sequence[OrchestratedTask], events: Any = ()) -> None:
        rows = [task.to_dict() for task in tasks]
        await anyio.lowlevel.checkpoint()
        for row in rows:
            self.rows[row["id"]] = row

    async def delete_task(self, task_id: str) -> None:
        await anyio.lowlevel.checkpoint()
        self.rows.pop(task_id, None)

    async def get_value(self, key: str) -> JsonValue:
        await anyio.lowlevel.checkpoint()
        return self.values.get(key)

    async def set_value(self, key: str, value: JsonValue) -> None:
        await anyio.lowlevel.checkpoint()
        self.values[key] = value


async def test_a_thousand_concurrent_output_lines_on_a_hundred_tasks_are_all_kept(make_service):
    store = SuspendingStore()
    service = await make_service(store=store)
    tasks = [await service.create_task(f"t{i}", "") for i in range(100)]

    async with anyio.create_task_group() as tg:
        for task in tasks:
            for line in range(10):
                tg.start_soon(service.append_output, task.id, f"{task.name} line {line}")

    for task in tasks:
        expected = {f"{task.name} line {line}" for line in range(10)}
        assert set((await service.get_task(task.id)).metadata.output) == expected
        assert set(store.rows[task.id]["metadata"]["output"]) == expected


async def test_a_cancel_racing_progress_and_output_is_never_lost(make_service):
    store = SuspendingStore()
    service = await make_service(store=store)
    task = await service.create_task("t", "")

    async with anyio.create_task_group() as tg:
        tg.start_soon(service.update_task_progress, task.id, 40)
        tg.start_soon(service.cancel_task, task.id)
        tg.start_soon(service.append_output, task.id, "late line")
        tg.start_soon(service.update_task_progress, task.id, 60)

    stored = store.rows[task.id]["metadata"]
    assert stored["status"] == TaskStatus.CANCELLED.value
    assert stored["output"] == ["late line"]
    assert stored["progress"] == 60
    assert (await service.get_task(task.id)).metadata.status is TaskStatus.CANCELLED


async def test_a_new_service_on_the_same_store_sees_what_the_first_stored(make_service):
    store = SuspendingStore()
    first = await make_service(store=store)
    upstream = await first.create_task("upstream", "")
    downstream = await first.create_task("downstream", "", depends_on=[upstream.id])
    await first.run()
    await first.stop()

    second = await make_service(store=store)

    reloaded = await second.get_task(downstream.id)
    assert reloaded.metadata.status is TaskStatus.COMPLETED
    assert second.get_dependencies(downstream.id) == [upstream.id]
    assert second.get_current_task_id() == upstream.id
