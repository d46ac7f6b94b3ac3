"""``dagorch tasks|status|search|pause|resume|cancel|events``: a store's tasks, from any terminal.

The task commands go through the action layer (the same code as the ElizaOS actions) over
``RemoteTasks``. TASK may be a stored id (``hello-3/build``), a pipeline task id (``build``,
meaning that task in the newest run that has it, or in ``--run RUN``), or a name.
"""

from __future__ import annotations

import argparse
import json
import signal
from typing import TYPE_CHECKING, Any

from orchestrator.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    add_store_option,
    fail,
    parser_for,
    printable,
    store_path,
)
from orchestrator.errors import DagorchError

if TYPE_CHECKING:
    from orchestrator.actions import TaskAction
    from orchestrator.cli._remote import RemoteTasks

FOLLOW_SECONDS = 0.2


def add_commands(commands: Any) -> None:
    """Register the task commands."""
    tasks = parser_for(
        commands,
        "tasks",
        "list the newest tasks",
        "List the 20 newest tasks of the store.",
        "  dagorch tasks\n  dagorch tasks --json\n",
    )
    tasks.add_argument("--json", action="store_true", help="every task as JSON")
    add_store_option(tasks)
    tasks.set_defaults(handler=lambda args: _run(_tasks, args))

    status = parser_for(
        commands,
        "status",
        "show a task or the newest run",
        "Show one task in detail, or every task of the newest run.",
        "  dagorch status\n  dagorch status build\n  dagorch status hello-3/build\n",
    )
    status.add_argument("task", nargs="?", help="a task id or name (default: the newest run)")
    _add_run_option(status)
    add_store_option(status)
    status.set_defaults(handler=lambda args: _run(_status, args))

    search = parser_for(
        commands,
        "search",
        "search tasks",
        "Search tasks: exact id, exact name, prefix, then substring.",
        "  dagorch search deploy\n",
    )
    search.add_argument("query")
    add_store_option(search)
    search.set_defaults(handler=lambda args: _run(_search, args))

    for action, verb, what in (
        ("PAUSE_TASK", "pause", "pause a task (its downstream tasks wait)"),
        ("RESUME_TASK", "resume", "resume a paused task"),
        ("CANCEL_TASK", "cancel", "cancel a task and everything downstream of it"),
    ):
        command = parser_for(
            commands,
            verb,
            what,
            f"{what[0].upper()}{what[1:]}; works while another process runs the pipeline.",
            f"  dagorch {verb} build\n  dagorch {verb} hello-3/build\n",
        )
        command.add_argument("task", help="a task id or name")
        _add_run_option(command)
        add_store_option(command)
        command.set_defaults(handler=lambda args, action=action: _run(_control, args, action))

    events = parser_for(
        commands,
        "events",
        "print the event log as JSON lines",
        "Print the store's events as JSON lines, oldest first; --follow keeps printing new ones.",
        "  dagorch events\n  dagorch events --follow --after 120\n",
    )
    events.add_argument(
        "--follow", action="store_true", help="keep printing new events (Ctrl-C stops)"
    )
    events.add_argument(
        "--after", type=int, default=0, metavar="N", help="only events numbered above N"
    )
    add_store_option(events)
    events.set_defaults(handler=lambda args: _run(_events, args))


def _add_run_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--run", metavar="RUN", help="the run a pipeline task id refers to (default: newest)"
    )


def _run(command: Any, args: argparse.Namespace, *extra: Any) -> int:
    import anyio

    path = store_path(args.store)
    if not path.exists():
        return fail(f"{path}: no such store (run a pipeline first, or pass --store)")
    try:
        return int(anyio.run(command, path, args, *extra))
    except DagorchError as exc:
        return fail(str(exc))


async def _resolve(tasks: RemoteTasks, given: str, run_id: str | None) -> str:
    """A stored id for TASK: as given when it is one, else the pipeline task of that id or of
    that name in the run (``--run``, else the newest run that has it), else the text itself
    (matched by name among every task)."""
    from orchestrator.pipeline import find_run, recorded_runs

    if await tasks.get_task(given) is not None:
        return given
    runs = (
        [await find_run(tasks.store, run_id)]
        if run_id
        else list(reversed(await recorded_runs(tasks.store)))
    )
    for run in runs:
        if given in run.tasks:
            return run.task_id(given)
    for run in runs:
        for stored_id in run.task_ids:
            task = await tasks.get_task(stored_id)
            if task is not None and task.name == given:
                return stored_id
    return given


