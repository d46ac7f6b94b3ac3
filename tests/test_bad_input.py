"""Each bad input gets a clear error, and nothing already stored is lost.

Every refusal is checked three ways: the error's type, its exact message, and that the stored tasks
are exactly as they were before the call.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from hookspecs.models import now_ms
from orchestrator import (
    AgentOrchestratorService,
    CycleError,
    DuplicateTaskError,
    IllegalTransitionError,
    InvalidTaskError,
    MemoryStore,
    OrchestratedTask,
    OrchestratedTaskMetadata,
    TaskEvent,
    TaskEventType,
    TaskInterruptedError,
    TaskNotFoundError,
    TaskResult,
    TaskStatus,
    UnknownDependencyError,
    UnknownProviderError,
)
from orchestrator.testing import FunctionProvider, succeed


async def stored(service: AgentOrchestratorService) -> list[dict[str, Any]]:
    return [task.to_dict() for task in await service.get_tasks()]


@pytest.fixture
async def service(make_service) -> AgentOrchestratorService:
    """A service with providers ``a`` and ``b`` and two stored tasks: ``y`` depends on ``x``."""
    svc = await make_service(FunctionProvider("a", succeed), FunctionProvider("b", succeed))
    await svc.create_task("x", "upstream", task_id="x")
    await svc.create_task("y", "downstream", task_id="y", depends_on=["x"])
    return svc


# -- the DAG --------------------------------------------------------------------------------


async def test_a_dependency_that_closes_a_cycle_is_refused_naming_the_cycle(service):
    before = await stored(service)
    with pytest.raises(CycleError) as caught:
        await service.add_dependency("x", "y")
    assert str(caught.value) == "Dependency would create a cycle: x (x) -> y (y) -> x (x)"
    assert caught.value.cycle == ["x", "y", "x"]
    assert await stored(service) == before


async def test_a_longer_cycle_names_every_task_on_it(make_service):
    service = await make_service()
    a = await service.create_task("a", "")
    b = await service.create_task("b", "", depends_on=[a.id])
    c = await service.create_task("c", "", depends_on=[b.id])
    before = await stored(service)
    with pytest.raises(CycleError) as caught:
        await service.add_dependency(a.id, c.id)
    assert str(caught.value) == (
        f"Dependency would create a cycle: a ({a.id}) -> b ({b.id}) -> c ({c.id}) -> a ({a.id})"
    )
    assert await stored(service) == before


async def test_a_task_cannot_depend_on_itself(service):
    before = await stored(service)
    with pytest.raises(CycleError) as caught:
        await service.add_dependency("x", "x")
    assert str(caught.value) == "Dependency would create a cycle: x (x) -> x (x)"
    assert await stored(service) == before


async def test_create_with_an_unknown_dependency_is_refused_naming_it(service):
    before = await stored(service)
    with pytest.raises(UnknownDependencyError) as caught:
        await service.create_task("z", "", task_id="z", depends_on=["x", "nope"])
    assert str(caught.value) == "Task z depends on unknown task 'nope'"
    assert caught.value.missing == "nope"
    assert await stored(service) == before


async def test_a_refused_create_leaves_its_id_free(service):
    with pytest.raises(UnknownDependencyError):
        await service.create_task("z", "", task_id="z", depends_on=["nope"])
    created = await service.create_task("z", "", task_id="z")
    assert created.id == "z"


async def test_add_dependency_on_an_unknown_task_is_refused_naming_it(service):
    before = await stored(service)
    with pytest.raises(UnknownDependencyError) as caught:
        await service.add_dependency("y", "nope")
    assert str(caught.value) == "Task y depends on unknown task 'nope'"
    assert await stored(service) == before


async def test_depends_on_given_a_single_id_string_is_not_split_into_characters(service):
    await service.create_task("up", "", task_id="up-1")
    before = await stored(service)
    try:
        created = await service.create_task("z", "", task_id="z", depends_on="up-1")
    except InvalidTaskError as exc:
        assert "depends_on" in str(exc)
        assert await stored(service) == before
    else:
        assert created.metadata.depends_on == ["up-1"]


# -- creating -------------------------------------------------------------------------------


async def test_an_unknown_provider_is_refused_listing_the_known_ones(service):
    before = await stored(service)
    with pytest.raises(UnknownProviderError) as caught:
        await service.create_task("z", "", provider_id="x")
    assert (
        str(caught.value)
        == 'Unknown provider "x". Available: a, acp, b, echo, openai, python, shell'
    )
    assert await stored(service) == before


async def test_an_unknown_provider_from_the_environment_is_refused(service, monkeypatch):
    monkeypatch.setenv("ELIZA_CODE_ACTIVE_SUB_AGENT", "ghost")
    before = await stored(service)
    with pytest.raises(UnknownProviderError) as caught:
        await service.create_task("z", "")
    assert (
        str(caught.value)
        == 'Unknown provider "ghost". Available: a, acp, b, echo, openai, python, shell'
    )
    assert await stored(service) == before


async def test_a_duplicate_task_id_is_refused(service):
    before = await stored(service)
    with pytest.raises(DuplicateTaskError) as caught:
        await service.create_task("another x", "", task_id="x")
    assert str(caught.value) == "A task with id 'x' already exists"
    assert await stored(service) == before


@pytest.mark.parametrize("name", ["", "   ", "\n\t", None, 42])
async def test_a_blank_or_non_string_name_is_refused(service, name):
    before = await stored(service)
    with pytest.raises(InvalidTaskError) as caught:
        await service.create_task(name, "")
    assert str(caught.value) == "Task name must be a non-empty string (field: name)"
    assert await stored(service) == before


async def test_a_blank_task_id_is_refused(service):
    before = await stored(service)
    with pytest.raises(InvalidTaskError) as caught:
        await service.create_task("z", "", task_id="  ")
    assert str(caught.value) == "Task id must be a non-empty string (field: task_id)"
    assert await stored(service) == before


async def test_negative_retries_are_refused_naming_the_field(service):
    before = await stored(service)
    with pytest.raises(InvalidTaskError) as caught:
        await service.create_task("z", "", retries=-1)
    assert str(caught.value) == (
        "Invalid task: retries: Input should be greater than or equal to 0"
    )
    assert await stored(service) == before


@pytest.mark.parametrize("timeout", [0, -1, -0.5, float("nan")])
async def test_a_timeout_that_is_not_positive_is_refused_naming_the_field(service, timeout):
    before = await stored(service)
    with pytest.raises(InvalidTaskError) as caught:
        await service.create_task("z", "", timeout=timeout)
    assert str(caught.value) == "Invalid task: timeout: Input should be greater than 0"
    assert await stored(service) == before


async def test_a_description_that_is_not_text_is_refused_naming_the_field(service):
    before = await stored(service)
    with pytest.raises(InvalidTaskError) as caught:
        await service.create_task("z", None)
    assert str(caught.value) == "Invalid task: description: Input should be a valid string"
    assert await stored(service) == before


async def test_a_refused_first_task_does_not_become_current(make_service):
    service = await make_service()
    with pytest.raises(InvalidTaskError):
        await service.create_task("z", "", retries=-1)
    assert service.get_current_task_id() is None
    assert await service.get_tasks() == []


# -- updating -------------------------------------------------------------------------------


async def test_an_unknown_task_id_is_refused_naming_it(service):
    before = await stored(service)
    with pytest.raises(TaskNotFoundError) as caught:
        await service.update_task_progress("nope", 50)
    assert str(caught.value) == "Task nope not found"
    assert await stored(service) == before


async def test_an_unknown_status_name_is_refused(service):
    before = await stored(service)
    with pytest.raises(ValueError, match=r"^'finished' is not a valid TaskStatus$"):
        await service.update_task_status("x", "finished")
    assert await stored(service) == before


async def test_a_result_that_is_not_a_task_result_is_refused(service):
    before = await stored(service)
    with pytest.raises(InvalidTaskError) as caught:
        await service.set_task_result("x", {"success": True, "summary": "done"})
    assert str(caught.value) == "result must be a TaskResult, not dict"
    assert await stored(service) == before


async def test_renaming_to_a_non_string_is_refused_or_ignored(service):
    before = await stored(service)
    with contextlib.suppress(InvalidTaskError):
        await service.rename_task("x", None)
    assert await stored(service) == before


# -- the lifecycle --------------------------------------------------------------------------


@pytest.fixture
async def completed_x(service) -> AgentOrchestratorService:
    await service.start_task_execution("x")
    return service


async def test_pausing_a_completed_task_is_an_illegal_transition(completed_x):
    before = await stored(completed_x)
    with pytest.raises(IllegalTransitionError) as caught:
        await completed_x.pause_task("x")
    assert str(caught.value) == "Cannot pause task x: it is completed; finished tasks never change"
    assert await stored(completed_x) == before


async def test_moving_a_completed_task_back_to_pending_is_an_illegal_transition(completed_x):
    before = await stored(completed_x)
    with pytest.raises(IllegalTransitionError) as caught:
        await completed_x.update_task_status("x", TaskStatus.PENDING)
    assert str(caught.value) == (
        "Cannot requeue task x: it is completed; finished tasks never change"
    )
    assert await stored(completed_x) == before


async def test_failing_a_completed_task_is_an_illegal_transition(completed_x):
    before = await stored(completed_x)
    with pytest.raises(IllegalTransitionError) as caught:
        await completed_x.set_task_error("x", "too late")
    assert str(caught.value) == "Cannot fail task x: it is completed; finished tasks never change"
    assert await stored(completed_x) == before


async def test_a_second_result_for_a_completed_task_is_an_illegal_transition(completed_x):
    before = await stored(completed_x)
    with pytest.raises(IllegalTransitionError) as caught:
        await completed_x.set_task_result("x", TaskResult(success=False, summary="again"))
    assert str(caught.value) == "Cannot fail task x: it is completed; finished tasks never change"
    assert await stored(completed_x) == before


async def test_marking_a_task_running_by_hand_never_strands_it(service):
    with contextlib.suppress(IllegalTransitionError):
        await service.update_task_status("x", TaskStatus.RUNNING)
    summary = await asyncio.wait_for(service.run(), timeout=2)
    assert summary.ok


# -- providers that misbehave ---------------------------------------------------------------


async def run_on(make_service, provider: FunctionProvider, **task_options: Any) -> tuple[Any, Any]:
    """Run one task on ``provider`` next to a finished bystander; return (task, bystander)."""
    service = await make_service(FunctionProvider("ok", succeed), provider)
    bystander = await service.create_task("bystander", "")
    await service.start_task_execution(bystander.id)
    bystander_before = (await service.get_task(bystander.id)).to_dict()
    task = await service.create_task("victim", "", provider_id=provider.id, **task_options)
    await service.start_task_execution(task.id)
    finished = await service.wait_for_task(task.id)
    assert (await service.get_task(bystander.id)).to_dict() == bystander_before
    return finished, service


async def test_a_provider_that_raises_fails_its_task_with_the_message(make_service):
    async def crash(task, ctx):
        await ctx.append_output("working on it\nalmost there")
        raise RuntimeError("disk on fire")

    task, _ = await run_on(make_service, FunctionProvider("crash", crash))

    assert task.metadata.status is TaskStatus.FAILED
    assert task.metadata.error == "disk on fire"
    assert task.metadata.result is None
    assert task.metadata.output[-2:] == ["working on it", "almost there"]


async def test_a_provider_that_returns_something_else_fails_its_task(make_service):
    async def return_dict(task, ctx):
        await ctx.append_output("returning a dict")
        return {"success": True, "summary": "looks right"}

    task, _ = await run_on(make_service, FunctionProvider("dicty", return_dict))

    assert task.metadata.status is TaskStatus.FAILED
    assert task.metadata.error == 'Provider "dicty" returned dict, expected a TaskResult'
    assert task.metadata.output[-1] == "returning a dict"


async def test_a_provider_that_returns_none_fails_its_task(make_service):
    async def forget_to_return(task, ctx):
        await ctx.append_output("done, I think")

    task, _ = await run_on(make_service, FunctionProvider("silent", forget_to_return))

    assert task.metadata.status is TaskStatus.FAILED
    assert task.metadata.error == 'Provider "silent" returned NoneType, expected a TaskResult'


async def test_a_provider_that_hangs_fails_its_task_when_the_timeout_runs_out(make_service):
    async def hang(task, ctx):
        await ctx.append_output("about to hang")
        await asyncio.Event().wait()

    task, _ = await run_on(make_service, FunctionProvider("hang", hang), timeout=0.1)

    assert task.metadata.status is TaskStatus.FAILED
    assert task.metadata.error == "Timed out after 0.1s"
    assert task.metadata.output[-1] == "about to hang"


async def test_a_task_whose_provider_is_no_longer_registered_fails_naming_it(make_service):
    store = MemoryStore()
    orphan = OrchestratedTask(
        id="orphan",
        name="orphan",
        metadata=OrchestratedTaskMetadata(provider_id="gone", created_at=now_ms()),
    )
    await store.put_tasks([orphan])
    service = await make_service(FunctionProvider("a", succeed), store=store)

    await service.start_task_execution("orphan")
    task = await service.wait_for_task("orphan")

    assert task.metadata.status is TaskStatus.FAILED
    assert (
        task.metadata.error
        == 'Unknown provider "gone". Available: a, acp, echo, openai, python, shell'
    )


async def test_a_provider_that_mutates_its_task_argument_changes_nothing_stored(make_service):
    async def vandalise(task, ctx):
        task.name = "renamed by the provider"
        task.metadata.depends_on.append("nowhere")
        return TaskResult(success=True, summary="done")

    task, _ = await run_on(make_service, FunctionProvider("vandal", vandalise))

    assert task.name == "victim"
    assert task.metadata.depends_on == []


async def test_a_provider_whose_call_raises_is_retried_like_one_that_raises_inside(make_service):
    class WrongSignature:
        id = "wrong"
        label = "wrong"
        description = None

        async def execute_task(self, task):  # type: ignore[no-untyped-def]
            return TaskResult(success=True)

    service = await make_service(WrongSignature())
    task = await service.create_task("one", retries=1)

    await service.run()

    ended = await service.get_task(task.id)
    assert ended.metadata.status is TaskStatus.FAILED
    assert ended.metadata.attempts == 2
    assert "positional argument" in (ended.metadata.error or "")
    assert not (ended.metadata.error or "").startswith("Internal error")


async def cancel_own_asyncio_task(task: OrchestratedTask, ctx: Any) -> TaskResult:
    """A provider with a bug: on a task's first attempt, it cancels the asyncio task it runs in."""
    if task.name == "rogue" and ctx.attempt == 1:
        asyncio.current_task().cancel()  # type: ignore[union-attr]
        await asyncio.sleep(0)
    return TaskResult(success=True, summary=task.name)


