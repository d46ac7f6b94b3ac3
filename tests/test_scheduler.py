"""Concurrency limits, timeouts and retries."""

from __future__ import annotations

import anyio

from orchestrator import OrchestratedTask, ProviderError, TaskResult, TaskStatus
from orchestrator.testing import FunctionProvider, GatedProvider, succeed


class Occupancy:
    """Counts how many tasks are inside a provider at once."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0

    async def occupy(self, task: OrchestratedTask, ctx) -> TaskResult:
        self.now += 1
        self.peak = max(self.peak, self.now)
        await anyio.sleep(0.01)
        self.now -= 1
        return TaskResult(success=True, summary="occupied")


async def test_no_more_tasks_run_at_once_than_the_global_limit(make_service):
    occupancy = Occupancy()
    service = await make_service(FunctionProvider("busy", occupancy.occupy), max_concurrency=3)
    for i in range(12):
        await service.create_task(f"t{i}", "")

    summary = await service.run()

    assert summary.ok
    assert occupancy.peak == 3


async def test_a_provider_limit_caps_that_provider_only(make_service):
    narrow, wide = Occupancy(), Occupancy()
    service = await make_service(
        FunctionProvider("narrow", narrow.occupy),
        FunctionProvider("wide", wide.occupy),
        max_concurrency=10,
        provider_concurrency={"narrow": 2},
    )
    for i in range(6):
        await service.create_task(f"n{i}", "", provider_id="narrow")
        await service.create_task(f"w{i}", "", provider_id="wide")

    summary = await service.run()

    assert summary.ok
    assert narrow.peak == 2
    assert wide.peak == 6


async def test_an_attempt_that_takes_too_long_fails_with_a_timeout(make_service):
    async def hang(task, ctx) -> TaskResult:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    service = await make_service(FunctionProvider("hang", hang))
    task = await service.create_task("t", "", timeout=0.05)

    finished = await service.start_task_execution(task.id)

    assert finished.metadata.status is TaskStatus.FAILED
    assert finished.metadata.error == "Timed out after 0.05s"


def flaky(failures: int) -> FunctionProvider:
    async def fail_then_succeed(task, ctx) -> TaskResult:
        if len(provider.calls) <= failures:
            raise RuntimeError(f"failure {len(provider.calls)}")
        return TaskResult(success=True, summary="finally")

    provider = FunctionProvider("flaky", fail_then_succeed)
    return provider


async def test_a_failing_attempt_is_retried_until_it_succeeds(make_service):
    provider = flaky(failures=2)
    service = await make_service(provider)
    task = await service.create_task("t", "", retries=2)

    finished = await service.start_task_execution(task.id)

    assert finished.metadata.status is TaskStatus.COMPLETED
    assert len(provider.calls) == 3
    assert finished.metadata.attempts == 3
    assert any(
        line.startswith("Attempt 1 failed: failure 1; retrying in")
        for line in finished.metadata.output
    )


async def test_a_task_fails_with_the_last_error_once_its_retries_are_spent(make_service):
    provider = flaky(failures=10)
    service = await make_service(provider)
    task = await service.create_task("t", "", retries=2)

    finished = await service.start_task_execution(task.id)

    assert finished.metadata.status is TaskStatus.FAILED
    assert finished.metadata.error == "failure 3"
    assert len(provider.calls) == 3


async def test_an_unsuccessful_result_is_retried_too(make_service):
    async def unlucky_once(task, ctx) -> TaskResult:
        if len(provider.calls) == 1:
            return TaskResult(success=False, summary="no", error="flaky test run")
        return TaskResult(success=True, summary="yes")

    provider = FunctionProvider("unlucky", unlucky_once)
    service = await make_service(provider)
    task = await service.create_task("t", "", retries=1)

    finished = await service.start_task_execution(task.id)

    assert finished.metadata.status is TaskStatus.COMPLETED
    assert len(provider.calls) == 2


async def test_a_provider_error_marked_not_retryable_is_not_retried(make_service):
    async def refuse(task, ctx) -> TaskResult:
        raise ProviderError("bad parameter: model", retryable=False)

    provider = FunctionProvider("refuse", refuse)
    service = await make_service(provider)
    task = await service.create_task("t", "", retries=5)

    finished = await service.start_task_execution(task.id)

    assert finished.metadata.status is TaskStatus.FAILED
    assert finished.metadata.error == "bad parameter: model"
    assert len(provider.calls) == 1


async def test_a_cancelled_task_is_never_retried(make_service):
    started = anyio.Event()

    async def wait_forever(task, ctx) -> TaskResult:
        started.set()
        while True:
            await ctx.checkpoint()
            await anyio.sleep(0.005)

    provider = FunctionProvider("forever", wait_forever)
    service = await make_service(provider)
    task = await service.create_task("t", "", retries=3)
    handle = service.start_task_execution(task.id)
    await started.wait()

    await service.cancel_task(task.id)
    finished = await handle

    assert finished.metadata.status is TaskStatus.CANCELLED
    assert len(provider.calls) == 1


async def test_a_cancel_during_the_retry_backoff_ends_the_wait_at_once(make_service):
    provider = flaky(failures=10)
    service = await make_service(provider, retry_backoff=30, retry_backoff_max=30)
    task = await service.create_task("t", "", retries=3)
    async with service.stream_events("task:output") as outputs:
        handle = service.start_task_execution(task.id)
        while not any(
            "retrying" in line for line in (await outputs.next(timeout=2)).data["output"]
        ):
            pass

    await service.cancel_task(task.id)
    with anyio.fail_after(2):
        finished = await handle

    assert finished.metadata.status is TaskStatus.CANCELLED
    assert len(provider.calls) == 1


async def test_waiting_on_finished_tasks_keeps_nothing_behind(make_service):
    service = await make_service()
    task = await service.create_task("t", "")
    await service.start_task_execution(task.id)

    for _ in range(100):
        await service.wait_for_task(task.id)

    assert service._scheduler._finished == {}


async def test_a_task_waiting_for_a_providers_slot_runs_once_moved_to_a_free_provider(
    make_service,
):
    busy = GatedProvider("narrow")
    service = await make_service(
        busy,
        FunctionProvider("free", succeed),
        max_concurrency=4,
        provider_concurrency={"narrow": 1},
    )
    holding = await service.create_task("holding", "", provider_id="narrow")
    service.start_task_execution(holding.id)
    await busy.started.wait()
    waiting = await service.create_task("waiting", "", provider_id="narrow")
    handle = service.start_task_execution(waiting.id)
    await anyio.sleep(0.05)  # queued behind the busy provider's one slot
    assert (await service.get_task(waiting.id)).metadata.status is TaskStatus.PENDING

    await service.set_task_sub_agent_type(waiting.id, "free")

    with anyio.fail_after(5):
        assert (await handle.wait()).metadata.status is TaskStatus.COMPLETED
    busy.release()
