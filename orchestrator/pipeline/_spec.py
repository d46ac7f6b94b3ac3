"""A pipeline file: its TOML schema, and every problem with it at once, with lines and paths.

::

    [pipeline]                 # all optional
    name = "hello"             # default: the file name without .toml
    concurrency = 4            # tasks running at once
    provider = "echo"          # for tasks that name none
    retries = 0                # for tasks that set none
    timeout = 30               # seconds per attempt, for tasks that set none
    store = "state/hello.db"   # the SQLite file, relative to this file
    working_directory = "."    # where tasks work, relative to this file (default: its folder)
    params = { allow_tools = ["read"] }   # defaults for every task's params (a task's own win)
    executor = "dask"          # run provider calls on a Dask cluster ("local": in this process)
    scheduler = "tcp://10.0.0.5:8786"   # the cluster's scheduler (default: a local cluster)

    [[tasks]]
    id = "fetch"               # required: letters, digits, _ . -
    name = "Fetch the data"    # default: the id
    description = "..."
    provider = "shell"
    params = { command = ["curl", "-s", "https://example.com"] }
    depends_on = []
    retries = 2
    timeout = 10
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import networkx as nx
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from orchestrator.errors import DagorchError
from orchestrator.templating import FIELDS, references

TASK_ID = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$"


class TaskSpec(BaseModel):
    """One ``[[tasks]]`` table."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: Annotated[str, Field(pattern=TASK_ID, max_length=200)]
    name: str | None = None
    description: str = ""
    provider: str | None = None
    params: dict[str, JsonValue] = Field(default_factory=dict)
    depends_on: list[str] = Field(default_factory=list)
    retries: Annotated[int, Field(ge=0)] | None = None
    timeout: Annotated[float, Field(gt=0)] | None = None


class PipelineSettings(BaseModel):
    """The ``[pipeline]`` table."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: Annotated[str, Field(pattern=TASK_ID)] | None = None
    concurrency: Annotated[int, Field(ge=1)] | None = None
    provider: str | None = None
    retries: Annotated[int, Field(ge=0)] | None = None
    timeout: Annotated[float, Field(gt=0)] | None = None
    store: str | None = None
    working_directory: str | None = None
    params: dict[str, JsonValue] = Field(default_factory=dict)
    executor: Literal["local", "dask"] | None = None
    scheduler: str | None = None


class PipelineFile(BaseModel):
    """The whole file."""

    model_config = ConfigDict(extra="forbid", strict=True)

    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    tasks: list[TaskSpec] = Field(default_factory=list)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a pipeline file."""

    path: str
    """Where: ``tasks[2].retries``, ``pipeline.concurrency``, or "" for the whole file."""
    message: str
    """What is wrong."""
    line: int | None = None
    """The line it is on, when it can be told."""

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.path}: {self.message}" if self.path else f"{where}{self.message}"


