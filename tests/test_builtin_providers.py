"""The builtin providers, run on a real service: ``echo``, ``python`` and ``shell``.

They come from dagorch's own entry points, so these tests also show that discovery works with no
provider passed in code.
"""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from processes import alive, state

from orchestrator import (
    AgentOrchestratorPluginOptions,
    AgentOrchestratorService,
    MemoryStore,
    OrchestratedTask,
    TaskStatus,
)

PY = sys.executable


@pytest.fixture
async def service() -> AsyncIterator[AgentOrchestratorService]:
    options = AgentOrchestratorPluginOptions(cancel_grace_period=0.2, retry_backoff=0.001)
    async with await AgentOrchestratorService.start(options=options, store=MemoryStore()) as svc:
        yield svc


async def run_one(
    service: AgentOrchestratorService, provider: str, **kwargs: Any
) -> OrchestratedTask:
    task = await service.create_task(
        "t", kwargs.pop("description", "the description"), provider_id=provider, **kwargs
    )
    return await finish(service, task.id)


async def finish(service: AgentOrchestratorService, task_id: str) -> OrchestratedTask:
    service.start_task_execution(task_id)
    with anyio.fail_after(20):
        return await service.wait_for_task(task_id)


async def until(
    service: AgentOrchestratorService, task_id: str, check: Callable[[OrchestratedTask], bool]
) -> OrchestratedTask:
    """Wait (on events, not a fixed sleep) until the task satisfies ``check``."""
    with anyio.fail_after(20):
        async with service.stream_events() as events:
            task = await service.get_task(task_id)
            assert task is not None
            if check(task):
                return task
            async for event in events:
                if event.task_id != task_id:
                    continue
                task = await service.get_task(task_id)
                assert task is not None
                if check(task):
                    return task
    raise AssertionError("the event stream ended")


# -- echo -----------------------------------------------------------------------------------


async def test_echo_outputs_and_returns_its_text_parameter(service):
    done = await run_one(service, "echo", params={"text": "hello there"})
    assert done.metadata.status is TaskStatus.COMPLETED
    assert done.metadata.result is not None
    assert done.metadata.result.summary == "hello there"
    assert done.metadata.output[-1] == "hello there"


async def test_echo_without_text_echoes_the_task_description(service):
    done = await run_one(service, "echo", description="say this")
    assert done.metadata.result is not None
    assert done.metadata.result.summary == "say this"


async def test_echo_with_fail_fails_the_task_with_its_text(service):
    done = await run_one(service, "echo", params={"text": "broken on purpose", "fail": True})
    assert done.metadata.status is TaskStatus.FAILED
    assert done.metadata.error == "broken on purpose"


async def test_a_wrong_parameter_type_fails_at_once_naming_the_field(service):
    done = await run_one(service, "echo", params={"text": 5}, retries=3)
    assert done.metadata.status is TaskStatus.FAILED
    assert done.metadata.error == "Parameter params.text must be str, got int"
    assert done.metadata.attempts == 1


async def test_echo_delay_reports_progress_and_waits_out_a_pause(service):
    task = await service.create_task("t", "d", provider_id="echo", params={"delay": 0.3})
    service.start_task_execution(task.id)
    await until(service, task.id, lambda t: t.metadata.progress > 0)
    await service.pause_task(task.id)
    paused_at = (await service.get_task(task.id)).metadata.progress
    await service.resume_task(task.id)
    done = await service.wait_for_task(task.id)
    assert done.metadata.status is TaskStatus.COMPLETED
    assert paused_at < 100
    assert done.metadata.progress == 100


# -- python ---------------------------------------------------------------------------------


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], str]:
    """Write a module into a folder that is not on sys.path; returns its unique name.

    ``sys.path`` is restored after the test, since the provider may append the folder to it.
    """
    monkeypatch.setattr(sys, "path", list(sys.path))
    folder = tmp_path / "work"
    folder.mkdir()
    made: list[str] = []

    def write(source: str) -> str:
        name = f"pipeline_steps_{uuid.uuid4().hex[:8]}"
        (folder / f"{name}.py").write_text(textwrap.dedent(source))
        made.append(name)
        return name

    yield write
    for name in made:
        sys.modules.pop(name, None)


async def test_python_runs_a_plain_function_in_a_worker_thread(service, module_dir, tmp_path):
    name = module_dir(
        """
        import threading

        def where(task, upstream):
            return threading.current_thread() is threading.main_thread()
        """
    )
    done = await run_one(
        service,
        "python",
        params={"function": f"{name}:where"},
        working_directory=str(tmp_path / "work"),
    )
    assert done.metadata.status is TaskStatus.COMPLETED, done.metadata.error
    assert done.metadata.result is not None
    assert done.metadata.result.summary == "false"


