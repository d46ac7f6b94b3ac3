"""``dagorch run``, ``dagorch validate`` and ``dagorch graph``: pipeline files."""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.cli._common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    add_store_option,
    fail,
    parser_for,
    printable,
)
from orchestrator.errors import DagorchError

if TYPE_CHECKING:
    # Imported where used: `dagorch --help` and `dagorch providers` must not pay for rich,
    # networkx and the models.
    from rich.console import Console

    from orchestrator.cli._view import RunView
    from orchestrator.pipeline import Pipeline, RunRecord

REFRESH_SECONDS = 0.25


def add_commands(commands: Any) -> None:
    """Register ``run``, ``validate`` and ``graph``."""
    run = parser_for(
        commands,
        "run",
        "run a pipeline file",
        "Run a pipeline file's tasks in dependency order, with a live view of every task.",
        "  dagorch run examples/hello.toml\n"
        "  dagorch run pipeline.toml --json > report.json\n"
        "  dagorch run pipeline.toml --resume last     continue the newest run of this store\n"
        "  dagorch run pipeline.toml --executor dask --scheduler tcp://10.0.0.5:8786\n",
    )
    run.add_argument("file", help="the pipeline file (TOML)")
    run.add_argument("--json", action="store_true", help="print a JSON report instead of the view")
    run.add_argument("--resume", metavar="RUN", help="continue run RUN (or 'last') from the store")
    run.add_argument("--concurrency", type=int, metavar="N", help="tasks running at once")
    run.add_argument("--no-live", action="store_true", help="a line per finished task instead")
    run.add_argument(
        "--executor", choices=("local", "dask"), help="where provider calls run (default: local)"
    )
    run.add_argument(
        "--scheduler", metavar="ADDRESS", help="the Dask scheduler, e.g. tcp://host:8786"
    )
    add_store_option(run)
    run.set_defaults(handler=run_command)

    validate = parser_for(
        commands,
        "validate",
        "check a pipeline file",
        "Check a pipeline file and list every problem with it (exit code 2 if there are any).",
        "  dagorch validate examples/hello.toml\n",
    )
    validate.add_argument("file", help="the pipeline file (TOML)")
    validate.set_defaults(handler=validate_command)

    graph = parser_for(
        commands,
        "graph",
        "draw a pipeline's graph",
        "Print a pipeline's dependency graph as text, Mermaid, Graphviz dot or JSON.",
        "  dagorch graph examples/hello.toml\n"
        "  dagorch graph examples/hello.toml --format mermaid\n"
        "  dagorch graph examples/hello.toml --format dot | dot -Tsvg > graph.svg\n",
    )
    graph.add_argument("file", help="the pipeline file (TOML)")
    graph.add_argument("--format", choices=("text", "mermaid", "dot", "json"), default="text")
    graph.set_defaults(handler=graph_command)


def known_providers() -> list[str]:
    """Ids of the providers installed plugins offer (a broken plugin is skipped here)."""
    from orchestrator.plugins import PluginHost

    host = PluginHost(strict=False)
    host.load_entry_points()
    return host.registry.ids


def _load(file: str) -> Pipeline | int:
    from orchestrator.pipeline import PipelineError, load_pipeline

    try:
        return load_pipeline(file, known_providers())
    except PipelineError as exc:
        return fail(str(exc), EXIT_USAGE)


# -- validate and graph ---------------------------------------------------------------------


def validate_command(args: argparse.Namespace) -> int:
    """Print "ok" and a one-line summary, or every problem (exit 2)."""
    pipeline = _load(args.file)
    if isinstance(pipeline, int):
        return pipeline
    edges = sum(len(task.depends_on) for task in pipeline.tasks)
    print(
        f"{args.file}: ok, pipeline {pipeline.name!r}: {len(pipeline.tasks)} tasks, {edges} dependencies"
    )
    return EXIT_OK


def graph_command(args: argparse.Namespace) -> int:
    """Print the graph in the chosen format."""
    pipeline = _load(args.file)
    if isinstance(pipeline, int):
        return pipeline
    print(render_graph(pipeline, args.format))
    return EXIT_OK


