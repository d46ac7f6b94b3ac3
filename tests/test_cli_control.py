"""Inspecting and controlling a store's tasks from another terminal, through the action layer.

A pipeline runs in one subprocess; ``dagorch pause|resume|cancel|status|tasks|search|events``
run in others, as a person at a second terminal would run them.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
from commands import dagorch_command, run_dagorch

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "examples" / "hello.toml"

GATE = """
[pipeline]
name = "gate"
provider = "echo"

[[tasks]]
id = "build"
params = {{ text = "built", delay = {delay} }}

[[tasks]]
id = "test"
depends_on = ["build"]

[[tasks]]
id = "ship"
depends_on = ["test"]
"""


def pipeline(tmp_path: Path, delay: float) -> Path:
    path = tmp_path / "gate.toml"
    path.write_text(textwrap.dedent(GATE.format(delay=delay)))
    return path


def status_of(local_id: str) -> str | None:
    for line in run_dagorch("status").stdout.splitlines():
        if line.startswith(f"- {local_id} — "):
            return line.split(" — ")[1].split()[0]
    return None


def wait_until(local_id: str, status: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if status_of(local_id) == status:
            return
        time.sleep(0.05)
    raise AssertionError(f"{local_id} never became {status}")


@pytest.fixture
def running(tmp_path):
    """Start ``dagorch run`` on the gate pipeline (build takes 3 s) in the background."""
    started: list[subprocess.Popen[str]] = []

    def start(delay: float = 3.0) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [dagorch_command(), "run", str(pipeline(tmp_path, delay)), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        wait_until("build", "running")
        return process

    yield start
    for process in started:
        process.kill()
        process.communicate()


def finish(process: subprocess.Popen[str]) -> tuple[int, dict]:
    out, err = process.communicate(timeout=60)
    return process.returncode, json.loads(out) if out else {"stderr": err}


def test_pause_from_another_terminal_holds_the_task_and_names_what_waits(running):
    process = running()
    paused = run_dagorch("pause", "build")
    assert paused.returncode == 0, paused.stderr
    assert paused.stdout.strip() == "Paused task: build\nHeld downstream: test, ship"
    assert status_of("build") == "paused"
    resumed = run_dagorch("resume", "build")
    assert resumed.stdout.strip() == "Resumed task: build"
    code, report = finish(process)
    assert code == 0
    assert report["counts"] == {"completed": 3}


def test_cancel_from_another_terminal_ends_the_run_with_exit_1(running):
    process = running(delay=30)
    cancelled = run_dagorch("cancel", "gate-1/build")
    assert (
        cancelled.stdout.strip() == "Cancelled task: build\nAlso cancelled downstream: test, ship"
    )
    code, report = finish(process)
    assert code == 1
    assert report["counts"] == {"cancelled": 3}


def test_a_task_that_does_not_exist_gets_a_clear_message_and_exit_1(running):
    process = running(delay=1)
    before = run_dagorch("tasks", "--json").stdout
    done = run_dagorch("pause", "nothing-like-this")
    assert done.returncode == 1
    assert done.stdout.strip() == 'No task to pause matching "nothing-like-this".'
    assert json.loads(run_dagorch("tasks", "--json").stdout)[0]["id"] == json.loads(before)[0]["id"]
    finish(process)


def test_control_commands_need_a_store():
    done = run_dagorch("pause", "build")
    assert done.returncode == 1
    assert "no such store" in done.stderr


def test_resume_refuses_a_finished_task():
    run_dagorch("run", str(HELLO))
    done = run_dagorch("resume", "greet")
    assert done.returncode == 1
    assert "it is completed" in done.stdout


# -- inspecting -----------------------------------------------------------------------------


def test_tasks_lists_the_newest_tasks_with_what_each_waits_on():
    run_dagorch("run", str(HELLO))
    listing = run_dagorch("tasks").stdout.splitlines()
    assert listing[0] == "Tasks:"
    assert "- Write the report — completed 100%" in listing
    rows = json.loads(run_dagorch("tasks", "--json").stdout)
    assert {row["id"] for row in rows} >= {"hello-1/greet", "hello-1/report"}


def test_status_shows_the_newest_run_or_one_task():
    run_dagorch("run", str(HELLO))
    run_status = run_dagorch("status").stdout.splitlines()
    assert run_status[0].startswith("run hello-1 (hello, ")
    assert "- report — completed 100%" in run_status
    task = run_dagorch("status", "report").stdout
    assert task.startswith("## Task hello-1/report: Write the report")
    assert "- **Depends on**: hello-1/count-words, hello-1/shout, hello-1/disk-usage" in task


def test_a_task_named_in_a_command_is_the_one_of_the_run_asked_for():
    run_dagorch("run", str(HELLO))
    run_dagorch("run", str(HELLO))

    newest = run_dagorch("status", "Write the report").stdout.splitlines()[0]
    first = run_dagorch("status", "Write the report", "--run", "hello-1").stdout.splitlines()[0]

    assert newest == "## Task hello-2/report: Write the report"
    assert first == "## Task hello-1/report: Write the report"


def test_search_ranks_and_lists_matches():
    run_dagorch("run", str(HELLO))
    found = run_dagorch("search", "shout").stdout.splitlines()
    assert found == ['Found 1 task(s) matching "shout":', "- Shout it — completed 100%"]


def test_events_prints_json_lines_and_follows_from_a_cursor():
    run_dagorch("run", str(HELLO))
    lines = run_dagorch("events").stdout.splitlines()
    events = [json.loads(line) for line in lines]
    assert events[0]["type"] == "task:created"
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    after = run_dagorch("events", "--after", str(events[-3]["seq"])).stdout.splitlines()
    assert [json.loads(line)["seq"] for line in after] == [e["seq"] for e in events[-2:]]


def test_events_follow_prints_events_as_a_run_makes_them(tmp_path):
    run_dagorch("run", str(HELLO))
    follower = subprocess.Popen(
        [dagorch_command(), "events", "--follow"], stdout=subprocess.PIPE, text=True
    )
    try:
        run_dagorch("run", str(HELLO))
        deadline = time.monotonic() + 20
        seen: list[dict] = []
        assert follower.stdout is not None
        while time.monotonic() < deadline:
            seen.append(json.loads(follower.stdout.readline()))
            if seen[-1]["taskId"] == "hello-2/report" and seen[-1]["type"] == "task:completed":
                break
        assert seen[-1]["taskId"] == "hello-2/report"
    finally:
        follower.send_signal(2)
        follower.wait(timeout=10)
    assert follower.returncode == 0


def test_task_text_with_control_sequences_is_printed_escaped(tmp_path):
    hostile = tmp_path / "hostile.toml"
    hostile.write_text(
        textwrap.dedent(
            """
            [pipeline]
            name = "hostile"

            [[tasks]]
            id = "t"
            name = "clear \\u001b[2J screen [bold]"
            provider = "echo"
            params = { text = "beep \\u0007 \\u001b]0;pwned\\u0007" }
            """
        )
    )
    ran = run_dagorch("run", str(hostile))
    listing = run_dagorch("tasks")
    status = run_dagorch("status", "t")

    assert ran.returncode == 0, ran.stderr
    for done in (ran, listing, status):
        assert "\x1b" not in done.stdout and "\x07" not in done.stdout
    assert "clear \\x1b[2J screen [bold]" in listing.stdout
    assert "\\x1b]0;pwned\\x07" in status.stdout