class PipelineError(DagorchError):
    """A pipeline file cannot be used; ``problems`` lists everything wrong with it."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        listing = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(f"{source}: {count}\n{listing}")


@dataclass(frozen=True)
class Pipeline:
    """A checked pipeline: its settings, its tasks, and where it came from."""

    name: str
    settings: PipelineSettings
    tasks: list[TaskSpec]
    folder: Path
    """The folder of the file; relative paths in it start here."""

    def graph(self) -> nx.DiGraph[str]:
        """The tasks as a networkx graph, edges from each task to the tasks that wait for it."""
        graph: nx.DiGraph[str] = nx.DiGraph()
        for task in self.tasks:
            graph.add_node(task.id, name=task.name or task.id, provider=task.provider)
        for task in self.tasks:
            for upstream in task.depends_on:
                graph.add_edge(upstream, task.id)
        return graph


def load_pipeline(path: str | Path, known_providers: list[str] | None = None) -> Pipeline:
    """Read and check the pipeline file at ``path``; ``PipelineError`` lists every problem.

    ``known_providers`` (when given) are the provider ids a task may name.
    """
    source = Path(path)
    if not source.exists():
        raise PipelineError(str(source), [Problem("", "no such file")])
    if source.is_dir():
        raise PipelineError(str(source), [Problem("", "is a directory, not a pipeline file")])
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PipelineError(str(source), [Problem("", f"cannot be read: {exc}")]) from None
    return parse_pipeline(text, str(source), source.resolve().parent, known_providers)


def parse_pipeline(
    text: str, source: str, folder: Path, known_providers: list[str] | None = None
) -> Pipeline:
    """Check pipeline TOML ``text`` (from ``source``, relative to ``folder``)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PipelineError(
            source, [Problem("", f"invalid TOML: {exc}", _toml_line(exc))]
        ) from None
    lines = _LineFinder(text)
    problems: list[Problem] = []

    def checked(model: type[BaseModel], value: Any, loc: tuple[Any, ...]) -> Any:
        try:
            return model.model_validate(value)
        except ValidationError as exc:
            for error in exc.errors():
                where = (*loc, *error["loc"])
                message = _message(error)
                if error["type"] == "extra_forbidden":
                    message += f" (known: {', '.join(model.model_fields)})"
                problems.append(Problem(_path(where), message, lines.find(where)))
            return None

    unknown = sorted(set(raw) - {"pipeline", "tasks"})
    problems += [Problem(key, "unknown table", lines.find((key,))) for key in unknown]
    settings = checked(PipelineSettings, raw.get("pipeline", {}), ("pipeline",))
    raw_tasks = raw.get("tasks", [])
    if not isinstance(raw_tasks, list):
        problems.append(Problem("tasks", "must be an array of tables: use [[tasks]]"))
        raw_tasks = []
    tasks = [checked(TaskSpec, item, ("tasks", i)) for i, item in enumerate(raw_tasks)]
    raw_settings = raw.get("pipeline", {})
    default_provider = raw_settings.get("provider") if isinstance(raw_settings, dict) else None
    problems += _check_graph(raw_tasks, default_provider, known_providers, lines)
    shared = raw_settings.get("params") if isinstance(raw_settings, dict) else None
    for field_path, ref_id, field in references(shared if isinstance(shared, dict) else {}):
        # Shared by every task, so it would name a task that is not upstream of some of them
        # (of itself, at least).
        where = ("pipeline", *field_path.split("."))
        problems.append(
            Problem(
                f"pipeline.{field_path}",
                f"{{{{ tasks.{ref_id}.{field} }}}}: placeholders belong in a task's own params",
                lines.find(where),
            )
        )
    if problems or settings is None:
        problems.sort(key=lambda problem: problem.line or 0)
        raise PipelineError(source, problems)
    parsed = PipelineFile.model_construct(pipeline=settings, tasks=tasks)
    name = parsed.pipeline.name or re.sub(r"[^A-Za-z0-9_.\-]", "-", Path(source).stem) or "pipeline"
    return Pipeline(name=name, settings=parsed.pipeline, tasks=parsed.tasks, folder=folder)


