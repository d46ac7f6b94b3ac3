"""The live view of ``dagorch run``, rendered on a test console: what a person would see."""

from __future__ import annotations

from rich.console import Console

from hookspecs.models import OrchestratedTask, TaskEvent, TaskEventType, TaskStatus
from orchestrator.cli._view import RunView


def shown(view: RunView, now_ms: int = 10_000) -> str:
    console = Console(record=True, width=120, force_terminal=False, color_system=None)
    console.print(view.render(now_ms=now_ms))
    return console.export_text()


def task(task_id: str, status: TaskStatus, **fields: object) -> OrchestratedTask:
    made = OrchestratedTask(id=task_id, name=task_id)
    made.metadata.status = status
    for key, value in fields.items():
        setattr(made.metadata, key, value)
    return made


def test_each_task_has_a_row_with_status_progress_elapsed_and_last_output():
    view = RunView("run demo-1", {"demo-1/fetch": "fetch", "demo-1/parse": "parse"})
    view.rows["demo-1/fetch"].update(
        task(
            "demo-1/fetch",
            TaskStatus.RUNNING,
            progress=40,
            started_at=7_500,
            output=["a", "got 3 pages"],
        )
    )
    text = shown(view)
    lines = [line.rstrip() for line in text.splitlines()]
    assert lines[0] == "run demo-1  running 1  pending 1"
    assert lines[1].split() == ["task", "status", "progress", "elapsed", "last", "output"]
    assert lines[2].split() == ["fetch", "running", "40%", "2.5s", "got", "3", "pages"]
    assert lines[3].split() == ["parse", "pending", "0%"]


def test_a_failed_task_shows_its_error():
    view = RunView("run demo-1", {"t": "t"})
    view.rows["t"].update(
        task(
            "t",
            TaskStatus.FAILED,
            started_at=1_000,
            completed_at=1_500,
            error="disk full",
            output=["x"],
        )
    )
    assert shown(view).splitlines()[2].split() == ["t", "failed", "0%", "0.5s", "disk", "full"]


def test_events_mark_rows_changed_once_each():
    view = RunView("run r", {"a": "a", "b": "b"})
    for kind in (TaskEventType.STARTED, TaskEventType.OUTPUT, TaskEventType.PROGRESS):
        view.note(TaskEvent(type=kind, task_id="a", seq=1))
    view.note(TaskEvent(type=TaskEventType.STARTED, task_id="not-in-this-run", seq=2))
    assert view.take_changed() == ["a"]
    assert view.take_changed() == []


def test_a_big_run_is_summarised_with_counts_and_only_the_active_rows():
    labels = {f"big-1/t{i}": f"t{i}" for i in range(10_000)}
    view = RunView("run big-1", labels)
    for i in range(3):
        view.rows[f"big-1/t{i}"].update(task(f"big-1/t{i}", TaskStatus.RUNNING, started_at=9_000))
    for i in range(3, 9_003):
        view.rows[f"big-1/t{i}"].status = "completed"
    text = shown(view)
    first = text.splitlines()[0]
    assert first.startswith("run big-1  running 3  pending 997  completed 9000")
    assert "(9997 more not shown)" in first
    assert len(text.splitlines()) == 2 + 3


def test_control_sequences_and_markup_in_task_text_are_shown_not_obeyed():
    view = RunView("run \x1b]0;title\x07demo", {"t": "[bold]evil\x1b[2J"})
    view.rows["t"].update(task("t", TaskStatus.RUNNING, output=["\x1b[31mred[/] \x08back"]))

    text = shown(view)

    assert "\x1b" not in text and "\x07" not in text and "\x08" not in text
    assert "run \\x1b]0;title\\x07demo" in text
    assert "[bold]evil\\x1b[2J" in text
    assert "\\x1b[31mred[/] \\x08back" in text


def test_a_tab_in_task_output_is_shown_as_a_space():
    view = RunView("run r", {"t": "t"})
    view.rows["t"].update(task("t", TaskStatus.RUNNING, output=["72K\t."]))

    text = shown(view)

    assert "72K ." in text
    assert "\\x09" not in text and "\t" not in text
