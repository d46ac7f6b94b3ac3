"""``Batch``: what one operation changed, written to the store together."""

from __future__ import annotations

from typing import Any

from hookspecs.models import OrchestratedTask, TaskEventType

__all__ = ["Batch"]


class Batch:
    """The tasks changed and the events raised by one operation."""

    __slots__ = ("ended", "events", "logged_at", "tasks")

    def __init__(self) -> None:
        self.tasks: dict[str, OrchestratedTask] = {}
        self.events: list[tuple[TaskEventType, str, dict[str, Any] | None]] = []
        self.ended: list[str] = []
        """Tasks this batch made terminal: their waiters go free once it is stored."""
        self.logged_at: int | None = None
        """When its events were written to the event log (ms), so that live copies carry the
        same timestamp as the logged ones."""

    def touch(self, task: OrchestratedTask) -> None:
        """Record that ``task`` changed without an event."""
        self.tasks[task.id] = task

    def add(
        self,
        task: OrchestratedTask,
        event: TaskEventType | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Record that ``task`` changed, and the event to emit for it."""
        self.tasks[task.id] = task
        if event is not None:
            self.events.append((event, task.id, data))
