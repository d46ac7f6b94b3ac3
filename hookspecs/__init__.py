"""The dagorch plugin SDK: everything a provider author imports.

A provider package depends on this package only::

    from hookspecs import TaskResult, hookimpl

    class Shout:
        id = "shout"
        label = "Shout"
        description = "Upper-cases the task description"

        async def execute_task(self, task, ctx):
            await ctx.append_output(task.description.upper())
            return TaskResult(success=True, summary="shouted")

    @hookimpl
    def register_providers(register):
        register(Shout())

and names its module in the ``dagorch.providers`` entry-point group of its ``pyproject.toml``.
"""

from hookspecs.models import (
    AgentProviderId,
    JsonValue,
    OrchestratedTask,
    OrchestratedTaskMetadata,
    TaskEvent,
    TaskEventType,
    TaskResult,
    TaskStatus,
    TaskStep,
    TaskUserStatus,
)
from hookspecs.provider import AgentProvider, ProviderError, ProviderTaskExecutionContext
from hookspecs.specs import PROJECT_NAME, hookimpl, hookspec

__all__ = [
    "PROJECT_NAME",
    "AgentProvider",
    "AgentProviderId",
    "JsonValue",
    "OrchestratedTask",
    "OrchestratedTaskMetadata",
    "ProviderError",
    "ProviderTaskExecutionContext",
    "TaskEvent",
    "TaskEventType",
    "TaskResult",
    "TaskStatus",
    "TaskStep",
    "TaskUserStatus",
    "hookimpl",
    "hookspec",
]
