"""Task events: who receives them, in which order, with which payload, and what a bad handler does.

The reference's event names and payloads are kept (spec §2.6); its bugs are not (§6.1.12-13):
PAUSED is emitted once, missing tasks emit nothing, blank output emits nothing, a raising handler
is logged instead of breaking the service call, and async handlers are awaited.
"""

from __future__ import annotations

import logging

import anyio.lowlevel
import pytest

from hookspecs.models import TaskEvent, TaskEventType, TaskResult, TaskStatus
from orchestrator import TaskNotFoundError
from orchestrator.testing import GatedProvider

EVENTS_LOGGER = "dagorch.events"


class Recorder:
    """A sync handler that keeps every event it gets."""

    def __init__(self) -> None:
        self.events: list[TaskEvent] = []

    def __call__(self, event: TaskEvent) -> None:
        self.events.append(event)

    @property
    def types(self) -> list[str]:
        return [event.type.value for event in self.events]

    @property
    def payloads(self) -> list[tuple[str, dict | None]]:
        return [(event.type.value, event.data) for event in self.events]


async def drain(stream, count: int) -> list[TaskEvent]:
    return [await stream.next(timeout=1) for _ in range(count)]


# -- subscribing ------------------------------------------------------------------------------


async def test_a_handler_for_one_event_type_gets_only_that_type(make_service):
    service = await make_service()
    paused = Recorder()
    service.on("task:paused", paused)
    task = await service.create_task("t")
    await service.update_task_progress(task.id, 10)
    await service.pause_task(task.id)
    await service.cancel_task(task.id)
    assert paused.types == ["task:paused"]
    assert paused.events[0].task_id == task.id


async def test_a_handler_for_task_gets_every_event(make_service):
    service = await make_service()
    everything = Recorder()
    service.on("task", everything)
    task = await service.create_task("t")
    await service.update_task_progress(task.id, 10)
    await service.pause_task(task.id)
    await service.cancel_task(task.id)
    assert everything.types == ["task:created", "task:progress", "task:paused", "task:cancelled"]


async def test_an_event_type_enum_subscribes_like_its_string_value(make_service):
    service = await make_service()
    created = Recorder()
    service.on(TaskEventType.CREATED, created)
    await service.create_task("t")
    assert created.types == ["task:created"]


async def test_specific_handlers_fire_before_catch_all_handlers(make_service):
    service = await make_service()
    order: list[str] = []
    service.on("task", lambda e: order.append("all"))
    service.on("task:created", lambda e: order.append("created"))
    await service.create_task("t")
    assert order == ["created", "all"]


async def test_events_a_handler_causes_reach_every_handler_after_the_one_that_caused_them(
    make_service,
):
    service = await make_service()
    task = await service.create_task("t")

    async def pause_and_resume(event: TaskEvent) -> None:
        await service.pause_task(event.task_id)
        await service.resume_task(event.task_id)

    service.on("task:started", pause_and_resume)
    seen: list[tuple[int, TaskEventType]] = []
    service.on("task", lambda e: seen.append((e.seq, e.type)))

    await service.start_task_execution(task.id)

    numbers = [seq for seq, _ in seen]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    assert [kind for _, kind in seen][:4] == [
        TaskEventType.STARTED,
        TaskEventType.OUTPUT,  # the start's own lines, raised with it
        TaskEventType.PAUSED,
        TaskEventType.RESUMED,
    ]


async def test_handlers_of_one_event_fire_in_the_order_they_were_added(make_service):
    service = await make_service()
    order: list[str] = []
    service.on("task:created", lambda e: order.append("first"))
    service.on("task:created", lambda e: order.append("second"))
    await service.create_task("t")
    assert order == ["first", "second"]


async def test_an_async_specific_handler_fires_before_a_sync_catch_all_handler(make_service):
    service = await make_service()
    order: list[str] = []

    async def specific(event: TaskEvent) -> None:
        order.append("specific")

    service.on("task:created", specific)
    service.on("task", lambda e: order.append("all"))
    await service.create_task("t")
    assert order == ["specific", "all"]


async def test_mixed_sync_and_async_handlers_fire_in_the_order_they_were_added(make_service):
    service = await make_service()
    order: list[str] = []

    async def first(event: TaskEvent) -> None:
        order.append("first")

    service.on("task:created", first)
    service.on("task:created", lambda e: order.append("second"))
    await service.create_task("t")
    assert order == ["first", "second"]


