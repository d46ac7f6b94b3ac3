"""The four benchmark workloads, each runnable on dagorch and on the baseline executor.

A workload is plain data (task ids with the ids they depend on, in topological order) plus a
concurrency limit. Both engines run the same task body (``Probe.step``), which checks that the
task got exactly its predecessors' results, and both are checked the same way afterwards. A failed
check raises ``CheckFailed``.

A task's result is its depth: 0 for a task without predecessors, else one more than the deepest
predecessor's result. Every task compares what it receives with depths computed beforehand from
the DAG, so a task that started too early, got another task's result or missed one is caught.
"""

from __future__ import annotations

import cProfile
import importlib
import random
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import networkx as nx
from baseline import run_dag

ENGINES = ("dagorch", "dagorch-sqlite", "dagorch-dask", "baseline")
"""dagorch on its in-memory store, dagorch on a fresh SQLite file, and the baseline."""
BENCH_PROVIDER = "bench"


class CheckFailed(Exception):
    """A workload's result is wrong."""


@dataclass(frozen=True)
class Workload:
    """A DAG to run, as plain data both engines build their own structures from."""

    name: str
    title: str
    tasks: list[tuple[str, list[str]]]
    """Each task id with the ids it depends on, predecessors listed before their dependents."""
    max_concurrency: int
    sleep: float = 0.0
    """Seconds each task sleeps (``anyio.sleep``); 0 for no sleep at all."""
    expect_peak: int | None = None
    """How many tasks must have run at once at some point, when the workload checks that."""

    @property
    def size(self) -> int:
        """The number of tasks."""
        return len(self.tasks)

    def depths(self) -> dict[str, int]:
        """The expected result of every task."""
        depth: dict[str, int] = {}
        for task_id, deps in self.tasks:
            depth[task_id] = 1 + max((depth[d] for d in deps), default=-1)
        return depth


@dataclass
class Timing:
    """Where one run's wall time went (seconds)."""

    setup: float
    """Building the engine's own DAG: ``create_task`` for dagorch, the networkx graph for the
    baseline."""
    run: float
    """Running every task, up to the last result (for dagorch also ``service.stop()``)."""

    @property
    def total(self) -> float:
        """Setup plus run."""
        return self.setup + self.run


# -- the workloads ---------------------------------------------------------------------------


def chain(n: int = 1_000) -> Workload:
    """W1: task i depends on task i-1."""
    ids = [f"w1-{i:04d}" for i in range(n)]
    tasks = [(task_id, ids[i - 1 : i]) for i, task_id in enumerate(ids)]
    return Workload("W1", f"chain of {n:,} tasks", tasks, max_concurrency=100)


def fan_out_in(children: int = 10_000) -> Workload:
    """W2: one root, ``children`` tasks that depend on it, one join that depends on them all."""
    kids = [f"w2-child-{i:05d}" for i in range(children)]
    tasks = [("w2-root", []), *((kid, ["w2-root"]) for kid in kids), ("w2-join", kids)]
    return Workload("W2", f"1 root → {children:,} children → 1 join", tasks, max_concurrency=100)


def layers(depth: int = 100, width: int = 100, fan_in: int = 3, seed: int = 42) -> Workload:
    """W3: ``depth`` layers of ``width`` tasks; each task of a later layer depends on ``fan_in``
    distinct tasks of the layer before, drawn with ``random.Random(seed)``."""
    rng = random.Random(seed)
    grid = [[f"w3-{k:03d}-{i:03d}" for i in range(width)] for k in range(depth)]
    tasks: list[tuple[str, list[str]]] = [(task_id, []) for task_id in grid[0]]
    for k in range(1, depth):
        tasks += [(task_id, rng.sample(grid[k - 1], fan_in)) for task_id in grid[k]]
    return Workload(
        "W3",
        f"{depth} layers × {width} tasks, {fan_in} random parents each",
        tasks,
        max_concurrency=100,
    )


def sleepers(n: int = 1_000, seconds: float = 0.05, limit: int = 100) -> Workload:
    """W4: ``n`` independent tasks that each sleep ``seconds``, at most ``limit`` at once."""
    tasks: list[tuple[str, list[str]]] = [(f"w4-{i:04d}", []) for i in range(n)]
    return Workload(
        "W4",
        f"{n:,} independent {seconds * 1000:g} ms sleeps, concurrency {limit}",
        tasks,
        max_concurrency=limit,
        sleep=seconds,
        expect_peak=limit,
    )


