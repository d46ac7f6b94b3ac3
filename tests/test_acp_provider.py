"""The ``acp`` provider against a real ACP agent program (``tests/acp_agent.py``) over stdio."""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from processes import alive

from orchestrator import (
    AgentOrchestratorPluginOptions,
    AgentOrchestratorService,
    MemoryStore,
    TaskStatus,
)

AGENT = str(Path(__file__).resolve().parent / "acp_agent.py")


@pytest.fixture
async def service() -> AsyncIterator[AgentOrchestratorService]:
    options = AgentOrchestratorPluginOptions(cancel_grace_period=0.5)
    async with await AgentOrchestratorService.start(options=options, store=MemoryStore()) as svc:
        yield svc


async def run(service: AgentOrchestratorService, tmp_path: Path, mode: str, **more: Any):
    params = {"command": [sys.executable, AGENT, mode], **more.pop("params", {})}
    task = await service.create_task(
        "code",
        "Write a greeting file\nmore detail",
        provider_id="acp",
        params=params,
        working_directory=str(tmp_path),
        **more,
    )
    service.start_task_execution(task.id)
    with anyio.fail_after(30):
        return await service.wait_for_task(task.id)


async def wait_for_output(service: AgentOrchestratorService, task_id: str, text: str) -> list[str]:
    with anyio.fail_after(20):
        while True:
            output = (await service.get_task(task_id)).metadata.output
            if any(text in line for line in output):
                return output
            await anyio.sleep(0.02)


async def test_an_allowed_agent_streams_its_message_writes_its_file_and_succeeds(service, tmp_path):
    done = await run(service, tmp_path, "works", params={"allow_tools": ["edit"]})
    md = done.metadata
    assert md.status is TaskStatus.COMPLETED, md.error
    assert "Working on: Write a greeting file" in md.output
    assert "Permission granted: Write hello.txt (edit)" in md.output
    assert "Created hello.txt" in md.output
    assert (tmp_path / "hello.txt").read_text() == "hello\n"
    assert md.files_created == ["hello.txt"]
    assert md.result.summary.endswith("Done.")
    assert [(s.description, s.status.value) for s in md.steps] == [
        ("Write hello.txt (edit)", "completed")
    ]
    assert md.progress == 100


async def test_permission_is_denied_by_default_and_fails_the_task_naming_the_tool(
    service, tmp_path
):
    done = await run(service, tmp_path, "works")
    assert done.metadata.status is TaskStatus.FAILED
    assert done.metadata.error == (
        'Permission denied for "Write hello.txt" (edit); allow it with params.allow_tools'
    )
    assert not (tmp_path / "hello.txt").exists()


async def test_a_write_outside_the_working_directory_is_refused(service, tmp_path):
    done = await run(service, tmp_path, "escapes")
    assert done.metadata.status is TaskStatus.FAILED
    assert done.metadata.error.startswith(
        "Refused to write /tmp/dagorch-acp-escape.txt: outside the working directory"
    )
    assert not Path("/tmp/dagorch-acp-escape.txt").exists()


async def test_cancel_sends_session_cancel_and_ends_within_a_second(service, tmp_path):
    task = await service.create_task(
        "code",
        "tick",
        provider_id="acp",
        working_directory=str(tmp_path),
        params={"command": [sys.executable, AGENT, "slow"]},
    )
    service.start_task_execution(task.id)
    await wait_for_output(service, task.id, "tick")
    started = time.monotonic()
    await service.cancel_task(task.id)
    done = await service.wait_for_task(task.id)
    assert done.metadata.status is TaskStatus.CANCELLED
    assert time.monotonic() - started <= 1.0


async def test_an_agent_that_ignores_cancel_is_killed_with_its_children(service, tmp_path):
    task = await service.create_task(
        "code",
        "spawn",
        provider_id="acp",
        working_directory=str(tmp_path),
        params={"command": [sys.executable, AGENT, "spawns"], "cancel_grace": 0.3},
    )
    service.start_task_execution(task.id)
    output = await wait_for_output(service, task.id, "child=")
    child = int(next(line for line in output if line.startswith("child=")).split("=")[1])
    started = time.monotonic()
    await service.cancel_task(task.id)
    done = await service.wait_for_task(task.id)
    assert done.metadata.status is TaskStatus.CANCELLED
    assert time.monotonic() - started <= 1.0
    with anyio.fail_after(5):
        while alive(child):
            await anyio.sleep(0.05)


async def test_a_hanging_agent_times_out(service, tmp_path):
    done = await run(service, tmp_path, "hangs", timeout=1.0, params={"cancel_grace": 0.2})
    assert done.metadata.status is TaskStatus.FAILED
    assert done.metadata.error == "Timed out after 1s"


async def test_an_agent_that_crashes_fails_the_task_with_its_last_words(service, tmp_path):
    done = await run(service, tmp_path, "crashes")
    assert done.metadata.status is TaskStatus.FAILED
    assert done.metadata.error == "The ACP agent exited with code 7: segfault, sort of"
    assert "about to crash" in done.metadata.output


async def test_an_agent_that_exits_at_once_fails_clearly(service, tmp_path):
    done = await run(service, tmp_path, "exits")
    assert done.metadata.status is TaskStatus.FAILED
    assert done.metadata.error == "The ACP agent exited with code 3: no API key configured"


async def test_a_command_that_does_not_exist_fails_without_retrying(service, tmp_path):
    task = await service.create_task(
        "code",
        "x",
        provider_id="acp",
        working_directory=str(tmp_path),
        retries=2,
        params={"command": ["no-such-acp-agent"]},
    )
    service.start_task_execution(task.id)
    done = await service.wait_for_task(task.id)
    assert done.metadata.error.startswith("Cannot run ['no-such-acp-agent']")
    assert done.metadata.attempts == 1
