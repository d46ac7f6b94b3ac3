"""Faults: providers, handlers and hooks that misbehave. Each time the orchestrator keeps serving
the other tasks, the failing task ends with a clear error, and nothing stored is lost."""

from __future__ import annotations

import asyncio
import resource
import sqlite3
import time
from typing import Any

import anyio
import pytest
from processes import alive

from hookspecs import hookimpl
from orchestrator import SqliteStore, TaskResult, TaskStatus
from orchestrator.testing import FunctionProvider, GatedProvider, succeed


async def test_a_flood_of_a_million_output_lines_keeps_memory_bounded_and_the_last_lines(
    make_service,
):
    async def flood(task, ctx):
        for chunk in range(1_000):
            await ctx.append_output("\n".join(f"line {chunk * 1000 + i}" for i in range(1000)))
        return TaskResult(success=True)

    service = await make_service(FunctionProvider("flood", flood), FunctionProvider("ok", succeed))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    flooding = await service.create_task("flood", "", provider_id="flood")
    other = await service.create_task("other", "", provider_id="ok")
    summary = await service.run()
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert summary.ok
    done = await service.get_task(flooding.id)
    assert len(done.metadata.output) == 500
    assert done.metadata.output[-1] == "line 999999"
    assert done.metadata.output[0] == "line 999500"
    assert (await service.get_task(other.id)).metadata.status is TaskStatus.COMPLETED
    assert grown_mb < 200


async def test_a_provider_that_uses_its_context_after_finishing_changes_nothing(make_service):
    kept: list[Any] = []

    async def leaky(task, ctx):
        kept.append(ctx)
        return TaskResult(success=True, summary="done")

    service = await make_service(FunctionProvider("leaky", leaky))
    task = await service.create_task("t", "")
    done = await service.start_task_execution(task.id)
    await kept[0].append_output("too late")
    await kept[0].update_progress(3)
    assert await kept[0].add_step("too late") is None
    after = await service.get_task(task.id)
    assert after.metadata.status is TaskStatus.COMPLETED
    assert after.metadata.output == done.metadata.output
    assert after.metadata.progress == done.metadata.progress


async def test_a_provider_whose_process_dies_leaving_a_child_fails_and_the_child_is_killed(
    make_service,
):
    service = await make_service(FunctionProvider("ok", succeed))
    task = await service.create_task(
        "t",
        "",
        provider_id="shell",
        params={"command": "sleep 60 & echo child=$!; exit 3", "shell": True},
    )
    done = await service.start_task_execution(task.id)
    assert done.metadata.status is TaskStatus.FAILED
    assert done.metadata.error == "Command exited with code 3"
    child = int(
        next(line for line in done.metadata.output if line.startswith("child=")).split("=")[1]
    )
    with anyio.fail_after(5):
        while alive(child):
            await anyio.sleep(0.02)


async def test_a_handler_that_raises_or_blocks_does_not_hold_up_other_tasks(make_service, caplog):
    service = await make_service(handler_timeout=0.2)

    def raising(event):
        raise RuntimeError("handler broke")

    async def blocking(event):
        await asyncio.Event().wait()

    service.on("task", raising)
    service.on("task:completed", blocking)
    started = time.monotonic()
    tasks = [await service.create_task(f"t{i}", "") for i in range(3)]
    summary = await service.run()
    assert summary.ok
    assert len(summary.statuses) == len(tasks)
    assert time.monotonic() - started < 5
    assert "An event handler took over 0.2s for task:completed" in caplog.text
    assert "Event handler failed" in caplog.text


async def test_an_observer_hook_that_blocks_is_cut_off(make_service, caplog):
    class Stuck:
        @hookimpl
        async def before_task_run(self, task):
            await asyncio.Event().wait()

    service = await make_service(handler_timeout=0.2)
    service.register_plugin(Stuck(), "stuck")
    task = await service.create_task("t", "")
    done = await service.start_task_execution(task.id)
    assert done.metadata.status is TaskStatus.COMPLETED
    assert "Plugin stuck took over 0.2s in hook before_task_run" in caplog.text


async def test_a_failed_store_write_fails_that_call_and_keeps_what_was_stored(
    make_service, store_kind
):
    service = await make_service()
    first = await service.create_task("first", "")
    await service.run()
    store = service.store
    real = store.put_tasks
    failures = {"left": 1}

    async def full_disk(*args: Any, **kwargs: Any) -> Any:
        if failures["left"]:
            failures["left"] -= 1
            raise OSError(28, "No space left on device")
        return await real(*args, **kwargs)

    store.put_tasks = full_disk  # type: ignore[method-assign]
    try:
        await service.create_task("second", "")
    except OSError as exc:
        assert "No space left on device" in str(exc)
    else:
        raise AssertionError("the failed write was not reported")
    third = await service.create_task("third", "")
    await service.run()
    assert (await service.get_task(first.id)).metadata.status is TaskStatus.COMPLETED
    assert (await service.get_task(third.id)).metadata.status is TaskStatus.COMPLETED
    assert [t.name for t in await service.get_tasks()] == ["first", "third"]


