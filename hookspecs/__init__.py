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

and names its module in the ``dagorch.providers`` entry-point group of its ``pyproject.toml``::

    [project.entry-points."dagorch.providers"]
    shout = "shout_provider"

Names are imported on first use, so discovering plugins (``dagorch providers``) does not pay for
the pydantic models until a task actually needs them.
"""

import typing

from hookspecs._lazy import lazy_exports as _lazy_exports

if typing.TYPE_CHECKING:
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
    from hookspecs.specs import ENTRY_POINT_GROUP, PROJECT_NAME, hookimpl, hookspec

_HOMES = {
    "AgentProviderId": "hookspecs.models",
    "JsonValue": "hookspecs.models",
    "OrchestratedTask": "hookspecs.models",
    "OrchestratedTaskMetadata": "hookspecs.models",
    "TaskEvent": "hookspecs.models",
    "TaskEventType": "hookspecs.models",
    "TaskResult": "hookspecs.models",
    "TaskStatus": "hookspecs.models",
    "TaskStep": "hookspecs.models",
    "TaskUserStatus": "hookspecs.models",
    "AgentProvider": "hookspecs.provider",
    "ProviderError": "hookspecs.provider",
    "ProviderTaskExecutionContext": "hookspecs.provider",
    "ENTRY_POINT_GROUP": "hookspecs.specs",
    "PROJECT_NAME": "hookspecs.specs",
    "hookimpl": "hookspecs.specs",
    "hookspec": "hookspecs.specs",
}

__all__ = [
    "ENTRY_POINT_GROUP",
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


__getattr__, __dir__ = _lazy_exports(__name__, _HOMES, __all__)