async def test_sync_and_async_handlers_both_run(make_service):
    service = await make_service()
    seen: list[str] = []

    async def async_handler(event: TaskEvent) -> None:
        seen.append(f"async {event.type.value}")

    service.on("task:created", lambda e: seen.append(f"sync {e.type.value}"))
    service.on("task:created", async_handler)
    await service.create_task("t")
    assert sorted(seen) == ["async task:created", "sync task:created"]


async def test_async_handlers_are_awaited_before_the_service_call_returns(make_service):
    service = await make_service()
    finished: list[str] = []

    async def slow_handler(event: TaskEvent) -> None:
        for _ in range(5):
            await anyio.lowlevel.checkpoint()
        finished.append(event.task_id)

    service.on("task", slow_handler)
    task = await service.create_task("t")
    assert finished == [task.id]
    await service.update_task_progress(task.id, 50)
    assert finished == [task.id, task.id]


async def test_off_removes_a_handler(make_service):
    service = await make_service()
    removed, kept = Recorder(), Recorder()
    service.on("task:created", removed)
    service.on("task:created", kept)
    service.off("task:created", removed)
    await service.create_task("t")
    assert removed.events == []
    assert kept.types == ["task:created"]


async def test_off_removes_a_catch_all_handler(make_service):
    service = await make_service()
    handler = Recorder()
    service.on("task", handler)
    service.off("task", handler)
    await service.create_task("t")
    assert handler.events == []


async def test_off_for_one_event_keeps_the_handler_on_other_events(make_service):
    service = await make_service()
    handler = Recorder()
    service.on("task:created", handler)
    service.on("task:paused", handler)
    service.off("task:created", handler)
    task = await service.create_task("t")
    await service.pause_task(task.id)
    assert handler.types == ["task:paused"]


async def test_off_for_a_handler_that_was_never_added_does_nothing(make_service):
    service = await make_service()
    service.off("task:created", Recorder())
    handler = Recorder()
    service.on("task:created", handler)
    service.off("task:created", Recorder())
    await service.create_task("t")
    assert handler.types == ["task:created"]


# -- failing handlers -------------------------------------------------------------------------


async def test_a_raising_sync_handler_is_logged_and_breaks_nothing(make_service, caplog):
    service = await make_service()
    later, catch_all = Recorder(), Recorder()

    def broken(event: TaskEvent) -> None:
        raise RuntimeError("handler exploded")

    service.on("task:created", broken)
    service.on("task:created", later)
    service.on("task", catch_all)
    with caplog.at_level(logging.ERROR, logger=EVENTS_LOGGER):
        task = await service.create_task("survives")

    assert later.types == ["task:created"]
    assert catch_all.types == ["task:created"]
    assert (await service.get_task(task.id)).name == "survives"
    assert [t.id for t in await service.store.load_tasks()] == [task.id]
    failures = [r for r in caplog.records if r.name == EVENTS_LOGGER]
    assert len(failures) == 1
    assert failures[0].levelno == logging.ERROR
    assert "task:created" in failures[0].getMessage()
    assert task.id in failures[0].getMessage()
    assert failures[0].exc_info is not None
    assert "handler exploded" in str(failures[0].exc_info[1])


async def test_a_raising_async_handler_is_logged_and_breaks_nothing(make_service, caplog):
    service = await make_service()
    later = Recorder()

    async def broken(event: TaskEvent) -> None:
        await anyio.lowlevel.checkpoint()
        raise RuntimeError("async handler exploded")

    service.on("task:progress", broken)
    service.on("task:progress", later)
    task = await service.create_task("t")
    with caplog.at_level(logging.ERROR, logger=EVENTS_LOGGER):
        await service.update_task_progress(task.id, 70)

    assert later.payloads == [("task:progress", {"progress": 70})]
    assert (await service.get_task(task.id)).metadata.progress == 70
    [stored] = await service.store.load_tasks()
    assert stored.metadata.progress == 70
    failures = [r for r in caplog.records if r.name == EVENTS_LOGGER]
    assert len(failures) == 1
    assert "task:progress" in failures[0].getMessage()
    assert "async handler exploded" in str(failures[0].exc_info[1])


async def test_a_raising_handler_does_not_stop_a_run(make_service, caplog):
    service = await make_service()

    def broken(event: TaskEvent) -> None:
        raise RuntimeError("nope")

    service.on("task", broken)
    emitted = Recorder()
    service.on("task", emitted)
    with caplog.at_level(logging.ERROR, logger=EVENTS_LOGGER):
        task = await service.create_task("t")
        summary = await service.run()
    assert summary.statuses == {task.id: TaskStatus.COMPLETED}
    assert emitted.types == ["task:created", "task:started", "task:output", "task:completed"]
    failures = [r for r in caplog.records if r.name == EVENTS_LOGGER]
    assert len(failures) == len(emitted.events)


