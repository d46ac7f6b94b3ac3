"""The seven task actions, with the ElizaOS reference's names, similes, descriptions and replies.

Differences from the reference, all deliberate: triggers are whole words (control verbs also
inflected: "cancelling", "paused"), and a request to pause, cancel, switch... a task never offers
CREATE_TASK because the task's name holds "build" or "fix"; a query that matches
nothing gets the friendly "No task to ..." reply instead of an IndexError; blank steps are
dropped; CREATE_TASK takes dependencies (the ``dependsOn`` parameter, or "after the X task" in
the text) and can turn a plan into a chain of tasks; PAUSE and CANCEL name the downstream tasks
they hold or cancel; LIST shows what each task waits on; resuming a finished task is refused.
"""

from __future__ import annotations

import uuid

from hookspecs.models import OrchestratedTask, TaskStatus
from orchestrator.actions._base import (
    ActionInputError,
    ActionReply,
    ActionRequest,
    FollowUp,
    TaskAction,
    TaskService,
)
from orchestrator.actions._params import flag_param, list_param, text_param
from orchestrator.actions._text import (
    dependency_names,
    extract_query,
    first_of,
    has_phrase,
    has_verb,
    has_word,
    words,
)

Result = tuple[ActionReply, FollowUp]

NAME_LIMIT = 100
DESCRIPTION_LIMIT = 4000
LIST_LIMIT = 20
SEARCH_SHOWN = 10


# -- shared ---------------------------------------------------------------------------------


def _line(
    task: OrchestratedTask, current_id: str | None = None, waits: list[str] | None = None
) -> str:
    md = task.metadata
    line = f"- {task.name} — {md.status.value} {md.progress}%"
    if current_id is not None and task.id == current_id:
        line += " (current)"
    if waits:
        line += f" — waits on: {', '.join(waits)}"
    return line


async def _waiting_on(service: TaskService, task: OrchestratedTask) -> list[str]:
    """Names of the upstream tasks that have not completed yet."""
    names = []
    for up_id in task.metadata.depends_on:
        up = await service.get_task(up_id)
        if up is not None and up.metadata.status is not TaskStatus.COMPLETED:
            names.append(up.name)
    return names


async def _unfinished_downstream(service: TaskService, task_id: str) -> list[OrchestratedTask]:
    found = []
    for down_id in service.get_downstream(task_id):
        down = await service.get_task(down_id)
        if down is not None and not down.metadata.status.is_terminal:
            found.append(down)
    return found


def _query(request: ActionRequest) -> str:
    return text_param(request.params, "query") or extract_query(request.text)


async def _target(service: TaskService, request: ActionRequest) -> OrchestratedTask | None:
    """The task a command is about: the best match for its query, else the current task."""
    query = _query(request)
    if query:
        hits = await service.search_tasks(query)
        return hits[0] if hits else None
    return await service.get_current_task(request.room_id)


def _none_to(verb: str, request: ActionRequest) -> ActionReply:
    query = _query(request)
    suffix = f' matching "{query}".' if query else "."
    return ActionReply(False, f"No task to {verb}{suffix}")


# -- CREATE_TASK ----------------------------------------------------------------------------


_PAUSE_VERBS = ("pause", "stop", "halt")
_RESUME_VERBS = ("resume", "restart", "continue")
_CANCEL_VERBS = ("cancel", "delete", "remove")
_SWITCH_VERBS = ("switch",)
_CONTROL_VERBS = (*_PAUSE_VERBS, *_RESUME_VERBS, *_CANCEL_VERBS, *_SWITCH_VERBS)
"""The verbs of the actions that control a task that exists: the same tuples their matchers
use, so that CREATE_TASK stands aside exactly when one of them would answer."""


_CREATE_VERBS = ("implement", "build", "create", "develop", "refactor", "fix", "add")


def _asks_to_create(text: str) -> bool:
    if has_phrase(text, "create task", "create a task", "new task", "start a task"):
        return True
    # "stop the build task" is about a task that exists, whatever words its name holds; "add a
    # task that pauses the build" asks for a new one.
    first = first_of(text, _CREATE_VERBS, _CONTROL_VERBS)
    if first in _CONTROL_VERBS and has_word(text, "task"):
        return False
    return has_word(text, *_CREATE_VERBS)


async def _resolve(service: TaskService, name: str) -> OrchestratedTask:
    # By id or name, never by a word of a description or a tag: a dependency named in passing
    # must not attach the task to an unrelated one.
    query = name.strip().lower()
    hits = await service.search_tasks(name)
    by_id = [hit for hit in hits if hit.id.lower() == query]
    by_name = [hit for hit in hits if query in hit.name.lower()]
    # An id's beginning only when it is long enough not to be a word ("db" starts many ids).
    by_prefix = [hit for hit in hits if len(query) >= 8 and hit.id.lower().startswith(query)]
    for found in (by_id, by_name, by_prefix):
        if found:
            return found[0]
    raise ActionInputError(f'No task found matching "{name}" to wait for; nothing was created.')


