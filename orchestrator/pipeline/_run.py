"""Runs of a pipeline: its tasks created in a store under a run id, and continued later.

A run's tasks get ids ``<run id>/<task id>`` (the run id is ``<pipeline name>-<n>``), so the same
pipeline can run many times on one store. The store's ``pipeline_runs`` value records each run:
its id, pipeline, file and task ids, for ``--resume`` and the control commands.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from hookspecs.models import TaskStatus
from orchestrator.errors import DagorchError
from orchestrator.pipeline._spec import Pipeline
from orchestrator.templating import PLACEHOLDER

if TYPE_CHECKING:
    from orchestrator.service import AgentOrchestratorService
    from orchestrator.store import Store

RUNS_KEY = "pipeline_runs"
"""The store value listing the runs."""


class RunNotFoundError(DagorchError, LookupError):
    """No run with that id is recorded in the store; the message lists the ones that are."""

    def __init__(self, run_id: str, known: list[str]) -> None:
        shown = ", ".join(known[-10:]) if known else "(no runs recorded)"
        super().__init__(f"No run {run_id!r} in this store. Runs: {shown}")
        self.run_id = run_id


@dataclass(frozen=True)
class RunRecord:
    """One run of a pipeline, as recorded in the store."""

    id: str
    """``<pipeline name>-<n>``."""
    pipeline: str
    """The pipeline's name."""
    file: str
    """The pipeline file it was started from."""
    tasks: list[str]
    """The pipeline's own task ids, in file order."""
    created_at: float
    """When it started (seconds since the epoch)."""

    def task_id(self, local_id: str) -> str:
        """The stored id of the pipeline task ``local_id``."""
        return qualified(self.id, local_id)

    @property
    def task_ids(self) -> list[str]:
        """The stored ids of every task of the run."""
        return [self.task_id(local) for local in self.tasks]


def qualified(run_id: str, local_id: str) -> str:
    """The stored id of a pipeline task in a run."""
    return f"{run_id}/{local_id}"


async def recorded_runs(store: Store) -> list[RunRecord]:
    """The runs recorded in ``store``, oldest first."""
    value = await store.get_value(RUNS_KEY)
    runs: list[RunRecord] = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, Mapping):
            record = _record(item)
            if record is not None:
                runs.append(record)
    return runs


def _record(item: Mapping[str, Any]) -> RunRecord | None:
    run_id, pipeline, file = item.get("id"), item.get("pipeline"), item.get("file")
    tasks, created = item.get("tasks"), item.get("created_at")
    if not (isinstance(run_id, str) and isinstance(pipeline, str) and isinstance(file, str)):
        return None
    if not (isinstance(tasks, list) and all(isinstance(t, str) for t in tasks)):
        return None
    if not isinstance(created, int | float):
        return None
    return RunRecord(run_id, pipeline, file, [str(t) for t in tasks], float(created))


async def find_run(store: Store, run_id: str) -> RunRecord:
    """The run ``run_id`` (``"last"`` for the newest); ``RunNotFoundError`` otherwise."""
    runs = await recorded_runs(store)
    if run_id == "last" and runs:
        return runs[-1]
    for run in runs:
        if run.id == run_id:
            return run
    raise RunNotFoundError(run_id, [run.id for run in runs])


async def start_run(
    service: AgentOrchestratorService, pipeline: Pipeline, file: str | os.PathLike[str]
) -> RunRecord:
    """Create the pipeline's tasks as a new run (all or none) and record the run; ``file`` is
    the pipeline file's path as it should be recorded (absolute, for ``--resume``)."""
    runs = await recorded_runs(service.store)
    taken = {run.id for run in runs}
    number = len(runs) + 1
    # A run's tasks are created all at once, and recorded as a run just after: a crash in
    # between leaves tasks under an id no record holds, which must not be picked again.
    while f"{pipeline.name}-{number}" in taken or await _has_tasks(
        service, f"{pipeline.name}-{number}", pipeline
    ):
        number += 1
    run = RunRecord(
        id=f"{pipeline.name}-{number}",
        pipeline=pipeline.name,
        file=os.fspath(file),
        tasks=[task.id for task in pipeline.tasks],
        created_at=time.time(),
    )
    specs = task_specs(pipeline, run)
    await service.create_tasks(specs)
    await service.store.set_value(RUNS_KEY, [asdict(r) for r in [*runs, run]])
    return run


async def _has_tasks(service: AgentOrchestratorService, run_id: str, pipeline: Pipeline) -> bool:
    first = pipeline.tasks[0].id
    return await service.get_task(qualified(run_id, first)) is not None


def task_specs(pipeline: Pipeline, run: RunRecord) -> list[dict[str, Any]]:
    """The ``create_tasks`` specs of a run of ``pipeline``."""
    settings = pipeline.settings
    workdir = str((pipeline.folder / (settings.working_directory or ".")).resolve())
    return [
        {
            "task_id": run.task_id(task.id),
            "name": task.name or task.id,
            "description": task.description,
            "provider_id": task.provider or settings.provider,
            "params": _qualify_placeholders({**settings.params, **task.params}, run.id),
            "depends_on": [run.task_id(up) for up in task.depends_on],
            "retries": task.retries if task.retries is not None else settings.retries,
            "timeout": task.timeout if task.timeout is not None else settings.timeout,
            "working_directory": workdir,
            "tags": [f"run:{run.id}"],
        }
        for task in pipeline.tasks
    ]


async def resume_run(service: AgentOrchestratorService, run: RunRecord) -> list[str]:
    """Queue the run's unfinished tasks again (paused ones are resumed); returns their ids."""
    waiting = []
    for task_id in run.task_ids:
        task = await service.get_task(task_id)
        if task is None or task.metadata.status.is_terminal:
            continue
        if task.metadata.status is TaskStatus.PAUSED:
            await service.resume_task(task_id)
        waiting.append(task_id)
    return waiting


def _qualify_placeholders(value: Any, run_id: str) -> Any:
    if isinstance(value, str):
        return PLACEHOLDER.sub(
            lambda m: f"{{{{ tasks.{qualified(run_id, m.group(1))}.{m.group(2)} }}}}", value
        )
    if isinstance(value, Mapping):
        return {key: _qualify_placeholders(item, run_id) for key, item in value.items()}
    if isinstance(value, list):
        return [_qualify_placeholders(item, run_id) for item in value]
    return value