# -- streams and numbering --------------------------------------------------------------------


async def test_stream_events_yields_events_in_emission_order(make_service):
    service = await make_service()
    async with service.stream_events() as stream:
        task = await service.create_task("t")
        await service.update_task_progress(task.id, 5)
        await service.append_output(task.id, "hello")
        await service.pause_task(task.id)
        await service.cancel_task(task.id)
        events = await drain(stream, 5)
    assert [e.type.value for e in events] == [
        "task:created",
        "task:progress",
        "task:output",
        "task:paused",
        "task:cancelled",
    ]
    assert {e.task_id for e in events} == {task.id}


async def test_a_stream_for_one_event_type_yields_only_that_type(make_service):
    service = await make_service()
    async with service.stream_events("task:output") as stream:
        task = await service.create_task("t")
        await service.update_task_progress(task.id, 5)
        await service.append_output(task.id, "one")
        await service.append_output(task.id, "two")
        events = await drain(stream, 2)
    assert [e.data for e in events] == [{"output": ["one"]}, {"output": ["two"]}]


async def test_a_stream_gets_the_same_events_as_a_catch_all_handler(make_service):
    service = await make_service()
    handler = Recorder()
    service.on("task", handler)
    async with service.stream_events() as stream:
        await service.create_task("a")
        await service.run()
        streamed = await drain(stream, len(handler.events))
    assert streamed == handler.events


async def test_events_are_numbered_one_two_three_in_emission_order(make_service):
    service = await make_service()
    handler = Recorder()
    service.on("task", handler)
    first = await service.create_task("a")
    await service.create_task("b", depends_on=[first.id])
    await service.run()
    seqs = [event.seq for event in handler.events]
    assert len(seqs) > 5
    assert seqs == list(range(1, len(seqs) + 1))


async def test_events_carry_a_timestamp_in_epoch_milliseconds(make_service):
    service = await make_service()
    handler = Recorder()
    service.on("task", handler)
    task = await service.create_task("t")
    await service.update_task_progress(task.id, 1)
    stamps = [event.timestamp for event in handler.events]
    assert stamps == sorted(stamps)
    assert all(stamp >= task.metadata.created_at for stamp in stamps)


# -- pause ------------------------------------------------------------------------------------


async def test_pausing_a_pending_task_emits_exactly_one_paused_event(make_service):
    service = await make_service()
    handler = Recorder()
    task = await service.create_task("t")
    service.on("task", handler)
    await service.pause_task(task.id)
    assert handler.payloads == [("task:paused", {"status": "paused"})]


async def test_pausing_a_running_task_emits_exactly_one_paused_event(make_service):
    provider = GatedProvider()
    service = await make_service(provider)
    task = await service.create_task("t")
    service.start_task_execution(task.id)
    await provider.started.wait()
    paused = Recorder()
    service.on("task:paused", paused)

    await service.pause_task(task.id)

    assert paused.payloads == [("task:paused", {"status": "paused"})]
    await service.resume_task(task.id)
    provider.release()
    finished = await service.wait_for_task(task.id, timeout=5)
    assert finished.metadata.status is TaskStatus.COMPLETED
    assert len(paused.events) == 1


async def test_pausing_an_already_paused_task_emits_nothing(make_service):
    service = await make_service()
    task = await service.create_task("t")
    await service.pause_task(task.id)
    handler = Recorder()
    service.on("task", handler)
    await service.pause_task(task.id)
    assert handler.events == []
    assert (await service.get_task(task.id)).metadata.status is TaskStatus.PAUSED


# -- missing tasks ----------------------------------------------------------------------------

MISSING = "no-such-task"


async def _set_current_missing(service) -> None:
    service.set_current_task(MISSING)


OPERATIONS_ON_A_MISSING_TASK = {
    "pause_task": lambda s: s.pause_task(MISSING),
    "resume_task": lambda s: s.resume_task(MISSING),
    "cancel_task": lambda s: s.cancel_task(MISSING),
    "delete_task": lambda s: s.delete_task(MISSING),
    "update_task_status": lambda s: s.update_task_status(MISSING, TaskStatus.RUNNING),
    "update_task_progress": lambda s: s.update_task_progress(MISSING, 10),
    "append_output": lambda s: s.append_output(MISSING, "line"),
    "set_task_result": lambda s: s.set_task_result(MISSING, TaskResult(success=True)),
    "set_task_error": lambda s: s.set_task_error(MISSING, "boom"),
    "set_current_task": _set_current_missing,
}


