"""The DAG: tasks run after their upstream tasks, failures propagate, the graph can grow."""

from __future__ import annotations

import anyio
import networkx as nx
import pytest

from orchestrator import (
    CycleError,
    DependencyError,
    OrchestratedTask,
    TaskResult,
    TaskStatus,
)
from orchestrator.graph import TaskGraph
from orchestrator.testing import FunctionProvider, GatedProvider, succeed


def recording_provider(log: list[str], provider_id: str = "rec") -> FunctionProvider:
    async def record(task: OrchestratedTask, ctx) -> TaskResult:
        log.append(task.name)
        return TaskResult(success=True, summary=f"result of {task.name}")

    return FunctionProvider(provider_id, record)


async def test_a_task_runs_only_after_all_its_upstream_tasks_completed(make_service):
    log: list[str] = []
    service = await make_service(recording_provider(log))
    a = await service.create_task("a", "")
    b = await service.create_task("b", "")
    join = await service.create_task("join", "", depends_on=[a.id, b.id])
    await service.create_task("after", "", depends_on=[join.id])

    summary = await service.run()

    assert summary.ok
    assert log.index("join") > max(log.index("a"), log.index("b"))
    assert log[-1] == "after"


async def test_tasks_start_in_networkx_topological_order(make_service):
    log: list[str] = []
    service = await make_service(recording_provider(log), max_concurrency=1)
    ids: dict[str, str] = {}
    for name, deps in [("d", []), ("c", ["d"]), ("b", []), ("a", ["b", "c"]), ("e", ["a"])]:
        task = await service.create_task(name, "", depends_on=[ids[d] for d in deps])
        ids[name] = task.id

    graph = service._graph.as_networkx()
    expected = [service._tasks[t].name for t in nx.topological_sort(graph)]
    await service.run()

    assert log == expected


async def test_independent_tasks_run_concurrently(make_service):
    both_running = anyio.Event()
    running: set[str] = set()

    async def meet(task: OrchestratedTask, ctx) -> TaskResult:
        running.add(task.id)
        if len(running) == 2:
            both_running.set()
        with anyio.fail_after(5):
            await both_running.wait()
        return TaskResult(success=True, summary="met")

    service = await make_service(FunctionProvider("meet", meet))
    await service.create_task("left", "")
    await service.create_task("right", "")

    summary = await service.run()

    assert summary.ok


async def test_a_provider_sees_its_upstream_results_in_its_context(make_service):
    seen: dict[str, dict[str, str]] = {}

    async def gather_upstream(task: OrchestratedTask, ctx) -> TaskResult:
        seen[task.name] = {k: v.summary for k, v in ctx.upstream_results.items()}
        return TaskResult(success=True, summary=f"{task.name} done")

    service = await make_service(FunctionProvider("up", gather_upstream))
    a = await service.create_task("a", "")
    b = await service.create_task("b", "")
    await service.create_task("c", "", depends_on=[a.id, b.id])

    await service.run()

    assert seen["a"] == {}
    assert seen["c"] == {a.id: "a done", b.id: "b done"}


async def test_dependents_of_a_failed_task_never_run_and_fail_naming_it(make_service):
    log: list[str] = []

    async def fail_or_record(task: OrchestratedTask, ctx) -> TaskResult:
        log.append(task.name)
        if task.name == "build":
            raise RuntimeError("compiler exploded")
        return TaskResult(success=True, summary="ok")

    service = await make_service(FunctionProvider("p", fail_or_record))
    build = await service.create_task("build", "")
    test = await service.create_task("test", "", depends_on=[build.id])
    deploy = await service.create_task("deploy", "", depends_on=[test.id])
    docs = await service.create_task("docs", "")

    summary = await service.run()

    assert sorted(log) == ["build", "docs"]
    assert summary.statuses[build.id] is TaskStatus.FAILED
    assert summary.ids_with(TaskStatus.FAILED) == [build.id, test.id, deploy.id]
    assert summary.ids_with(TaskStatus.COMPLETED) == [docs.id]
    assert not summary.ok
    assert summary.statuses[docs.id] is TaskStatus.COMPLETED
    tested = await service.get_task(test.id)
    deployed = await service.get_task(deploy.id)
    assert tested.metadata.status is TaskStatus.FAILED
    assert tested.metadata.error == f'Upstream task "build" ({build.id}) failed'
    assert deployed.metadata.status is TaskStatus.FAILED
    assert deployed.metadata.error == f'Upstream task "test" ({test.id}) failed'