def rogue_provider() -> FunctionProvider:
    return FunctionProvider("self", cancel_own_asyncio_task)


async def test_a_provider_that_cancels_its_own_asyncio_task_makes_run_raise_not_hang(
    make_service,
):
    service = await make_service(rogue_provider(), max_concurrency=1)
    rogue = await service.create_task("rogue", task_id="rogue")
    later = await service.create_task("later", task_id="later")

    with pytest.raises(TaskInterruptedError) as raised:
        await asyncio.wait_for(service.run(), 5)

    assert str(raised.value) == (
        'Task "rogue" (rogue) stopped without finishing: something outside the orchestrator '
        "cancelled its worker (a provider that cancels its own asyncio task does this). It is "
        "left running: cancel it, or pause it (detect_and_pause_interrupted_tasks) and resume it"
    )
    assert (await service.get_task(rogue.id)).metadata.status is TaskStatus.RUNNING
    assert (await service.get_task(later.id)).metadata.status is TaskStatus.PENDING


async def test_waiting_for_a_task_whose_worker_was_cancelled_raises_not_hangs(make_service):
    service = await make_service(rogue_provider())
    rogue = await service.create_task("rogue", task_id="rogue")

    service.start_task_execution(rogue.id)
    with pytest.raises(TaskInterruptedError, match='Task "rogue" \\(rogue\\) stopped'):
        await service.wait_for_task(rogue.id, timeout=5)