WORKLOADS: dict[str, Callable[[], Workload]] = {
    "W1": chain,
    "W2": fan_out_in,
    "W3": layers,
    "W4": sleepers,
}


# -- the task body and the checks ------------------------------------------------------------


class Probe:
    """The task body both engines run, and what it saw."""

    def __init__(self, workload: Workload) -> None:
        self.workload = workload
        self.parents = dict(workload.tasks)
        self.expected = workload.depths()
        self.expected_text = {task_id: str(depth) for task_id, depth in self.expected.items()}
        self.values: dict[str, int] = {}
        self.calls = 0
        self.in_flight = 0
        self.peak = 0
        self.problems: list[str] = []

    async def step(self, task_id: str, upstream: Mapping[str, str]) -> str:
        """Run one task: check its predecessors' results, sleep if asked, return its depth."""
        self.calls += 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            parents = self.parents[task_id]
            expected = self.expected_text
            if len(upstream) != len(parents) or any(
                upstream.get(p) != expected[p] for p in parents
            ):
                self._fail(f"{task_id}: got results of {sorted(upstream)}, wanted {parents}")
            if self.workload.sleep:
                await anyio.sleep(self.workload.sleep)
            value = 1 + max((int(v) for v in upstream.values()), default=-1)
            if task_id in self.values:
                self._fail(f"{task_id}: ran twice")
            self.values[task_id] = value
            return str(value)
        finally:
            self.in_flight -= 1

    def _fail(self, problem: str) -> None:
        self.problems.append(problem)
        raise CheckFailed(problem)

    def verify(self, engine: str, results: Mapping[str, str | None]) -> None:
        """Raise ``CheckFailed`` unless every task ran once, saw and returned the right results,
        and the engine reports the right result for every task."""
        name = f"{self.workload.name} on {engine}"
        problems = list(self.problems)
        if self.calls != self.workload.size:
            problems.append(f"{self.calls} task calls for {self.workload.size} tasks")
        if self.values != self.expected:
            wrong = [t for t in self.expected if self.values.get(t) != self.expected[t]]
            problems.append(f"{len(wrong)} tasks computed a wrong result, e.g. {wrong[:3]}")
        if set(results) != set(self.expected):
            problems.append(f"the engine returned {len(results)} results for {len(self.expected)}")
        wrong = [t for t, text in self.expected_text.items() if results.get(t) != text]
        if wrong:
            problems.append(f"{len(wrong)} results are wrong, e.g. {wrong[:3]}")
        limit = self.workload.max_concurrency
        if self.peak > limit:
            problems.append(f"{self.peak} tasks ran at once, over the limit of {limit}")
        if self.workload.expect_peak is not None and self.peak != self.workload.expect_peak:
            problems.append(f"{self.peak} tasks ran at once, expected {self.workload.expect_peak}")
        if problems:
            raise CheckFailed(f"{name}: " + "; ".join(problems[:5]))


# -- the engines -----------------------------------------------------------------------------


class Clock:
    """Times the measured sections of a run; profiles only those when given a profiler."""

    def __init__(self, profiler: cProfile.Profile | None = None) -> None:
        self.profiler = profiler
        self.seconds: dict[str, float] = {"setup": 0.0, "run": 0.0}

    @contextmanager
    def section(self, name: str) -> Iterator[None]:
        """Add the time spent in the ``with`` block to ``name``."""
        if self.profiler is not None:
            self.profiler.enable()
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start
            if self.profiler is not None:
                self.profiler.disable()

    def timing(self) -> Timing:
        return Timing(setup=self.seconds["setup"], run=self.seconds["run"])


def preload(engine: str) -> None:
    """Import what ``engine`` needs, so that a timed run does not pay for the import."""
    if engine.startswith("dagorch"):
        importlib.import_module("orchestrator.testing")
    if engine == "dagorch-dask":
        # Dask's own import (~0.5 s here) is paid once per process, not per service.
        importlib.import_module("orchestrator._dask")
        importlib.import_module("orchestrator._dask_worker")
        importlib.import_module("distributed")


async def run_on_baseline(workload: Workload, profiler: cProfile.Profile | None = None) -> Timing:
    """Build the networkx graph and run it with ``baseline.run_dag``; checked."""
    probe = Probe(workload)
    clock = Clock(profiler)
    with clock.section("setup"):
        graph: nx.DiGraph[str] = nx.DiGraph()
        graph.add_nodes_from(task_id for task_id, _ in workload.tasks)
        graph.add_edges_from((dep, task_id) for task_id, deps in workload.tasks for dep in deps)
    with clock.section("run"):
        results = await run_dag(graph, probe.step, workload.max_concurrency)
    probe.verify("baseline", results)
    return clock.timing()


