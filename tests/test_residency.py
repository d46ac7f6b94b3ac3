"""Finished work leaves memory: on a store that keeps its own copies (SQLite), a group of
connected tasks goes from the service's memory once all of it is terminal and stored, and every
read and operation still sees it (from the store, or by bringing the group back)."""

from __future__ import annotations

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
