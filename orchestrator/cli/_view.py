"""The live view of a running pipeline: one row per task, redrawn as events arrive.

Events only mark rows as changed; the view reads the changed tasks when it redraws (a few times a
second), so a burst of thousands of events costs one read per task. Past ``ROWS_SHOWN`` tasks the
view summarises: counts per status, then the tasks that are running, paused or failed.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from hookspecs.models import OrchestratedTask, TaskEvent
from orchestrator.cli._common import printable

ROWS_SHOWN = 40
"""Up to this many tasks, every task has a row; beyond it the view summarises."""

_STYLES = {
    "pending": "dim",
    "running": "bold cyan",
    "paused": "yellow",
    "completed": "green",
    "failed": "bold red",
    "cancelled": "magenta",
}
_ORDER = ("running", "paused", "failed", "cancelled", "pending", "completed")


@dataclass
class Row:
    """What the view shows of one task."""

    label: str
    status: str = "pending"
    progress: int = 0
    started_at: int | None = None
    completed_at: int | None = None
    last_line: str = ""
    error: str | None = None

    def update(self, task: OrchestratedTask) -> None:
        md = task.metadata
        self.status = md.status.value
        self.progress = md.progress
        self.started_at = md.started_at
        self.completed_at = md.completed_at
        self.last_line = md.output[-1] if md.output else ""
        self.error = md.error


class RunView:
    """Rows for the tasks of one run, keyed by stored task id, labelled with the file's ids."""

    def __init__(self, title: str, labels: dict[str, str]) -> None:
        self.title = title
        self.rows = {task_id: Row(label) for task_id, label in labels.items()}
        self.changed: set[str] = set()

    def note(self, event: TaskEvent) -> None:
        """An event handler: remember that the event's task changed."""
        if event.task_id in self.rows:
            self.changed.add(event.task_id)

    def take_changed(self) -> list[str]:
        """The ids changed since the last call."""
        changed, self.changed = self.changed, set()
        return sorted(changed)

    def render(self, now_ms: int | None = None) -> RenderableType:
        """The view as it stands: a table, with a summary line above it when there are many."""
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        counts = Counter(row.status for row in self.rows.values())
        summary = Text(f"{printable(self.title, newlines=False)}  ", style="bold")
        for status in _ORDER:
            if counts.get(status):
                summary.append(f"{status} {counts[status]}  ", style=_STYLES[status])
        shown = list(self.rows.values())
        if len(shown) > ROWS_SHOWN:
            active = [r for r in shown if r.status in ("running", "paused", "failed")]
            shown = active[:ROWS_SHOWN]
            hidden = len(self.rows) - len(shown)
            summary.append(f"({hidden} more not shown)", style="dim")
        table = Table(box=None, pad_edge=False, expand=False)
        longest = max((len(row.label) for row in shown), default=4)
        table.add_column("task", no_wrap=True, overflow="ellipsis", min_width=min(longest, 24))
        table.add_column("status", no_wrap=True, min_width=9)
        table.add_column("progress", no_wrap=True, min_width=8, justify="right")
        table.add_column("elapsed", no_wrap=True, min_width=7, justify="right")
        table.add_column("last output", no_wrap=True, overflow="ellipsis", max_width=60)
        for row in shown:
            # Text, not str: a str cell is read as rich markup, and task text is not ours.
            last = row.error if row.status == "failed" and row.error else row.last_line
            table.add_row(
                Text(printable(row.label, newlines=False)),
                Text(row.status, style=_STYLES.get(row.status, "")),
                f"{row.progress:>3}%",
                _elapsed(row, now),
                Text(printable(last, newlines=False)),
            )
        return Group(summary, table)


def _elapsed(row: Row, now: int) -> str:
    if row.started_at is None:
        return ""
    end = row.completed_at if row.completed_at is not None else now
    seconds = max(0, end - row.started_at) / 1000
    return f"{seconds:.1f}s" if seconds < 60 else f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