def _check_graph(
    raw_tasks: list[Any],
    default_provider: Any,
    known_providers: list[str] | None,
    lines: _LineFinder,
) -> list[Problem]:
    """Checks across tasks, read from the raw tables so that a task with a bad field elsewhere
    is still checked: duplicate ids, unknown dependencies and providers, placeholders naming
    tasks that are not upstream, cycles."""
    if not raw_tasks:
        return [Problem("tasks", "the pipeline has no tasks: add at least one [[tasks]] table")]
    problems: list[Problem] = []

    def add(where: tuple[Any, ...], message: str, path: str | None = None) -> None:
        problems.append(Problem(path or _path(where), message, lines.find(where)))

    tables = [(i, t) for i, t in enumerate(raw_tasks) if isinstance(t, dict)]
    ids: dict[str, int] = {}
    for index, table in tables:
        task_id = table.get("id")
        if isinstance(task_id, str) and task_id in ids:
            add(
                ("tasks", index, "id"),
                f"duplicate task id {task_id!r} (also tasks[{ids[task_id]}])",
            )
        elif isinstance(task_id, str):
            ids[task_id] = index
    fallback = default_provider if isinstance(default_provider, str) else None
    known = ", ".join(sorted(known_providers)) if known_providers is not None else ""
    if fallback is not None and known_providers is not None and fallback not in known_providers:
        # Reported once, whether or not a task falls back to it.
        add(("pipeline", "provider"), f'unknown provider "{fallback}" (known: {known})')
    graph: nx.DiGraph[str] = nx.DiGraph()
    for index, table in tables:
        task_id = table.get("id")
        declared = table.get("depends_on")
        upstream = [u for u in declared if isinstance(u, str)] if isinstance(declared, list) else []
        for position, up in enumerate(upstream):
            if up not in ids:
                add(("tasks", index, "depends_on", position), f"unknown task {up!r}")
            elif isinstance(task_id, str):
                graph.add_edge(up, task_id)
        # An empty provider falls back to the pipeline's, as the run does.
        provider = table.get("provider") if isinstance(table.get("provider"), str) else None
        provider = provider or None
        if provider is None and fallback is None:
            add(("tasks", index, "provider"), "no provider: set provider here or in [pipeline]")
        elif (
            provider is not None and known_providers is not None and provider not in known_providers
        ):
            add(("tasks", index, "provider"), f'unknown provider "{provider}" (known: {known})')
        params = table.get("params")
        for field_path, ref_id, field in references(params if isinstance(params, dict) else {}):
            where = ("tasks", index, *field_path.split("."))
            path = f"tasks[{index}].{field_path}"
            if ref_id not in upstream:
                add(
                    where,
                    f"{{{{ tasks.{ref_id}.{field} }}}} names a task this one does not depend on",
                    path,
                )
            if field not in FIELDS:
                add(where, f"unknown field {field!r} (known: {', '.join(FIELDS)})", path)
    for count, cycle in enumerate(nx.simple_cycles(graph)):
        if count == 20:
            break
        start = min(range(len(cycle)), key=lambda i: ids[cycle[i]])  # the first in the file
        cycle = cycle[start:] + cycle[:start]
        shown = " -> ".join([*cycle, cycle[0]])
        add(("tasks", ids[cycle[0]], "depends_on"), f"dependency cycle: {shown}")
    return problems


def _path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    got = error.get("input")
    if error["type"].endswith("_type") and got is not None:
        return f"{error['msg'].lower()}, got {type(got).__name__} {got!r}"
    return str(error["msg"]).lower()


def _toml_line(exc: tomllib.TOMLDecodeError) -> int | None:
    found = re.search(r"line (\d+)", str(exc))
    return int(found.group(1)) if found else None


class _LineFinder:
    """Finds the line of a field from its path, by reading the TOML text's table headers and
    keys (tomllib does not keep positions)."""

    def __init__(self, text: str) -> None:
        self._tables: dict[tuple[str, int], int] = {}
        self._keys: dict[tuple[str, int, str], int] = {}
        counts: dict[str, int] = {}
        current: tuple[str, int] = ("", 0)
        for number, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            header = re.match(r"^\[\[\s*([A-Za-z_]+)\s*\]\]", stripped) or re.match(
                r"^\[\s*([A-Za-z_]+)\s*\]", stripped
            )
            if header:
                table = header.group(1)
                index = counts.get(table, 0)
                counts[table] = index + 1 if stripped.startswith("[[") else 1
                current = (table, index)
                self._tables[current] = number
                continue
            key = re.match(r"^([A-Za-z0-9_\-]+)\s*=", stripped)
            if key:
                self._keys.setdefault((*current, key.group(1)), number)

    def find(self, loc: tuple[Any, ...]) -> int | None:
        if not loc:
            return None
        table = str(loc[0])
        index = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else 0
        rest = loc[2:] if len(loc) > 1 and isinstance(loc[1], int) else loc[1:]
        if rest:
            found = self._keys.get((table, index, str(rest[0])))
            if found is not None:
                return found
        return self._tables.get((table, index))