async def _act(tasks: RemoteTasks, action: TaskAction, query: str) -> int:
    from orchestrator.actions import ActionRequest

    reply = await action.run(tasks, ActionRequest(query, params={"query": query}))
    print(printable(reply.text))
    return EXIT_OK if reply.success else EXIT_FAILED


async def _control(path: Any, args: argparse.Namespace, action_name: str) -> int:
    from orchestrator.actions import get_action
    from orchestrator.cli._remote import RemoteTasks

    async with RemoteTasks(path) as tasks:
        task_id = await _resolve(tasks, args.task, args.run)
        return await _act(tasks, get_action(action_name), task_id)


async def _search(path: Any, args: argparse.Namespace) -> int:
    from orchestrator.actions import SEARCH_TASKS
    from orchestrator.cli._remote import RemoteTasks

    async with RemoteTasks(path) as tasks:
        return await _act(tasks, SEARCH_TASKS, args.query)


async def _tasks(path: Any, args: argparse.Namespace) -> int:
    from orchestrator.actions import LIST_TASKS, ActionRequest
    from orchestrator.cli._remote import RemoteTasks

    async with RemoteTasks(path) as tasks:
        if args.json:
            rows = [_row(t) for t in await tasks.get_tasks()]
            print(json.dumps(rows, indent=2))
            return EXIT_OK
        reply = await LIST_TASKS.run(tasks, ActionRequest("list tasks"))
        print(printable(reply.text))
        return EXIT_OK


async def _status(path: Any, args: argparse.Namespace) -> int:
    from orchestrator.cli._remote import RemoteTasks
    from orchestrator.pipeline import find_run, recorded_runs
    from orchestrator.views import task_context_text

    async with RemoteTasks(path) as tasks:
        if args.task:
            task_id = await _resolve(tasks, args.task, args.run)
            hits = await tasks.search_tasks(task_id)
            if not hits:
                return fail(f'No task matching "{args.task}"')
            task = hits[0]
            text = (
                task_context_text(task, task.id == tasks.get_current_task_id())
                .replace("## Current Task", f"## Task {task.id}", 1)
                .replace(" (selected)", "", 1)
            )
            print(printable(text))
            down = tasks.get_downstream(task.id)
            if down:
                print(printable(f"- **Downstream**: {', '.join(down)}"))
            return EXIT_OK
        runs = await recorded_runs(tasks.store)
        if not runs:
            return fail("no pipeline runs in this store yet")
        run = await find_run(tasks.store, args.run) if args.run else runs[-1]
        print(printable(f"run {run.id} ({run.pipeline}, {run.file})"))
        for local in run.tasks:
            stored = await tasks.get_task(run.task_id(local))
            if stored is not None:
                md = stored.metadata
                error = f" — {md.error}" if md.error else ""
                print(printable(f"- {local} — {md.status.value} {md.progress}%{error}"))
        return EXIT_OK


async def _events(path: Any, args: argparse.Namespace) -> int:
    import anyio

    from orchestrator.cli._remote import RemoteTasks

    async with RemoteTasks(path) as tasks:
        cursor = args.after
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with anyio.create_task_group() as group:

                async def stop_on_signal() -> None:
                    async for _ in signals:
                        group.cancel_scope.cancel()
                        return

                group.start_soon(stop_on_signal)
                while True:
                    batch = await tasks.store.read_events(cursor, 1000)
                    for event in batch:
                        print(json.dumps(event.to_dict()), flush=True)
                        cursor = max(cursor, event.seq)
                    if len(batch) == 1000:
                        continue
                    if not args.follow:
                        group.cancel_scope.cancel()
                        break
                    await anyio.sleep(FOLLOW_SECONDS)
    return EXIT_OK


def _row(task: Any) -> dict[str, Any]:
    md = task.metadata
    return {
        "id": task.id,
        "name": task.name,
        "status": md.status.value,
        "progress": md.progress,
        "provider": md.provider_id,
        "depends_on": list(md.depends_on),
        "error": md.error,
        "summary": md.result.summary if md.result else None,
    }