async def run_on_dagorch(workload: Workload, profiler: cProfile.Profile | None = None) -> Timing:
    """dagorch on its in-memory store."""
    return await _run_on_dagorch(workload, profiler, sqlite=False)


async def run_on_dagorch_sqlite(
    workload: Workload, profiler: cProfile.Profile | None = None
) -> Timing:
    """dagorch on a fresh SQLite file (the default store), removed afterwards."""
    return await _run_on_dagorch(workload, profiler, sqlite=True)


async def run_on_dagorch_dask(
    workload: Workload, profiler: cProfile.Profile | None = None
) -> Timing:
    """dagorch with the dask executor on an in-process cluster (memory store): each task is the
    builtin ``python`` provider calling ``dask_step`` on a Dask worker."""
    return await _run_on_dagorch(workload, profiler, sqlite=False, dask=True)


HERE = str(Path(__file__).resolve().parent)
_PROBE: list[Probe] = []  # the probe of the running dask workload (workers share this process)


async def dask_step(task: Any, upstream: Mapping[str, Any]) -> str:
    """The task body as a ``python``-provider function, for the dask engine."""
    return await _PROBE[-1].step(task.id, {k: r.summary for k, r in upstream.items()})


async def _run_on_dagorch(
    workload: Workload, profiler: cProfile.Profile | None, *, sqlite: bool, dask: bool = False
) -> Timing:
    """Create every task on a fresh ``AgentOrchestratorService``, ``run()`` it and stop it;
    checked through the run summary and every task's stored result."""
    # Imported here so that a process that only runs the baseline does not load dagorch.
    from orchestrator import (
        AgentOrchestratorPluginOptions,
        AgentOrchestratorService,
        MemoryStore,
        OrchestratedTask,
        ProviderTaskExecutionContext,
        SqliteStore,
        TaskResult,
        TaskStatus,
    )
    from orchestrator.testing import FunctionProvider

    probe = Probe(workload)

    async def execute(task: OrchestratedTask, ctx: ProviderTaskExecutionContext) -> TaskResult:
        upstream = {up: result.summary for up, result in ctx.upstream_results.items()}
        return TaskResult(success=True, summary=await probe.step(task.id, upstream))

    options = AgentOrchestratorPluginOptions(
        providers=[FunctionProvider(BENCH_PROVIDER, execute)],
        default_provider_id="python" if dask else BENCH_PROVIDER,
        max_concurrency=workload.max_concurrency,
        executor="dask" if dask else "local",
    )
    extra: dict[str, Any] = {}
    if dask:
        _PROBE.append(probe)
        extra = {"params": {"function": "workloads:dask_step"}, "working_directory": HERE}
    clock = Clock(profiler)
    folder = tempfile.TemporaryDirectory(prefix="dagorch-bench-")
    store = SqliteStore(Path(folder.name) / "bench.db") if sqlite else MemoryStore()
    with clock.section("setup"):
        service = await AgentOrchestratorService.start(options=options, store=store)
    try:
        with clock.section("setup"):
            # One call, as a pipeline file is loaded: checked together, stored in one write.
            await service.create_tasks(
                {"name": task_id, "task_id": task_id, "depends_on": deps, **extra}
                for task_id, deps in workload.tasks
            )
        with clock.section("run"):
            summary = await service.run()
        # Read back before stop(), which closes the service; not timed.
        results: dict[str, str | None] = {}
        for task_id in summary.statuses:
            task = await service.get_task(task_id)
            result = task.metadata.result if task is not None else None
            results[task_id] = result.summary if result is not None else None
    finally:
        with clock.section("run"):
            await service.stop()
        folder.cleanup()
    if not summary.ok:
        failed = {t: s.value for t, s in summary.statuses.items() if s is not TaskStatus.COMPLETED}
        errors = list(summary.errors.items())[:3]
        raise CheckFailed(
            f"{workload.name} on dagorch: {len(failed)} tasks did not complete; "
            f"first problems: {probe.problems[:3]}; errors: {errors}"
        )
    probe.verify("dagorch-dask" if dask else "dagorch-sqlite" if sqlite else "dagorch", results)
    return clock.timing()


RUNNERS = {
    "dagorch": run_on_dagorch,
    "dagorch-sqlite": run_on_dagorch_sqlite,
    "dagorch-dask": run_on_dagorch_dask,
    "baseline": run_on_baseline,
}
