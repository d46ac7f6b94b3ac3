"""The dask executor: provider calls on a Dask cluster, the context carried across the wire.

Most tests use an in-process cluster (threads, no sockets); one runs a real ``LocalCluster`` of
two worker processes. The task functions live in ``tests/dask_steps.py``, imported on the workers
by the ``python`` provider from the task's working directory.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from threading import Lock
from typing import Any

import anyio
import pytest

from orchestrator import (
    AgentOrchestratorPluginOptions,
    AgentOrchestratorService,
    ConfigurationError,
    MemoryStore,
    OrchestratedTask,
    ProviderError,
    TaskResult,
    TaskStatus,
)
from orchestrator._dask import DaskExecutor
from orchestrator.testing import FunctionProvider, succeed

STEPS = Path(__file__).resolve().parent / "dask_steps.py"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A working directory holding the task functions, under a name unique to the test."""
    shutil.copy(STEPS, tmp_path / "dask_steps.py")
    return tmp_path


async def start(executor: Any = "dask", **options: Any) -> AgentOrchestratorService:
    settings = AgentOrchestratorPluginOptions(
        executor=executor, default_provider_id="python", cancel_grace_period=0.5, **options
    )
    return await AgentOrchestratorService.start(options=settings, store=MemoryStore())


@pytest.fixture
async def service() -> AsyncIterator[AgentOrchestratorService]:
    svc = await start()
    yield svc
    await svc.stop()


def call(function: str, workdir: Path) -> dict[str, Any]:
    return {"params": {"function": f"dask_steps:{function}"}, "working_directory": str(workdir)}


class Provider:
    """Names a provider for ``DaskExecutor.execute``: the worker finds it by its id."""

    def __init__(self, provider_id: str) -> None:
        self.id = provider_id


class Context:
    """A task context for calls made straight to the executor: records what comes back."""

    def __init__(self, task: OrchestratedTask) -> None:
        self.task_id = task.id
        self.working_directory = task.metadata.working_directory
        self.runtime_agent_id = ""
        self.room_id = self.world_id = None
        self.attempt = 1
        self.upstream_results: dict[str, TaskResult] = {}
        self.output: list[str] = []
        self.progress: list[float] = []
        self.cancelled = False

    async def append_output(self, text: str) -> None:
        self.output.append(text)

    async def update_progress(self, progress: float) -> None:
        self.progress.append(progress)

    async def add_step(self, description: str) -> str | None:
        return description

    async def update_step(self, step_id: str, status: Any, output: str | None = None) -> None:
        pass

    def is_cancelled(self) -> bool:
        return self.cancelled

    def is_paused(self) -> bool:
        return False

    async def checkpoint(self) -> None:
        pass


def batch_call(provider_id: str, task_id: str, **params: Any) -> tuple[Provider, Any, Context]:
    """One provider call for ``DaskExecutor.execute``: the provider, its task, its context."""
    workdir = str(params.pop("workdir", ""))
    metadata = {"params": params, "working_directory": workdir}
    task = OrchestratedTask.model_validate({"id": task_id, "name": task_id, "metadata": metadata})
    return Provider(provider_id), task, Context(task)


def start_together(
    executor: DaskExecutor, calls: list[tuple[Provider, Any, Context]]
) -> list[asyncio.Future[Any]]:
    """Start every call in the same loop tick (so they form one batch), as asyncio tasks."""
    return [asyncio.ensure_future(executor.execute(*call)) for call in calls]


async def output_has(
    service: AgentOrchestratorService, task_id: str, line: str, within: float
) -> float:
    started = time.monotonic()
    with anyio.fail_after(within):
        while line not in (await service.get_task(task_id)).metadata.output:
            await anyio.sleep(0.01)
    return time.monotonic() - started


