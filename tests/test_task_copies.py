"""Tasks built and copied on the fast path are the same as validated ones, and independent."""

from __future__ import annotations

from orchestrator import OrchestratedTask, TaskStatus


async def test_a_task_built_on_the_fast_path_equals_its_validated_twin(make_service):
    service = await make_service()
    upstream = await service.create_task("up", "first")

    task = await service.create_task("down", "second", depends_on=[upstream.id])

    assert OrchestratedTask.model_validate(task.model_dump()) == task
    assert OrchestratedTask.from_dict(task.to_dict()) == task


async def test_a_returned_task_shares_no_list_with_the_stored_one(make_service):
    service = await make_service()
    task = await service.create_task("t", "")

    task.metadata.output.append("forged")
    task.metadata.depends_on.append("forged")
    task.tags.append("forged")
    task.metadata.status = TaskStatus.COMPLETED

    stored = await service.get_task(task.id)
    assert stored.metadata.output == []
    assert stored.metadata.depends_on == []
    assert "forged" not in stored.tags
    assert stored.metadata.status is TaskStatus.PENDING


async def test_two_fresh_tasks_share_no_list(make_service):
    service = await make_service()
    first = await service.create_task("a", "")
    second = await service.create_task("b", "")
    await service.append_output(first.id, "only on a")

    assert (await service.get_task(second.id)).metadata.output == []
