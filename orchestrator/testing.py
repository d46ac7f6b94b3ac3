"""Helpers for testing providers and pipelines: small real providers with controllable behaviour.

Plugin authors can use them to drive a real ``AgentOrchestratorService`` in their own tests::

    from orchestrator.testing import FunctionProvider, GatedProvider

    async def shout(task, ctx):
        await ctx.append_output(task.description.upper())
        return TaskResult(success=True, summary="shouted")

    service = await AgentOrchestratorService.start(
        options=AgentOrchestratorPluginOptions(providers=[FunctionProvider("shout", shout)]))
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

from hookspecs.models import OrchestratedTask, TaskResult
from hookspecs.provider import ProviderTaskExecutionContext

TaskFunction = Callable[[OrchestratedTask, ProviderTaskExecutionContext], Awaitable[object]]


class FunctionProvider:
    """A provider whose ``execute_task`` is the given coroutine function; records every call."""

    def __init__(self, provider_id: str, function: TaskFunction, label: str | None = None) -> None:
        self.id = provider_id
        self.label = label or provider_id
        self.description: str | None = f"Runs {getattr(function, '__name__', 'a function')}"
        self._function = function
        self.calls: list[str] = []
        """Ids of the tasks this provider was called for, in call order (a retry appears again)."""

    async def execute_task(
        self, task: OrchestratedTask, ctx: ProviderTaskExecutionContext
    ) -> TaskResult:
        """Record the call, then run the function; whatever it returns is returned."""
        self.calls.append(task.id)
        return await self._function(task, ctx)  # type: ignore[return-value]


class GatedProvider:
    """A provider that starts, then waits at ``ctx.checkpoint()`` until ``release()`` is called.

    ``started`` is set once any task has begun, so a test can act on a task known to be running.
    """

    def __init__(self, provider_id: str = "gated", label: str = "Gated") -> None:
        self.id = provider_id
        self.label = label
        self.description: str | None = "Waits until released"
        self.started = anyio.Event()
        self._released = anyio.Event()
        self.calls: list[str] = []
        self.finished: list[str] = []

    def release(self) -> None:
        """Let every waiting and future task finish successfully."""
        self._released.set()

    async def execute_task(
        self, task: OrchestratedTask, ctx: ProviderTaskExecutionContext
    ) -> TaskResult:
        """Signal ``started``, wait for ``release()`` (obeying pause and cancel), then succeed."""
        self.calls.append(task.id)
        self.started.set()
        await ctx.append_output("waiting for release")
        while not self._released.is_set():
            await ctx.checkpoint()
            with anyio.move_on_after(0.01):
                await self._released.wait()
        await ctx.checkpoint()
        self.finished.append(task.id)
        return TaskResult(success=True, summary=f"released {task.name}")


async def succeed(task: OrchestratedTask, ctx: ProviderTaskExecutionContext) -> TaskResult:
    """A task function that succeeds at once with the task's name as summary."""
    return TaskResult(success=True, summary=task.name)
