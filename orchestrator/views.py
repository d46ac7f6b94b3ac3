"""Read-only views over tasks: search ranking, the prompt context text, run summaries."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, Field

from hookspecs.models import OrchestratedTask, TaskStatus

DEFAULT_TAGS = ("code", "orchestrator", "task")
"""Tags every task gets; search never matches on them (they would match every task)."""

OUTPUT_LINES_KEPT = 500
"""How many output lines a task keeps (the newest)."""


def clamp_progress(value: object) -> int:
    """Progress as an int in 0..100: non-numbers and NaN give 0, infinities clamp, .5 rounds up."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if isinstance(value, float):
        if math.isnan(value):
            return 0
        if math.isinf(value):
            return 100 if value > 0 else 0
        value = math.floor(value + 0.5)
    return min(100, max(0, int(value)))


def search_rank(task: OrchestratedTask, query: str) -> int | None:
    """How well ``task`` matches a lower-cased query: 0 exact id, 1 exact name, 2 prefix of id or
    name, 3 substring of name, description or a user tag; None for no match."""
    task_id = task.id.lower()
    name = task.name.lower()
    if task_id == query:
        return 0
    if name == query:
        return 1
    if task_id.startswith(query) or name.startswith(query):
        return 2
    if query in name or query in task.description.lower():
        return 3
    if any(query in tag.lower() for tag in task.tags if tag not in DEFAULT_TAGS):
        return 3
    return None


def rank_tasks(tasks: Iterable[OrchestratedTask], query: str) -> list[OrchestratedTask]:
    """Tasks matching ``query``, best match first; ties keep the given order."""
    q = query.strip().lower()
    if not q:
        return []
    ranked = [
        (rank, index, task)
        for index, task in enumerate(tasks)
        if (rank := search_rank(task, q)) is not None
    ]
    ranked.sort(key=lambda item: (item[0], item[1]))
    return [task for _, _, task in ranked]


def task_context_text(active: OrchestratedTask | None, is_current: bool) -> str:
    """The reference's prompt text describing the active task."""
    if active is None:
        return "No tasks have been created yet."
    md = active.metadata
    selected = " (selected)" if is_current else ""
    lines = [
        f"## Current Task{selected}: {active.name}",
        f"- **Execution status**: {md.status.value}",
        f"- **Progress**: {md.progress}%",
        f"- **Provider**: {md.provider_label or md.provider_id}",
    ]
    if md.depends_on:
        lines.append(f"- **Depends on**: {', '.join(md.depends_on)}")
    if active.description:
        lines += ["", "### Description", active.description]
    if md.steps:
        lines += ["", "### Plan / Steps"]
        lines += [f"- [{step.status.value}] {step.description}" for step in md.steps]
    if md.output:
        lines += ["", "### Task Output (history)", "```", *md.output[-200:], "```"]
    return "\n".join(lines).strip()


class RunSummary(BaseModel):
    """How a ``run()`` ended: the final status of every task that took part."""

    statuses: dict[str, TaskStatus] = Field(default_factory=dict)
    """Final status by task id, in the order the tasks were scheduled."""
    errors: dict[str, str] = Field(default_factory=dict)
    """The error of each task that failed or was cancelled."""

    @property
    def ok(self) -> bool:
        """True when every task completed."""
        return all(status is TaskStatus.COMPLETED for status in self.statuses.values())

    def ids_with(self, status: TaskStatus) -> list[str]:
        """The ids of the tasks that ended with ``status``."""
        return [task_id for task_id, s in self.statuses.items() if s is status]

    @classmethod
    def of(cls, tasks: Sequence[OrchestratedTask]) -> RunSummary:
        """The summary of these tasks as they are now."""
        return cls.of_states([(t.id, t.metadata.status, t.metadata.error) for t in tasks])

    @classmethod
    def of_states(cls, states: Iterable[tuple[str, TaskStatus, str | None]]) -> RunSummary:
        """The summary of (task id, status, error) triples."""
        statuses: dict[str, TaskStatus] = {}
        errors: dict[str, str] = {}
        for task_id, status, error in states:
            statuses[task_id] = status
            if error:
                errors[task_id] = error
        return cls(statuses=statuses, errors=errors)