async def test_dependents_of_a_cancelled_task_end_cancelled_naming_it(make_service):
    service = await make_service()
    first = await service.create_task("first", "")
    second = await service.create_task("second", "", depends_on=[first.id])

    await service.cancel_task(first.id)

    after = await service.get_task(second.id)
    assert after.metadata.status is TaskStatus.CANCELLED
    assert after.metadata.error == f'Upstream task "first" ({first.id}) was cancelled'


async def test_a_task_created_on_a_failed_upstream_task_fails_at_once(make_service):
    service = await make_service()
    broken = await service.create_task("broken", "")
    await service.set_task_error(broken.id, "no")

    late = await service.create_task("late", "", depends_on=[broken.id])

    assert late.metadata.status is TaskStatus.FAILED
    assert "broken" in late.metadata.error


async def test_a_dependency_can_be_declared_after_creation(make_service):
    log: list[str] = []
    service = await make_service(recording_provider(log), max_concurrency=1)
    later = await service.create_task("later", "")
    earlier = await service.create_task("earlier", "")

    await service.add_dependency(later.id, earlier.id)
    await service.run()

    assert log == ["earlier", "later"]
    assert service.get_dependencies(later.id) == [earlier.id]
    assert service.get_dependents(earlier.id) == [later.id]


async def test_a_refused_cycle_leaves_the_graph_runnable(make_service):
    log: list[str] = []
    service = await make_service(recording_provider(log), max_concurrency=1)
    a = await service.create_task("a", "")
    b = await service.create_task("b", "", depends_on=[a.id])

    with pytest.raises(CycleError):
        await service.add_dependency(a.id, b.id)

    assert service.get_dependencies(a.id) == []
    assert (await service.run()).ok
    assert log == ["a", "b"]


async def test_a_task_that_started_takes_no_new_dependencies(make_service):
    service = await make_service()
    done = await service.create_task("done", "")
    other = await service.create_task("other", "")
    await service.run()

    with pytest.raises(DependencyError, match="only be added before a task starts"):
        await service.add_dependency(done.id, other.id)


async def test_a_running_pipeline_can_grow(make_service):
    log: list[str] = []
    service_box: list = []

    async def spawn_follow_up(task: OrchestratedTask, ctx) -> TaskResult:
        log.append(task.name)
        if task.name == "seed":
            await service_box[0].create_task("grown", "", provider_id="grow", depends_on=[task.id])
        return TaskResult(success=True, summary=task.name)

    service = await make_service(FunctionProvider("grow", spawn_follow_up))
    service_box.append(service)
    await service.create_task("seed", "")

    summary = await service.run()

    assert log == ["seed", "grown"]
    assert len(summary.statuses) == 2 and summary.ok


async def test_start_task_execution_queues_a_task_until_its_upstream_completes(make_service):
    gate = GatedProvider()
    log: list[str] = []
    service = await make_service(gate, recording_provider(log))
    upstream = await service.create_task("upstream", "", provider_id="gated")
    downstream = await service.create_task(
        "downstream", "", provider_id="rec", depends_on=[upstream.id]
    )

    handle = service.start_task_execution(downstream.id)
    await gate.started.wait()

    assert log == []
    assert (await service.get_task(downstream.id)).metadata.status is TaskStatus.PENDING
    gate.release()
    finished = await handle
    assert finished.metadata.status is TaskStatus.COMPLETED
    assert log == ["downstream"]


async def test_start_task_execution_returns_the_same_handle_while_unfinished(make_service):
    gate = GatedProvider()
    service = await make_service(gate)
    task = await service.create_task("t", "")

    first = service.start_task_execution(task.id)
    second = service.start_task_execution(task.id)
    gate.release()

    assert first is second
    assert (await first).metadata.status is TaskStatus.COMPLETED


async def test_start_task_execution_never_reruns_a_completed_task(make_service):
    provider = FunctionProvider("count", succeed)
    service = await make_service(provider)
    task = await service.create_task("t", "")
    await service.start_task_execution(task.id)

    again = await service.start_task_execution(task.id)

    assert again.metadata.status is TaskStatus.COMPLETED
    assert provider.calls == [task.id]


async def test_wait_for_task_returns_the_task_once_terminal(make_service):
    service = await make_service()
    task = await service.create_task("t", "")
    service.start_task_execution(task.id)

    finished = await service.wait_for_task(task.id, timeout=5)

    assert finished.metadata.status is TaskStatus.COMPLETED
    assert finished.metadata.result.summary == "t"


async def test_the_downstream_of_a_task_lists_every_task_that_waits_on_it_in_order(make_service):
    service = await make_service()
    top = await service.create_task("top", "")
    middle = await service.create_task("middle", "", depends_on=[top.id])
    bottom = await service.create_task("bottom", "", depends_on=[middle.id, top.id])
    await service.create_task("aside", "")

    assert service.get_downstream(top.id) == [middle.id, bottom.id]
    assert service.get_downstream(bottom.id) == []


