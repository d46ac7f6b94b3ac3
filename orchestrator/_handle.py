"""The handle ``start_task_execution`` returns."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from hookspecs.models import OrchestratedTask
from orchestrator._snapshot import snapshot

if TYPE_CHECKING:
    from orchestrator._control import TaskControl


class ExecutionHandle:
    """An awaitable for one task's execution; awaiting it gives the task once it is terminal.

    One handle exists per unfinished task, so calling ``start_task_execution`` again returns the
    same object.
    """

    def __init__(self, service: TaskControl, task_id: str) -> None:
        self._service = service
        self.task_id = task_id
        self._future = service._scheduler.future(task_id)

    @classmethod
    def for_task(cls, service: TaskControl, task_id: str) -> ExecutionHandle:
        """The task's live handle, made on first use."""
        handles = service._handles
        handle = handles.get(task_id)
        if handle is None or handle.done():
            handle = cls(service, task_id)
            handles[task_id] = handle
            handle._future.add_done_callback(lambda _: handles.pop(task_id, None))
        return handle

    def done(self) -> bool:
        """True once the task is terminal and its run, if any, has ended."""
        return self._future.done() and self._service._scheduler.run_of(self.task_id) is None

    def cancel(self) -> bool:
        """Cancel the task; False if it had finished already."""
        # The task's status, not the future's: a task whose worker was cancelled from outside
        # has its future failed but is still running.
        task = self._service._tasks.get(self.task_id)
        if task is None or task.metadata.status.is_terminal:
            return False
        self._service._spawn(self._service.cancel_task(self.task_id))
        return True

    async def wait(self) -> OrchestratedTask | None:
        """Wait for the task to be terminal; the task, or None if it was deleted."""
        await asyncio.shield(self._future)
        run = self._service._scheduler.run_of(self.task_id)
        if run is not None:
            await run.closed()
        task = self._service._peek(self.task_id)
        return snapshot(task) if task is not None else None

    def __await__(self) -> Generator[Any, None, OrchestratedTask | None]:
        return self.wait().__await__()
