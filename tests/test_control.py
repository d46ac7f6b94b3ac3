"""Cancel and pause reach the provider; resume never re-runs a finished task."""

from __future__ import annotations

import math

import anyio
import pytest
from providers import Probe

from orchestrator import (
    IllegalTransitionError,
    TaskResult,
    TaskStatus,
)
from orchestrator.testing import FunctionProvider, GatedProvider, succeed


async def start_probe(make_service, probe: Probe, **options):
    service = await make_service(probe, **options)
    task = await service.create_task("probe", "")
    handle = service.start_task_execution(task.id)
    await probe.started.wait()
    return service, task, handle


async def test_cancel_makes_is_cancelled_true_at_once(make_service):
    probe = Probe()
    service, task, _ = await start_probe(make_service, probe)

    await service.cancel_task(task.id)

    assert probe.ctx.is_cancelled()
    assert (await service.get_task(task.id)).metadata.status is TaskStatus.CANCELLED


async def test_a_provider_that_ignores_cancel_is_cancelled_after_the_grace_period(make_service):
    probe = Probe(obey=False)
    service, task, handle = await start_probe(make_service, probe, cancel_grace_period=0.05)

    await service.cancel_task(task.id)
    with anyio.fail_after(5):
        finished = await handle

    assert probe.cancelled_by_scope
    assert finished.metadata.status is TaskStatus.CANCELLED
    assert finished.metadata.error == "Cancelled by user"


async def test_checkpoint_raises_once_cancelled_and_the_task_stays_cancelled(make_service):
    probe = Probe()
    service, task, handle = await start_probe(make_service, probe, cancel_grace_period=5)

    await service.cancel_task(task.id)
    with anyio.fail_after(2):
        finished = await handle

    assert finished.metadata.status is TaskStatus.CANCELLED
    assert len(probe.calls) == 1


async def test_a_cancel_before_the_provider_starts_wins(make_service):
    provider = FunctionProvider("rec", succeed)
    service = await make_service(provider)
    task = await service.create_task("t", "")
    handle = service.start_task_execution(task.id)

    await service.cancel_task(task.id)
    finished = await handle

    assert provider.calls == []
    assert finished.metadata.status is TaskStatus.CANCELLED


async def test_success_returned_after_a_cancel_leaves_the_task_cancelled(make_service):
    probe = Probe(obey=False)
    service, task, handle = await start_probe(make_service, probe, cancel_grace_period=5)
    events: list[str] = []
    service.on("task", lambda e: events.append(e.type.value))

    await service.cancel_task(task.id)
    probe.go.set()
    finished = await handle

    assert finished.metadata.status is TaskStatus.CANCELLED
    assert "task:completed" not in events
    assert finished.metadata.result is None


async def sleeps_through(task, ctx) -> TaskResult:
    """Awaits ten short sleeps, so a cancellation that is not its own would cut it short."""
    for _ in range(10):
        await anyio.sleep(0.01)
    return TaskResult(success=True, summary="slept")


async def cancel_first_of_two_on_one_worker(make_service, probe: Probe, **options):
    """Run "first" (on ``probe``) then "second" (ten short sleeps) on one worker, cancel "first"
    once it started, and return both tasks when finished."""
    service = await make_service(
        probe, FunctionProvider("sleeper", sleeps_through), max_concurrency=1, **options
    )
    first = await service.create_task("first", "")
    second = await service.create_task("second", "", provider_id="sleeper")
    handles = [service.start_task_execution(first.id), service.start_task_execution(second.id)]
    await probe.started.wait()

    await service.cancel_task(first.id)
    with anyio.fail_after(5):
        return [await handle for handle in handles]


async def test_a_worker_whose_provider_call_was_cancelled_runs_its_next_task_in_full(
    make_service,
):
    probe = Probe(obey=False)

    # The probe ignores the cancel: its call is cancelled through the worker's scope at once.
    done = await cancel_first_of_two_on_one_worker(make_service, probe, cancel_grace_period=0)

    assert probe.cancelled_by_scope
    assert [t.metadata.status for t in done] == [TaskStatus.CANCELLED, TaskStatus.COMPLETED]
    assert done[1].metadata.result.summary == "slept"


async def test_a_cancel_reaches_the_provider_of_each_task_a_worker_runs_in_turn(make_service):
    started: list[anyio.Event] = [anyio.Event(), anyio.Event()]
    cut_short: list[str] = []

    async def ignores_cancel(task, ctx) -> TaskResult:
        started[len(cut_short)].set()
        try:
            await anyio.sleep(30)
        except anyio.get_cancelled_exc_class():
            cut_short.append(task.id)
            raise
        return TaskResult(success=True)

    service = await make_service(
        FunctionProvider("stubborn", ignores_cancel), max_concurrency=1, cancel_grace_period=0
    )
    tasks = [await service.create_task(name, "") for name in ("first", "second")]
    handles = [service.start_task_execution(task.id) for task in tasks]

    with anyio.fail_after(5):
        for task, event in zip(tasks, started, strict=True):
            await event.wait()
            await service.cancel_task(task.id)
        done = [await handle for handle in handles]

    assert cut_short == [tasks[0].id, tasks[1].id]
    assert [t.metadata.status for t in done] == [TaskStatus.CANCELLED, TaskStatus.CANCELLED]


