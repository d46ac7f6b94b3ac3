"""The context a provider is handed for one attempt at one task."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING

import anyio

from hookspecs.models import OrchestratedTask, TaskResult, TaskStatus
from orchestrator.errors import TaskCancelledError

if TYPE_CHECKING:
    from orchestrator.service import AgentOrchestratorService

_PAUSED = TaskStatus.PAUSED
"""Read once: looking an enum member up on its class costs about 50 ns, and providers may poll
``is_paused`` in a loop."""


class Run:
    """The control state of one live run of a task: what cancel and pause act on."""

    __slots__ = (
        "_closed",
        "_signal",
        "cancelled",
        "finished",
        "provider_id",
        "scope",
        "started",
        "task_id",
        "time_left",
        "timeout_scope",
        "worker",
    )

    def __init__(self, task_id: str, provider_id: str) -> None:
        self.task_id = task_id
        self.provider_id = provider_id
        self.cancelled = False
        self.started = False
        self.finished = False
        self._signal: asyncio.Event | None = None
        self.scope: anyio.CancelScope | None = None
        self.timeout_scope: anyio.CancelScope | None = None
        self.time_left: float | None = None
        """Seconds of the attempt's timeout left when it was paused."""
        self._closed: asyncio.Future[None] | bool = False
        self.worker: asyncio.Task[None] | None = None
        """The worker coroutine running this task."""

    def poke(self) -> None:
        """Wake everything waiting in ``checkpoint`` or ``sleep`` to look at the state again."""
        signal, self._signal = self._signal, None
        if signal is not None:
            signal.set()

    async def _poked(self) -> None:
        # Made only when somebody waits: most runs are never paused, cancelled or retried.
        if self._signal is None:
            self._signal = asyncio.Event()
        await self._signal.wait()

    async def checkpoint(self, task: OrchestratedTask) -> None:
        """Wait while ``task`` is paused; raise ``TaskCancelledError`` once the run is cancelled."""
        while True:
            if self.cancelled:
                raise TaskCancelledError(f"Task {task.id} was cancelled")
            if task.metadata.status is not _PAUSED:
                break
            await self._poked()
        await anyio.lowlevel.checkpoint()

    async def sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when the run is cancelled."""
        with anyio.move_on_after(seconds):
            while not self.cancelled:
                await self._poked()

    def close(self) -> None:
        """The run is over and its writes are done."""
        closed, self._closed = self._closed, True
        if isinstance(closed, asyncio.Future) and not closed.done():
            closed.set_result(None)

    async def closed(self) -> None:
        """Wait until ``close()`` has been called."""
        if self._closed is True:
            return
        if self._closed is False:
            self._closed = asyncio.get_running_loop().create_future()
        assert isinstance(self._closed, asyncio.Future)
        await asyncio.shield(self._closed)

    def cancel_now(self) -> None:
        """Cancel the provider call or back-off under way (once the grace period has run out)."""
        if self.scope is not None:
            self.scope.cancel()


class TaskFacts:
    """What a provider's context reads straight off its task (``_task``): shared by the local
    context here and the Dask worker's."""

    __slots__ = ()
    _task: OrchestratedTask

    @property
    def task_id(self) -> str:
        """The id of the task being run."""
        return self._task.id

    @property
    def room_id(self) -> str | None:
        """The chat room the task was created from, if any."""
        return self._task.room_id

    @property
    def world_id(self) -> str | None:
        """The world the task belongs to, if any."""
        return self._task.world_id


class TaskContext(TaskFacts):
    """What ``provider.execute_task(task, ctx)`` gets: reporting and control for one attempt.

    Reports made after the run ended are ignored, so a provider that lingers cannot change a
    finished task.
    """

    __slots__ = ("_run", "_service", "_task", "_upstream", "attempt")

    def __init__(
        self,
        service: AgentOrchestratorService,
        run: Run,
        task: OrchestratedTask,
        attempt: int,
    ) -> None:
        self._service = service
        self._run = run
        self._task = task
        self._upstream: dict[str, TaskResult] | None = None
        self.attempt = attempt
        """Which attempt this is, starting at 1."""

    @property
    def runtime_agent_id(self) -> str:
        """The agent id of the host runtime ("" when there is none)."""
        return self._service.agent_id

    @property
    def working_directory(self) -> str:
        """The directory the task should work in."""
        return self._task.metadata.working_directory

    @property
    def upstream_results(self) -> Mapping[str, TaskResult]:
        """The results of the tasks this one depends on, by task id.

        These are the results the service keeps, not copies (copying each for every dependent
        would cost more than most tasks do): read them, do not change them.
        """
        if self._upstream is None:
            self._upstream = self._service._upstream_results(self._task.id)
        return self._upstream

    def _live(self) -> bool:
        # Reports count only while this run is the task's own and the task is still going.
        run = self._run
        return (
            not run.finished
            and not run.cancelled
            and not self._task.metadata.status.is_terminal
            and self._service._tasks.get(self._task.id) is self._task
        )

    async def append_output(self, text: str) -> None:
        """Add output lines to the task."""
        if self._live():
            await self._service.append_output(self._task.id, text)

    async def update_progress(self, progress: float) -> None:
        """Set the task's progress in percent."""
        if self._live():
            await self._service.update_task_progress(self._task.id, progress)

    async def add_step(self, description: str) -> str | None:
        """Add a pending step to the task's plan; returns its id (None once the run is over)."""
        if not self._live():
            return None
        step = await self._service.add_step(self._task.id, description)
        return step.id

    async def update_step(
        self, step_id: str, status: TaskStatus | str, output: str | None = None
    ) -> None:
        """Set a step's status, and its output when given."""
        if self._live():
            await self._service.update_step(self._task.id, step_id, TaskStatus(status), output)

    def is_cancelled(self) -> bool:
        """True from the moment the task is cancelled."""
        return self._run.cancelled

    def is_paused(self) -> bool:
        """True while the task is paused."""
        return self._task.metadata.status is _PAUSED

    async def checkpoint(self) -> None:
        """Wait while paused; raise ``TaskCancelledError`` once cancelled."""
        await self._run.checkpoint(self._task)
