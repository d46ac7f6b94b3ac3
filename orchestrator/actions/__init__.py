"""The action layer: user commands (chat messages, the CLI) onto DAG nodes, engine-neutral.

Each action has the ElizaOS reference's name, similes, description and reply texts, a
``validate(text, service)`` and ``run(service, request, respond)``. Front ends (the ElizaOS
adapter in ``orchestrator.eliza``, the ``dagorch`` command) only translate their inputs into an
``ActionRequest`` and the ``ActionReply`` back::

    from orchestrator.actions import CREATE_TASK, ActionRequest

    reply = await CREATE_TASK.run(service, ActionRequest("Build the API after the schema task"))
    print(reply.text)
"""

from orchestrator.actions._base import ActionInputError, ActionReply, ActionRequest, TaskAction
from orchestrator.actions._definitions import (
    ACTIONS,
    CANCEL_TASK,
    CREATE_TASK,
    LIST_TASKS,
    PAUSE_TASK,
    RESUME_TASK,
    SEARCH_TASKS,
    SWITCH_TASK,
    get_action,
)
from orchestrator.actions._text import dependency_names, extract_query

__all__ = [
    "ACTIONS",
    "CANCEL_TASK",
    "CREATE_TASK",
    "LIST_TASKS",
    "PAUSE_TASK",
    "RESUME_TASK",
    "SEARCH_TASKS",
    "SWITCH_TASK",
    "ActionInputError",
    "ActionReply",
    "ActionRequest",
    "TaskAction",
    "dependency_names",
    "extract_query",
    "get_action",
]
