"""A pipeline that a test kills with SIGKILL and restarts: ``python crash_pipeline.py DB LOG N``.

On first start it creates N tasks in layers (each depends on up to two tasks of the layer before);
on every start it runs whatever is unfinished. Each task, when it runs, appends "ran <id>" to LOG
and adds an output line, so the test can tell which tasks ran after a kill.
"""

from __future__ import annotations

import asyncio
import os
import sys

from orchestrator import (
    AgentOrchestratorPluginOptions,
    AgentOrchestratorService,
    OrchestratedTask,
    SqliteStore,
    TaskResult,
)
from orchestrator.testing import FunctionProvider


async def main(db: str, log: str, count: int) -> int:
    descriptor = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    async def work(task: OrchestratedTask, ctx) -> TaskResult:
        os.write(descriptor, f"ran {task.id}\n".encode())
        await asyncio.sleep(0.002)
        await ctx.append_output(f"work of {task.id}")
        return TaskResult(success=True, summary=task.id)

    options = AgentOrchestratorPluginOptions(
        providers=[FunctionProvider("work", work)], default_provider_id="work", max_concurrency=8
    )
    service = await AgentOrchestratorService.start(options=options, store=SqliteStore(db))
    if not await service.get_tasks():
        for i in range(count):
            layer, place = divmod(i, 20)
            deps = [f"t{(layer - 1) * 20 + (place + k) % 20}" for k in (0, 7)] if layer else []
            await service.create_task(
                f"t{i}", f"task {i}", task_id=f"t{i}", depends_on=deps, retries=20
            )
    summary = await service.run()
    await service.stop()
    return 0 if summary.ok else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
