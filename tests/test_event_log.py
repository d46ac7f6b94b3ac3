"""The durable event log: numbered events, replay from a cursor, then live, across restarts."""

from __future__ import annotations

import asyncio

import pytest

from orchestrator import TaskEventType

pytestmark = pytest.mark.parametrize("store_kind", ["sqlite"], indirect=True)


async def test_every_change_is_logged_with_consecutive_numbers(make_service):
    service = await make_service()
    task = await service.create_task("t", "")
    await service.start_task_execution(task.id)

    events = await service.read_events()

    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert [e.type for e in events] == [
        TaskEventType.CREATED,
        TaskEventType.STARTED,
        TaskEventType.OUTPUT,
        TaskEventType.COMPLETED,
    ]
    assert events[0].data == {"name": "t", "providerId": "ok"}


async def test_live_events_carry_the_numbers_of_the_log(make_service):
    service = await make_service()
    async with service.stream_events() as live:
        await service.create_task("t", "")
        delivered = await live.next(timeout=1)

    [logged] = await service.read_events()
    assert delivered.seq == logged.seq == 1


async def test_live_events_carry_the_timestamps_of_the_log(make_service):
    service = await make_service()
    delivered = []

    async def slow(event):
        delivered.append(event)
        await asyncio.sleep(0.03)  # later events are delivered later than they were logged

    service.on("task", slow)
    task = await service.create_task("t", "")
    await service.start_task_execution(task.id)

    logged = await service.read_events()
    assert [e.seq for e in delivered] == [e.seq for e in logged]
    assert [e.timestamp for e in delivered] == [e.timestamp for e in logged]


async def test_a_follower_replays_from_its_cursor_then_follows_live(make_service):
    service = await make_service()
    first = await service.create_task("first", "")
    await service.rename_task(first.id, "first renamed")

    async with service.follow_events(after=1) as follower:
        replayed = await follower.next(timeout=1)
        await service.create_task("second", "")
        live = await follower.next(timeout=1)

    assert (replayed.seq, replayed.data) == (2, {"message": "Renamed task to: first renamed"})
    assert (live.seq, live.type) == (3, TaskEventType.CREATED)
    assert follower.cursor == 3


async def test_a_follower_whose_cursor_is_past_the_end_of_the_log_follows_new_events(
    make_service,
):
    service = await make_service()
    await service.create_task("first", "")
    await service.stop()
    again = await make_service(store=service.store)  # the log's numbers go on after a restart

    async with again.follow_events(after=50) as follower:  # kept from another file, say
        created = await again.create_task("second", "")
        event = await follower.next(timeout=1)

    assert (event.seq, event.type, event.task_id) == (2, TaskEventType.CREATED, created.id)
    assert follower.cursor == 2


async def test_a_follower_resumes_after_a_restart_without_gaps_or_repeats(make_service):
    first = await make_service()
    task = await first.create_task("t", "")
    async with first.follow_events() as follower:
        seen = [await follower.next(timeout=1)]
    cursor = follower.cursor
    await first.append_output(task.id, "while nobody followed")
    await first.stop()

    second = await make_service(store=first.store)
    async with second.follow_events(after=cursor) as resumed:
        missed = await resumed.next(timeout=1)
        await second.append_output(task.id, "after the restart")
        live = await resumed.next(timeout=1)

    assert [e.seq for e in seen] == [1]
    assert missed.data == {"output": ["while nobody followed"]}
    assert live.data == {"output": ["after the restart"]}
    assert live.seq == missed.seq + 1


async def test_a_follower_for_one_event_type_skips_the_others(make_service):
    service = await make_service()
    task = await service.create_task("t", "")
    await service.append_output(task.id, "one")
    await service.append_output(task.id, "two")

    async with service.follow_events(event="task:output") as outputs:
        assert (await outputs.next(timeout=1)).data == {"output": ["one"]}
        assert (await outputs.next(timeout=1)).data == {"output": ["two"]}


async def test_old_events_are_pruned_beyond_the_retention_limit(make_service):
    first = await make_service(event_log_limit=3)
    task = await first.create_task("t", "")
    for i in range(5):
        await first.append_output(task.id, f"line {i}")
    await first.stop()

    second = await make_service(store=first.store, event_log_limit=3)
    events = await second.read_events()

    assert [e.data for e in events] == [{"output": [f"line {i}"]} for i in (2, 3, 4)]
    assert [e.seq for e in events] == [4, 5, 6]


async def test_output_beyond_the_kept_window_stays_in_the_store(make_service):
    service = await make_service()
    task = await service.create_task("chatty", "")
    for start in range(0, 1200, 100):
        await service.append_output(
            task.id, "\n".join(f"line {i}" for i in range(start, start + 100))
        )

    kept = (await service.get_task(task.id)).metadata.output
    history = await service.get_task_output(task.id)

    assert kept == [f"line {i}" for i in range(700, 1200)]
    assert history == [f"line {i}" for i in range(1200)]