async def test_python_awaits_an_async_function_and_hands_it_the_context(
    service, module_dir, tmp_path
):
    name = module_dir(
        """
        async def report(task, ctx):
            await ctx.append_output(f"working on {task.name}")
            await ctx.update_progress(50)
            return "reported"
        """
    )
    done = await run_one(
        service,
        "python",
        params={"function": f"{name}:report"},
        working_directory=str(tmp_path / "work"),
    )
    assert done.metadata.result is not None
    assert done.metadata.result.summary == "reported"
    assert "working on t" in done.metadata.output


async def test_python_passes_the_upstream_results(service, module_dir, tmp_path):
    name = module_dir(
        """
        def join(upstream):
            return sorted(result.summary for result in upstream.values())
        """
    )
    left = await service.create_task("l", "", provider_id="echo", params={"text": "left"})
    right = await service.create_task("r", "", provider_id="echo", params={"text": "right"})
    joined = await service.create_task(
        "j",
        "",
        provider_id="python",
        params={"function": f"{name}:join"},
        depends_on=[left.id, right.id],
        working_directory=str(tmp_path / "work"),
    )
    await service.run()
    done = await service.get_task(joined.id)
    assert done.metadata.result is not None
    assert done.metadata.result.summary == '["left", "right"]'


async def test_python_keeps_a_returned_task_result_and_fails_on_an_exception(
    service, module_dir, tmp_path
):
    name = module_dir(
        """
        from hookspecs import TaskResult

        def kept(task, upstream):
            return TaskResult(success=True, summary="as returned", files_created=["a.txt"])

        def broken(task, upstream):
            raise ValueError("the input is wrong")
        """
    )
    work = str(tmp_path / "work")
    kept = await run_one(
        service, "python", params={"function": f"{name}:kept"}, working_directory=work
    )
    assert kept.metadata.result is not None
    assert kept.metadata.files_created == ["a.txt"]
    broken = await run_one(
        service, "python", params={"function": f"{name}:broken"}, working_directory=work
    )
    assert broken.metadata.status is TaskStatus.FAILED
    assert broken.metadata.error == "the input is wrong"
    assert f"Calling {name}:broken" in broken.metadata.output


@pytest.mark.parametrize(
    ("function", "error"),
    [
        ("no_colon", "params.function must look like 'module:function', got 'no_colon'"),
        ("no_such_module_here:f", "params.function: no module named 'no_such_module_here'"),
        ("os:no_such_function", "params.function: module 'os' has no 'no_such_function'"),
        ("os:sep", "params.function: 'os:sep' is not callable"),
    ],
)
async def test_python_refuses_a_bad_function_parameter_without_retrying(service, function, error):
    done = await run_one(service, "python", params={"function": function}, retries=2)
    assert done.metadata.status is TaskStatus.FAILED
    assert done.metadata.error is not None
    assert done.metadata.error.startswith(error)
    assert done.metadata.attempts == 1


# -- shell ----------------------------------------------------------------------------------


async def test_shell_streams_stdout_and_stderr_lines_into_the_output(service):
    script = "import sys; print('out one'); print('err one', file=sys.stderr); print('out two')"
    done = await run_one(service, "shell", params={"command": [PY, "-c", script]})
    assert done.metadata.status is TaskStatus.COMPLETED
    output = done.metadata.output
    assert output.index("out one") < output.index("out two")
    assert "err one" in output


async def test_shell_fails_on_a_nonzero_exit_naming_the_code_and_the_last_stderr_line(service):
    script = "import sys; print('first problem', file=sys.stderr); print('disk full', file=sys.stderr); sys.exit(3)"
    done = await run_one(service, "shell", params={"command": [PY, "-c", script]})
    assert done.metadata.status is TaskStatus.FAILED
    assert done.metadata.error == "Command exited with code 3: disk full"


async def test_shell_refuses_a_string_command_unless_the_task_asks_for_a_shell(service):
    done = await run_one(service, "shell", params={"command": "echo $HOME"})
    assert done.metadata.status is TaskStatus.FAILED
    assert done.metadata.error is not None
    assert done.metadata.error.startswith("params.command is a string: give a list of arguments")


