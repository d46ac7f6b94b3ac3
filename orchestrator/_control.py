"""Controlling tasks and the DAG: pause, resume, cancel, start, run, wait, dependencies.

A mixin of ``AgentOrchestratorService``; every change goes through ``Core``'s write path.
"""

from __future__ import annotations

import asyncio

import anyio

from hookspecs.models import OrchestratedTask, TaskEventType, TaskStatus
from orchestrator._batch import Batch
from orchestrator._handle import ExecutionHandle
from orchestrator._running import RunHooks
from orchestrator._snapshot import snapshot
from orchestrator.errors import ConfigurationError, DependencyError, TaskNotFoundError
from orchestrator.lifecycle import Trigger
from orchestrator.views import RunSummary


class TaskControl(RunHooks):
    """The control and DAG methods of the service."""

    # -- control ----------------------------------------------------------------------------

    async def pause_task(self, task_id: str) -> None:
        """Hold the task: a queued task does not start, a running one waits at its checkpoint."""
        await self._ensure_open()
        batch = Batch()
        self._transition(batch, self._require(task_id), Trigger.PAUSE)
        await self._flush(batch)

    async def resume_task(self, task_id: str) -> None:
        """Let a paused task go on: its live run continues, otherwise it is queued again."""
        await self._ensure_open()
        task = self._require(task_id)
        live = self._scheduler.has_live_runner(task_id)
        trigger = (
            Trigger.RESUME
            if live or task.metadata.status is not TaskStatus.PAUSED
            else Trigger.REQUEUE
        )
        batch = Batch()
        moved = self._transition(batch, task, trigger, event=TaskEventType.RESUMED)
        if moved:
            await self._flush(batch)

    async def cancel_task(self, task_id: str) -> None:
        """Cancel the task and everything downstream of it.

        ``ctx.is_cancelled()`` is true at once; a provider that has not returned within the grace
        period has its coroutine cancelled. A queued task never starts.
        """
        await self._ensure_open()
        task = self._require(task_id)
        batch = Batch()
        self._transition(
            batch,
            task,
            Trigger.CANCEL,
            error=task.metadata.error or "Cancelled by user",
            data={"status": TaskStatus.CANCELLED.value},
        )
        await self._flush(batch)

    def is_task_cancelled(self, task_id: str) -> bool:
        """True once the task is cancelled."""
        task = self._tasks.get(task_id)
        if task is None:
            gone = self._residency.gone.get(task_id)
            return gone is not None and gone[0] is TaskStatus.CANCELLED
        return task.metadata.status is TaskStatus.CANCELLED

    def is_task_paused(self, task_id: str) -> bool:
        """True while the task is paused."""
        task = self._tasks.get(task_id)
        return task is not None and task.metadata.status is TaskStatus.PAUSED

    def start_task_execution(self, task_id: str) -> ExecutionHandle:
        """Schedule the task (and the unfinished tasks it depends on); returns an awaitable handle.

        Synchronous, like the reference. The task starts once its upstream tasks completed; a
        second call while it is unfinished returns the same handle. Awaiting the handle gives the
        task once it is terminal.
        """
        self._require_running_sync()
        task = self._require(task_id)
        if not task.metadata.status.is_terminal:
            needed = [*self._scheduler.unwanted_ancestors(task_id), task_id]
            self._refuse_left_running(needed)
            self._scheduler.want(needed)
        return ExecutionHandle.for_task(self, task_id)

    def _refuse_left_running(self, task_ids: list[str]) -> None:
        """Raise if any of these tasks is marked running without a run of this service: a crash
        left it so and ``recovery="none"`` leaves it to the host, so nothing would ever end it
        and whoever waited for it would wait forever."""
        statuses = self._table.statuses
        _refuse_stuck([t for t in task_ids if self._left_running(t, statuses[t])])

    def _left_running(self, task_id: str, status: TaskStatus) -> bool:
        """True when the task is marked running without a run of this service."""
        return status is TaskStatus.RUNNING and not self._scheduler.has_live_runner(task_id)

    async def run(self) -> RunSummary:
        """Run every unfinished task in dependency order until all are terminal.

        Tasks created while it runs join the run. Paused tasks hold the run until they are
        resumed or cancelled. The summary covers every task of the service. Raises
        ``ConfigurationError`` when the service stops before the run finished.
        """
        await self._ensure_open()
        statuses = self._table.statuses
        # In the graph's order (see Scheduler.run_all); one pass, since every task is looked at.
        unfinished: list[str] = []
        stuck: list[str] = []
        for task_id in self._graph:
            status = statuses[task_id]
            if not status.is_terminal:
                unfinished.append(task_id)
                if self._left_running(task_id, status):
                    stuck.append(task_id)
        _refuse_stuck(stuck)
        await self._scheduler.run_all(unfinished)
        statuses, errors = self._residency.final_states()
        # Built from the table's own values, already valid: validating 10,000 of them again
        # would cost a tenth of a microsecond each.
        return RunSummary.model_construct(statuses=statuses, errors=errors)

    async def wait_for_task(self, task_id: str, timeout: float | None = None) -> OrchestratedTask:
        """Wait until the task is terminal and return it (``TimeoutError`` after ``timeout``)."""
        await self._ensure_open()
        if not self._knows(task_id):
            raise TaskNotFoundError(str(task_id))
        with anyio.fail_after(timeout):
            await asyncio.shield(self._scheduler.future(task_id))
        task = self._peek(task_id)
        if task is None:
            raise TaskNotFoundError(task_id)
        return snapshot(task)

    async def detect_and_pause_interrupted_tasks(self) -> list[OrchestratedTask]:
        """Pause tasks marked running that have no live run (left so by a crash), adding the
        output line "Paused due to restart."; returns them."""
        await self._ensure_open()
        return [
            snapshot(task)
            for task in await self._recover_interrupted(requeue=False, spare_done=True)
        ]

    # -- the DAG ----------------------------------------------------------------------------

    async def add_dependency(self, task_id: str, depends_on_id: str) -> None:
        """Make ``task_id`` wait for ``depends_on_id``; refused if it would close a cycle."""
        await self._ensure_open()
        task = self._require(task_id)
        # The graph, not the list: a stored list may name a task that did not exist when it was
        # loaded (a creation refused after the dependency was made), which a task of that id
        # made since does not satisfy.
        if isinstance(depends_on_id, str) and self._graph.has_dependency(task_id, depends_on_id):
            return
        if task.metadata.status not in (
            TaskStatus.PENDING,
            TaskStatus.PAUSED,
        ) or self._scheduler.has_live_runner(task_id):
            raise DependencyError(
                f"Task {task_id} is {task.metadata.status.value}; dependencies can only be "
                "added before a task starts"
            )
        if isinstance(depends_on_id, str):
            self._lookup(depends_on_id)  # back into the graph if it was let go
        self._graph.check_dependency(task_id, depends_on_id, lambda t: self._tasks[t].name)
        needed: list[str] = []
        upstream = self._tasks[depends_on_id]
        if self._scheduler.wants(task_id) and not upstream.metadata.status.is_terminal:
            # The new upstream task (and what it needs) will be wanted: refused first if a
            # crash left one of them running, as start_task_execution refuses it.
            needed = [*self._scheduler.unwanted_ancestors(depends_on_id), depends_on_id]
            self._refuse_left_running(needed)
        self._graph.add_dependency(task_id, depends_on_id)
        self._residency.linked(task_id, depends_on_id)
        if depends_on_id not in task.metadata.depends_on:
            task.metadata.depends_on.append(depends_on_id)
        self._scheduler.dependency_added(task_id, upstream, needed)
        batch = Batch()
        batch.add(task, TaskEventType.MESSAGE, {"dependsOn": list(task.metadata.depends_on)})
        self._end_from_upstream(batch, task)
        await self._flush(batch)

    async def remove_dependency(self, task_id: str, depends_on_id: str) -> None:
        """Stop ``task_id`` waiting for ``depends_on_id``."""
        await self._ensure_open()
        task = self._require(task_id)
        if depends_on_id not in task.metadata.depends_on:
            return
        self._drop_dependency(task, depends_on_id)
        batch = Batch()
        batch.add(task, TaskEventType.MESSAGE, {"dependsOn": list(task.metadata.depends_on)})
        await self._flush(batch)

    def get_dependencies(self, task_id: str) -> list[str]:
        """The ids of the tasks ``task_id`` waits for."""
        return list(self._require(task_id).metadata.depends_on)

    def get_dependents(self, task_id: str) -> list[str]:
        """The ids of the tasks that wait for ``task_id`` directly."""
        self._require(task_id)
        return list(self._graph.downstream(task_id))

    def get_downstream(self, task_id: str) -> list[str]:
        """Every task that waits for ``task_id``, directly or not, in topological order."""
        self._require(task_id)
        return self._graph.descendants(task_id)


def _refuse_stuck(stuck: list[str]) -> None:
    """Raise naming the tasks a crash left running, if there are any (see
    ``_refuse_left_running``)."""
    if stuck:
        raise ConfigurationError(
            f"Tasks left running by an earlier process: {', '.join(stuck)}; call "
            "detect_and_pause_interrupted_tasks() (or pause and resume them) first"
        )