class _HeldCreation:
    """``create_task("U")`` with its store write held until ``refuse()`` (a full disk) or
    ``allow()``; the store's own ``put_tasks`` is back once either returns."""

    def __init__(self, service: Any) -> None:
        self._store = service.store
        self._real = service.store.put_tasks
        self._writing, self._go = asyncio.Event(), asyncio.Event()
        self._refused = False
        self._store.put_tasks = self._put
        self._creating = asyncio.ensure_future(service.create_task("U", task_id="U"))

    async def _put(self, tasks: Any, *args: Any, **kwargs: Any) -> Any:
        if any(task.id == "U" for task in tasks):
            self._writing.set()
            await self._go.wait()
            if self._refused:
                raise OSError(28, "No space left on device")
        return await self._real(tasks, *args, **kwargs)

    async def under_way(self) -> None:
        """Wait until U's write has begun."""
        await self._writing.wait()

    async def refuse(self) -> None:
        """Refuse the write; create_task raises it."""
        self._refused = True
        self._go.set()
        try:
            with pytest.raises(OSError, match="No space left"):
                await self._creating
        finally:
            del self._store.put_tasks

    async def allow(self) -> None:
        """Let the write through; create_task returns."""
        self._go.set()
        try:
            await self._creating
        finally:
            del self._store.put_tasks


async def _x_wanted_behind_a_gate(service: Any) -> None:
    """X, wanted, waits for G, which runs on the gated provider until released."""
    await service.create_task("G", task_id="G", provider_id="gated")
    await service.create_task("X", task_id="X", depends_on=["G"])
    service.start_task_execution("X")


async def test_a_dependency_on_a_task_whose_creation_the_store_refuses_is_dropped(
    make_service, store_kind
):
    gated = GatedProvider()
    service = await make_service(FunctionProvider("ok", succeed), gated)
    await _x_wanted_behind_a_gate(service)
    await gated.started.wait()
    creation = _HeldCreation(service)
    await creation.under_way()
    await service.add_dependency("X", "U")  # while U's write is under way
    await creation.refuse()

    assert service.get_dependencies("X") == ["G"]
    gated.release()
    with anyio.fail_after(5):
        done = await service.wait_for_task("X")
    assert done.metadata.status is TaskStatus.COMPLETED
    assert await service.get_task("U") is None


async def test_the_dependencies_a_refused_creation_drops_are_stored(make_service, store_kind):
    service = await make_service()
    await service.create_task("X", task_id="X")
    creation = _HeldCreation(service)
    await creation.under_way()
    await service.add_dependency("X", "U")
    await creation.refuse()
    await service.stop()

    again = await make_service(store=service.store)
    assert again.get_dependencies("X") == []


async def test_a_new_task_wanted_while_its_creation_is_written_waits_for_the_store(
    make_service, store_kind
):
    gated, ok = GatedProvider(), FunctionProvider("ok", succeed)
    service = await make_service(ok, gated)
    await _x_wanted_behind_a_gate(service)
    await gated.started.wait()
    creation = _HeldCreation(service)
    await creation.under_way()
    await service.add_dependency("X", "U")  # X is wanted, so U is wanted too
    for _ in range(20):
        await asyncio.sleep(0)  # turns of the loop in which U could have started
    assert ok.calls == []
    await creation.refuse()
    gated.release()
    with anyio.fail_after(5):
        await service.wait_for_task("X")
    await service.stop()

    assert ok.calls == ["X"]
    again = await make_service(ok, gated, store=service.store)
    assert await again.get_task("U") is None


async def test_a_new_task_wanted_while_its_creation_is_written_starts_once_stored(make_service):
    service = await make_service()
    await service.create_task("X", task_id="X")
    creation = _HeldCreation(service)
    await creation.under_way()
    await service.add_dependency("X", "U")
    running = asyncio.ensure_future(service.run())
    for _ in range(20):
        await asyncio.sleep(0)
    await creation.allow()
    with anyio.fail_after(5):
        summary = await running

    assert summary.statuses == {"X": TaskStatus.COMPLETED, "U": TaskStatus.COMPLETED}


@pytest.mark.parametrize("store_kind", ["sqlite"])
async def test_a_write_the_disk_refuses_mid_run_is_logged_and_the_run_goes_on(
    make_service, tmp_path, caplog
):
    path = tmp_path / "refusing.db"
    service = await make_service(store=SqliteStore(path), max_concurrency=4)
    # A real SQLite error from inside the file: completing the task "victim" is refused.
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TRIGGER refuse BEFORE UPDATE ON tasks"
            " WHEN NEW.id = 'victim' AND json_extract(NEW.doc, '$.metadata.status') = 'completed'"
            " BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END"
        )
    ids = await service.create_tasks(
        [{"name": "victim", "task_id": "victim"}, *({"name": f"t{i}"} for i in range(20))]
    )

    summary = await service.run()

    assert summary.ok and len(summary.statuses) == 21
    assert "database or disk is full" in caplog.text and str(path) in caplog.text
    later = await service.create_task("later", "")
    assert (await service.start_task_execution(later.id)).metadata.status is TaskStatus.COMPLETED
    await service.stop()
    with sqlite3.connect(path) as db:
        db.execute("DROP TRIGGER refuse")
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    again = await make_service(store=SqliteStore(path))
    assert (await again.run()).ok
    stored = {t.id: t.metadata.status for t in await again.get_tasks()}
    assert set(stored) == {*ids, later.id}
    assert set(stored.values()) == {TaskStatus.COMPLETED}
