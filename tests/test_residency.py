"""Finished work leaves memory: on a store that keeps its own copies (SQLite), a group of
connected tasks goes from the service's memory once all of it is terminal and stored, and every
read and operation still sees it (from the store, or by bringing the group back)."""

from __future__ import annotations

import asyncio

import pytest

from orchestrator import (
    DependentsExistError,
    IllegalTransitionError,
    TaskResult,
    TaskStatus,
)
from orchestrator.testing import FunctionProvider


@pytest.fixture
def store_kind() -> str:
    """Only SQLite lets tasks go: a MemoryStore holds the service's own objects."""
    return "sqlite"


def in_memory(service) -> set[str]:
    return set(service._tasks)


async def test_a_finished_group_leaves_memory_and_is_still_read_in_creation_order(make_service):
    service = await make_service()
    first = await service.create_task("first", "")
    second = await service.create_task("second", "", depends_on=[first.id])
    alone = await service.create_task("alone", "")

    summary = await service.run()

    assert summary.ok and list(summary.statuses) == [first.id, second.id, alone.id]
    assert in_memory(service) == set()
    assert [t.name for t in await service.get_tasks()] == ["first", "second", "alone"]
    done = await service.get_tasks_by_status(TaskStatus.COMPLETED)
    assert [t.id for t in done] == [first.id, second.id, alone.id]
    task = await service.get_task(second.id)
    assert task is not None and task.metadata.status is TaskStatus.COMPLETED
    assert task.metadata.depends_on == [first.id]
    assert in_memory(service) == set()  # reading does not bring anything back


async def test_a_group_stays_in_memory_while_any_of_it_is_unfinished(make_service):
    service = await make_service()
    done = await service.create_task("done", "")
    waiting = await service.create_task("waiting", "", depends_on=[done.id])
    await service.pause_task(waiting.id)
    other = await service.create_task("other", "")

    service.start_task_execution(done.id)
    service.start_task_execution(other.id)
    await service.wait_for_task(done.id)
    await service.wait_for_task(other.id)

    assert in_memory(service) == {done.id, waiting.id}


async def test_a_new_task_may_depend_on_a_task_that_left_memory_and_sees_its_result(
    make_service,
):
    seen: dict[str, str] = {}

    async def execute(task, ctx):
        seen[task.name] = ",".join(r.summary for r in ctx.upstream_results.values())
        return TaskResult(success=True, summary=f"from {task.name}")

    service = await make_service(FunctionProvider("echoing", execute))
    early = await service.create_task("early", "")
    await service.run()
    assert early.id not in in_memory(service)

    late = await service.create_task("late", "", depends_on=[early.id])
    await service.run()

    assert seen["late"] == "from early"
    assert (await service.get_task(late.id)).metadata.status is TaskStatus.COMPLETED


async def test_a_task_that_left_memory_comes_back_with_its_dependents(make_service):
    service = await make_service()
    root = await service.create_task("root", "")
    child = await service.create_task("child", "", depends_on=[root.id])
    await service.run()

    assert service.get_dependents(root.id) == [child.id]
    assert service.get_downstream(root.id) == [child.id]


async def test_changes_to_a_finished_task_that_left_memory_are_still_refused(make_service):
    service = await make_service()
    task = await service.create_task("t", "")
    await service.run()

    with pytest.raises(IllegalTransitionError):
        await service.pause_task(task.id)
    assert (await service.get_task(task.id)).metadata.status is TaskStatus.COMPLETED


async def test_a_task_that_left_memory_can_be_renamed_and_deleted(make_service):
    service = await make_service()
    root = await service.create_task("root", "")
    child = await service.create_task("child", "", depends_on=[root.id])
    await service.run()

    await service.rename_task(root.id, "renamed root")
    assert (await service.get_task(root.id)).name == "renamed root"
    await service.delete_task(child.id)
    await service.delete_task(root.id)

    assert await service.get_tasks() == []
    assert in_memory(service) == set()


async def test_deleting_a_task_others_wait_on_is_refused_after_it_left_memory(make_service):
    service = await make_service()
    root = await service.create_task("root", "")
    await service.run()
    waiting = await service.create_task("waiting", "", depends_on=[root.id])
    await service.pause_task(waiting.id)

    with pytest.raises(DependentsExistError):
        await service.delete_task(root.id)


async def test_waiting_for_a_task_that_left_memory_returns_it(make_service):
    service = await make_service()
    task = await service.create_task("t", "")
    handle = service.start_task_execution(task.id)
    await service.run()

    assert (await handle).metadata.status is TaskStatus.COMPLETED
    assert (await service.wait_for_task(task.id)).metadata.status is TaskStatus.COMPLETED
    assert service.is_task_cancelled(task.id) is False
    assert in_memory(service) == set()


async def test_a_restarted_service_keeps_only_unfinished_work_in_memory(make_service):
    service = await make_service()
    done = await service.create_task("done", "")
    pending = await service.create_task("pending", "")
    service.start_task_execution(done.id)
    await service.wait_for_task(done.id)
    await service.stop()

    again = await make_service(store=service.store)

    assert in_memory(again) == {pending.id}
    assert [t.name for t in await again.get_tasks()] == ["done", "pending"]
    assert (await again.run()).ok


async def test_memory_holds_only_the_work_in_progress_over_many_tasks(make_service):
    service = await make_service(max_concurrency=20)
    most_in_memory = 0
    for _ in range(20):
        made = await service.create_tasks({"name": f"t{i}"} for i in range(50))
        for task_id in made:
            service.start_task_execution(task_id)
        for task_id in made:
            await service.wait_for_task(task_id)
        most_in_memory = max(most_in_memory, len(in_memory(service)))

    assert len(await service.get_tasks_by_status(TaskStatus.COMPLETED)) == 1000
    assert most_in_memory <= 50
    assert in_memory(service) == set()


