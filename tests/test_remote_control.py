"""Another process controls the orchestrator that owns a store file, through its inbox."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from orchestrator import (
    AgentOrchestratorPluginOptions,
    AgentOrchestratorService,
    ConfigurationError,
    RemoteControl,
    RemoteControlError,
    SqliteStore,
    TaskStatus,
)
from orchestrator.store._shared import POLL_SECONDS
from orchestrator.testing import GatedProvider

SCRIPT = Path(__file__).with_name("remote_pipeline.py")


async def owner(path: Path, provider: GatedProvider) -> AgentOrchestratorService:
    options = AgentOrchestratorPluginOptions(providers=[provider], cancel_grace_period=0.05)
    return await AgentOrchestratorService.start(options=options, store=SqliteStore(path))


async def test_a_second_service_on_an_owned_file_is_refused_naming_the_owner(tmp_path):
    first = await owner(tmp_path / "owned.db", GatedProvider())
    try:
        with pytest.raises(ConfigurationError, match=r"owned\.db is in use by another .*process"):
            await owner(tmp_path / "owned.db", GatedProvider())
    finally:
        await first.stop()


async def test_the_file_is_free_again_once_its_owner_stops(tmp_path):
    first = await owner(tmp_path / "free.db", GatedProvider())
    await first.stop()

    second = await owner(tmp_path / "free.db", GatedProvider())

    await second.stop()


async def test_a_remote_pause_reaches_a_running_task_at_the_next_inbox_read(tmp_path):
    gate = GatedProvider()
    service = await owner(tmp_path / "run.db", gate)
    task = await service.create_task("t", "")
    handle = service.start_task_execution(task.id)
    await gate.started.wait()

    async with RemoteControl(tmp_path / "run.db") as remote:
        began = time.monotonic()
        await remote.pause_task(task.id)
        took = time.monotonic() - began
        stored = await remote.get_task(task.id)

    # The promise (applied within 0.5 s) rests on the owner reading its inbox every 0.1 s; the
    # wall-clock bound here is loose so a slow machine cannot fail it, and still catches a stall.
    assert POLL_SECONDS <= 0.1
    assert took < 2.0
    assert stored.metadata.status is TaskStatus.PAUSED
    assert (await service.get_task(task.id)).metadata.status is TaskStatus.PAUSED
    async with RemoteControl(tmp_path / "run.db") as remote:
        await remote.resume_task(task.id)
    gate.release()
    assert (await handle).metadata.status is TaskStatus.COMPLETED
    await service.stop()


async def test_a_refused_remote_command_raises_the_owners_reason(tmp_path):
    gate = GatedProvider()
    gate.release()
    service = await owner(tmp_path / "done.db", gate)
    task = await service.create_task("t", "")
    await service.start_task_execution(task.id)

    async with RemoteControl(tmp_path / "done.db") as remote:
        with pytest.raises(RemoteControlError, match="IllegalTransitionError: Cannot pause"):
            await remote.pause_task(task.id)
    await service.stop()


async def test_without_an_owner_a_remote_command_is_applied_directly(tmp_path):
    service = await owner(tmp_path / "idle.db", GatedProvider())
    task = await service.create_task("t", "")
    await service.stop()

    async with RemoteControl(tmp_path / "idle.db") as remote:
        await remote.cancel_task(task.id)
        stored = await remote.get_task(task.id)

    assert stored.metadata.status is TaskStatus.CANCELLED


async def wait_for(remote: RemoteControl, task_id: str, status: TaskStatus) -> None:
    with anyio.fail_after(20):
        while True:
            tasks = {task.id: task for task in await remote.get_tasks()}
            if task_id in tasks and tasks[task_id].metadata.status is status:
                return
            await anyio.sleep(0.02)


def control_from_a_third_process(db: Path, task_id: str, rounds: int) -> subprocess.Popen[bytes]:
    code = (
        "import asyncio, sys\n"
        "from orchestrator import RemoteControl\n"
        "async def main():\n"
        f"    async with RemoteControl({str(db)!r}) as remote:\n"
        f"        for _ in range({rounds}):\n"
        f"            await remote.pause_task({task_id!r})\n"
        f"            await remote.resume_task({task_id!r})\n"
        "asyncio.run(main())\n"
    )
    return subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)


async def test_two_other_processes_control_a_running_pipeline_without_losing_anything(tmp_path):
    db, release = tmp_path / "pipeline.db", tmp_path / "release"
    pipeline = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(db), str(release)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        with anyio.fail_after(20):
            while not db.exists():
                await anyio.sleep(0.02)
        async with RemoteControl(db) as remote:
            await wait_for(remote, "a", TaskStatus.RUNNING)
            await wait_for(remote, "b", TaskStatus.RUNNING)
            other = control_from_a_third_process(db, "d", rounds=10)
            began = time.monotonic()
            await remote.pause_task("a")
            assert time.monotonic() - began < 2.0
            await remote.cancel_task("b")
            for _ in range(10):
                await remote.pause_task("a")
                await remote.resume_task("a")
            _, errors = other.communicate(timeout=30)
            assert other.returncode == 0, errors.decode()
        release.touch()
        output, errors = pipeline.communicate(timeout=30)
    finally:
        pipeline.kill()

    assert pipeline.returncode == 0, errors.decode()
    assert output.decode().strip() == "a=completed,b=cancelled,c=cancelled,d=completed"
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        states = connection.execute(
            "SELECT state, count(*) FROM commands GROUP BY state"
        ).fetchall()
    assert states == [("done", 42)]


async def test_the_owner_keeps_its_lease_while_it_applies_a_slow_command(tmp_path):
    path = tmp_path / "owned.db"
    options = AgentOrchestratorPluginOptions(
        providers=[GatedProvider()], handler_timeout=5, cancel_grace_period=0.05
    )
    service = await AgentOrchestratorService.start(options=options, store=SqliteStore(path))
    task = await service.create_task("t", "")

    async def slow_handler(event):
        await anyio.sleep(2.5)  # longer than a lease lasts without renewal

    service.on("task:paused", slow_handler)
    probe = SqliteStore(path)
    await probe.open()
    free_at: list[float] = []
    try:
        async with anyio.create_task_group() as tg, RemoteControl(path, timeout=10) as remote:
            tg.start_soon(remote.pause_task, task.id)
            started = time.monotonic()
            while time.monotonic() - started < 3:
                if await probe.current_lease() is None:
                    free_at.append(time.monotonic() - started)
                await anyio.sleep(0.2)
    finally:
        await probe.close()
        await service.stop()

    assert free_at == []
    async with await AgentOrchestratorService.start(
        options=options, store=SqliteStore(path)
    ) as again:
        assert (await again.get_task(task.id)).metadata.status is TaskStatus.PAUSED