def render_graph(pipeline: Pipeline, form: str) -> str:
    """The pipeline's graph as ``text`` (networkx's network text), ``mermaid``, ``dot`` or
    ``json`` (node-link data)."""
    import networkx as nx

    graph = pipeline.graph()
    if form == "text":
        lines: list[str] = []
        nx.write_network_text(graph, path=lines.append, ascii_only=False, end="")
        return "\n".join(lines)
    if form == "mermaid":
        ids = _mermaid_ids(graph.nodes)
        out = ["graph TD"]
        out += [f'    {ids[n]}["{_label(graph, n)}"]' for n in graph.nodes]
        out += [f"    {ids[a]} --> {ids[b]}" for a, b in graph.edges]
        return "\n".join(out)
    if form == "dot":
        out = [f"digraph {_dot(pipeline.name)} {{", "    rankdir=LR;"]
        out += [f"    {_dot(n)} [label={_dot(_name(graph, n))}];" for n in graph.nodes]
        out += [f"    {_dot(a)} -> {_dot(b)};" for a, b in graph.edges]
        return "\n".join([*out, "}"])
    data = nx.node_link_data(graph, edges="edges")
    return json.dumps({"pipeline": pipeline.name, **data}, indent=2)


def _mermaid_ids(nodes: Any) -> dict[str, str]:
    """A Mermaid node id for each task id: its letters, digits and underscores, made unique with
    a number ("a-b" and "a_b" stay two nodes) and kept off Mermaid's keyword "end"."""
    ids: dict[str, str] = {}
    used: set[str] = set()
    for node in nodes:
        base = "".join(c if c.isalnum() or c == "_" else "_" for c in node) or "task"
        if base.lower() == "end":
            base += "_"
        candidate, number = base, 2
        while candidate in used:
            candidate, number = f"{base}_{number}", number + 1
        used.add(candidate)
        ids[node] = candidate
    return ids


def _name(graph: Any, node: str) -> str:
    return str(graph.nodes[node].get("name") or node)


def _label(graph: Any, node: str) -> str:
    """A Mermaid label: Mermaid strings have no escapes, so quotes become apostrophes."""
    return _name(graph, node).replace('"', "'").replace("\n", " ")


def _dot(text: str) -> str:
    """A DOT quoted string (backslashes, quotes and line breaks escaped)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


# -- run ------------------------------------------------------------------------------------


def run_command(args: argparse.Namespace) -> int:
    """Run the pipeline; the exit code says how it ended."""
    if args.concurrency is not None and args.concurrency < 1:
        return fail("--concurrency must be at least 1", EXIT_USAGE)
    pipeline = _load(args.file)
    if isinstance(pipeline, int):
        return pipeline
    import anyio
    from rich.console import Console

    console = Console(stderr=False)
    args.file_path = os.path.abspath(args.file)
    try:
        return anyio.run(run_pipeline, pipeline, args, console)
    except DagorchError as exc:
        return fail(str(exc))


async def run_pipeline(pipeline: Pipeline, args: argparse.Namespace, console: Console) -> int:
    """Start (or resume) a run of ``pipeline``, show it, stop cleanly on a signal, report."""
    import asyncio

    import anyio

    from orchestrator import AgentOrchestratorPluginOptions, AgentOrchestratorService, SqliteStore
    from orchestrator.cli._view import RunView
    from orchestrator.pipeline import find_run, resume_run, start_run

    settings = pipeline.settings
    store = Path(args.store) if args.store else _store_of(pipeline)
    options = AgentOrchestratorPluginOptions(
        max_concurrency=args.concurrency or settings.concurrency or 32,
        default_provider_id=settings.provider or "",
        # A scheduler address alone (flag or file) means the Dask executor.
        executor=args.executor
        or settings.executor
        or ("dask" if args.scheduler or settings.scheduler else "local"),
        scheduler_address=args.scheduler or settings.scheduler,
    )
    started = time.monotonic()
    stopping = anyio.CancelScope()

    def on_signal() -> None:
        stopping.cancel()
        # A second Ctrl-C while the run stops is Python's own again: it breaks off at once.
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)

    # Watched from before the service opens: a signal at any point stops the run cleanly (exit
    # 130, the run recorded and resumable), never with a traceback.
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    try:
        # Shielded: a signal while the service opens or the run is created takes effect once
        # the run is recorded, so its tasks never stay in the store without the record that
        # --resume finds.
        with anyio.CancelScope(shield=True):
            service = await AgentOrchestratorService.start(
                options=options, store=SqliteStore(store)
            )
        try:
            with anyio.CancelScope(shield=True):
                if args.resume:
                    run = await find_run(service.store, args.resume)
                    await resume_run(service, run)
                else:
                    run = await start_run(service, pipeline, args.file_path)
            labels = {run.task_id(local): local for local in run.tasks}
            view = RunView(f"run {run.id}", labels)
            service.on("task", view.note)
            live = not args.json and not args.no_live and console.is_terminal
            if not args.json and not live:
                service.on("task", _line_printer(view, console))
            with stopping:
                await _drive(service, run, view, console if live else None)
        finally:
            with anyio.CancelScope(shield=True):
                await service.stop()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    tasks = await _read_run(store, run.task_ids)
    elapsed = time.monotonic() - started
    if args.json:
        print(json.dumps(_report(run, store, tasks, elapsed, stopping.cancel_called), indent=2))
    else:
        for task in tasks:
            if task is not None:
                view.rows[task.id].update(task)
        if not live:
            console.print(view.render())
        summary = printable(_summary_line(run, tasks, elapsed, stopping.cancel_called))
        console.print(summary, markup=False, soft_wrap=True)
    if stopping.cancel_called:
        return EXIT_INTERRUPTED
    ok = all(t is not None and t.metadata.status.value == "completed" for t in tasks)
    return EXIT_OK if ok else EXIT_FAILED


def _store_of(pipeline: Pipeline) -> Path:
    from orchestrator.store import default_store_path

    if pipeline.settings.store:
        return pipeline.folder / pipeline.settings.store
    return default_store_path()


async def _drive(service: Any, run: RunRecord, view: RunView, console: Console | None) -> None:
    """Run the run's tasks to the end (a signal cancels this from ``run_pipeline``)."""
    import asyncio

    import anyio

    handles = [service.start_task_execution(task_id) for task_id in run.task_ids]
    async with anyio.create_task_group() as group:
        if console is not None:
            group.start_soon(_refresh, service, view, console)
        await asyncio.gather(*(handle.wait() for handle in handles), return_exceptions=True)
        group.cancel_scope.cancel()


