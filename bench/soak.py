"""Load and soak: many tasks at once while controllers pause, resume and cancel them at random.

    python bench/soak.py                        # 1,000 tasks, 10 controllers, 60 s
    python bench/soak.py --tasks 200 --seconds 5 --store sqlite

Every task's provider writes ``LINES`` numbered output lines, stopping at checkpoints, so a paused
task holds and a cancelled one ends. When a task finishes its controllers leave it alone; new
tasks replace finished ones until time is up. At the end every paused task is resumed and the run
drains. The soak fails (exit 1) if a watchdog sees no event for ``--stall`` seconds (it prints a
dump of the unfinished tasks), if a completed task is missing any of its lines (a lost update), if
a task is not terminal at the end, or if memory grew more than ``--memory-mb`` from the first to
the last quarter of the run.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

LINES = 20


def rss_mb() -> float:
    """The current resident set size in MB (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def soak(
    tasks: int, controllers: int, seconds: float, store_kind: str = "memory", stall: float = 10.0
) -> dict[str, Any]:
    """Run the soak; returns its figures and the problems found (empty when all is well)."""
    from orchestrator import (
        AgentOrchestratorPluginOptions,
        AgentOrchestratorService,
        DagorchError,
        MemoryStore,
        SqliteStore,
        TaskResult,
        TaskStatus,
    )
    from orchestrator.testing import FunctionProvider

    async def work(task: Any, ctx: Any) -> Any:
        for number in range(LINES):
            await ctx.checkpoint()
            await ctx.append_output(f"{task.id} line {number}")
            await anyio.sleep(random.uniform(0, 0.01))
        return TaskResult(success=True, summary=task.id)

    folder = tempfile.TemporaryDirectory(prefix="dagorch-soak-")
    store = SqliteStore(Path(folder.name) / "soak.db") if store_kind == "sqlite" else MemoryStore()
    options = AgentOrchestratorPluginOptions(
        providers=[FunctionProvider("work", work)],
        default_provider_id="work",
        discover_plugins=False,
        max_concurrency=tasks,
        cancel_grace_period=0.2,
    )
    service = await AgentOrchestratorService.start(options=options, store=store)
    last_event = time.monotonic()
    problems: list[str] = []
    memory: list[float] = []
    created: list[str] = []

    def on_event(event: Any) -> None:
        nonlocal last_event
        last_event = time.monotonic()

    service.on("task", on_event)
    deadline = time.monotonic() + seconds

    async def make_task() -> None:
        task = await service.create_task("soak", "")
        created.append(task.id)
        service.start_task_execution(task.id)

    async def controller(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            task_id = rng.choice(created)
            action = rng.choice(["pause", "resume", "resume", "cancel"])
            try:
                await getattr(service, f"{action}_task")(task_id)
                if action == "resume":
                    service.start_task_execution(task_id)
            except DagorchError:
                pass
            await anyio.sleep(rng.uniform(0, 0.005))

    async def refill() -> None:
        while time.monotonic() < deadline:
            running = sum(1 for t in await service.get_tasks_by_status(TaskStatus.RUNNING))
            for _ in range(max(0, tasks - running) // 10):
                await make_task()
            memory.append(rss_mb())
            await anyio.sleep(0.2)

    async def watchdog(scope: anyio.CancelScope) -> None:
        while True:
            await anyio.sleep(0.5)
            if time.monotonic() - last_event > stall:
                unfinished = [
                    f"{t.id} {t.metadata.status.value} attempts={t.metadata.attempts}"
                    for t in await service.get_tasks()
                    if not t.metadata.status.is_terminal
                ]
                problems.append(f"no event for {stall:g}s; unfinished: {unfinished[:20]}")
                scope.cancel()
                return

    try:
        for _ in range(tasks):
            await make_task()
        async with anyio.create_task_group() as group:
            group.start_soon(watchdog, group.cancel_scope)
            async with anyio.create_task_group() as workers:
                workers.start_soon(refill)
                for seed in range(controllers):
                    workers.start_soon(controller, seed)
            for task in await service.get_tasks_by_status(TaskStatus.PAUSED):
                try:
                    await service.resume_task(task.id)
                    service.start_task_execution(task.id)
                except DagorchError:
                    pass
            await service.run()
            group.cancel_scope.cancel()
        final = await service.get_tasks()
        for task in final:
            md = task.metadata
            if not md.status.is_terminal:
                problems.append(f"{task.id} ended {md.status.value}")
            if md.status is TaskStatus.COMPLETED:
                lines = [line for line in md.output if line.startswith(task.id)]
                expected = [f"{task.id} line {n}" for n in range(LINES)]
                if lines[-LINES:] != expected:
                    problems.append(f"{task.id} lost output: {len(lines)} lines")
        quarter = max(1, len(memory) // 4)
        growth = (
            sum(memory[-quarter:]) / quarter - sum(memory[:quarter]) / quarter if memory else 0.0
        )
        counts: dict[str, int] = {}
        for task in final:
            counts[task.metadata.status.value] = counts.get(task.metadata.status.value, 0) + 1
    finally:
        await service.stop()
        folder.cleanup()
    return {
        "tasks": len(created),
        "counts": counts,
        "memory_growth_mb": round(growth, 1),
        "peak_rss_mb": round(max(memory, default=0.0), 1),
        "problems": problems,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000)
    parser.add_argument("--controllers", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--store", choices=("memory", "sqlite"), default="sqlite")
    parser.add_argument("--stall", type=float, default=10)
    parser.add_argument("--memory-mb", type=float, default=100)
    args = parser.parse_args()
    result = anyio.run(soak, args.tasks, args.controllers, args.seconds, args.store, args.stall)
    print(result)
    if result["memory_growth_mb"] > args.memory_mb:
        result["problems"].append(f"memory grew {result['memory_growth_mb']} MB")
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