async def test_a_fan_out_runs_on_the_cluster_and_results_flow_downstream(service, workdir):
    root = await service.create_task("root", "", provider_id="echo", params={"text": "go"})
    leaves = [
        await service.create_task(f"leaf {i}", "", depends_on=[root.id], **call("where", workdir))
        for i in range(4)
    ]
    join = await service.create_task(
        "join",
        "",
        provider_id="echo",
        depends_on=[leaf.id for leaf in leaves],
        params={"text": "{{ tasks." + leaves[0].id + ".summary }} joined"},
    )
    summary = await service.run()
    assert summary.ok
    for leaf in leaves:
        assert (await service.get_task(leaf.id)).metadata.result.summary.startswith("inproc://")
    assert (await service.get_task(join.id)).metadata.result.summary.endswith(" joined")


async def test_output_progress_and_steps_arrive_in_order(service, workdir):
    task = await service.create_task("report", "", **call("report", workdir))
    done = await service.start_task_execution(task.id)
    md = done.metadata
    assert md.status is TaskStatus.COMPLETED
    lines = [line for line in md.output if line.startswith("line ")]
    assert lines == [f"line {n}" for n in range(1, 51)]
    assert [(s.description, s.status.value, s.output) for s in md.steps] == [
        ("count to fifty", "completed", "counted")
    ]
    assert md.result.summary == "reported"


async def test_pause_and_resume_reach_a_provider_on_a_worker_within_half_a_second(service, workdir):
    task = await service.create_task("watch", "", **call("watch_control", workdir))
    service.start_task_execution(task.id)
    await output_has(service, task.id, "Calling dask_steps:watch_control", 10)
    await service.pause_task(task.id)
    assert await output_has(service, task.id, "saw pause", 2) <= 0.5
    await service.resume_task(task.id)
    done = await service.wait_for_task(task.id)
    assert done.metadata.status is TaskStatus.COMPLETED
    assert done.metadata.result.summary == "resumed"


async def test_cancel_reaches_a_provider_on_a_worker_within_half_a_second(service, workdir):
    task = await service.create_task("watch", "", **call("watch_control", workdir))
    service.start_task_execution(task.id)
    await output_has(service, task.id, "Calling dask_steps:watch_control", 10)
    started = time.monotonic()
    await service.cancel_task(task.id)
    with anyio.fail_after(2):
        while not (workdir / "cancel-seen").exists():
            await anyio.sleep(0.01)
    assert time.monotonic() - started <= 0.5
    assert (await service.wait_for_task(task.id)).metadata.status is TaskStatus.CANCELLED


@pytest.fixture
async def executor() -> AsyncIterator[DaskExecutor]:
    """An executor on an in-process cluster that sends calls made together as one batch."""
    executor = DaskExecutor(batch_size=100, linger=1.0)
    await executor.start()
    yield executor
    await executor.stop()


async def test_calls_made_together_run_as_one_dask_task_each_with_its_own_context(executor):
    calls = [batch_call("echo", f"t{i}", text=f"hello {i}") for i in range(20)]
    results = await asyncio.gather(*start_together(executor, calls))
    assert executor.batches_sent == 1
    assert [result.summary for result in results] == [f"hello {i}" for i in range(20)]
    assert [ctx.output for _, _, ctx in calls] == [[f"hello {i}"] for i in range(20)]
    assert [ctx.progress for _, _, ctx in calls] == [[100.0]] * 20


async def test_a_wide_run_sends_its_tasks_as_far_fewer_dask_tasks():
    executor = DaskExecutor()
    service = await start(executor, max_concurrency=50)
    try:
        ids = await service.create_tasks(
            {"name": f"t{i}", "provider_id": "echo", "params": {"text": str(i)}} for i in range(40)
        )
        assert (await service.run()).ok
        for number, task_id in enumerate(ids):
            assert (await service.get_task(task_id)).metadata.result.summary == str(number)
        # All 40 are released at once: one batch here; a few if they trickle in.
        assert executor.batches_sent <= 4
    finally:
        await service.stop()


