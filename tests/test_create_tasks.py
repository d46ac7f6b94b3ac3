"""Creating many tasks at once: checked together, stored together."""

from __future__ import annotations

import gc
import inspect

import pytest

from orchestrator import (
    DuplicateTaskError,
    InvalidTaskError,
    TaskResult,
    TaskStatus,
    UnknownDependencyError,
    UnknownProviderError,
)
from orchestrator.testing import FunctionProvider


async def test_a_batch_may_depend_on_tasks_earlier_in_the_same_batch(make_service):
    service = await make_service()
    existing = await service.create_task("existing", "")

    ids = await service.create_tasks(
        [
            {"name": "a", "task_id": "a", "depends_on": [existing.id]},
            {"name": "b", "task_id": "b", "depends_on": ["a"]},
            {"name": "c", "description": "last", "depends_on": ["a", "b"], "retries": 2},
        ]
    )
    summary = await service.run()

    assert ids[:2] == ["a", "b"]
    assert summary.ok and len(summary.statuses) == 4
    last = await service.get_task(ids[2])
    assert last.metadata.depends_on == ["a", "b"]
    assert last.metadata.retries == 2


@pytest.mark.parametrize(
    ("bad", "error", "text"),
    [
        (
            {"name": "x", "depends_on": ["nowhere"]},
            UnknownDependencyError,
            "unknown task 'nowhere'",
        ),
        ({"name": "x", "task_id": "a"}, DuplicateTaskError, "'a' already exists"),
        ({"name": "x", "provider_id": "ghost"}, UnknownProviderError, 'Unknown provider "ghost"'),
    ],
)
async def test_one_bad_spec_stores_nothing_and_the_error_names_it(make_service, bad, error, text):
    service = await make_service()

    with pytest.raises(error, match=text) as caught:
        await service.create_tasks([{"name": "a", "task_id": "a"}, {"name": "b"}, bad])

    assert caught.value.__notes__ == ["in tasks[2]"]
    assert await service.get_tasks() == []
    assert await service.store.load_tasks() == []


async def test_a_spec_with_an_unknown_field_is_refused_naming_it(make_service):
    service = await make_service()

    with pytest.raises(ValueError) as refused:
        await service.create_tasks([{"name": "a", "colour": "red"}])

    assert str(refused.value) == (
        "tasks[0]: unknown field 'colour' (known: name, description, room_id, provider_id, "
        "depends_on, task_id, retries, timeout, params, tags, working_directory, world_id)"
    )


async def test_a_spec_takes_every_argument_create_task_takes(make_service):
    service = await make_service()
    spec = {
        "name": "all",
        "description": "every field",
        "room_id": "room",
        "provider_id": "ok",
        "depends_on": [],
        "task_id": "all",
        "retries": 1,
        "timeout": 5.0,
        "params": {"k": "v"},
        "tags": ["t"],
        "working_directory": "/tmp",
    }
    assert set(spec) == set(inspect.signature(service.create_task).parameters)

    await service.create_tasks([spec])

    task = await service.get_task("all")
    assert (task.description, task.room_id, task.tags) == ("every field", "room", ["t"])
    md = task.metadata
    assert (md.retries, md.timeout, md.params, md.working_directory) == (1, 5.0, {"k": "v"}, "/tmp")


async def test_a_batch_created_after_a_run_runs_in_the_next_one(make_service):
    service = await make_service()
    first = await service.create_task("first", "")
    await service.run()

    await service.create_tasks([{"name": "late", "depends_on": [first.id]}])
    summary = await service.run()

    assert all(status is TaskStatus.COMPLETED for status in summary.statuses.values())


@pytest.mark.parametrize("collecting", [True, False])
async def test_creating_many_tasks_leaves_the_garbage_collector_as_it_was(make_service, collecting):
    service = await make_service()
    was = gc.isenabled()
    (gc.enable if collecting else gc.disable)()
    try:
        await service.create_tasks({"name": f"t{i}"} for i in range(10))
        assert gc.isenabled() is collecting
        with pytest.raises(InvalidTaskError):
            await service.create_tasks([{"name": "fine"}, {"name": ""}])
        assert gc.isenabled() is collecting
    finally:
        (gc.enable if was else gc.disable)()


async def test_tasks_made_after_a_failed_task_end_in_the_same_call_through_each_other(
    make_service,
):
    async def fail(task, ctx):
        return TaskResult(success=False, error="broken")

    service = await make_service(FunctionProvider("fails", fail))
    root = await service.create_task("root", "", task_id="root")
    await service.run()

    await service.create_tasks(
        [
            {"name": "child", "task_id": "child", "depends_on": ["root"]},
            {"name": "grandchild", "task_id": "grandchild", "depends_on": ["child"]},
        ]
    )

    child = await service.get_task("child")
    grandchild = await service.get_task("grandchild")
    assert (await service.get_task(root.id)).metadata.status is TaskStatus.FAILED
    assert child.metadata.status is TaskStatus.FAILED
    assert child.metadata.error == 'Upstream task "root" (root) failed'
    assert grandchild.metadata.status is TaskStatus.FAILED
    assert grandchild.metadata.error == 'Upstream task "child" (child) failed'


async def test_an_id_given_as_a_str_subclass_is_stored_as_a_plain_str(make_service):
    class Id(str):
        pass

    service = await make_service()
    fast, slow = await service.create_tasks(
        [
            {"name": "fast", "task_id": Id("fast")},
            {"name": "slow", "task_id": Id("slow"), "retries": 1},
        ]
    )

    assert type(fast) is str and type(slow) is str
    summary = await service.run()
    assert all(type(task_id) is str for task_id in summary.statuses)
    assert [type(task.id) for task in await service.get_tasks()] == [str, str]
