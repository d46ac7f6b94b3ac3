"""The current-task selections: the last one made anywhere, and each chat room's own.

The reference kept one pointer for every room. Here a room's selection is its own; a room that
never chose one sees the last selection made anywhere when that task is in the room (or in none),
and a room whose selection was cleared sees none. The service and the command line's view of a
store another process owns share these rules.
"""

from __future__ import annotations

from collections.abc import Callable

RoomSelections = dict[str, str | None]
"""Each room's own selection; None for a room whose selection was cleared."""


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
    previous = current_in(shared, rooms, room_id, room_of)
    rooms[room_id] = task_id
    if task_id is not None:
        return task_id
    return None if shared == previous else shared