def test_tasks_added_in_bulk_make_the_graph_networkx_itself_would():
    graph = TaskGraph()
    expected: nx.DiGraph[str] = nx.DiGraph()
    for task_id, upstream in [("a", []), ("b", ["a"]), ("c", ["b", "a"])]:
        graph.add_checked_task(task_id, upstream)
        expected.add_node(task_id)
        expected.add_edges_from((up, task_id) for up in upstream)

    built = graph.as_networkx()

    assert nx.utils.graphs_equal(built, expected)
    assert list(graph.upstream("c")) == list(expected.predecessors("c"))
    assert list(nx.topological_sort(built)) == ["a", "b", "c"]


def test_the_graph_handed_out_has_attribute_dicts_of_its_own():
    graph = TaskGraph()
    for task_id, upstream in [("a", []), ("b", ["a"]), ("c", ["a"])]:
        graph.add_checked_task(task_id, upstream)

    drawn = graph.as_networkx()
    drawn.edges["a", "b"]["label"] = "only a -> b"
    drawn.nodes["a"]["color"] = "red"

    assert drawn.edges["a", "c"] == {} and drawn.nodes["b"] == {}
    again = graph.as_networkx()
    assert again.edges["a", "b"] == {} and again.nodes["a"] == {}


async def test_starting_every_task_of_a_chain_in_turn_wants_each_task_once(
    make_service, monkeypatch
):
    service = await make_service(GatedProvider())
    ids = await service.create_tasks(
        {"name": f"t{i}", "task_id": f"t{i}", "depends_on": [f"t{i - 1}"] if i else []}
        for i in range(300)
    )
    wanted: list[str] = []
    want = service._scheduler.want
    monkeypatch.setattr(
        service._scheduler, "want", lambda task_ids: want(wanted.extend(task_ids) or task_ids)
    )

    handles = [service.start_task_execution(task_id) for task_id in ids]

    # Each call stops at the task before, already wanted: not the whole chain above it again.
    assert wanted == ids
    assert all(not handle.done() for handle in handles)


@pytest.mark.parametrize(
    ("stored", "removed"),
    [(["U1", "U2", "ghost"], ["ghost"]), (["U1", "U1", "U2"], ["U1", "U1"])],
    ids=["an id missing at load", "an id listed twice"],
)
async def test_removing_a_stored_dependency_the_graph_lacks_never_starts_the_task_early(
    make_service, stored, removed
):
    # A store written by another tool or by hand may list dependencies the graph never got.
    seen: list[dict[str, str]] = []

    async def record(task: OrchestratedTask, ctx) -> TaskResult:
        ups = [await service.get_task(up) for up in service.get_dependencies(task.id)]
        seen.append({up.id: up.metadata.status.value for up in ups if up is not None})
        return TaskResult(success=True)

    first = await make_service(GatedProvider(), FunctionProvider("rec", record))
    for name in ("U1", "U2"):
        await first.create_task(name, task_id=name)
    await first.create_task("T", task_id="T", provider_id="rec", depends_on=["U1", "U2"])
    await first.stop()
    store = first.store
    await store.open()
    task = next(t for t in await store.load_tasks() if t.id == "T")
    task.metadata.depends_on = stored
    await store.put_tasks([task])
    await store.close()

    gated = GatedProvider()
    service = await make_service(gated, FunctionProvider("rec", record), store=store)
    if "ghost" in stored:
        await service.create_task("ghost", task_id="ghost")
    service.start_task_execution("T")
    await gated.started.wait()
    for up in removed:
        await service.remove_dependency("T", up)
    gated.release()
    with anyio.fail_after(5):
        done = await service.wait_for_task("T")

    assert done.metadata.status is TaskStatus.COMPLETED
    assert seen == [{up: "completed" for up in service.get_dependencies("T")}]


async def test_a_stored_dependency_on_a_missing_task_is_not_met_by_a_task_made_later(make_service):
    first = await make_service()
    await first.create_task("D", task_id="D")
    await first.stop()
    store = first.store
    await store.open()
    task = next(t for t in await store.load_tasks() if t.id == "D")
    task.metadata.depends_on = ["U"]  # a task that does not exist
    await store.put_tasks([task])
    await store.close()

    service = await make_service(store=store)
    await service.create_task("U", task_id="U")
    await service.add_dependency("D", "U")

    assert service.get_dependents("U") == ["D"]
    assert service.get_dependencies("D") == ["U"]
