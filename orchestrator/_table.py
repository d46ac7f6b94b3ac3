"""The tasks in memory, by id, with each one's status, error and result kept beside it.

Some passes look at every task but need only its status: ``run()`` listing the unfinished tasks,
the scheduler wanting a whole graph, the summary a run returns. They read the two small dicts
here instead of the task objects. At 10,000 tasks the objects (a few kilobytes each) no longer fit
the CPU's caches, and reading one status through a task and its metadata cost 0.3–1 µs a task
per pass; the dicts are a few hundred kilobytes. Likewise every task that starts reads its
upstream tasks' results (``ctx.upstream_results``): from here, not from three or more task
objects that finished long ago.

The status here is a copy of ``task.metadata.status``, the error one of ``metadata.error`` and the
result one of ``metadata.result``. Only ``Core._transition`` changes the first two fields of a task
in memory, and it tells the table (``changed``); only ``RunHooks._record_result`` sets the result,
once, as the task ends (``finished_with``); tasks enter and leave memory only through ``add`` and
``discard``.
"""

from __future__ import annotations

from hookspecs.models import OrchestratedTask, TaskResult, TaskStatus


class TaskTable:
    """The service's tasks in memory, in the order they entered it, and their statuses."""

    __slots__ = ("errors", "results", "statuses", "tasks")

    def __init__(self) -> None:
        self.tasks: dict[str, OrchestratedTask] = {}
        """Every task in memory by id (read freely; changed only through this class)."""
        self.statuses: dict[str, TaskStatus] = {}
        """Each task's status, in the same order as ``tasks``."""
        self.errors: dict[str, str] = {}
        """The error of each task that has one."""
        self.results: dict[str, TaskResult] = {}
        """The result of each task that has one."""

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
        if md.result is not None:
            self.results[task_id] = md.result
        else:
            self.results.pop(task_id, None)

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

    def finished_with(self, task_id: str, result: TaskResult) -> None:
        """The task's result was set (as it ends)."""
        self.results[task_id] = result

    def discard(self, task_id: str) -> OrchestratedTask | None:
        """Take the task out of memory; it, or None when it was not there."""
        self.statuses.pop(task_id, None)
        self.errors.pop(task_id, None)
        self.results.pop(task_id, None)
        return self.tasks.pop(task_id, None)

    def clear(self) -> None:
        """Forget every task."""
        self.tasks.clear()
        self.statuses.clear()
        self.errors.clear()
        self.results.clear()

    def out_of_step(self) -> list[str]:
        """The ids whose status, error or result here differs from the task's own, or that one
        dict has and another lacks (none, unless a change bypassed the table); for tests."""
        statuses, errors, results = self.statuses, self.errors, self.results
        wrong = [task_id for task_id in statuses if task_id not in self.tasks]
        wrong += [task_id for task_id in errors if task_id not in self.tasks]
        wrong += [task_id for task_id in results if task_id not in self.tasks]
        for task_id, task in self.tasks.items():
            md = task.metadata
            if (
                statuses.get(task_id) is not md.status
                or errors.get(task_id) != md.error
                or results.get(task_id) is not md.result
            ):
                wrong.append(task_id)
        return wrong
