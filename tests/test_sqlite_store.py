"""The SQLite store refuses what is not its own, reports failures clearly and loses nothing."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from orchestrator import (
    AgentOrchestratorPluginOptions,
    AgentOrchestratorService,
    OrchestratedTask,
    SqliteStore,
    StoreError,
)
from orchestrator.store._schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION
from orchestrator.store.sqlite import default_store_path
from orchestrator.testing import FunctionProvider, succeed


async def started(path: Path, **kwargs) -> AgentOrchestratorService:
    options = AgentOrchestratorPluginOptions(providers=[FunctionProvider("ok", succeed)])
    return await AgentOrchestratorService.start(options=options, store=SqliteStore(path, **kwargs))


async def test_the_default_file_is_in_dagorch_home(_dagorch_home):
    service = await started(default_store_path())
    await service.create_task("kept", "")
    await service.stop()

    assert (_dagorch_home / "dagorch.db").exists()


async def test_a_file_that_is_not_a_database_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("my notes, not a database\n" * 100)
    before = path.read_bytes()

    with pytest.raises(StoreError, match=r"notes\.db: is not a dagorch database"):
        await started(path)

    assert path.read_bytes() == before


@pytest.mark.parametrize(
    "made_by_it",
    [
        "CREATE TABLE invoices (id INTEGER)",
        "PRAGMA user_version = 3",  # no tables yet, but not an unused file either
    ],
)
async def test_another_programs_database_is_refused_and_left_untouched(tmp_path, made_by_it):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as other:
        other.execute(made_by_it)
    before = path.read_bytes()

    with pytest.raises(StoreError, match="belongs to another program"):
        await started(path)

    assert path.read_bytes() == before


async def test_a_database_from_a_newer_dagorch_is_refused(tmp_path):
    path = tmp_path / "future.db"
    with sqlite3.connect(path) as future:
        future.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        future.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        future.execute("CREATE TABLE tasks (x)")

    newer = rf"newer dagorch \(schema {SCHEMA_VERSION + 1}\).*Upgrade dagorch"
    with pytest.raises(StoreError, match=newer):
        await started(path)


async def test_a_schema_1_database_gains_the_event_log_and_keeps_its_tasks(tmp_path):
    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as old:
        MIGRATIONS[1](old)
        old.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        old.execute("PRAGMA user_version = 1")
        doc = OrchestratedTask(id="kept", name="kept").model_dump_json(by_alias=True)
        old.execute("INSERT INTO tasks (id, doc) VALUES ('kept', ?)", (doc,))

    service = await started(path)
    await service.rename_task("kept", "renamed")
    events = await service.read_events()
    await service.stop()

    assert [e.data for e in events] == [{"message": "Renamed task to: renamed"}]
    with sqlite3.connect(path) as migrated:
        assert migrated.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def test_an_older_schema_is_migrated_forward(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        old.execute(f"PRAGMA application_id = {APPLICATION_ID}")

    service = await started(path)
    await service.create_task("new", "")
    await service.stop()

    with sqlite3.connect(path) as migrated:
        assert migrated.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert migrated.execute("SELECT count(*) FROM tasks").fetchone()[0] == 1


async def test_a_truncated_database_gives_an_error_naming_the_file(tmp_path):
    path = tmp_path / "cut.db"
    service = await started(path)
    for i in range(200):
        await service.create_task(f"t{i}", "x" * 500)
    await service.stop()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])

    with pytest.raises(
        StoreError, match=r"cut\.db: is damaged \(database disk image is malformed\)"
    ):
        await started(path)


async def test_a_location_that_cannot_be_written_gives_an_error_naming_the_file(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    path = blocker / "dagorch.db"

    with pytest.raises(StoreError, match=r"a-file/dagorch\.db: cannot open the database"):
        await started(path)


async def test_a_full_disk_fails_the_write_clearly_and_keeps_what_was_committed(tmp_path):
    path = tmp_path / "full.db"
    service = await started(path)
    kept = await service.create_task("kept", "")
    store = service.store
    assert isinstance(store, SqliteStore)
    pages = store._connection.execute("PRAGMA page_count").fetchone()[0]
    store._connection.execute(f"PRAGMA max_page_count = {pages}")

    with pytest.raises(StoreError, match=r"full\.db: database error: database or disk is full"):
        await service.create_task("too much", "y" * 200_000)
    await service.stop()

    reopened = await started(path)
    assert [t.name for t in await reopened.get_tasks()] == ["kept"]
    assert (await reopened.get_task(kept.id)) is not None
    await reopened.stop()


async def test_a_database_locked_by_another_process_gives_an_error_naming_the_file(tmp_path):
    path = tmp_path / "locked.db"
    service = await started(path)
    await service.stop()
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match=r"locked\.db: .*database is locked"):
            reopened = await started(path, busy_timeout=0.2)
            await reopened.create_task("blocked", "")
    finally:
        holder.execute("ROLLBACK")
        holder.close()


async def test_writes_from_many_coroutines_are_committed_together_and_all_kept(tmp_path):
    import anyio

    service = await started(tmp_path / "many.db")
    task = await service.create_task("t", "")
    async with anyio.create_task_group() as tg:
        for i in range(300):
            tg.start_soon(service.append_output, task.id, f"line {i}")
    await service.stop()

    reopened = await started(tmp_path / "many.db")
    output = (await reopened.get_task(task.id)).metadata.output
    assert sorted(output) == sorted(f"line {i}" for i in range(300))
    await reopened.stop()


async def test_a_task_with_unknown_keys_keeps_them_across_a_reopen(tmp_path):
    store = SqliteStore(tmp_path / "extra.db")
    await store.open()
    await store.put_tasks(
        [OrchestratedTask.from_dict({"id": "x", "name": "x", "futureField": [1]})]
    )
    await store.close()

    await store.open()
    [loaded] = await store.load_tasks()
    await store.close()

    assert loaded.extra == {"futureField": [1]}


async def test_services_of_two_agents_in_one_process_each_own_a_default_file(_dagorch_home):
    class Runtime:
        def __init__(self, agent_id: str) -> None:
            self.agent_id = agent_id

    options = AgentOrchestratorPluginOptions(providers=[FunctionProvider("ok", succeed)])
    first = await AgentOrchestratorService.start(Runtime("agent-one"), options=options)
    second = await AgentOrchestratorService.start(Runtime("agent-two"), options=options)
    await first.stop()
    await second.stop()

    assert sorted(p.name for p in _dagorch_home.iterdir() if p.suffix == ".db") == [
        "agent-agent-one.db",
        "agent-agent-two.db",
    ]


async def _opened_with_tasks(path: Path, count: int) -> tuple[SqliteStore, list[OrchestratedTask]]:
    """A store at ``path`` holding ``count`` tasks a service made (as it returned them), open."""
    service = await started(path)
    ids = await service.create_tasks({"name": f"t{i}", "task_id": f"t{i}"} for i in range(count))
    made = [await service.get_task(task_id) for task_id in ids]
    await service.stop()
    store = SqliteStore(path)
    await store.open()
    return store, made


async def test_read_tasks_gives_each_asked_task_in_order_and_none_for_a_missing_one(tmp_path):
    store, made = await _opened_with_tasks(tmp_path / "s.db", 1200)
    try:
        got = store.read_tasks([made[-1].id, "missing", *(task.id for task in made[:1000])])
        alone = store.read_task(made[-1].id)
    finally:
        await store.close()

    assert got == [made[-1], None, *made[:1000]]
    assert alone == made[-1]


async def test_threads_sharing_a_store_read_tasks_at_once_without_clashing(tmp_path):
    store, made = await _opened_with_tasks(tmp_path / "s.db", 600)
    ids = [task.id for task in made]
    errors: list[Exception] = []

    def read_many() -> None:
        for _ in range(40):
            try:
                assert [task.id for task in store.read_tasks(ids)] == ids
                assert store.read_task("t0") is not None
            except Exception as exc:  # collected: an assertion in a thread would be lost
                errors.append(exc)

    try:
        threads = [threading.Thread(target=read_many) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        await store.close()

    assert errors == []
