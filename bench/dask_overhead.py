"""The dask executor's own cost per provider call, without the orchestrator around it.

    python bench/dask_overhead.py                    # 5,000 calls, 100 at once, best of 3
    python bench/dask_overhead.py --batch-size 1     # every call a Dask task of its own

Calls ``DaskExecutor.execute`` directly on an in-process cluster with the builtin ``echo``
provider and a context that only records, at most ``--concurrency`` at once, and prints the CPU
time per call and the Dask tasks sent. The garbage collector is off while measuring, so the figure
is the executor's path (batching, Dask, the relay), not the collector's.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from typing import Any

from orchestrator import OrchestratedTask, TaskResult
from orchestrator._dask import DaskExecutor


class Echo:
    """Names the builtin ``echo`` provider, which the worker finds through its entry points."""

    id = "echo"


class Context:
    """A task context that keeps nothing and is never cancelled or paused."""

    def __init__(self, task: OrchestratedTask) -> None:
        self.task_id = task.id
        self.working_directory = ""
        self.runtime_agent_id = ""
        self.room_id = self.world_id = None
        self.attempt = 1
        self.upstream_results: dict[str, TaskResult] = {}

    async def append_output(self, text: str) -> None:
        pass

    async def update_progress(self, progress: float) -> None:
        pass

    async def add_step(self, description: str) -> str | None:
        return None

    async def update_step(self, step_id: str, status: Any, output: str | None = None) -> None:
        pass

    def is_cancelled(self) -> bool:
        return False

    def is_paused(self) -> bool:
        return False

    async def checkpoint(self) -> None:
        pass


async def measure(calls: int, concurrency: int, batch_size: int) -> tuple[float, int]:
    """CPU seconds per call, and the Dask tasks sent, for ``calls`` calls."""
    task = OrchestratedTask.model_validate({"id": "t", "name": "t", "metadata": {"params": {}}})
    executor = DaskExecutor(threads_per_worker=concurrency, batch_size=batch_size)
    await executor.start()
    try:
        await executor.execute(Echo(), task, Context(task))  # the worker loads its providers
        sent = executor.batches_sent
        slots = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with slots:
                await executor.execute(Echo(), task, Context(task))

        gc.collect()
        gc.disable()
        started = time.process_time()
        await asyncio.gather(*(one() for _ in range(calls)))
        spent = time.process_time() - started
        gc.enable()
        return spent / calls, executor.batches_sent - sent
    finally:
        gc.enable()
        await executor.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs = [
        asyncio.run(measure(args.calls, args.concurrency, args.batch_size))
        for _ in range(args.repeat)
    ]
    best, batches = min(runs)
    print(
        f"{best * 1e6:.0f} µs of CPU per call (best of {args.repeat}), {args.calls:,} calls, "
        f"{args.concurrency} at once, batch_size {args.batch_size}: {batches} Dask tasks"
    )


if __name__ == "__main__":
    main()
