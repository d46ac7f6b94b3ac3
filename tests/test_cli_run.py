"""``dagorch run``, ``validate`` and ``graph``, run as the installed command in subprocesses.

Every test's store lives in its own ``DAGORCH_HOME`` (the autouse fixture), which the
subprocesses inherit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
from commands import dagorch_command, run_dagorch

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "examples" / "hello.toml"


def write(tmp_path: Path, text: str, name: str = "pipeline.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def report(*args: str) -> dict:
    done = run_dagorch("run", *args, "--json")
    assert done.stdout, done.stderr
    return {"code": done.returncode, **json.loads(done.stdout)}


SLOW_CHAIN = """
[pipeline]
name = "slow"
provider = "echo"

[[tasks]]
id = "first"
params = { text = "one" }

[[tasks]]
id = "second"
provider = "shell"
depends_on = ["first"]
# Waits until the test creates the file "go" next to the pipeline.
params = { command = ["sh", "-c", "while [ ! -f go ]; do sleep 0.05; done; echo two"] }

[[tasks]]
id = "third"
depends_on = ["second"]
params = { text = "{{ tasks.second.output }} and three" }
"""


# -- run ------------------------------------------------------------------------------------


def test_the_hello_pipeline_runs_to_completion_and_exits_0():
    done = run_dagorch("run", str(HELLO))
    assert done.returncode == 0, done.stderr
    assert "run hello-1: 5 completed" in done.stdout
    for task in ("greet", "count-words", "shout", "disk-usage", "report"):
        assert any(line.startswith(task) for line in done.stdout.splitlines())


def test_json_reports_every_task_and_upstream_results_reach_templates():
    result = report(str(HELLO))
    assert result["code"] == 0
    assert result["ok"] is True
    assert result["counts"] == {"completed": 5}
    rows = {row["id"]: row for row in result["tasks"]}
    assert rows["shout"]["summary"] == "Hello from a dagorch pipeline!"
    assert rows["count-words"]["summary"] == "5 words"
    assert rows["report"]["task_id"] == "hello-1/report"


def test_each_run_gets_its_own_run_id_on_the_same_store():
    assert report(str(HELLO))["run"] == "hello-1"
    assert report(str(HELLO))["run"] == "hello-2"


def test_a_run_reports_its_own_tasks_as_stored_beside_earlier_runs():
    first = report(str(HELLO))
    second = report(str(HELLO))

    assert [row["task_id"] for row in second["tasks"]] == [
        row["task_id"].replace("hello-1/", "hello-2/") for row in first["tasks"]
    ]
    assert second["counts"] == {"completed": 5}
    assert {row["status"] for row in second["tasks"]} == {"completed"}


def test_a_failed_task_exits_1_and_its_dependents_never_run(tmp_path):
    path = write(
        tmp_path,
        """
        [pipeline]
        provider = "echo"

        [[tasks]]
        id = "build"
        params = { text = "compiler exploded", fail = true }

        [[tasks]]
        id = "ship"
        depends_on = ["build"]
        """,
    )
    result = report(str(path))
    assert result["code"] == 1
    rows = {row["id"]: row for row in result["tasks"]}
    assert rows["build"]["status"] == "failed"
    assert rows["build"]["error"] == "compiler exploded"
    assert rows["ship"]["status"] == "failed"
    assert rows["ship"]["error"].startswith('Upstream task "build"')


def test_a_pipeline_store_setting_is_relative_to_the_file(tmp_path):
    path = write(
        tmp_path,
        """
        [pipeline]
        provider = "echo"
        store = "state/here.db"

        [[tasks]]
        id = "a"
        """,
    )
    result = report(str(path))
    assert Path(result["store"]) == tmp_path / "state" / "here.db"
    assert (tmp_path / "state" / "here.db").exists()


def test_without_a_terminal_each_finished_task_gets_a_line():
    done = run_dagorch("run", str(HELLO), "--no-live")
    lines = done.stdout.splitlines()
    assert "greet completed" in lines
    assert lines.index("greet completed") < lines.index("report completed")


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "tasks: the pipeline has no tasks"),
        (
            '[[tasks]]\nid = "a"\nprovider = echo\n',
            "line 3: invalid TOML: Invalid value (at line 3, column 12)",
        ),
        (
            '[[tasks]]\nid = "a"\nprovider = "nope"\n',
            'unknown provider "nope" (known: acp, echo, openai, python, shell)',
        ),
    ],
)
def test_a_bad_file_exits_2_naming_the_problem_and_stores_nothing(tmp_path, text, expected):
    path = write(tmp_path, text)
    done = run_dagorch("run", str(path))
    assert done.returncode == 2
    assert expected in done.stderr
    assert not (Path(os.environ["DAGORCH_HOME"]) / "dagorch.db").exists()


def test_a_missing_file_and_a_directory_exit_2(tmp_path):
    missing = run_dagorch("run", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2
    assert "nope.toml: 1 problem\n  no such file" in missing.stderr
    folder = run_dagorch("run", str(tmp_path))
    assert folder.returncode == 2
    assert "is a directory, not a pipeline file" in folder.stderr


def test_an_unknown_option_exits_2():
    done = run_dagorch("run", str(HELLO), "--colour")
    assert done.returncode == 2
    assert "unrecognized arguments: --colour" in done.stderr


def test_resume_of_an_unknown_run_names_the_known_ones():
    run_dagorch("run", str(HELLO))
    done = run_dagorch("run", str(HELLO), "--resume", "hello-9")
    assert done.returncode == 1
    assert "No run 'hello-9' in this store. Runs: hello-1" in done.stderr


def test_a_ten_thousand_task_pipeline_runs(tmp_path):
    lines = ['[pipeline]\nprovider = "echo"\nconcurrency = 64\n']
    lines += [f'[[tasks]]\nid = "t{i}"\nparams = {{ text = "{i}" }}\n' for i in range(10_000)]
    path = write(tmp_path, "\n".join(lines), "big.toml")
    result = report(str(path))
    assert result["code"] == 0
    assert result["counts"] == {"completed": 10_000}


# -- validate and graph ---------------------------------------------------------------------


def test_validate_says_ok_for_a_good_file():
    done = run_dagorch("validate", str(HELLO))
    assert done.returncode == 0
    assert done.stdout.strip() == f"{HELLO}: ok, pipeline 'hello': 5 tasks, 6 dependencies"


def test_validate_lists_every_problem_and_exits_2(tmp_path):
    path = write(
        tmp_path,
        """
        [[tasks]]
        id = "a"
        provider = "echo"
        depends_on = ["b"]

        [[tasks]]
        id = "b"
        provider = "echo"
        depends_on = ["a"]
        retries = "3"
        """,
    )
    done = run_dagorch("validate", str(path))
    assert done.returncode == 2
    assert "2 problems" in done.stderr
    assert "tasks[1].retries: input should be a valid integer, got str '3'" in done.stderr
    assert "dependency cycle: a -> b -> a" in done.stderr


def test_graph_as_text_uses_networkx_network_text():
    done = run_dagorch("graph", str(HELLO))
    assert done.returncode == 0
    assert done.stdout.splitlines()[0] == "╙── greet"
    assert "└─╼ report ╾ shout, disk-usage" in done.stdout


def test_graph_as_mermaid_dot_and_json():
    mermaid = run_dagorch("graph", str(HELLO), "--format", "mermaid").stdout
    assert mermaid.splitlines()[0] == "graph TD"
    assert "    greet --> count_words" in mermaid
    dot = run_dagorch("graph", str(HELLO), "--format", "dot").stdout
    assert dot.startswith('digraph "hello" {')
    assert '    "greet" -> "shout";' in dot
    data = json.loads(run_dagorch("graph", str(HELLO), "--format", "json").stdout)
    assert data["pipeline"] == "hello"
    assert {"source": "greet", "target": "shout"} in data["edges"]


@pytest.mark.parametrize(
    "command",
    [
        "run",
        "validate",
        "graph",
        "tasks",
        "status",
        "search",
        "pause",
        "resume",
        "cancel",
        "events",
        "providers",
        "plugins",
    ],
)
def test_every_command_help_shows_an_example(command):
    done = run_dagorch(command, "--help")
    assert done.returncode == 0
    assert "examples:\n  dagorch " in done.stdout


# -- interrupting and resuming --------------------------------------------------------------


def wait_for_status(local_id: str, status: str, *extra: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        shown = run_dagorch("status", *extra)
        if any(line.startswith(f"- {local_id} — {status}") for line in shown.stdout.splitlines()):
            return
        time.sleep(0.1)
    raise AssertionError(f"{local_id} never became {status}: {shown.stdout}{shown.stderr}")


def start_run(path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [dagorch_command(), "run", str(path), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_ctrl_c_stops_cleanly_and_resume_finishes_without_rerunning(tmp_path):
    path = write(tmp_path, SLOW_CHAIN)
    running = start_run(path)
    try:
        wait_for_status("second", "running")
        running.send_signal(signal.SIGINT)
        out, err = running.communicate(timeout=30)
    finally:
        running.kill()
    assert running.returncode == 130, err
    stopped = {row["id"]: row for row in json.loads(out)["tasks"]}
    assert stopped["first"]["status"] == "completed"
    assert stopped["second"]["status"] == "paused"
    assert stopped["third"]["status"] == "pending"

    (tmp_path / "go").touch()
    resumed = report(str(path), "--resume", "last")
    rows = {row["id"]: row for row in resumed["tasks"]}
    assert resumed["code"] == 0
    assert resumed["run"] == "slow-1"
    assert rows["first"]["attempts"] == 1
    assert rows["first"]["output"].count("one") == 1
    assert rows["third"]["summary"] == "two and three"


def test_ctrl_c_while_the_run_is_created_stops_cleanly_with_a_resumable_run(tmp_path):
    lines = ['[pipeline]\nname = "big"\nprovider = "echo"\n']
    lines += [f'[[tasks]]\nid = "t{i}"\n' for i in range(5_000)]
    path = tmp_path / "big.toml"
    path.write_text("\n".join(lines))
    store = Path(os.environ["DAGORCH_HOME"]) / "dagorch.db"
    running = start_run(path)
    try:
        deadline = time.monotonic() + 30
        while not store.exists() and time.monotonic() < deadline:
            time.sleep(0.002)
        # The service is open: the run's 5,000 tasks are being created.
        running.send_signal(signal.SIGINT)
        out, err = running.communicate(timeout=60)
    finally:
        running.kill()

    assert running.returncode == 130, err[-400:]
    assert json.loads(out)["run"] == "big-1"
    resumed = report(str(path), "--resume", "last")
    assert resumed["code"] == 0
    assert resumed["run"] == "big-1"
    assert {row["status"] for row in resumed["tasks"]} == {"completed"}


def test_no_live_prints_one_line_per_finished_task_however_long(tmp_path):
    long = "x" * 150
    path = write(
        tmp_path,
        f"""
        [pipeline]
        provider = "echo"

        [[tasks]]
        id = "build"
        params = {{ text = "{long}", fail = true }}
        """,
    )

    done = run_dagorch("run", str(path), "--no-live")

    assert done.returncode == 1
    assert f"build failed: {long}" in done.stdout.splitlines()
