"""What ``run()`` returns: every task's final status, and the error of each task that has one, in
creation order, whatever happened to the tasks before (deleted, refused, loaded, let go)."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import TaskResult, TaskStatus
from orchestrator.testing import FunctionProvider


async def by_params(task: Any, ctx: Any) -> TaskResult:
    """Fails when the task's params say so."""
    if task.metadata.params.get("fail"):
        return TaskResult(success=False, error=f"{task.name} broke")
    return TaskResult(success=True, summary=task.name)


def provider() -> FunctionProvider:
    return FunctionProvider("by-params", by_params)


async def test_the_summary_names_each_failed_or_cancelled_task_with_its_error_in_creation_order(
    make_service,
):
    service = await make_service(provider())
    ok = await service.create_task("ok", "")
    broken = await service.create_task("broken", "", params={"fail": True})
    after = await service.create_task("after", "", depends_on=[broken.id])
    dropped = await service.create_task("dropped", "")
    await service.cancel_task(dropped.id)

    summary = await service.run()

    assert list(summary.statuses) == [ok.id, broken.id, after.id, dropped.id]
    assert summary.ids_with(TaskStatus.COMPLETED) == [ok.id]
    assert summary.errors == {
        broken.id: "broken broke",
        after.id: f'Upstream task "broken" ({broken.id}) failed',
        dropped.id: "Cancelled by user",
    }
    for task_id, status in summary.statuses.items():
        task = await service.get_task(task_id)
        assert task is not None and task.metadata.status is status
        assert task.metadata.error == summary.errors.get(task_id)


async def test_a_deleted_task_leaves_the_summary_and_its_id_can_run_again(make_service):
    service = await make_service(provider())
    await service.create_task("first try", "", task_id="job", params={"fail": True})
    assert (await service.run()).errors == {"job": "first try broke"}

    await service.delete_task("job")
    await service.create_task("second try", "", task_id="job")
    summary = await service.run()

    assert summary.statuses == {"job": TaskStatus.COMPLETED}
    assert summary.errors == {}


async def test_tasks_the_store_refused_leave_nothing_in_the_summary(make_service):
    service = await make_service(provider())
    kept = await service.create_task("kept", "")
    store = service.store
    real = store.put_tasks

    async def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    store.put_tasks = refuse  # type: ignore[method-assign]
    with pytest.raises(OSError, match="No space left"):
        await service.create_tasks([{"name": "lost", "task_id": "lost"}])
    store.put_tasks = real  # type: ignore[method-assign]

    summary = await service.run()

    assert summary.statuses == {kept.id: TaskStatus.COMPLETED}


async def test_tasks_loaded_at_start_keep_their_status_and_error_in_the_summary(make_service):
    first = await make_service(provider())
    broken = await first.create_task("broken", "", params={"fail": True})
    waiting = await first.create_task("waiting", "")
    await first.pause_task(waiting.id)
    store = first.store
    # Only the broken task runs; the paused one stays for the next service.
    first.start_task_execution(broken.id)
    await first.wait_for_task(broken.id)
    await first.stop()

    second = await make_service(provider(), store=store)
    await second.resume_task(waiting.id)
    summary = await second.run()

    assert summary.statuses == {broken.id: TaskStatus.FAILED, waiting.id: TaskStatus.COMPLETED}
    assert summary.errors == {broken.id: "broken broke"}


@pytest.mark.parametrize("store_kind", ["sqlite"])
async def test_tasks_let_go_to_the_store_keep_their_place_status_and_error(make_service):
    service = await make_service(provider())
    broken = await service.create_task("broken", "", params={"fail": True})
    await service.run()
    assert broken.id not in service._tasks  # finished and let go
    later = await service.create_task("later", "")

    summary = await service.run()

    assert list(summary.statuses) == [broken.id, later.id]
    assert summary.statuses[later.id] is TaskStatus.COMPLETED
    assert summary.errors == {broken.id: "broken broke"}
