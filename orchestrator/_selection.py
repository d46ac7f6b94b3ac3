"""The current-task selections: the last one made anywhere, and each chat room's own.

The reference kept one pointer for every room. Here a room's selection is its own; a room that
never chose one sees the last selection made anywhere when that task is in the room (or in none),
and a room whose selection was cleared sees none. The service and the command line's view of a
store another process owns share these rules.
"""

from __future__ import annotations

from collections.abc import Callable

from hookspecs.models import OrchestratedTask
from orchestrator.store import Store

CURRENT_TASK_KEY = "current_task_id"
"""Where the store keeps the last selection made anywhere."""
CURRENT_BY_ROOM_KEY = "current_task_by_room"
"""Where the store keeps each room's own selection, as a JSON object (room id -> task id)."""

RoomSelections = dict[str, str | None]
"""Each room's own selection; None for a room whose selection was cleared."""


def rooms_from(stored: object, exists: Callable[[str], bool]) -> RoomSelections:
    """The rooms' selections as read from ``CURRENT_BY_ROOM_KEY``: an id that is not a string,
    or that ``exists`` refuses, reads as a cleared selection."""
    if not isinstance(stored, dict):
        return {}
    return {
        str(room): task_id if isinstance(task_id, str) and exists(task_id) else None
        for room, task_id in stored.items()
    }


def room_of(task: OrchestratedTask | None) -> str | bool | None:
    """What ``current_in`` and ``select_in`` want to know of a task: its room, or False when
    it does not exist."""
    return False if task is None else task.room_id


async def store_selections(
    store: Store, shared: str | None, rooms: RoomSelections, room_id: str | None
) -> None:
    """Write the shared selection, and the rooms' when the change was a room's."""
    await store.set_value(CURRENT_TASK_KEY, shared)
    if room_id is not None:
        await store.set_value(CURRENT_BY_ROOM_KEY, dict(rooms))


def current_in(
    shared: str | None,
    rooms: RoomSelections,
    room_id: str | None,
    room_of: Callable[[str], str | bool | None],
) -> str | None:
    """The current task of ``room_id`` (of no room: ``shared``). ``room_of(task_id)`` gives the
    task's room, or False for a task that does not exist."""
    if room_id is None:
        return shared
    if room_id in rooms:
        return rooms[room_id]
    if shared is None:
        return None
    room = room_of(shared)
    return shared if room is None or room == room_id else None


def select_in(
    shared: str | None,
    rooms: RoomSelections,
    task_id: str | None,
    room_id: str | None,
    room_of: Callable[[str], str | bool | None],
) -> str | None:
    """Record a selection (None clears it) in ``rooms``; the new shared selection.

    A selection is also the last one made anywhere. Clearing a room's clears only that room's
    (and the shared one, if the room was seeing it).
    """
    if room_id is None:
        return task_id
    if task_id is not None:
        rooms[room_id] = task_id
        return task_id
    # Only a clear needs what the room saw (reading it may read a task back from the store).
    previous = current_in(shared, rooms, room_id, room_of)
    rooms[room_id] = None
    return None if shared == previous else shared