async def test_a_grace_period_ending_during_the_workers_next_task_leaves_that_task_alone(
    make_service,
):
    # The probe obeys at once; the grace period (50 ms) ends while "second" sleeps (100 ms).
    done = await cancel_first_of_two_on_one_worker(make_service, Probe())

    assert [t.metadata.status for t in done] == [TaskStatus.CANCELLED, TaskStatus.COMPLETED]
    assert done[1].metadata.result.summary == "slept"


async def test_checkpoint_blocks_while_paused_and_resume_continues_the_same_run(make_service):
    probe = Probe()
    service, task, handle = await start_probe(make_service, probe)

    await service.pause_task(task.id)
    assert probe.ctx.is_paused()
    probe.go.set()
    with anyio.move_on_after(0.1):
        await handle
    assert not handle.done()
    assert (await service.get_task(task.id)).metadata.status is TaskStatus.PAUSED

    await service.resume_task(task.id)
    finished = await handle

    assert finished.metadata.status is TaskStatus.COMPLETED
    assert len(probe.calls) == 1


async def test_a_paused_queued_task_does_not_start_until_resumed(make_service):
    provider = FunctionProvider("rec", succeed)
    service = await make_service(provider)
    task = await service.create_task("t", "")
    await service.pause_task(task.id)
    handle = service.start_task_execution(task.id)
    with anyio.move_on_after(0.05):
        await handle
    assert provider.calls == []

    await service.resume_task(task.id)
    finished = await handle

    assert finished.metadata.status is TaskStatus.COMPLETED
    assert provider.calls == [task.id]


async def test_resume_never_reruns_a_finished_task(make_service):
    gate = GatedProvider()
    service = await make_service(gate)
    task = await service.create_task("t", "")
    gate.release()
    await service.start_task_execution(task.id)

    with pytest.raises(IllegalTransitionError, match="completed"):
        await service.resume_task(task.id)

    assert gate.calls == [task.id]


async def test_pausing_a_running_task_holds_its_dependents(make_service):
    probe = Probe()
    log: list[str] = []

    async def record(task, ctx) -> TaskResult:
        log.append(task.name)
        return TaskResult(success=True, summary="ok")

    service = await make_service(probe, FunctionProvider("rec", record))
    first = await service.create_task("first", "")
    await service.create_task("second", "", provider_id="rec", depends_on=[first.id])
    await service.pause_task(first.id)
    running = anyio.Event()

    async def drive() -> None:
        running.set()
        await service.run()

    async with anyio.create_task_group() as tg:
        tg.start_soon(drive)
        await running.wait()
        await service.resume_task(first.id)
        await probe.started.wait()
        await service.pause_task(first.id)
        probe.go.set()
        with anyio.move_on_after(0.05):
            await service.wait_for_task(first.id)
        assert log == []
        await service.resume_task(first.id)

    assert log == ["second"]


async def test_update_step_from_the_context_works_without_output(make_service):
    async def stepper(task, ctx) -> TaskResult:
        await ctx.update_step(task.metadata.steps[0].id, TaskStatus.COMPLETED)
        return TaskResult(success=True, summary="stepped")

    service = await make_service(FunctionProvider("steps", stepper))
    task = await service.create_task("t", "")
    await service.add_step(task.id, "only step")

    finished = await service.start_task_execution(task.id)

    assert finished.metadata.status is TaskStatus.COMPLETED
    assert finished.metadata.steps[0].status is TaskStatus.COMPLETED
    assert finished.metadata.progress == 100


@pytest.mark.parametrize(("reported", "stored"), [(math.nan, 0), (math.inf, 100), (-math.inf, 0)])
async def test_non_finite_progress_from_the_context_is_clamped(make_service, reported, stored):
    async def report(task, ctx) -> TaskResult:
        await ctx.update_progress(reported)
        return TaskResult(success=True, summary="reported")

    service = await make_service(FunctionProvider("p", report))
    task = await service.create_task("t", "")

    finished = await service.start_task_execution(task.id)

    assert finished.metadata.status is TaskStatus.COMPLETED
    assert finished.metadata.progress == stored


async def test_reports_after_the_run_ended_change_nothing(make_service):
    kept = []

    async def leak_context(task, ctx) -> TaskResult:
        kept.append(ctx)
        return TaskResult(success=True, summary="done")

    service = await make_service(FunctionProvider("leak", leak_context))
    task = await service.create_task("t", "")
    before = await service.start_task_execution(task.id)

    await kept[0].append_output("too late")
    await kept[0].update_progress(3)

    after = await service.get_task(task.id)
    assert after.metadata.output == before.metadata.output
    assert after.metadata.progress == before.metadata.progress


async def test_a_paused_task_does_not_time_out_while_paused(make_service):
    probe = Probe()
    service = await make_service(probe)
    task = await service.create_task("t", "", timeout=0.3)
    handle = service.start_task_execution(task.id)
    await probe.started.wait()

    await service.pause_task(task.id)
    await anyio.sleep(0.4)
    await service.resume_task(task.id)
    probe.go.set()
    finished = await handle

    assert finished.metadata.status is TaskStatus.COMPLETED