async def test_a_failing_call_fails_alone_and_its_batch_mates_complete(executor, workdir):
    calls = [
        batch_call("echo", "first", text="one"),
        batch_call("python", "broken", function="dask_steps:boom", workdir=workdir),
        batch_call("no-such-provider", "lost"),
        batch_call("echo", "last", text="two"),
    ]
    outcomes = await asyncio.gather(*start_together(executor, calls), return_exceptions=True)
    assert executor.batches_sent == 1
    assert [outcomes[0].summary, outcomes[3].summary] == ["one", "two"]
    assert isinstance(outcomes[1], RuntimeError)
    assert str(outcomes[1]) == "boom from broken"
    assert isinstance(outcomes[2], ProviderError)
    assert str(outcomes[2]).startswith('Provider "no-such-provider" is not installed on Dask')


async def test_cancelling_one_batched_call_leaves_its_batch_mates_to_complete(executor, workdir):
    calls = [
        batch_call("python", "watched", function="dask_steps:watch_control", workdir=workdir),
        batch_call("echo", "mate-1", text="one", delay=0.5),
        batch_call("echo", "mate-2", text="two", delay=0.5),
    ]
    running = start_together(executor, calls)
    watched = calls[0][2]
    with anyio.fail_after(10):
        while not watched.output:
            await anyio.sleep(0.01)
    cancelled_at = time.time()
    watched.cancelled = True
    assert (await running[0]).summary == "stopped"
    assert float((workdir / "cancel-seen").read_text()) - cancelled_at <= 0.5
    assert [(await mate).summary for mate in running[1:]] == ["one", "two"]
    assert executor.batches_sent == 1


async def test_a_call_given_up_here_is_stopped_on_the_worker_and_its_batch_mate_completes(
    executor, workdir
):
    calls = [
        batch_call("python", "sleeper", function="dask_steps:sleepy", workdir=workdir),
        batch_call("echo", "mate", text="done", delay=0.5),
    ]
    running = start_together(executor, calls)
    with anyio.fail_after(10):
        while not calls[0][2].output:
            await anyio.sleep(0.01)
    running[0].cancel()  # as a timeout or the end of a cancel's grace period does
    with pytest.raises(asyncio.CancelledError):
        await running[0]
    with anyio.fail_after(2):
        while not (workdir / "sleeper-stopped").exists():
            await anyio.sleep(0.01)
    assert (await running[1]).summary == "done"
    assert executor.batches_sent == 1


async def test_a_provider_missing_on_the_worker_fails_naming_the_worker_and_its_origin():
    service = await start(providers=[FunctionProvider("in-code", succeed)])
    try:
        task = await service.create_task("t", "", provider_id="in-code")
        done = await service.start_task_execution(task.id)
        assert done.metadata.status is TaskStatus.FAILED
        assert done.metadata.error.startswith(
            'Provider "in-code" is not installed on Dask worker inproc://'
        )
        assert "module orchestrator.testing (given in code)" in done.metadata.error
    finally:
        await service.stop()


async def test_an_unreachable_scheduler_is_a_clear_error_and_starts_nothing():
    executor = DaskExecutor("tcp://127.0.0.1:9", connect_timeout=1)
    started = time.monotonic()
    with pytest.raises(ConfigurationError) as caught:
        await start(executor)
    assert str(caught.value).startswith("Cannot reach the Dask scheduler at tcp://127.0.0.1:9")
    assert time.monotonic() - started < 5
    assert executor.client is None


