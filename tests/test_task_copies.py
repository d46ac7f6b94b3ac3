"""Tasks built and copied on the fast path are the same as validated ones, and independent."""

from __future__ import annotations

import copy
import pickle

import pytest

from orchestrator import (
    AgentOrchestratorPluginOptions,
    AgentOrchestratorService,
    MemoryStore,
    OrchestratedTask,
    TaskResult,
    TaskStatus,
)
from orchestrator.testing import FunctionProvider


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


async def test_a_new_task_counts_as_given_the_fields_its_creation_gave(make_service):
    service = await make_service()
    task = await service.create_task("t", "about t")

    assert task.model_fields_set == {
        "id",
        "name",
        "description",
        "tags",
        "room_id",
        "world_id",
        "metadata",
    }
    assert {"provider_id", "created_at", "depends_on"} <= task.metadata.model_fields_set
    assert "status" not in task.metadata.model_fields_set


async def test_every_copy_handed_out_takes_attribute_assignment_alone(make_service):
    seen: list[OrchestratedTask] = []

    async def keep(task: OrchestratedTask, ctx) -> TaskResult:
        seen.append(task)
        return TaskResult(success=True)

    service = await make_service(FunctionProvider("keep", keep))
    first = await service.create_task("first", "")
    second = await service.create_task("second", "")
    await service.run()
    handed_out = [first, *seen, await service.get_task(first.id), *await service.get_tasks()]

    for task in handed_out:
        task.metadata.progress = 42
        task.name = "renamed"
        assert "progress" in task.metadata.model_fields_set

    stored = await service.get_task(second.id)
    assert stored.name == "second" and stored.metadata.progress == 0
    later = await service.create_task("later", "")
    assert "progress" not in later.metadata.model_fields_set


async def test_changes_made_by_the_service_count_as_given(make_service):
    service = await make_service()
    task = await service.create_task("t", "")

    await service.update_task_progress(task.id, 30)
    await service.rename_task(task.id, "renamed")

    stored = await service.get_task(task.id)
    assert stored.name == "renamed" and stored.metadata.progress == 30
    assert "progress" in stored.metadata.model_fields_set
    other = await service.create_task("other", "")
    assert "progress" not in other.metadata.model_fields_set


async def test_copies_a_memory_store_hands_out_take_attribute_assignment():
    store = MemoryStore()
    service = await AgentOrchestratorService.start(store=store, options=_echo())
    try:
        task = await service.create_task("t", "")

        loaded = (await store.load_tasks())[0]
        loaded.name = "changed"
        loaded.metadata.progress = 5
        read = store.read_task(task.id)
        assert read is not None
        assert read.model_copy(update={"name": "other"}).name == "other"

        stored = await service.get_task(task.id)
        assert stored.name == "t" and stored.metadata.progress == 0
    finally:
        await service.stop()


def _echo() -> AgentOrchestratorPluginOptions:
    return AgentOrchestratorPluginOptions(default_provider_id="echo")


_COPIES = {
    "model_copy": lambda task: task.model_copy(),
    "deep model_copy": lambda task: task.model_copy(deep=True),
    "copy.copy": copy.copy,
    "copy.deepcopy": copy.deepcopy,
    "pickle": lambda task: pickle.loads(pickle.dumps(task)),
}


@pytest.mark.parametrize("make_copy", list(_COPIES.values()), ids=list(_COPIES))
async def test_a_store_may_copy_and_change_the_tasks_it_is_given(make_copy):
    class RedactingStore(MemoryStore):
        async def put_tasks(self, tasks, events=()):
            kept = []
            for task in tasks:
                kept.append(make_copy(task))
                kept[-1].description = "<redacted>"
            self.keep_tasks(kept)
            return None

    store = RedactingStore()
    service = await AgentOrchestratorService.start(store=store, options=_echo())
    try:
        task = await service.create_task("t", "secret")

        assert store.read_task(task.id).description == "<redacted>"
        assert (await service.get_task(task.id)).description == "secret"
    finally:
        await service.stop()