@pytest.mark.parametrize("operation", list(OPERATIONS_ON_A_MISSING_TASK))
async def test_an_operation_on_a_missing_task_raises_and_emits_nothing(make_service, operation):
    service = await make_service()
    existing = await service.create_task("exists")
    handler = Recorder()
    service.on("task", handler)
    async with service.stream_events() as stream:
        with pytest.raises(TaskNotFoundError, match=MISSING):
            await OPERATIONS_ON_A_MISSING_TASK[operation](service)
        assert handler.events == []
        # The next event on the stream is the one emitted after the refused call.
        await service.update_task_progress(existing.id, 1)
        after = await stream.next(timeout=1)
    assert (after.task_id, after.data) == (existing.id, {"progress": 1})


# -- the reference's names and payloads -------------------------------------------------------


async def test_create_emits_created_with_name_and_provider_id(make_service):
    service = await make_service()
    handler = Recorder()
    service.on("task", handler)
    task = await service.create_task("build", "Build it")
    assert handler.payloads == [("task:created", {"name": "build", "providerId": "ok"})]
    assert handler.events[0].task_id == task.id


async def test_progress_emits_progress_with_the_clamped_value(make_service):
    service = await make_service()
    task = await service.create_task("t")
    handler = Recorder()
    service.on("task", handler)
    await service.update_task_progress(task.id, 42)
    await service.update_task_progress(task.id, 150)
    assert handler.payloads == [
        ("task:progress", {"progress": 42}),
        ("task:progress", {"progress": 100}),
    ]


async def test_output_emits_output_with_the_new_non_blank_lines(make_service):
    service = await make_service()
    task = await service.create_task("t")
    handler = Recorder()
    service.on("task", handler)
    await service.append_output(task.id, "first\n\n   \n  indented")
    assert handler.payloads == [("task:output", {"output": ["first", "  indented"]})]


@pytest.mark.parametrize("blank", ["", "   ", "\n", " \n\t\n "])
async def test_blank_output_emits_no_event_and_adds_no_lines(make_service, blank):
    service = await make_service()
    task = await service.create_task("t")
    handler = Recorder()
    service.on("task", handler)
    await service.append_output(task.id, blank)
    assert handler.events == []
    assert (await service.get_task(task.id)).metadata.output == []


async def test_cancel_emits_cancelled_with_status_cancelled(make_service):
    service = await make_service()
    task = await service.create_task("t")
    handler = Recorder()
    service.on("task", handler)
    await service.cancel_task(task.id)
    assert handler.payloads == [("task:cancelled", {"status": "cancelled"})]


async def test_a_successful_result_emits_completed_with_success_summary_and_error(make_service):
    service = await make_service()
    task = await service.create_task("t")
    handler = Recorder()
    service.on("task", handler)
    await service.set_task_result(task.id, TaskResult(success=True, summary="all good"))
    assert handler.payloads == [
        ("task:completed", {"success": True, "summary": "all good", "error": None})
    ]


async def test_a_failed_result_emits_failed_with_success_summary_and_error(make_service):
    service = await make_service()
    task = await service.create_task("t")
    handler = Recorder()
    service.on("task", handler)
    await service.set_task_result(
        task.id, TaskResult(success=False, summary="no luck", error="boom")
    )
    assert handler.payloads == [
        ("task:failed", {"success": False, "summary": "no luck", "error": "boom"})
    ]


async def test_selecting_a_task_emits_progress_with_selected_true(make_service):
    service = await make_service()
    await service.create_task("first")
    second = await service.create_task("second")
    async with service.stream_events() as events:
        service.set_current_task(second.id)
        event = await events.next(timeout=1)
    assert (event.type.value, event.task_id, event.data) == (
        "task:progress",
        second.id,
        {"selected": True},
    )


async def test_select_task_returns_once_the_selection_is_stored_and_announced(make_service):
    service = await make_service()
    await service.create_task("first")
    second = await service.create_task("second")
    handler = Recorder()
    service.on("task", handler)

    await service.select_task(second.id)

    assert handler.payloads == [("task:progress", {"selected": True})]
    assert await service.store.get_value("current_task_id") == second.id


async def test_clearing_the_selection_emits_nothing(make_service):
    service = await make_service()
    await service.create_task("t")
    handler = Recorder()
    service.on("task", handler)
    service.set_current_task(None)
    assert handler.events == []
    assert service.get_current_task_id() is None


async def test_delete_emits_message_with_deleted_true(make_service):
    service = await make_service()
    task = await service.create_task("t")
    handler = Recorder()
    service.on("task", handler)
    await service.delete_task(task.id)
    assert handler.payloads == [("task:message", {"deleted": True})]
    assert handler.events[0].task_id == task.id
    assert await service.get_task(task.id) is None
