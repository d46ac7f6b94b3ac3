"""What the runner calls back on the service: starting, retrying and ending runs, and what a
provider gets from upstream tasks. Part of the one writer (``Core``); kept apart because it is
the run side of it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from hookspecs.models import OrchestratedTask, TaskResult, TaskStatus
from orchestrator._batch import Batch
from orchestrator._core import Core
from orchestrator._snapshot import assign
from orchestrator.errors import UnknownProviderError
from orchestrator.lifecycle import Trigger

if TYPE_CHECKING:
    from orchestrator.context import Run

logger = logging.getLogger("dagorch.service")

_PENDING = TaskStatus.PENDING
_START, _COMPLETE, _FAIL = Trigger.START, Trigger.COMPLETE, Trigger.FAIL


class RunHooks(Core):
    """The service's side of a run."""

    def _begin_run(self, task: OrchestratedTask, run: Run) -> Batch | None:
        """Move a pending task to running for its first attempt, in memory; the batch the caller
        writes (``_write_now``, else ``_flush``), or None when it may not start (no longer
        pending, an upstream task not completed, the service stopping). Not a coroutine, since
        most writes need no await."""
        md = task.metadata
        # Runs are made for wanted tasks only, and the scheduler counts a wanted task's upstream
        # tasks that have not completed: a count here means a dependency added since the run
        # was made.
        if md.status is not _PENDING or self._stopping or self._scheduler.is_blocked(task.id):
            return None
        batch = Batch()
        self._transition(batch, task, _START)
        run.started = True
        md.__dict__["attempts"] = md.attempts + 1
        self._keep_lines(
            batch,
            task,
            [f"Starting: {task.name}", f"Provider: {md.provider_label} ({md.provider_id})"],
        )
        return batch

    async def _note_retry(
        self, task: OrchestratedTask, attempt: int, reason: str, delay: float
    ) -> None:
        batch = Batch()
        self._append_lines(
            batch, task, f"Attempt {attempt} failed: {reason}; retrying in {delay:.2f}s"
        )
        await self._flush(batch)

    async def _next_attempt(self, task: OrchestratedTask) -> None:
        assign(task.metadata, attempts=task.metadata.attempts + 1)
        batch = Batch()
        total = task.metadata.retries + 1
        self._append_lines(batch, task, f"Attempt {task.metadata.attempts} of {total}")
        await self._flush(batch)

    async def _end_run(
        self, task: OrchestratedTask, result: TaskResult | None, error: str | None
    ) -> None:
        """Finish a run: complete on success, else fail with ``error``."""
        batch = self._ended(task, result, error)
        if batch is not None:
            await self._flush(batch, wait=False)

    def _ended(
        self, task: OrchestratedTask, result: TaskResult | None, error: str | None
    ) -> Batch | None:
        """``_end_run`` in memory: the batch to write (``wait=False``), or None when there is
        nothing to end."""
        if task.metadata.status.is_terminal or self._tasks.get(task.id) is not task:
            return None
        batch = Batch()
        if result is not None:
            self._record_result(batch, task, result, error)
        else:
            self._transition(batch, task, Trigger.FAIL, error=error, data={"error": error})
        return batch

    def _record_result(
        self, batch: Batch, task: OrchestratedTask, result: TaskResult, error: str | None = None
    ) -> None:
        trigger = _COMPLETE if result.success and error is None else _FAIL
        failure = None if trigger is _COMPLETE else (error or result.error or "Failed")
        data = (
            {"success": result.success, "summary": result.summary, "error": result.error}
            if self._bus.recording
            else None
        )
        # Refused, if at all, before any change. The fields below are set before anything reads
        # them: what the transition releases runs later, and the batch is written later still.
        self._transition(batch, task, trigger, error=failure, data=data)
        fields = task.metadata.__dict__
        fields["result"] = result
        self._table.finished_with(task.id, result)
        # Copies of the result's lists; when both sides are empty (nearly always: only a result
        # sets these, as the task ends) the task keeps its own empty list.
        if result.files_created or fields["files_created"]:
            fields["files_created"] = list(result.files_created)
        if result.files_modified or fields["files_modified"]:
            fields["files_modified"] = list(result.files_modified)

    async def _fail_after_internal_error(self, task_id: str, exc: Exception) -> None:
        task = self._tasks.get(task_id)
        if task is None or task.metadata.status.is_terminal:
            return
        try:
            await self._end_run(task, None, f"Internal error: {exc}")
        except Exception:
            logger.exception("Could not record the failure of task %s", task_id)

    def _registry_error(self, provider_id: str) -> str:
        return str(UnknownProviderError(provider_id, self._registry.ids))

    def _upstream_field(self, task_id: str, field: str) -> str | None:
        """A field of a task for a ``{{ tasks.<id>.<field> }}`` placeholder (None: unknown)."""
        task = self._peek(task_id)
        if task is None:
            return None
        md = task.metadata
        if field == "output":
            return md.output[-1] if md.output else ""
        result = md.result
        if result is None:
            return None
        if field == "summary":
            return result.summary
        if field in ("files_created", "files_modified"):
            return " ".join(getattr(result, field))
        return None

    def _upstream_results(self, task_id: str) -> dict[str, TaskResult]:
        # Read off the table: the upstream tasks themselves finished long ago, and have left the
        # CPU's caches (a task that runs has every upstream task in memory: see _residency).
        kept = self._table.results
        results: dict[str, TaskResult] = {}
        for up in self._graph.upstream(task_id):
            result = kept.get(up)
            if result is not None:
                results[up] = result
        return results