async def _create(service: TaskService, request: ActionRequest) -> Result:
    params, text = request.params, request.text.strip()
    title = text_param(params, "title", "name")
    description = text_param(params, "description")
    steps = list_param(params, "steps", what="step texts")
    named_upstream = list_param(params, "dependsOn", "depends_on", what="task names or ids")
    chain = flag_param(params, "chain")
    provider_id = text_param(params, "provider", "providerId")
    if not (text or title or description):
        raise ActionInputError("Please describe the task to create.")
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    name = (title or first_line or description or "New Task")[:NAME_LIMIT].strip() or "New Task"
    detail = (description or text)[:DESCRIPTION_LIMIT].strip() or name
    wanted = named_upstream if named_upstream is not None else dependency_names(text)
    upstream: dict[str, OrchestratedTask] = {}
    for wanted_name in wanted:
        found = await _resolve(service, wanted_name)
        upstream.setdefault(found.id, found)
    if chain and steps:
        return await _create_chain(service, request, steps, list(upstream.values()), provider_id)
    task = await service.create_task(
        name, detail, request.room_id, provider_id, depends_on=list(upstream)
    )
    if steps:
        for step in steps:
            await service.add_step(task.id, step)
        plan = "\n".join(f"{number}. {step}" for number, step in enumerate(steps, 1))
        await service.append_output(task.id, f"Plan:\n{plan}")
    lines = [
        f"Created task: {task.name}",
        f"Provider: {task.metadata.provider_label or task.metadata.provider_id}",
    ]
    if upstream:
        lines.append(f"Waits on: {', '.join(t.name for t in upstream.values())}")
    lines.append("Starting execution…")
    data = {"taskId": task.id, "dependsOn": list(upstream)}
    return ActionReply(True, "\n".join(lines), data), lambda: service.start_task_execution(task.id)


async def _create_chain(
    service: TaskService,
    request: ActionRequest,
    steps: list[str],
    upstream: list[OrchestratedTask],
    provider_id: str | None,
) -> Result:
    """One task per step, each after the one before (the first after ``upstream``); created
    together, so a refusal creates none."""
    ids = [str(uuid.uuid4()) for _ in steps]
    specs = [
        {
            "task_id": task_id,
            "name": step[:NAME_LIMIT],
            "description": step[:DESCRIPTION_LIMIT],
            "room_id": request.room_id,
            "provider_id": provider_id,
            "depends_on": [ids[index - 1]] if index else [t.id for t in upstream],
        }
        for index, (task_id, step) in enumerate(zip(ids, steps, strict=True))
    ]
    await service.create_tasks(specs)
    first = await service.get_task(ids[0])
    assert first is not None
    label = first.metadata.provider_label or first.metadata.provider_id
    lines = [f"Created {len(ids)} tasks, each after the one before:"]
    lines += [f"{number}. {step[:NAME_LIMIT]}" for number, step in enumerate(steps, 1)]
    lines.append(f"Provider: {label}")
    if upstream:
        lines.append(f"Waits on: {', '.join(t.name for t in upstream)}")
    lines.append("Starting execution…")

    def start() -> None:
        for task_id in ids:
            service.start_task_execution(task_id)

    data = {"taskId": ids[0], "taskIds": ids, "dependsOn": [t.id for t in upstream]}
    return ActionReply(True, "\n".join(lines), data), start


# -- LIST_TASKS and SEARCH_TASKS -------------------------------------------------------------


def _asks_to_list(text: str) -> bool:
    return has_phrase(text, "list task", "show task", "my task") or " ".join(words(text)) == "tasks"


async def _list(service: TaskService, request: ActionRequest) -> Result:
    tasks = await service.get_recent_tasks(LIST_LIMIT)
    if not tasks:
        return ActionReply(True, "No tasks."), None
    current = service.get_current_task_id(request.room_id)
    lines = ["Tasks:"] + [_line(t, current, await _waiting_on(service, t)) for t in tasks]
    return ActionReply(True, "\n".join(lines)), None


def _asks_to_search(text: str) -> bool:
    return has_phrase(text, "search task", "find task", "look for task", "search for task")


async def _search(service: TaskService, request: ActionRequest) -> Result:
    query = _query(request)
    if not query:
        return ActionReply(False, "What would you like to search for?"), None
    hits = await service.search_tasks(query)
    if not hits:
        return ActionReply(True, f'No tasks found matching: "{query}"'), None
    lines = [f'Found {len(hits)} task(s) matching "{query}":']
    lines += [_line(t) for t in hits[:SEARCH_SHOWN]]
    return ActionReply(True, "\n".join(lines), {"taskIds": [t.id for t in hits]}), None


# -- SWITCH_TASK ----------------------------------------------------------------------------


def _asks_to_switch(text: str) -> bool:
    return has_phrase(text, "switch to task", "select task") or (
        has_word(text, "task") and has_verb(text, *_SWITCH_VERBS)
    )