async def test_the_rest_of_the_graph_runs_once_the_interrupted_task_is_cancelled(make_service):
    service = await make_service(rogue_provider(), max_concurrency=1)
    rogue = await service.create_task("rogue", task_id="rogue")
    later = await service.create_task("later", task_id="later")
    with contextlib.suppress(TaskInterruptedError):
        await asyncio.wait_for(service.run(), 5)

    await service.cancel_task(rogue.id)
    summary = await asyncio.wait_for(service.run(), 5)

    assert summary.statuses == {rogue.id: TaskStatus.CANCELLED, later.id: TaskStatus.COMPLETED}


async def test_an_interrupted_task_paused_and_resumed_runs_again(make_service):
    service = await make_service(rogue_provider())
    rogue = await service.create_task("rogue", task_id="rogue")
    with contextlib.suppress(TaskInterruptedError):
        await asyncio.wait_for(service.run(), 5)

    paused = await service.detect_and_pause_interrupted_tasks()
    await service.resume_task(rogue.id)
    summary = await asyncio.wait_for(service.run(), 5)

    assert [task.id for task in paused] == [rogue.id]
    assert summary.statuses == {rogue.id: TaskStatus.COMPLETED}
    assert (await service.get_task(rogue.id)).metadata.attempts == 2


async def test_a_second_wait_for_an_interrupted_task_raises_too(make_service):
    service = await make_service(rogue_provider())
    rogue = await service.create_task("rogue", task_id="rogue")
    service.start_task_execution(rogue.id)
    with contextlib.suppress(TaskInterruptedError):
        await service.wait_for_task(rogue.id, timeout=5)

    with pytest.raises(TaskInterruptedError):
        await service.wait_for_task(rogue.id, timeout=5)


