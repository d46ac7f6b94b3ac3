"""Races between control calls, the scheduler and the runner, and other hard cases."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import anyio
import pytest
from providers import Probe

from hookspecs import hookimpl
from orchestrator import (
    DagorchError,
    IllegalTransitionError,
    MemoryStore,
    TaskResult,
    TaskStatus,
)
from orchestrator.testing import FunctionProvider, GatedProvider, succeed


class YieldingStore(MemoryStore):
    """A MemoryStore whose writes yield to the loop first (as every real store does) and that
    records the status each write stored, so tests can compare memory with the store."""

    def __init__(self) -> None:
        super().__init__()
        self.stored: dict[str, TaskStatus] = {}

    async def put_tasks(self, tasks, events=()):
        taken = [(t.id, t.metadata.status) for t in tasks]
        await anyio.lowlevel.checkpoint()
        self.stored.update(taken)
        return await super().put_tasks(tasks, events)


class HeldStore(YieldingStore):
    """Holds the first write that carries a terminal task until ``release`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.holding = anyio.Event()
        self.release = anyio.Event()

    async def put_tasks(self, tasks, events=()):
        if not self.holding.is_set() and any(t.metadata.status.is_terminal for t in tasks):
            self.holding.set()
            await self.release.wait()
        return await super().put_tasks(tasks, events)


# -- stop ------------------------------------------------------------------------------------


async def test_stop_releases_a_run_in_progress(make_service):
    gate = GatedProvider()
    service = await make_service(gate)
    await service.create_task("t", "")
    hung = True

    async def run_it() -> None:
        nonlocal hung
        with anyio.move_on_after(1):
            with contextlib.suppress(Exception):
                await service.run()
            hung = False

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_it)
            await gate.started.wait()
            await service.stop()

    assert not hung


async def test_a_run_ended_by_stop_raises_instead_of_returning_a_summary(make_service):
    gate = GatedProvider()
    service = await make_service(gate)
    await service.create_task("t", "")
    running = asyncio.ensure_future(service.run())
    await gate.started.wait()

    await service.stop()

    with pytest.raises(DagorchError, match="stopped before the run finished"):
        await running


async def test_stop_never_starts_a_provider_call(make_service):
    calls: list[str] = []

    async def record(task, ctx) -> TaskResult:
        calls.append(task.id)
        await anyio.lowlevel.checkpoint()
        return TaskResult(success=True, summary="ran")

    service = await make_service(FunctionProvider("rec", record))
    task = await service.create_task("t", "")
    service.start_task_execution(task.id)
    await anyio.lowlevel.checkpoint()  # _pump has made the worker; it has not run yet

    with anyio.fail_after(5):
        await service.stop()

    assert calls == []


# -- cancel / pause / resume racing the runner -----------------------------------------------


async def test_cancel_during_the_started_write_never_calls_the_provider(make_service):
    calls: list[str] = []

    async def record(task, ctx) -> TaskResult:
        calls.append(task.id)
        await anyio.lowlevel.checkpoint()
        return TaskResult(success=True, summary="ran")

    service = await make_service(FunctionProvider("rec", record))
    task = await service.create_task("t", "")

    async def cancel_on_start(event) -> None:
        await service.cancel_task(event.task_id)

    service.on("task:started", cancel_on_start)
    with anyio.fail_after(5):
        finished = await service.start_task_execution(task.id)

    assert finished.metadata.status is TaskStatus.CANCELLED
    assert calls == []


async def test_resume_racing_the_runner_start_keeps_the_task_running(make_service):
    probe = Probe()
    service = await make_service(probe)
    task = await service.create_task("t", "")

    async def pause_and_resume(event) -> None:
        await service.pause_task(event.task_id)
        await service.resume_task(event.task_id)

    service.on("task:started", pause_and_resume)
    handle = service.start_task_execution(task.id)
    with anyio.fail_after(5):
        await probe.started.wait()
        status = (await service.get_task(task.id)).metadata.status
        probe.go.set()
        await handle

    assert status is TaskStatus.RUNNING


@pytest.mark.parametrize("pause_first", [True, False])
async def test_update_status_pending_never_requeues_a_live_run(make_service, pause_first):
    probe = Probe()
    service = await make_service(probe)
    task = await service.create_task("t", "")
    handle = service.start_task_execution(task.id)
    with anyio.fail_after(5):
        await probe.started.wait()
    if pause_first:
        await service.pause_task(task.id)

    with contextlib.suppress(IllegalTransitionError):
        await service.update_task_status(task.id, TaskStatus.PENDING)

    status = (await service.get_task(task.id)).metadata.status
    live = service._scheduler.has_live_runner(task.id)
    probe.go.set()
    if status is TaskStatus.PAUSED:
        await service.cancel_task(task.id)
    with anyio.fail_after(5):
        await handle
    assert not (live and status is TaskStatus.PENDING)


async def test_cancel_during_backoff_is_not_an_internal_error(make_service, caplog):
    async def fail(task, ctx) -> TaskResult:
        raise RuntimeError("boom")

    service = await make_service(
        FunctionProvider("fail", fail), retry_backoff=5, retry_backoff_max=5
    )
    task = await service.create_task("t", "", retries=1)
    outputs = service.stream_events("task:output")
    handle = service.start_task_execution(task.id)
    with anyio.fail_after(5):
        async for event in outputs:
            if any("retrying" in line for line in event.data["output"]):
                break
        await service.cancel_task(task.id)
        finished = await handle

    assert finished.metadata.status is TaskStatus.CANCELLED
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]


async def test_a_stray_cancelled_error_from_a_provider_fails_the_task(make_service):
    async def rogue(task, ctx) -> TaskResult:
        fut = asyncio.get_running_loop().create_future()
        fut.cancel()
        await fut  # e.g. a library future cancelled by someone else
        raise AssertionError("unreachable")

    service = await make_service(FunctionProvider("rogue", rogue))
    task = await service.create_task("t", "")
    handle = service.start_task_execution(task.id)
    finished = None
    with anyio.move_on_after(1):
        finished = await handle

    assert finished is not None
    assert finished.metadata.status is TaskStatus.FAILED


# -- the write path cut by cancellation ------------------------------------------------------


def async_recorder(seen: list[str]):
    """An ordinary async handler (say, one forwarding events over a socket)."""

    async def forward(event) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append(event.type.value)

    return forward


async def test_a_provider_cancelling_itself_is_announced(make_service):
    holder: dict[str, object] = {}

    async def cancel_self(task, ctx) -> TaskResult:
        await holder["service"].cancel_task(task.id)
        await ctx.checkpoint()
        return TaskResult(success=True, summary="unreachable")

    service = await make_service(FunctionProvider("selfcancel", cancel_self), cancel_grace_period=0)
    holder["service"] = service
    task = await service.create_task("t", "")
    seen: list[str] = []
    service.on("task", async_recorder(seen))

    with anyio.fail_after(5):
        finished = await service.start_task_execution(task.id)

    assert finished.metadata.status is TaskStatus.CANCELLED
    assert "task:cancelled" in seen


async def test_a_cancelled_caller_still_announces_the_change(make_service):
    service = await make_service()
    task = await service.create_task("t", "")
    seen: list[str] = []
    service.on("task", async_recorder(seen))

    with anyio.CancelScope() as scope:
        scope.cancel()
        await service.cancel_task(task.id)

    with anyio.fail_after(5):
        waited = await service.wait_for_task(task.id)
    assert waited.metadata.status is TaskStatus.CANCELLED
    assert "task:cancelled" in seen


@pytest.mark.parametrize("waiter", ["wait_for_task", "run"])
async def test_waiters_never_return_before_the_final_write(make_service, waiter):
    store = HeldStore()
    service = await make_service(store=store)
    task = await service.create_task("t", "")
    returned_early = False

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(service.set_task_error, task.id, "by hand")
            await store.holding.wait()
            with anyio.move_on_after(0.2):
                if waiter == "run":
                    await service.run()
                else:
                    await service.wait_for_task(task.id)
                returned_early = True
            store.release.set()

    assert not returned_early


# -- scheduler accounting --------------------------------------------------------------------


@pytest.mark.parametrize("action", ["cancel", "pause", "delete"])
async def test_a_stale_blocked_task_does_not_starve_the_others(make_service, action):
    gate = GatedProvider("narrow")
    service = await make_service(gate, provider_concurrency={"narrow": 1})
    a, b, c = [await service.create_task(n, "") for n in "abc"]
    service.start_task_execution(a.id)
    service.start_task_execution(b.id)
    handle_c = service.start_task_execution(c.id)
    with anyio.fail_after(5):
        await gate.started.wait()
    assert gate.calls == [a.id]  # b then c wait in the provider's blocked queue

    await getattr(service, f"{action}_task")(b.id)
    gate.release()
    finished = None
    with anyio.move_on_after(1):
        finished = await handle_c

    assert finished is not None
    assert finished.metadata.status is TaskStatus.COMPLETED


# -- dependencies added or removed late ------------------------------------------------------


async def test_a_dependency_added_to_a_queued_task_holds_it(make_service):
    gate = GatedProvider()
    ran: list[str] = []

    async def record(task, ctx) -> TaskResult:
        ran.append(task.id)
        return TaskResult(success=True, summary="ran")

    service = await make_service(gate, FunctionProvider("rec", record))
    up = await service.create_task("up", "")
    down = await service.create_task("down", "", provider_id="rec")
    handle = service.start_task_execution(down.id)  # queued: no upstream yet
    await service.add_dependency(down.id, up.id)

    with anyio.move_on_after(0.3):
        await handle

    assert ran == []  # `up` has not even started


async def test_a_dependency_added_to_a_wanted_task_is_scheduled(make_service):
    gate = GatedProvider()
    service = await make_service(gate, FunctionProvider("quick", succeed))
    first = await service.create_task("first", "")
    later = await service.create_task("later", "", provider_id="quick")
    down = await service.create_task("down", "", provider_id="quick", depends_on=[first.id])
    handle = service.start_task_execution(down.id)
    with anyio.fail_after(5):
        await gate.started.wait()
    await service.add_dependency(down.id, later.id)
    gate.release()

    finished = None
    with anyio.move_on_after(1):
        finished = await handle

    assert finished is not None
    assert finished.metadata.status is TaskStatus.COMPLETED


async def test_remove_dependency_on_a_deleted_upstream(make_service):
    service = await make_service()
    up = await service.create_task("up", "")
    down = await service.create_task("down", "", depends_on=[up.id])
    with anyio.fail_after(5):
        assert (await service.run()).ok
    await service.delete_task(up.id)

    with contextlib.suppress(DagorchError):
        await service.remove_dependency(down.id, up.id)


# -- delete ----------------------------------------------------------------------------------


async def test_an_id_reused_after_delete_runs(make_service):
    probe = Probe(obey=False)
    service = await make_service(probe, FunctionProvider("quick", succeed), cancel_grace_period=0.3)
    await service.create_task("old", "", task_id="same")
    service.start_task_execution("same")
    with anyio.fail_after(5):
        await probe.started.wait()
    await service.delete_task("same")
    await service.create_task("new", "", task_id="same", provider_id="quick")

    finished = None
    with anyio.move_on_after(2):
        finished = await service.start_task_execution("same")

    assert finished is not None
    assert finished.name == "new"
    assert finished.metadata.status is TaskStatus.COMPLETED


# -- providers -------------------------------------------------------------------------------


async def test_a_provider_change_applies_to_the_next_attempt(make_service):
    holder: dict[str, object] = {}

    async def fail_and_switch(task, ctx) -> TaskResult:
        await holder["service"].set_task_sub_agent_type(task.id, "second")
        raise RuntimeError("first provider failed")

    first = FunctionProvider("first", fail_and_switch)
    second = FunctionProvider("second", succeed)
    service = await make_service(first, second)
    holder["service"] = service
    task = await service.create_task("t", "", retries=1)

    with anyio.fail_after(5):
        finished = await service.start_task_execution(task.id)

    assert second.calls == [task.id]
    assert finished.metadata.status is TaskStatus.COMPLETED


# -- reports, numbering, opening -------------------------------------------------------------


async def test_a_cancelled_task_ignores_reports_from_its_lingering_provider(make_service):
    probe = Probe(obey=False)
    service = await make_service(probe, cancel_grace_period=5)
    task = await service.create_task("t", "")
    handle = service.start_task_execution(task.id)
    with anyio.fail_after(5):
        await probe.started.wait()
    await service.cancel_task(task.id)

    await probe.ctx.update_progress(60)
    await probe.ctx.append_output("still working")

    after = await service.get_task(task.id)
    probe.go.set()
    with anyio.fail_after(5):
        await handle
    assert after.metadata.status is TaskStatus.CANCELLED
    assert after.metadata.progress == 0
    assert "still working" not in after.metadata.output


@pytest.mark.parametrize("store_kind", ["sqlite"], indirect=True)
async def test_event_numbers_are_unique_with_a_logging_store(make_service):
    service = await make_service()
    task = await service.create_task("t", "")  # logged as event 1 (nobody listens live yet)
    live = service.stream_events()
    follower = service.follow_events(after=0)
    service.set_current_task(task.id)
    await service.update_task_progress(task.id, 40)
    with anyio.fail_after(5):
        delivered = [await live.next(), await live.next()]
    logged = {e.seq: e for e in await service.read_events(0)}

    got = []
    with anyio.fail_after(5):
        for _ in range(3):  # created, selected, progress 40 (selected may come after progress)
            got.append(await follower.__anext__())
    follower.close()

    assert len(logged) == 3
    for event in delivered:
        assert logged[event.seq].data == event.data, "a live event reuses another's number"
    assert sorted(e.seq for e in got) == [1, 2, 3]
    assert {str(e.data) for e in got[1:]} == {str({"selected": True}), str({"progress": 40})}


async def test_concurrent_first_calls_wait_for_the_open(tmp_path):
    from orchestrator import AgentOrchestratorPluginOptions, AgentOrchestratorService, SqliteStore

    options = AgentOrchestratorPluginOptions(
        providers=[FunctionProvider("ok", succeed)], default_provider_id="ok"
    )
    path = tmp_path / "lazy.db"
    first = await AgentOrchestratorService.start(options=options, store=SqliteStore(path))
    task = await first.create_task("kept", "")
    await first.stop()

    lazy = AgentOrchestratorService(options=options, store=SqliteStore(path))
    try:
        with anyio.fail_after(5):
            seen = await asyncio.gather(lazy.get_task(task.id), lazy.get_task(task.id))
    finally:
        await lazy.stop()
    assert all(t is not None for t in seen)


# -- control that arrives while an attempt is prepared or timing out -------------------------


async def test_a_pause_from_a_started_handler_holds_the_provider_until_resumed(make_service):
    seen_paused: list[bool] = []

    async def execute(task, ctx):
        seen_paused.append(ctx.is_paused())
        return TaskResult(success=True, summary="done")

    service = await make_service(FunctionProvider("p", execute))
    task = await service.create_task("x", "")

    async def pause_it(event):
        await service.pause_task(event.task_id)

    service.on("task:started", pause_it)
    handle = service.start_task_execution(task.id)
    with anyio.move_on_after(0.3):
        await handle.wait()

    assert seen_paused == []
    assert (await service.get_task(task.id)).metadata.status is TaskStatus.PAUSED
    service.off("task:started", pause_it)
    await service.resume_task(task.id)
    assert (await handle.wait()).metadata.status is TaskStatus.COMPLETED
    assert seen_paused == [False]


async def test_a_cancel_during_a_before_run_hook_never_calls_the_provider(make_service):
    called: list[str] = []

    async def execute(task, ctx):
        called.append(task.id)
        return TaskResult(success=True, summary="done")

    class SlowHook:
        @hookimpl
        async def before_task_run(self, task, attempt):
            await asyncio.sleep(0.2)

    service = await make_service(FunctionProvider("p", execute), cancel_grace_period=1.0)
    service.register_plugin(SlowHook(), name="slow-hook")
    task = await service.create_task("x", "")
    handle = service.start_task_execution(task.id)
    await asyncio.sleep(0.05)

    await service.cancel_task(task.id)

    assert (await handle.wait()).metadata.status is TaskStatus.CANCELLED
    assert called == []


async def test_a_pause_during_the_clean_up_after_a_timeout_keeps_the_timeout_and_retry(
    make_service,
):
    async def slow(task, ctx):
        try:
            await asyncio.sleep(10)
        finally:
            with anyio.CancelScope(shield=True):
                await asyncio.sleep(0.2)  # clean-up, such as ending a subprocess
        return TaskResult(success=True, summary="never")

    service = await make_service(FunctionProvider("p", slow))
    task = await service.create_task("x", "", timeout=0.05, retries=1)
    service.start_task_execution(task.id)
    await asyncio.sleep(0.12)  # the deadline passed; the provider is cleaning up

    await service.pause_task(task.id)
    await asyncio.sleep(0.3)

    paused = await service.get_task(task.id)
    assert paused.metadata.status is TaskStatus.PAUSED
    assert paused.metadata.error is None
    assert any("Timed out after 0.05s; retrying" in line for line in paused.metadata.output)


async def test_a_timeout_error_raised_by_the_provider_is_a_retried_failure(make_service):
    calls: list[str] = []

    async def times_out(task, ctx):
        calls.append(task.id)
        raise TimeoutError("upstream http timeout")

    service = await make_service(FunctionProvider("p", times_out))
    task = await service.create_task("x", "", retries=1)

    ended = await service.start_task_execution(task.id)

    assert ended.metadata.status is TaskStatus.FAILED
    assert ended.metadata.error == "upstream http timeout"
    assert len(calls) == 2


class RecordingStore(MemoryStore):
    """A MemoryStore whose own put_tasks never suspends (and says so) and records the status
    each write stored."""

    writes_at_once = True

    def __init__(self) -> None:
        super().__init__()
        self.stored: dict[str, TaskStatus] = {}

    async def put_tasks(self, tasks, events=()):
        self.stored.update((t.id, t.metadata.status) for t in tasks)
        return await super().put_tasks(tasks, events)


@pytest.mark.parametrize("store_kind", ["memory"])
async def test_a_store_that_replaced_put_tasks_sees_every_write_of_a_run(make_service):
    store = RecordingStore()
    service = await make_service(store=store)
    task = await service.create_task("t", "")

    done = await service.start_task_execution(task.id)

    assert done.metadata.status is TaskStatus.COMPLETED
    assert store.stored[task.id] is TaskStatus.COMPLETED


async def leaves_a_cancel_request(task, ctx) -> TaskResult:
    """What some old timeout helpers do: cancel the current task, catch the CancelledError and
    go on without Task.uncancel()."""
    asyncio.current_task().cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(0)
    return TaskResult(success=True, summary="done")


async def test_a_cancel_after_a_provider_left_a_cancel_request_on_the_worker_is_still_ours(
    make_service,
):
    started = anyio.Event()

    async def waits(task, ctx) -> TaskResult:
        started.set()
        await anyio.sleep(30)
        return TaskResult(success=True)

    service = await make_service(
        FunctionProvider("sloppy", leaves_a_cancel_request),
        FunctionProvider("waits", waits),
        FunctionProvider("ok", succeed),
        max_concurrency=1,
    )
    tasks = [
        await service.create_task(name, "", provider_id=provider)
        for name, provider in (("a", "sloppy"), ("b", "waits"), ("c", "ok"))
    ]
    handles = [service.start_task_execution(t.id) for t in tasks]
    with anyio.fail_after(5):
        await started.wait()
        await service.cancel_task(tasks[1].id)
        done = [await handle for handle in handles]

    assert [t.metadata.status for t in done] == [
        TaskStatus.COMPLETED,
        TaskStatus.CANCELLED,
        TaskStatus.COMPLETED,
    ]


@pytest.mark.parametrize("store_kind", ["memory"])
async def test_a_put_tasks_set_on_the_store_after_start_sees_every_write_of_a_run(make_service):
    service = await make_service()
    store = service.store
    stored: dict[str, TaskStatus] = {}
    real = store.put_tasks

    async def recording(tasks, events=()):
        stored.update((t.id, t.metadata.status) for t in tasks)
        return await real(tasks, events)

    store.put_tasks = recording
    task = await service.create_task("t", "")

    await service.start_task_execution(task.id)

    assert stored[task.id] is TaskStatus.COMPLETED