async def _switch(service: TaskService, request: ActionRequest) -> Result:
    query = _query(request)
    if not query:
        return ActionReply(False, "Please specify which task to switch to (by name or id)."), None
    hits = await service.search_tasks(query)
    if not hits:
        return ActionReply(False, f'No task found matching: "{query}"'), None
    await service.select_task(hits[0].id, request.room_id)
    return ActionReply(True, f"Switched to task: {hits[0].name}", {"taskId": hits[0].id}), None


# -- PAUSE_TASK, RESUME_TASK, CANCEL_TASK ----------------------------------------------------


async def _pause(service: TaskService, request: ActionRequest) -> Result:
    task = await _target(service, request)
    if task is None:
        return _none_to("pause", request), None
    await service.pause_task(task.id)
    held = await _unfinished_downstream(service, task.id)
    text = f"Paused task: {task.name}"
    if held:
        text += f"\nHeld downstream: {', '.join(t.name for t in held)}"
    return ActionReply(True, text, {"taskId": task.id, "held": [t.id for t in held]}), None


async def _resume(service: TaskService, request: ActionRequest) -> Result:
    task = await _target(service, request)
    if task is None:
        return _none_to("resume", request), None
    await service.resume_task(task.id)
    text = f"Resumed task: {task.name}"
    return ActionReply(True, text, {"taskId": task.id}), lambda: service.start_task_execution(
        task.id
    )


async def _cancel(service: TaskService, request: ActionRequest) -> Result:
    task = await _target(service, request)
    if task is None:
        return _none_to("cancel", request), None
    before = await _unfinished_downstream(service, task.id)
    await service.cancel_task(task.id)
    cancelled = []
    for down in before:
        now = await service.get_task(down.id)
        if now is not None and now.metadata.status is TaskStatus.CANCELLED:
            cancelled.append(now)
    text = f"Cancelled task: {task.name}"
    if cancelled:
        text += f"\nAlso cancelled downstream: {', '.join(t.name for t in cancelled)}"
    data = {"taskId": task.id, "cancelled": [t.id for t in cancelled]}
    return ActionReply(True, text, data), None


# -- the actions ----------------------------------------------------------------------------

CREATE_TASK = TaskAction(
    name="CREATE_TASK",
    similes=("START_TASK", "SPAWN_TASK", "NEW_TASK", "BEGIN_TASK"),
    description="Create an orchestrated background task to be executed by a selected agent provider.",
    matches=_asks_to_create,
    handler=_create,
)
"""Create a task (or a chain of tasks from a plan), after the tasks it names, and start it."""

LIST_TASKS = TaskAction(
    name="LIST_TASKS",
    similes=("SHOW_TASKS", "GET_TASKS", "TASKS", "VIEW_TASKS"),
    description="List tasks managed by the orchestrator.",
    matches=_asks_to_list,
    handler=_list,
)
"""List the 20 newest tasks with status, progress, the current one and what each waits on."""

SWITCH_TASK = TaskAction(
    name="SWITCH_TASK",
    similes=("SELECT_TASK", "SET_TASK", "CHANGE_TASK", "GO_TO_TASK"),
    description="Switch the current task context to a different task.",
    matches=_asks_to_switch,
    handler=_switch,
)
"""Make the best match for the query the current task."""

SEARCH_TASKS = TaskAction(
    name="SEARCH_TASKS",
    similes=("FIND_TASK", "LOOKUP_TASK"),
    description="Search tasks by query.",
    matches=_asks_to_search,
    handler=_search,
)
"""Find tasks: exact id, exact name, prefix, then substring matches."""

PAUSE_TASK = TaskAction(
    name="PAUSE_TASK",
    similes=("STOP_TASK", "HALT_TASK"),
    description="Pause a running task.",
    matches=lambda text: has_verb(text, *_PAUSE_VERBS) and has_word(text, "task"),
    handler=_pause,
)
"""Pause the matching (or current) task; the reply names the downstream tasks it holds."""

RESUME_TASK = TaskAction(
    name="RESUME_TASK",
    similes=("CONTINUE_TASK", "RESTART_TASK", "RUN_TASK"),
    description="Resume a paused task.",
    matches=lambda text: has_word(text, "task") and has_verb(text, *_RESUME_VERBS),
    handler=_resume,
)
"""Resume the matching (or current) paused task; a finished task is refused, never re-run."""

CANCEL_TASK = TaskAction(
    name="CANCEL_TASK",
    similes=("DELETE_TASK", "REMOVE_TASK", "ABORT_TASK"),
    description="Cancel a task.",
    matches=lambda text: has_verb(text, *_CANCEL_VERBS) and has_word(text, "task"),
    handler=_cancel,
)
"""Cancel the matching (or current) task; the reply names the downstream tasks cancelled too."""

ACTIONS = (CREATE_TASK, LIST_TASKS, SWITCH_TASK, SEARCH_TASKS, PAUSE_TASK, RESUME_TASK, CANCEL_TASK)
"""Every action, in the reference's order."""


def get_action(name: str) -> TaskAction:
    """The action called ``name`` (or one of its similes); ``KeyError`` when there is none."""
    wanted = name.strip().upper()
    for action in ACTIONS:
        if wanted == action.name or wanted in action.similes:
            return action
    raise KeyError(name)
