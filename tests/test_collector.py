"""A run keeps the garbage collector off the objects that existed when it started, and gives
them back when it ends; a host that manages the collector itself is left alone."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

import orchestrator._collector
import orchestrator.scheduler
from orchestrator import OrchestratedTask, ProviderTaskExecutionContext, TaskResult
from orchestrator._collector import FreezeDuringRuns
from orchestrator.testing import FunctionProvider


@pytest.fixture
def unfrozen_collector(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Collection on, nothing frozen and a fresh count of runs (the process's one remembers a
    host that froze objects), whatever the process did before; restored after."""
    fresh = FreezeDuringRuns()
    monkeypatch.setattr(orchestrator.scheduler, "RUNS", fresh)
    monkeypatch.setattr(orchestrator._collector, "RUNS", fresh)
    was_enabled, was_frozen = gc.isenabled(), gc.get_freeze_count()
    gc.unfreeze()
    gc.enable()
    yield
    gc.unfreeze()
    if was_frozen:
        gc.freeze()
    if not was_enabled:
        gc.disable()


def freeze_watcher() -> tuple[FunctionProvider, list[int]]:
    """A provider recording how many objects were frozen while it ran."""
    seen: list[int] = []

    async def look(task: OrchestratedTask, ctx: ProviderTaskExecutionContext) -> TaskResult:
        seen.append(gc.get_freeze_count())
        return TaskResult(success=True)

    return FunctionProvider("look", look), seen


async def one_watched_task(make_service: Any, **options: Any) -> tuple[Any, list[int]]:
    """A service with one task whose provider records the frozen count; and that record."""
    provider, seen = freeze_watcher()
    service = await make_service(provider, **options)
    await service.create_task("one")
    return service, seen


@pytest.mark.usefixtures("unfrozen_collector")
async def test_a_run_freezes_the_objects_that_existed_and_unfreezes_them_when_it_ends(
    make_service,
):
    provider, seen = freeze_watcher()
    service = await make_service(provider)
    await service.create_tasks([{"name": "one"}, {"name": "two"}])

    await service.run()

    assert len(seen) == 2
    assert all(count > 0 for count in seen)
    assert gc.get_freeze_count() == 0


@pytest.mark.usefixtures("unfrozen_collector")
async def test_a_run_with_the_option_off_freezes_nothing(make_service):
    service, seen = await one_watched_task(make_service, freeze_gc_during_run=False)

    await service.run()

    assert seen == [0]


@pytest.mark.usefixtures("unfrozen_collector")
async def test_a_run_leaves_objects_the_host_froze_frozen(make_service):
    service, seen = await one_watched_task(make_service)
    gc.freeze()
    frozen_by_host = gc.get_freeze_count()

    await service.run()

    # Frozen objects are still freed by reference counting, so the count may only drop.
    assert 0 < seen[0] <= frozen_by_host
    assert gc.get_freeze_count() > 0


@pytest.mark.usefixtures("unfrozen_collector")
async def test_a_run_freezes_nothing_while_collection_is_off(make_service):
    service, seen = await one_watched_task(make_service)
    gc.disable()

    await service.run()

    assert seen == [0]
    assert not gc.isenabled()


@pytest.mark.usefixtures("unfrozen_collector")
def test_overlapping_runs_unfreeze_only_when_the_last_one_ends():
    runs = FreezeDuringRuns()

    with runs.during_run():
        with runs.during_run():
            assert runs.frozen
        assert runs.frozen
        assert gc.get_freeze_count() > 0

    assert not runs.frozen
    assert gc.get_freeze_count() == 0


@pytest.mark.usefixtures("unfrozen_collector")
def test_a_run_that_raises_still_unfreezes():
    runs = FreezeDuringRuns()

    with pytest.raises(RuntimeError), runs.during_run():
        raise RuntimeError("the run broke")

    assert gc.get_freeze_count() == 0


@pytest.mark.usefixtures("unfrozen_collector")
def test_once_the_host_froze_objects_runs_never_freeze_again():
    runs = FreezeDuringRuns()
    gc.freeze()
    with runs.during_run():
        assert not runs.frozen
    gc.unfreeze()

    with runs.during_run():
        assert not runs.frozen
        assert gc.get_freeze_count() == 0


@pytest.mark.usefixtures("unfrozen_collector")
def test_runs_overlapping_from_two_threads_unfreeze_once_both_ended():
    runs = FreezeDuringRuns()
    first_in, second_done = threading.Event(), threading.Event()

    def second_run() -> None:
        first_in.wait()
        with runs.during_run():
            pass
        second_done.set()

    thread = threading.Thread(target=second_run)
    thread.start()
    with runs.during_run():
        first_in.set()
        second_done.wait()
        assert gc.get_freeze_count() > 0
    thread.join()

    assert gc.get_freeze_count() == 0


def collections_during(record: list[int]) -> Any:
    """A gc callback appending the generation of every collection that starts."""

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            record.append(info["generation"])

    return callback


# In memory only: a SQLite write of 3,000 tasks makes enough objects of its own to set off a
# young collection, rightly.
@pytest.mark.parametrize("store_kind", ["memory"])
@pytest.mark.usefixtures("unfrozen_collector")
async def test_tasks_built_together_go_to_the_oldest_generation_without_a_young_collection(
    make_service,
):
    service = await make_service()
    collections: list[int] = []
    gc.callbacks.append(watch := collections_during(collections))
    try:
        await service.create_tasks({"name": f"t{i}"} for i in range(3000))
    finally:
        gc.callbacks.remove(watch)

    assert collections == []
    assert gc.get_count()[0] < 700
    assert gc.get_freeze_count() == 0


class SelfCycle:
    """Garbage only the cyclic collector frees: it refers to itself."""

    def __init__(self) -> None:
        self.me = self


@pytest.mark.usefixtures("unfrozen_collector")
async def test_building_tasks_during_a_run_leaves_garbage_cycles_collectable(make_service):
    alive_after_collect: list[bool] = []

    async def grow(task: OrchestratedTask, ctx: ProviderTaskExecutionContext) -> TaskResult:
        if task.name == "first":
            garbage = SelfCycle()
            ref = weakref.ref(garbage)
            del garbage
            await service.create_tasks({"name": f"grown{i}"} for i in range(5))
            gc.collect()
            alive_after_collect.append(ref() is not None)
        return TaskResult(success=True)

    service = await make_service(FunctionProvider("grow", grow))
    await service.create_task("first")

    summary = await service.run()

    assert summary.ok and len(summary.statuses) == 6
    assert alive_after_collect == [False]
    assert gc.get_freeze_count() == 0


@pytest.mark.usefixtures("unfrozen_collector")
async def test_building_tasks_leaves_objects_the_host_froze_frozen(make_service):
    service = await make_service()
    gc.freeze()
    frozen_by_host = gc.get_freeze_count()

    await service.create_tasks({"name": f"t{i}"} for i in range(100))

    # Frozen objects are still freed by reference counting, so the count may only drop.
    assert 0 < gc.get_freeze_count() <= frozen_by_host