async def test_the_handle_of_an_interrupted_task_cancels_it(make_service):
    service = await make_service(rogue_provider())
    rogue = await service.create_task("rogue", task_id="rogue")
    handle = service.start_task_execution(rogue.id)
    with contextlib.suppress(TaskInterruptedError):
        await service.wait_for_task(rogue.id, timeout=5)

    cancelled = asyncio.Event()
    service.on(TaskEventType.CANCELLED, lambda event: cancelled.set())

    assert handle.cancel() is True
    await asyncio.wait_for(cancelled.wait(), 5)

    assert (await service.get_task(rogue.id)).metadata.status is TaskStatus.CANCELLED


async def test_a_cancel_after_a_provider_swallowed_its_own_cancellation_ends_the_run(
    make_service,
):
    started = asyncio.Event()

    async def swallow_then_work(task: OrchestratedTask, ctx: Any) -> TaskResult:
        asyncio.current_task().cancel()  # type: ignore[union-attr]
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0)  # caught, and no uncancel(): a request is left behind
        started.set()
        await asyncio.sleep(5)
        return TaskResult(success=True)

    service = await make_service(
        FunctionProvider("swallow", swallow_then_work), cancel_grace_period=0
    )
    task = await service.create_task("t", task_id="t")
    running = asyncio.ensure_future(service.run())
    await started.wait()

    await service.cancel_task(task.id)
    summary = await asyncio.wait_for(running, 5)

    assert summary.statuses == {task.id: TaskStatus.CANCELLED}


