"""The seam between the service and where its state lives."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol

from hookspecs.models import JsonValue, OrchestratedTask, TaskEvent

EventRecord = tuple[str, str, dict[str, Any] | None, int]
"""An event to log: its type, task id, data and timestamp (epoch ms)."""

KeepTasks = Callable[[Iterable[OrchestratedTask]], None]
"""A store's optional ``keep_tasks``: ``put_tasks`` without events, done before it returns (an
in-memory store). With it, and ``writes_at_once``, a write nobody listens to costs no coroutine."""

SubmitTasks = Callable[[Sequence[OrchestratedTask], Sequence[EventRecord]], Awaitable[int | None]]
"""A store's optional ``submit_tasks``: ``put_tasks`` that queues the write when called (taking
what it needs from the tasks at once) and returns an awaitable for its commit. With it, the
runner's own writes do not wait for the disk."""


class Store(Protocol):
    """Durable (or not) storage of tasks and a few named values.

    The service is the only writer. It hands over whole tasks: a store must take what it needs from
    the task before its first ``await`` (the service keeps changing its own copy), and writes must
    be applied in the order they were made. Dependencies travel inside each task's
    ``metadata.depends_on``.

    Optional: ``async def last_event_seq(self) -> int | None``, the highest number the event log
    ever gave (None without a log). With it, event numbers go on from the log's after a restart
    and a follower whose cursor is past the end of the log is caught. Also optional:
    ``submit_tasks`` (``SubmitTasks``) and ``keep_tasks`` (``KeepTasks``).
    """

    async def open(self) -> None:
        """Prepare the store for use (create files, run migrations)."""
        ...

    async def close(self) -> None:
        """Flush and release everything; the store may be opened again."""
        ...

    async def load_tasks(self) -> list[OrchestratedTask]:
        """Every stored task, oldest first, as objects the caller may keep and change."""
        ...

    @property
    def logs_events(self) -> bool:
        """True when the store keeps an event log (and numbers the events)."""
        ...

    @property
    def writes_at_once(self) -> bool:
        """True when ``put_tasks`` never suspends (it keeps the tasks in memory): the service
        then needs no shield against cancellation around its writes."""
        ...

    @property
    def keeps_copies(self) -> bool:
        """True when the store keeps its own copy of each task (it serialises what it is
        given): the service may then let finished tasks go from memory and read them back with
        ``read_task`` when they are asked for."""
        ...

    def read_task(self, task_id: str) -> OrchestratedTask | None:
        """One stored task, read at once (a short blocking read of committed data), or None."""
        ...

    async def put_tasks(
        self, tasks: Sequence[OrchestratedTask], events: Sequence[EventRecord] = ()
    ) -> int | None:
        """Insert or replace these tasks and log these events, all together or none.

        Returns the number given to the first event (the others follow in order), or None when
        no event was logged.
        """
        ...

    async def read_events(self, after: int = 0, limit: int = 1000) -> list[TaskEvent]:
        """Logged events numbered above ``after``, oldest first, at most ``limit``."""
        ...

    async def read_output(self, task_id: str) -> list[str] | None:
        """Every output line the task ever had, from the event log; None without a log."""
        ...

    async def prune_events(self, keep: int) -> int:
        """Delete all but the newest ``keep`` events; returns how many were deleted."""
        ...

    async def delete_task(self, task_id: str) -> None:
        """Remove a task; removing a missing one does nothing."""
        ...

    async def get_value(self, key: str) -> JsonValue:
        """A named value (such as the current-task pointer), or None."""
        ...

    async def set_value(self, key: str, value: JsonValue) -> None:
        """Set a named value; None removes it."""
        ...
