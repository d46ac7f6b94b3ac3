"""The SQLite store keeps everything across restarts and crashes, and recovers interrupted runs."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator import OrchestratedTask, OrchestratedTaskMetadata, SqliteStore, TaskStatus

SCRIPT = Path(__file__).with_name("crash_pipeline.py")


def interrupted(task_id: str, *, attempts: int, retries: int) -> OrchestratedTask:
    return OrchestratedTask(
        id=task_id,
        name=task_id,
        metadata=OrchestratedTaskMetadata(
            status=TaskStatus.RUNNING, provider_id="ok", attempts=attempts, retries=retries
        ),
    )


async def test_a_restarted_service_requeues_interrupted_tasks_with_tries_left(
    make_service, tmp_path
):
    store = SqliteStore(tmp_path / "crash.db")
    await store.open()
    await store.put_tasks([interrupted("again", attempts=1, retries=2)])
    await store.close()

    service = await make_service(store=store)
    summary = await service.run()

    task = await service.get_task("again")
    assert summary.ok
    assert "Interrupted by a restart; queued again." in task.metadata.output
    assert task.metadata.attempts == 2


async def test_a_restarted_service_pauses_interrupted_tasks_without_tries_left(
    make_service, tmp_path
):
    store = SqliteStore(tmp_path / "crash.db")
    await store.open()
    await store.put_tasks([interrupted("spent", attempts=1, retries=0)])
    await store.close()

    service = await make_service(store=store)

    task = await service.get_task("spent")
    assert task.metadata.status is TaskStatus.PAUSED
    assert task.metadata.output[-1] == "Paused due to restart."


async def test_the_pause_policy_pauses_every_interrupted_task(make_service, tmp_path):
    store = SqliteStore(tmp_path / "crash.db")
    await store.open()
    await store.put_tasks([interrupted("retryable", attempts=1, retries=5)])
    await store.close()

    service = await make_service(store=store, recovery="pause")

    assert (await service.get_task("retryable")).metadata.status is TaskStatus.PAUSED


def completed_ids(db: Path) -> set[str]:
    with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True) as connection:
        rows = connection.execute("SELECT doc FROM tasks").fetchall()
    docs = [json.loads(doc) for (doc,) in rows]
    return {d["id"] for d in docs if d["metadata"]["status"] == TaskStatus.COMPLETED.value}


def ran_lines(log: Path) -> list[str]:
    if not log.exists():
        return []
    text = log.read_text()
    whole = text if text.endswith("\n") else text[: text.rfind("\n") + 1]
    return [line.split()[1] for line in whole.splitlines()]


def start(db: Path, log: Path, count: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), str(db), str(log), str(count)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_a_pipeline_killed_five_times_finishes_without_rerunning_completed_tasks(tmp_path):
    db, log, count = tmp_path / "pipeline.db", tmp_path / "ran.log", 200
    rng = random.Random(7)
    checkpoints: list[tuple[int, set[str]]] = []
    kills = 0
    while kills < 5:
        process = start(db, log, count)
        target = len(ran_lines(log)) + rng.randint(5, 30)
        deadline = time.monotonic() + 60
        while len(ran_lines(log)) < target and process.poll() is None:
            assert time.monotonic() < deadline, "the pipeline made no progress"
            time.sleep(0.005)
        if process.poll() is not None:
            break
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        kills += 1
        checkpoints.append((len(ran_lines(log)), completed_ids(db)))

    final = start(db, log, count)
    _, errors = final.communicate(timeout=120)
    assert final.returncode == 0, errors.decode()

    assert kills == 5
    runs = ran_lines(log)
    for position, completed in checkpoints:
        assert not completed & set(runs[position:]), "a completed task ran again"
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        docs = [json.loads(doc) for (doc,) in connection.execute("SELECT doc FROM tasks")]
    assert len(docs) == count
    for doc in docs:
        assert doc["metadata"]["status"] == "completed", doc["id"]
        assert f"work of {doc['id']}" in doc["metadata"]["output"]


@pytest.mark.parametrize("store_kind", ["sqlite"], indirect=True)
async def test_everything_stored_survives_a_restart(make_service, store_kind):
    first = await make_service()
    up = await first.create_task("up", "")
    down = await first.create_task("down", "", depends_on=[up.id])
    await first.append_output(up.id, "kept line")
    await first.run()
    await first.stop()

    second = await make_service(store=first.store)

    assert (await second.get_task(down.id)).metadata.status is TaskStatus.COMPLETED
    assert "kept line" in (await second.get_task(up.id)).metadata.output
    assert second.get_dependencies(down.id) == [up.id]
    assert second.get_current_task_id() == up.id
