"""A store that keeps everything in this process, for tests and throw-away runs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hookspecs.models import JsonValue, OrchestratedTask, TaskEvent
from orchestrator.store._base import EventRecord


class MemoryStore:
    """Tasks and values in dicts; gone when the process ends.

    It keeps the objects it is given rather than copies (the service never shares them), which is
    what makes it fast. A service opened later on the same ``MemoryStore`` gets copies, so two
    services never share a task object.
    """

    def __init__(self) -> None:
        self._tasks: dict[str, OrchestratedTask] = {}
        self._values: dict[str, JsonValue] = {}

    async def open(self) -> None:
        """Nothing to prepare."""

    async def close(self) -> None:
        """Nothing to release; the data stays for the next service (which loads copies; a
        stopped service refuses every change, so nothing reaches the kept objects later)."""

    async def load_tasks(self) -> list[OrchestratedTask]:
        """Copies of every task, oldest first."""
        return [task.model_copy(deep=True) for task in self._tasks.values()]

    logs_events = False
    """No event log: events are delivered live only."""

    @property
    def writes_at_once(self) -> bool:
        """True: ``put_tasks`` keeps the objects without suspending (unless a subclass
        replaced it, which may suspend)."""
        return type(self).put_tasks is MemoryStore.put_tasks

    keeps_copies = False
    """It keeps the service's own objects, so the service keeps every task in memory."""

    def read_task(self, task_id: str) -> OrchestratedTask | None:
        """A copy of one task, or None."""
        task = self._tasks.get(task_id)
        return None if task is None else task.model_copy(deep=True)

    async def put_tasks(
        self, tasks: Sequence[OrchestratedTask], events: Sequence[EventRecord] = ()
    ) -> int | None:
        """Keep these tasks (events are not logged)."""
        self.keep_tasks(tasks)
        return None

    def keep_tasks(self, tasks: Iterable[OrchestratedTask]) -> None:
        """``put_tasks`` without events, done before it returns: the service's writes call it
        directly when nothing else has to happen (no coroutine to make and await)."""
        kept = self._tasks
        for task in tasks:
            kept[task.id] = task

    async def read_events(self, after: int = 0, limit: int = 1000) -> list[TaskEvent]:
        """Always empty: this store keeps no event log."""
        return []

    async def last_event_seq(self) -> int | None:
        """None: this store keeps no event log."""
        return None

    async def read_output(self, task_id: str) -> list[str] | None:
        """None: without an event log only the task's window of output is kept."""
        return None

    async def prune_events(self, keep: int) -> int:
        """Nothing to prune."""
        return 0

    async def delete_task(self, task_id: str) -> None:
        """Forget a task."""
        self._tasks.pop(task_id, None)

    async def get_value(self, key: str) -> JsonValue:
        """A named value, or None."""
        return self._values.get(key)

    async def set_value(self, key: str, value: JsonValue) -> None:
        """Set or (with None) remove a named value."""
        if value is None:
            self._values.pop(key, None)
        else:
            self._values[key] = value
