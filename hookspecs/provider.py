"""What a provider is, and what it is handed while it runs a task."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    # Only for annotations: importing this module (for ProviderError) must stay cheap.
    from hookspecs.models import OrchestratedTask, TaskResult, TaskStatus


class ProviderError(Exception):
    """Raised by a provider to fail its task with a clear message.

    ``retryable=False`` tells the orchestrator not to spend the task's retries on this failure
    (a bad parameter will not get better by trying again).
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class ProviderTaskExecutionContext(Protocol):
    """The handle a provider gets for the task it runs: report progress, obey control.

    Every reporting method is a coroutine; after the task's run has ended they do nothing.
    """

    @property
    def task_id(self) -> str:
        """The id of the task being run."""
        ...

    @property
    def runtime_agent_id(self) -> str:
        """The agent id of the host runtime ("" when there is none)."""
        ...

    @property
    def working_directory(self) -> str:
        """The directory the task should work in."""
        ...

    @property
    def room_id(self) -> str | None:
        """The chat room the task was created from, if any."""
        ...

    @property
    def world_id(self) -> str | None:
        """The world the task belongs to, if any."""
        ...

    @property
    def attempt(self) -> int:
        """Which attempt this is, starting at 1."""
        ...

    @property
    def upstream_results(self) -> Mapping[str, TaskResult]:
        """The results of the tasks this one depends on, by task id (the stored results, not
        copies: read them, do not change them)."""
        ...

    async def append_output(self, text: str) -> None:
        """Add output; each non-blank line is kept (the last 500 lines of a task are stored)."""
        ...

    async def update_progress(self, progress: float) -> None:
        """Set progress in percent; clamped to 0..100, with NaN counted as 0."""
        ...

    async def add_step(self, description: str) -> str | None:
        """Add a pending step to the task's plan and return its id (None after the run ended)."""
        ...

    async def update_step(
        self, step_id: str, status: TaskStatus | str, output: str | None = None
    ) -> None:
        """Set a step's status (and output); progress follows the share of completed steps."""
        ...

    def is_cancelled(self) -> bool:
        """True from the moment the task is cancelled."""
        ...

    def is_paused(self) -> bool:
        """True while the task is paused."""
        ...

    async def checkpoint(self) -> None:
        """Wait here while the task is paused; raise ``TaskCancelledError`` once it is cancelled."""
        ...


class AgentProvider(Protocol):
    """An agent backend that runs tasks. Plain class attributes satisfy the properties."""

    @property
    def id(self) -> str:
        """The id tasks select this provider by."""
        ...

    @property
    def label(self) -> str:
        """A human-readable name."""
        ...

    @property
    def description(self) -> str | None:
        """What the provider does."""
        ...

    async def execute_task(
        self, task: OrchestratedTask, ctx: ProviderTaskExecutionContext
    ) -> TaskResult:
        """Run ``task`` to the end and return its result; raise to fail it."""
        ...