async def test_shell_runs_a_string_through_the_shell_when_asked(service):
    done = await run_one(
        service, "shell", params={"command": "echo one && echo two", "shell": True}
    )
    assert done.metadata.status is TaskStatus.COMPLETED
    assert done.metadata.output[-2:] == ["one", "two"]


async def test_shell_task_text_never_reaches_a_shell(service, tmp_path):
    marker = tmp_path / "injected"
    done = await run_one(
        service,
        "shell",
        params={"command": ["echo", f"; touch {marker}"]},
    )
    assert done.metadata.status is TaskStatus.COMPLETED
    assert not marker.exists()
    assert done.metadata.output[-1] == f"; touch {marker}"


async def test_shell_uses_the_working_directory_and_extra_environment(service, tmp_path):
    script = "import os; print(os.getcwd()); print(os.environ['PIPELINE_STAGE'])"
    done = await run_one(
        service,
        "shell",
        params={"command": [PY, "-c", script], "env": {"PIPELINE_STAGE": "build"}},
        working_directory=str(tmp_path),
    )
    assert done.metadata.output[-2:] == [str(tmp_path), "build"]


async def test_shell_reports_a_missing_program_clearly(service):
    done = await run_one(service, "shell", params={"command": ["no-such-program-xyz"]}, retries=2)
    assert done.metadata.status is TaskStatus.FAILED
    assert done.metadata.error is not None
    assert done.metadata.error.startswith("Cannot run ['no-such-program-xyz']")
    assert done.metadata.attempts == 1


SPAWNS_A_CHILD = "sleep 60 & echo child=$!; wait"


def child_pid(task: OrchestratedTask) -> int | None:
    for line in task.metadata.output:
        if line.startswith("child="):
            return int(line.split("=")[1])
    return None


async def test_cancelling_a_shell_task_kills_its_whole_process_group(service):
    task = await service.create_task(
        "t", "", provider_id="shell", params={"command": SPAWNS_A_CHILD, "shell": True}
    )
    service.start_task_execution(task.id)
    running = await until(service, task.id, lambda t: child_pid(t) is not None)
    pid = child_pid(running)
    assert pid is not None and alive(pid)
    await service.cancel_task(task.id)
    done = await service.wait_for_task(task.id)
    assert done.metadata.status is TaskStatus.CANCELLED
    with anyio.fail_after(5):
        while alive(pid):
            await anyio.sleep(0.02)


async def test_a_shell_task_that_times_out_is_killed_with_its_children(service):
    task = await service.create_task(
        "t",
        "",
        provider_id="shell",
        params={"command": SPAWNS_A_CHILD, "shell": True},
        timeout=1.0,
    )
    service.start_task_execution(task.id)
    running = await until(service, task.id, lambda t: child_pid(t) is not None)
    pid = child_pid(running)
    assert pid is not None
    done = await service.wait_for_task(task.id)
    assert done.metadata.status is TaskStatus.FAILED
    assert done.metadata.error == "Timed out after 1s"
    with anyio.fail_after(5):
        while alive(pid):
            await anyio.sleep(0.02)


async def test_pausing_a_shell_task_stops_its_process_and_resuming_continues_it(service):
    script = (
        "import os, sys, time\n"
        "print(f'pid={os.getpid()}', flush=True)\n"
        "for i in range(30):\n"
        "    time.sleep(0.02)\n"
        "print('finished', flush=True)\n"
    )
    task = await service.create_task(
        "t", "", provider_id="shell", params={"command": [PY, "-c", script]}
    )
    service.start_task_execution(task.id)
    running = await until(
        service, task.id, lambda t: any(line.startswith("pid=") for line in t.metadata.output)
    )
    pid = int(
        next(line for line in running.metadata.output if line.startswith("pid=")).split("=")[1]
    )
    await service.pause_task(task.id)
    with anyio.fail_after(5):
        while state(pid) != "T":
            await anyio.sleep(0.02)
    await service.resume_task(task.id)
    done = await service.wait_for_task(task.id)
    assert done.metadata.status is TaskStatus.COMPLETED
    assert done.metadata.output[-1] == "finished"


async def test_shell_keeps_only_the_last_lines_of_a_flood_of_output(service):
    script = "for i in range(20000): print(f'line {i}')"
    done = await run_one(service, "shell", params={"command": [PY, "-c", script]})
    assert done.metadata.status is TaskStatus.COMPLETED
    assert len(done.metadata.output) == 500
    assert done.metadata.output[-1] == "line 19999"
    assert done.metadata.output[0] == "line 19500"