async def test_the_queue_goes_on_when_a_cancel_after_the_grace_period_ends_a_worker(
    make_service,
):
    started = asyncio.Event()

    async def swallow_then_work(task: OrchestratedTask, ctx: Any) -> TaskResult:
        if task.name == "slow":
            asyncio.current_task().cancel()  # type: ignore[union-attr]
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0)  # caught, and no uncancel()
            started.set()
            await asyncio.sleep(5)
        return TaskResult(success=True)

    service = await make_service(
        FunctionProvider("swallow", swallow_then_work), max_concurrency=1, cancel_grace_period=0.01
    )
    slow = await service.create_task("slow", task_id="slow")
    later = await service.create_task("later", task_id="later")
    running = asyncio.ensure_future(service.run())
    await started.wait()

    await service.cancel_task(slow.id)
    summary = await asyncio.wait_for(running, 5)

    assert summary.statuses == {slow.id: TaskStatus.CANCELLED, later.id: TaskStatus.COMPLETED}


async def test_a_cancel_request_left_by_one_provider_does_not_blame_the_next_task(make_service):
    async def behave(task: OrchestratedTask, ctx: Any) -> TaskResult:
        if task.name == "rogue":
            asyncio.current_task().cancel()  # type: ignore[union-attr]
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0)  # caught, and no uncancel(): a request is left behind
        if task.name == "next" and ctx.attempt == 1:
            cancelled = asyncio.get_running_loop().create_future()
            cancelled.cancel()
            await cancelled  # its own CancelledError escapes: a provider failure, retried
        return TaskResult(success=True, summary=task.name)

    service = await make_service(FunctionProvider("p", behave), max_concurrency=1)
    await service.create_task("rogue", task_id="rogue")
    await service.create_task("next", task_id="next", retries=1)

    summary = await asyncio.wait_for(service.run(), 5)

    assert summary.statuses == {"rogue": TaskStatus.COMPLETED, "next": TaskStatus.COMPLETED}
    assert (await service.get_task("next")).metadata.attempts == 2