async def _refresh(service: Any, view: RunView, console: Console) -> None:
    import anyio
    from rich.live import Live

    with Live(view.render(), console=console, refresh_per_second=1 / REFRESH_SECONDS) as live:
        try:
            while True:
                await _update_rows(service, view)
                live.update(view.render())
                await anyio.sleep(REFRESH_SECONDS)
        finally:
            with anyio.CancelScope(shield=True):
                await _update_rows(service, view)
                live.update(view.render(), refresh=True)


async def _update_rows(service: Any, view: RunView) -> None:
    for task_id in view.take_changed():
        task = await service.get_task(task_id)
        if task is not None:
            view.rows[task_id].update(task)


def _line_printer(view: RunView, console: Console) -> Any:
    def on_event(event: Any) -> None:
        if event.task_id in view.rows and event.type.value in (
            "task:completed",
            "task:failed",
            "task:cancelled",
        ):
            status = event.type.value.split(":")[1]
            error = (event.data or {}).get("error") if status != "completed" else None
            suffix = f": {error}" if error else ""
            line = printable(f"{view.rows[event.task_id].label} {status}{suffix}", newlines=False)
            # soft_wrap: one line per task even when piped (rich wraps at 80 columns then).
            console.print(line, highlight=False, markup=False, soft_wrap=True)

    return on_event


async def _read_run(store: Path, task_ids: list[str]) -> list[Any]:
    """The run's tasks as stored (None for one that is not), in the order given."""
    from orchestrator.store import SqliteStore

    # Read back from the file the run committed to: the report is what was stored, as one
    # committed state. Only the run's own tasks are read: a store that many runs wrote holds far
    # more.
    reader = SqliteStore(store)
    await reader.open()
    try:
        return reader.read_tasks(task_ids)
    finally:
        await reader.close()


def _report(
    run: RunRecord, store: Path, tasks: list[Any], elapsed: float, interrupted: bool
) -> dict[str, Any]:
    rows = []
    for local, task in zip(run.tasks, tasks, strict=True):
        md = task.metadata if task is not None else None
        rows.append(
            {
                "id": local,
                "task_id": run.task_id(local),
                "name": task.name if task else None,
                "status": md.status.value if md else "missing",
                "error": md.error if md else None,
                "summary": md.result.summary if md and md.result else None,
                "attempts": md.attempts if md else 0,
                "output": md.output[-5:] if md else [],
            }
        )
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return {
        "run": run.id,
        "pipeline": run.pipeline,
        "store": str(store),
        "ok": not interrupted and counts.get("completed", 0) == len(rows),
        "interrupted": interrupted,
        "elapsed_s": round(elapsed, 3),
        "counts": counts,
        "tasks": rows,
    }


def _summary_line(run: RunRecord, tasks: list[Any], elapsed: float, interrupted: bool) -> str:
    counts: dict[str, int] = {}
    for task in tasks:
        status = task.metadata.status.value if task is not None else "missing"
        counts[status] = counts.get(status, 0) + 1
    parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    ending = "interrupted; continue with --resume " + run.id if interrupted else f"{elapsed:.1f}s"
    return f"run {run.id}: {parts} ({ending})"