async def test_a_group_brought_back_by_a_refused_change_goes_again_at_the_next_write(
    make_service,
):
    service = await make_service()
    finished = await service.create_task("finished", "")
    await service.run()
    with pytest.raises(IllegalTransitionError):
        await service.pause_task(finished.id)

    other = await service.create_task("other", "")
    await service.run()

    assert finished.id not in in_memory(service) and other.id not in in_memory(service)


async def test_the_id_of_a_deleted_task_can_be_used_again_without_mixing_groups(make_service):
    service = await make_service()
    root = await service.create_task("root", "", task_id="root")
    await service.create_task("first child", "", task_id="child", depends_on=[root.id])
    await service.pause_task("child")
    await service.delete_task("child")
    await service.create_task("second child", "", task_id="child")
    await service.pause_task("child")

    service.start_task_execution(root.id)
    await service.wait_for_task(root.id)
    await service.create_task("other", "", task_id="other")
    service.start_task_execution("other")
    await service.wait_for_task("other")

    assert "child" in in_memory(service)
    assert (await service.get_task("child")).name == "second child"
    assert (await service.get_task("child")).metadata.status is TaskStatus.PAUSED


def gated_provider() -> tuple[FunctionProvider, asyncio.Event, asyncio.Event]:
    """A provider whose tasks named ``held`` start, then wait for the gate; others succeed."""
    started, gate = asyncio.Event(), asyncio.Event()

    async def execute(task, ctx):
        if task.name == "held":
            started.set()
            await gate.wait()
        return TaskResult(success=True, summary=f"from {task.name}")

    return FunctionProvider("gated", execute), started, gate


async def test_a_dependency_on_a_newer_task_keeps_both_together_after_a_restart(make_service):
    seen: dict[str, list[str]] = {}

    async def execute(task, ctx):
        seen[task.name] = [r.summary for r in ctx.upstream_results.values()]
        return TaskResult(success=True, summary=f"from {task.name}")

    service = await make_service(FunctionProvider("echoing", execute))
    waiting = await service.create_task("waiting", "")
    newer = await service.create_task("newer", "")
    await service.add_dependency(waiting.id, newer.id)
    await service.start_task_execution(newer.id)
    await service.stop()

    again = await make_service(FunctionProvider("echoing", execute), store=service.store)

    assert again.get_dependencies(waiting.id) == [newer.id]
    with pytest.raises(DependentsExistError):
        await again.delete_task(newer.id)
    await again.start_task_execution(waiting.id)
    assert seen["waiting"] == ["from newer"]


async def test_a_group_brought_back_keeps_a_dependency_on_a_newer_task(make_service):
    service = await make_service()
    first = await service.create_task("first", "")
    second = await service.create_task("second", "")
    await service.add_dependency(first.id, second.id)
    await service.run()

    assert service.get_dependencies(first.id) == [second.id]  # brings the group back
    await service.create_task("other", "")  # a write: the finished group goes again, whole

    assert {first.id, second.id}.isdisjoint(in_memory(service))
    assert service.get_dependents(second.id) == [first.id]


async def test_a_task_created_during_a_run_that_ends_at_once_is_returned(make_service):
    provider, started, gate = gated_provider()

    async def fail(task, ctx):
        return TaskResult(success=False, error="broken")

    service = await make_service(provider, FunctionProvider("fails", fail))
    failed = await service.create_task("failed", "", provider_id="fails")
    await service.start_task_execution(failed.id)
    await service.create_task("held", "")
    running = asyncio.ensure_future(service.run())
    await started.wait()

    late = await service.create_task("late", "", depends_on=[failed.id])

    gate.set()
    summary = await running
    assert late.metadata.status is TaskStatus.FAILED
    assert summary.statuses[late.id] is TaskStatus.FAILED


@pytest.mark.parametrize("turns", range(6))
async def test_listing_tasks_while_one_finishes_lists_it_once(make_service, turns):
    provider, started, gate = gated_provider()
    service = await make_service(provider)
    gone = await service.create_task("gone", "")
    await service.start_task_execution(gone.id)  # finished: it leaves memory
    held = await service.create_task("held", "")
    handle = service.start_task_execution(held.id)
    await started.wait()
    gate.set()
    for _ in range(turns):  # each count lands the listing at another point of the commit
        await asyncio.sleep(0)

    listed = [task.id for task in await service.get_tasks()]

    await handle
    assert listed == [gone.id, held.id]


@pytest.mark.parametrize("turns", range(6))
async def test_deleting_a_task_while_its_dependent_leaves_memory_cleans_the_dependent(
    make_service, turns
):
    provider, started, gate = gated_provider()
    service = await make_service(provider)
    held = await service.create_task("held", "")
    deleted = await service.create_task("deleted", "")
    dependent = await service.create_task("dependent", "", depends_on=[held.id, deleted.id])
    await service.start_task_execution(deleted.id)
    await service.cancel_task(dependent.id)
    handle = service.start_task_execution(held.id)
    await started.wait()
    gate.set()
    for _ in range(turns):
        await asyncio.sleep(0)

    await service.delete_task(deleted.id)

    await handle
    assert (await service.get_task(dependent.id)).metadata.depends_on == [held.id]
    assert service.store.read_task(dependent.id).metadata.depends_on == [held.id]