async def test_a_provider_that_cancels_its_own_task_without_awaiting_leaves_later_runs_working(
    make_service,
):
    async def cancel_and_return(task: OrchestratedTask, ctx: Any) -> TaskResult:
        if task.name == "rogue":
            asyncio.current_task().cancel()  # type: ignore[union-attr]
        return TaskResult(success=True, summary=task.name)

    service = await make_service(FunctionProvider("self", cancel_and_return), max_concurrency=1)
    await service.create_task("rogue", task_id="rogue")
    await asyncio.wait_for(service.run(), 5)  # the worker dies parked, after the task ended

    await service.create_task("next", task_id="next")
    summary = await asyncio.wait_for(service.run(), 5)
    await service.stop()

    assert summary.statuses["next"] is TaskStatus.COMPLETED


# -- event handlers that raise --------------------------------------------------------------


async def test_a_raising_event_handler_does_not_break_the_service_call(service):
    seen: list[TaskEvent] = []

    def explode(event: TaskEvent) -> None:
        raise RuntimeError("handler bug")

    service.on("task:created", explode)
    service.on("task", seen.append)

    task = await service.create_task("z", "", task_id="z")

    assert (await service.get_task("z")) == task
    assert [e.task_id for e in seen] == ["z"]


async def test_a_handler_that_awaits_something_cancelled_does_not_break_the_service_call(
    service,
):
    seen: list[TaskEvent] = []

    async def awaits_a_cancelled_future(event: TaskEvent) -> None:
        future = asyncio.get_running_loop().create_future()
        future.cancel()
        await future

    service.on("task:cancelled", awaits_a_cancelled_future)
    service.on("task", seen.append)

    await service.cancel_task("x")

    assert (await service.get_task("x")).metadata.status is TaskStatus.CANCELLED
    assert [e.type for e in seen][-1] is TaskEventType.CANCELLED


async def test_a_raising_async_event_handler_does_not_break_the_service_call(service):
    async def explode(event: TaskEvent) -> None:
        raise RuntimeError("async handler bug")

    service.on("task", explode)

    await service.append_output("x", "still recorded")
    await service.start_task_execution("x")

    task = await service.get_task("x")
    assert task.metadata.status is TaskStatus.COMPLETED
    assert "still recorded" in task.metadata.output


async def test_a_raising_event_handler_does_not_break_selecting_a_task(service):
    def explode(event: TaskEvent) -> None:
        raise RuntimeError("handler bug")

    service.on("task:progress", explode)
    service.set_current_task("y")
    assert service.get_current_task_id() == "y"
