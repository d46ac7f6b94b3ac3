"""Providers the tests share (helpers for plugin authors live in ``orchestrator.testing``)."""

from __future__ import annotations

import anyio

from orchestrator import OrchestratedTask, TaskResult


class Probe:
    """Hands its context to the test and returns once ``go`` is set.

    With ``obey=True`` it waits at ``ctx.checkpoint()`` (so pause holds it and cancel ends it);
    with ``obey=False`` it ignores both, like a provider that never looks at its context.
    ``cancelled_by_scope`` records that its coroutine was cancelled from outside.
    """

    id = "probe"
    label = "Probe"
    description = None

    def __init__(self, *, obey: bool = True) -> None:
        self.obey = obey
        self.ctx = None
        self.started = anyio.Event()
        self.go = anyio.Event()
        self.calls: list[str] = []
        self.cancelled_by_scope = False

    async def execute_task(self, task: OrchestratedTask, ctx) -> TaskResult:
        self.calls.append(task.id)
        self.ctx = ctx
        self.started.set()
        try:
            while not self.go.is_set():
                if self.obey:
                    await ctx.checkpoint()
                with anyio.move_on_after(0.005):
                    await self.go.wait()
        except BaseException:
            self.cancelled_by_scope = True
            raise
        if self.obey:
            await ctx.checkpoint()
        return TaskResult(success=True, summary="finished")
