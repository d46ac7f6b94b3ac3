"""The ``echo`` provider: outputs and returns a text, for demos and tests.

Parameters (all optional):

- ``text`` (str): what to output and return; the task's description when absent.
- ``delay`` (number): seconds to take, in small steps that obey pause and cancel (a stand-in for
  real work in demos).
- ``fail`` (bool): fail the task with the text as its error instead of succeeding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from builtin_providers._params import param
from hookspecs.specs import hookimpl

if TYPE_CHECKING:
    from collections.abc import Callable

    from hookspecs.models import OrchestratedTask, TaskResult
    from hookspecs.provider import AgentProvider, ProviderTaskExecutionContext

_STEP = 0.05


class EchoProvider:
    """Outputs its ``text`` parameter (else the task description) and returns it as the summary."""

    id = "echo"
    label = "Echo"
    description = "Outputs and returns its text parameter, else the task description (demos, tests)"

    async def execute_task(
        self, task: OrchestratedTask, ctx: ProviderTaskExecutionContext
    ) -> TaskResult:
        """Wait ``delay`` seconds (pausable), output the text, succeed (or fail when ``fail``)."""
        import anyio

        from hookspecs.models import TaskResult

        text = param(task, "text", str, task.description)
        delay = float(param(task, "delay", (int, float), 0))
        fail = param(task, "fail", bool, False)
        waited = 0.0
        while waited < delay:
            await ctx.checkpoint()
            step = min(_STEP, delay - waited)
            await anyio.sleep(step)
            waited += step
            await ctx.update_progress(100 * waited / delay)
        await ctx.checkpoint()
        await ctx.append_output(text)
        if fail:
            return TaskResult(success=False, summary=text, error=text or "echo failed on request")
        await ctx.update_progress(100)
        return TaskResult(success=True, summary=text)


@hookimpl
def register_providers(register: Callable[[AgentProvider], None]) -> None:
    """Offer the ``echo`` provider."""
    register(EchoProvider())