async def test_a_cluster_of_two_worker_processes_runs_a_fan_out_a_pause_a_cancel_and_survives_a_dying_worker(
    workdir,
):
    executor = DaskExecutor(processes=True, n_workers=2)
    service = await start(executor)
    try:
        leaves = [
            await service.create_task(f"leaf {i}", "", **call("where", workdir)) for i in range(6)
        ]
        watched = await service.create_task("watch", "", **call("watch_control", workdir))
        for task in [*leaves, watched]:
            service.start_task_execution(task.id)
        for leaf in leaves:
            done = await service.wait_for_task(leaf.id, timeout=60)
            assert done.metadata.result.summary.startswith("tcp://127.0.0.1:")
        await output_has(service, watched.id, "Calling dask_steps:watch_control", 30)
        await service.pause_task(watched.id)
        assert await output_has(service, watched.id, "saw pause", 5) <= 0.5
        await service.cancel_task(watched.id)
        with anyio.fail_after(5):
            while not (workdir / "cancel-seen").exists():
                await anyio.sleep(0.01)
        assert (
            await service.wait_for_task(watched.id, timeout=10)
        ).metadata.status is TaskStatus.CANCELLED
        # Made together: two workers, so two batches, the first two calls in the first.
        sent = executor.batches_sent
        calls = [
            batch_call("python", "locked", function="dask_steps:unserialisable", workdir=workdir),
            batch_call("python", "mate", function="dask_steps:where", workdir=workdir),
            batch_call("python", "other", function="dask_steps:where", workdir=workdir),
        ]
        outcomes = await asyncio.gather(*start_together(executor, calls), return_exceptions=True)
        assert executor.batches_sent - sent == 2
        assert isinstance(outcomes[0], ProviderError)
        assert "could not be serialized" in str(outcomes[0])
        assert [outcomes[1].summary[:16], outcomes[2].summary[:16]] == ["tcp://127.0.0.1:"] * 2
        # A call whose upstream results cannot be pickled fails alone; its batch still goes.
        calls = [
            batch_call("python", f"up-{i}", function="dask_steps:where", workdir=workdir)
            for i in range(3)
        ]
        calls[0][2].upstream_results = {"up": TaskResult(success=True, extra={"lock": Lock()})}
        outcomes = await asyncio.gather(*start_together(executor, calls), return_exceptions=True)
        assert isinstance(outcomes[0], ProviderError)
        assert str(outcomes[0]).startswith("Sending the call to Dask failed")
        assert [outcomes[1].summary[:16], outcomes[2].summary[:16]] == ["tcp://127.0.0.1:"] * 2
        calls = [
            batch_call("python", "dying", function="dask_steps:die", workdir=workdir),
            batch_call("python", "mate", function="dask_steps:sleepy", workdir=workdir),
            batch_call("python", "other", function="dask_steps:where", workdir=workdir),
        ]
        outcomes = await asyncio.gather(*start_together(executor, calls), return_exceptions=True)
        for outcome in outcomes[:2]:
            assert isinstance(outcome, ProviderError)
            assert str(outcome).startswith("The Dask worker running the task died")
        doomed = await service.create_task("doomed", "", **call("die", workdir))
        died = await service.start_task_execution(doomed.id)
        assert died.metadata.status is TaskStatus.FAILED
        assert died.metadata.error.startswith("The Dask worker running the task died")
        locked = await service.create_task("locked", "", **call("unserialisable", workdir))
        failed = await service.start_task_execution(locked.id)
        assert failed.metadata.status is TaskStatus.FAILED
        assert "serializ" in failed.metadata.error.lower()
    finally:
        await service.stop()


def test_the_command_runs_a_pipeline_on_the_dask_executor(tmp_path):
    from commands import run_dagorch

    pipeline = tmp_path / "p.toml"
    pipeline.write_text(
        '[pipeline]\nprovider = "echo"\nexecutor = "dask"\n\n'
        '[[tasks]]\nid = "a"\nparams = { text = "on a worker" }\n\n'
        '[[tasks]]\nid = "b"\ndepends_on = ["a"]\nparams = { text = "{{ tasks.a.summary }}!" }\n'
    )
    done = run_dagorch("run", str(pipeline), "--json")
    assert done.returncode == 0, done.stderr
    assert '"summary": "on a worker!"' in done.stdout
    unreachable = run_dagorch("run", str(pipeline), "--scheduler", "tcp://127.0.0.1:9")
    assert unreachable.returncode == 1
    assert "Cannot reach the Dask scheduler at tcp://127.0.0.1:9" in unreachable.stderr
