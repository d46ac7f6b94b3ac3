"""The tasks in memory, by id, with each one's status and error kept beside it.

Some passes look at every task but need only its status: ``run()`` listing the unfinished tasks,
the scheduler wanting a whole graph, the summary a run returns. They read the two small dicts
here instead of the task objects. At 10,000 tasks the objects (a few kilobytes each) no longer fit
the CPU's caches, and reading one status through a task and its metadata cost 0.3–1 µs a task
per pass; the dicts are a few hundred kilobytes.

The status here is a copy of ``task.metadata.status`` and the error one of ``metadata.error``.
Only ``Core._transition`` changes either field of a task in memory, and it tells the table
(``changed``); tasks enter and leave memory only through ``add`` and ``discard``.
"""

from __future__ import annotations

from hookspecs.models import OrchestratedTask, TaskStatus


class TaskTable:
    """The service's tasks in memory, in the order they entered it, and their statuses."""

    __slots__ = ("errors", "statuses", "tasks")

    def __init__(self) -> None:
        self.tasks: dict[str, OrchestratedTask] = {}
        """Every task in memory by id (read freely; changed only through this class)."""
        self.statuses: dict[str, TaskStatus] = {}
        """Each task's status, in the same order as ``tasks``."""
        self.errors: dict[str, str] = {}
        """The error of each task that has one."""

    def add(self, task: OrchestratedTask) -> None:
        """Put ``task`` in memory (in place of one with its id, if any)."""
        task_id = task.id
        md = task.metadata
        self.tasks[task_id] = task
        self.statuses[task_id] = md.status
        if md.error is not None:
            self.errors[task_id] = md.error
        else:
            self.errors.pop(task_id, None)

    def add_new(self, ids: list[str], tasks: list[OrchestratedTask]) -> None:
        """Put tasks just created in memory: pending, without an error; ``ids[i]`` is the id of
        ``tasks[i]``. (Given apart, so that none of the tasks is read again.)"""
        self.tasks.update(zip(ids, tasks, strict=True))
        self.statuses.update(dict.fromkeys(ids, TaskStatus.PENDING))

    def changed(self, task_id: str, status: TaskStatus, error: str | None) -> None:
        """A task's status changed (and its error, unless ``error`` is None)."""
        self.statuses[task_id] = status
        if error is not None:
            self.errors[task_id] = error

    def discard(self, task_id: str) -> OrchestratedTask | None:
        """Take the task out of memory; it, or None when it was not there."""
        self.statuses.pop(task_id, None)
        self.errors.pop(task_id, None)
        return self.tasks.pop(task_id, None)

    def clear(self) -> None:
        """Forget every task."""
        self.tasks.clear()
        self.statuses.clear()
        self.errors.clear()

    def out_of_step(self) -> list[str]:
        """The ids whose status or error here differs from the task's own, or that one dict has
        and another lacks (none, unless a change bypassed the table); for tests."""
        statuses, errors = self.statuses, self.errors
        wrong = [task_id for task_id in statuses if task_id not in self.tasks]
        wrong += [task_id for task_id in errors if task_id not in self.tasks]
        for task_id, task in self.tasks.items():
            md = task.metadata
            if statuses.get(task_id) is not md.status or errors.get(task_id) != md.error:
                wrong.append(task_id)
        return wrong
