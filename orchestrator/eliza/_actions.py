"""The seven actions and the TASK_CONTEXT provider as ElizaOS components.

Each action is an ``ActionDefinition`` whose ``validate(runtime, message, state=None)`` and
``handler(runtime, message, state=None, options=None, callback=None, responses=None)`` accept the
runtime's calling convention and the reference's shorter ones. The handler translates the message
into an ``ActionRequest``, runs the engine-neutral action (the same code path as the CLI), calls
back with a ``Content`` and returns an ``ActionResult``.
"""

from __future__ import annotations

from typing import Any

from elizaos.types import ActionResult, Content, ProviderResult
from elizaos.types.components import ActionDefinition, ActionParameter, ProviderDefinition

from orchestrator.actions import (
    CANCEL_TASK,
    CREATE_TASK,
    LIST_TASKS,
    PAUSE_TASK,
    RESUME_TASK,
    SEARCH_TASKS,
    SWITCH_TASK,
    ActionReply,
    ActionRequest,
    TaskAction,
)
from orchestrator.eliza._messages import action_params, message_room, message_text
from orchestrator.eliza._service import SERVICE_TYPE, AgentOrchestratorService

_PARAMETERS: dict[str, list[tuple[str, str, str]]] = {
    "CREATE_TASK": [
        ("title", "string", "A short name for the task"),
        ("description", "string", "What the task should do"),
        ("steps", "array", "A plan: one text per step"),
        ("dependsOn", "array", "Names or ids of tasks that must finish first"),
        ("chain", "boolean", "Make each step its own task, each after the one before"),
    ],
    "SWITCH_TASK": [("query", "string", "The task's name or id")],
    "SEARCH_TASKS": [("query", "string", "What to search for")],
    "PAUSE_TASK": [("query", "string", "The task's name or id (default: the current task)")],
    "RESUME_TASK": [("query", "string", "The task's name or id (default: the current task)")],
    "CANCEL_TASK": [("query", "string", "The task's name or id (default: the current task)")],
}


def orchestrator_of(runtime: Any) -> AgentOrchestratorService | None:
    """The runtime's ``CODE_TASK`` service, or None (also when the runtime cannot say)."""
    try:
        service = runtime.get_service(SERVICE_TYPE)
    except Exception:
        return None
    return service if isinstance(service, AgentOrchestratorService) else None


def _parameters(name: str) -> list[Any]:
    return [
        ActionParameter(name=p_name, description=text, required=False, schema={"type": kind})
        for p_name, kind, text in _PARAMETERS.get(name, [])
    ]


def eliza_action(action: TaskAction) -> ActionDefinition:
    """``action`` as an ElizaOS ``ActionDefinition``."""

    async def validate(runtime: Any, message: Any, state: Any = None) -> bool:
        return action.validate(message_text(message), orchestrator_of(runtime))

    async def handler(
        runtime: Any,
        message: Any,
        state: Any = None,
        options: Any = None,
        callback: Any = None,
        responses: Any = None,
    ) -> ActionResult:
        request = ActionRequest(
            text=message_text(message),
            room_id=message_room(message),
            params=action_params(options, responses, action.name),
        )

        async def respond(reply: ActionReply) -> None:
            if callback is not None:
                await callback(Content(text=reply.text, actions=[action.name]))

        reply = await action.run(orchestrator_of(runtime), request, respond)
        return ActionResult(
            success=reply.success,
            text=reply.text,
            data=reply.data or None,
            error=None if reply.success else reply.text,
        )

    validate.__name__ = f"validate_{action.name.lower()}"
    handler.__name__ = f"handle_{action.name.lower()}"
    return ActionDefinition(
        name=action.name,
        description=action.description,
        handler=handler,
        validate=validate,
        similes=list(action.similes),
        parameters=_parameters(action.name),
    )


async def get_task_context(runtime: Any, message: Any = None, state: Any = None) -> ProviderResult:
    """The reference's TASK_CONTEXT result, as a ``ProviderResult`` the runtime can read."""
    service = orchestrator_of(runtime)
    if service is None:
        missing = "Task orchestrator service is not available"
        return ProviderResult(
            text=f"# Task Context\n\n{missing}",
            values={"taskContext": missing, "currentTaskName": "N/A", "currentTaskStatus": "N/A"},
            data={"taskCount": 0},
        )
    room_id = message_room(message) if message is not None else None
    text = await service.get_task_context(room_id)
    current = await service.get_current_task(room_id)
    return ProviderResult(
        text=f"# Task Context\n\n{text}",
        values={
            "taskContext": text,
            "currentTaskName": current.name if current else "None",
            "currentTaskStatus": current.metadata.status.value if current else "N/A",
        },
        data={
            "taskCount": len(await service.get_tasks()),
            "currentTaskId": current.id if current else None,
        },
    )


create_task_action = eliza_action(CREATE_TASK)
"""CREATE_TASK as an ElizaOS action."""
list_tasks_action = eliza_action(LIST_TASKS)
"""LIST_TASKS as an ElizaOS action."""
switch_task_action = eliza_action(SWITCH_TASK)
"""SWITCH_TASK as an ElizaOS action."""
search_tasks_action = eliza_action(SEARCH_TASKS)
"""SEARCH_TASKS as an ElizaOS action."""
pause_task_action = eliza_action(PAUSE_TASK)
"""PAUSE_TASK as an ElizaOS action."""
resume_task_action = eliza_action(RESUME_TASK)
"""RESUME_TASK as an ElizaOS action."""
cancel_task_action = eliza_action(CANCEL_TASK)
"""CANCEL_TASK as an ElizaOS action."""

task_context_provider = ProviderDefinition(
    name="TASK_CONTEXT",
    description="Provides context about active and recent orchestrated tasks",
    position=90,
    get=get_task_context,
)
"""Adds the selected (or newest) task to the agent's state."""
