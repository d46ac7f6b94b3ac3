"""The ``shout`` provider: an example of a provider package for dagorch."""

from __future__ import annotations

from collections.abc import Callable

from hookspecs import (
    AgentProvider,
    OrchestratedTask,
    ProviderTaskExecutionContext,
    TaskResult,
    hookimpl,
)


class ShoutProvider:
    """Outputs the task's text in capitals, one "!" per upstream result."""

    id = "shout"
    label = "Shout"
    description = "Outputs the task's text in capitals"

    async def execute_task(
        self, task: OrchestratedTask, ctx: ProviderTaskExecutionContext
    ) -> TaskResult:
        text = str(task.metadata.params.get("text") or task.description)
        shouted = text.upper() + "!" * len(ctx.upstream_results)
        await ctx.append_output(shouted)
        return TaskResult(success=True, summary=shouted)


@hookimpl
def register_providers(register: Callable[[AgentProvider], None]) -> None:
    register(ShoutProvider())
