"""Where provider calls run: in this process (the default) or on a Dask cluster.

An executor takes a provider, a snapshot of the task and the task's context, and returns what
the provider returned. The coordinator (the service) keeps the graph, the store and the events
whichever executor runs the calls; a remote executor carries the context's updates back and the
control flags out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

    from hookspecs.models import OrchestratedTask
    from hookspecs.provider import AgentProvider, ProviderTaskExecutionContext


class Executor(Protocol):
    """Runs provider calls."""

    name: str
    """``"local"``, ``"dask"``, ..."""

    async def start(self) -> None:
        """Get ready (connect to a cluster, ...); called when the service opens."""

    async def stop(self) -> None:
        """Let go of what ``start`` took; called when the service stops."""

    async def execute(
        self, provider: AgentProvider, task: OrchestratedTask, ctx: ProviderTaskExecutionContext
    ) -> Any:
        """Run ``provider.execute_task(task, ctx)`` and return what it returned (or raise)."""


class LocalExecutor:
    """Runs provider calls on this process's event loop."""

    name = "local"

    async def start(self) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Nothing to stop."""

    async def execute(
        self, provider: AgentProvider, task: OrchestratedTask, ctx: ProviderTaskExecutionContext
    ) -> Any:
        """Await the provider directly."""
        return await provider.execute_task(task, ctx)


def make_executor(
    choice: str | Executor,
    scheduler_address: str | None = None,
    concurrency: int = 8,
    describe_origin: Callable[[AgentProvider], str] | None = None,
) -> Executor:
    """The executor named by ``choice`` (``"local"`` or ``"dask"``), or ``choice`` itself; a
    local Dask cluster gets ``concurrency`` slots, the service's own limit, and a remote
    executor names a provider's origin with ``describe_origin`` when a worker lacks it."""
    if not isinstance(choice, str):
        return choice
    if choice == "local":
        return LocalExecutor()
    if choice == "dask":
        from orchestrator._dask import DaskExecutor

        executor = DaskExecutor(scheduler_address, threads_per_worker=concurrency)
        if describe_origin is not None:
            executor.describe_origin = describe_origin
        return executor
    from orchestrator.errors import ConfigurationError

    raise ConfigurationError(f'Unknown executor "{choice}". Available: dask, local')
