"""The Dask executor, worker side: find the provider, give it a context that reports home.

``run_on_worker`` runs as a Dask task. It finds the provider through the worker's own
``dagorch.providers`` entry points, runs it, and sends every context call back to the
coordinator as a structured event on the call's topic, ending with ``{"kind": "end"}``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import anyio

from hookspecs.models import OrchestratedTask, TaskResult, TaskStatus
from hookspecs.provider import ProviderError
from orchestrator.errors import TaskCancelledError

_POLL = 0.1
_hosts: dict[int, Any] = {}  # one plugin registry per worker process, found once


def _providers() -> Any:
    import os

    from orchestrator.plugins import PluginHost

    host = _hosts.get(os.getpid())
    if host is None:
        host = PluginHost(strict=False)
        host.load_entry_points()
        _hosts[os.getpid()] = host
    return host.registry


async def run_on_worker(
    provider_id: str,
    origin: str,
    task: OrchestratedTask,
    upstream: dict[str, TaskResult],
    attempt: int,
    working_directory: str,
    key: str,
) -> Any:
    """Run ``provider_id`` on ``task`` here, reporting through the call's topic."""
    from distributed import get_worker

    worker = get_worker()
    provider = _providers().find(provider_id)
    if provider is None:
        raise ProviderError(
            f'Provider "{provider_id}" is not installed on Dask worker {worker.address} '
            f"(on the coordinator it comes from {origin}: install that there)",
            retryable=False,
        )
    ctx = WorkerContext(worker, key, task, upstream, attempt, working_directory)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(ctx.watch)
            try:
                return await provider.execute_task(task, ctx)
            finally:
                group.cancel_scope.cancel()
    finally:
        ctx.send({"kind": "end"})


class WorkerContext:
    """The context a provider gets on a worker: reports travel home as events, control comes
    from two Dask events polled every 0.1 s."""

    def __init__(
        self,
        worker: Any,
        key: str,
        task: OrchestratedTask,
        upstream: Mapping[str, TaskResult],
        attempt: int,
        working_directory: str,
    ) -> None:
        self._worker = worker
        self._key = key
        self._task = task
        self._upstream = dict(upstream)
        self._attempt = attempt
        self._working_directory = working_directory
        self._cancelled = False
        self._paused = False

    def send(self, message: dict[str, Any]) -> None:
        self._worker.log_event(self._key, message)

    async def watch(self) -> None:
        # Asked straight through the worker's own connection to the scheduler: an Event object
        # here would make a worker client, which outlives the cluster and warns when collected.
        scheduler = self._worker.scheduler
        cancel, pause = f"{self._key}-cancel", f"{self._key}-pause"
        while not self._cancelled:
            try:
                self._cancelled = bool(await scheduler.event_is_set(name=cancel))
                self._paused = bool(await scheduler.event_is_set(name=pause))
            except Exception:
                # The scheduler is gone (the cluster is closing): nobody is left to steer us.
                self._cancelled = True
                return
            await anyio.sleep(_POLL)

    # -- the ProviderTaskExecutionContext protocol -------------------------------------------

    @property
    def task_id(self) -> str:
        return self._task.id

    @property
    def runtime_agent_id(self) -> str:
        return ""

    @property
    def working_directory(self) -> str:
        return self._working_directory

    @property
    def room_id(self) -> str | None:
        return self._task.room_id

    @property
    def world_id(self) -> str | None:
        return self._task.world_id

    @property
    def attempt(self) -> int:
        return self._attempt

    @property
    def upstream_results(self) -> Mapping[str, TaskResult]:
        return self._upstream

    async def append_output(self, text: str) -> None:
        self.send({"kind": "output", "text": str(text)})

    async def update_progress(self, progress: float) -> None:
        self.send({"kind": "progress", "value": progress})

    async def add_step(self, description: str) -> str | None:
        step_id = uuid.uuid4().hex
        self.send({"kind": "add_step", "id": step_id, "description": description})
        return step_id

    async def update_step(
        self, step_id: str, status: TaskStatus | str, output: str | None = None
    ) -> None:
        self.send(
            {
                "kind": "update_step",
                "id": step_id,
                "status": TaskStatus(status).value,
                "output": output,
            }
        )

    def is_cancelled(self) -> bool:
        return self._cancelled

    def is_paused(self) -> bool:
        return self._paused and not self._cancelled

    async def checkpoint(self) -> None:
        # The flags are refreshed by ``watch`` from the cluster's events: polling is the design.
        while self._paused and not self._cancelled:  # noqa: ASYNC110
            await anyio.sleep(_POLL)
        if self._cancelled:
            raise TaskCancelledError(f"Task {self._task.id} was cancelled")
