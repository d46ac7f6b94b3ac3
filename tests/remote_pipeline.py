"""An orchestrator that owns a store file while a test controls it from outside.

``python remote_pipeline.py DB RELEASE``: creates tasks a, b, c (after b) and d, runs them; each
task works in small steps, obeying pause and cancel, until the file RELEASE exists.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from orchestrator import (
    AgentOrchestratorPluginOptions,
    AgentOrchestratorService,
    SqliteStore,
    TaskResult,
)
from orchestrator.testing import FunctionProvider


async def main(db: str, release: str) -> int:
    async def work(task, ctx) -> TaskResult:
        steps = 0
        while not Path(release).exists():
            await ctx.checkpoint()
            await asyncio.sleep(0.01)
            steps += 1
            if steps % 20 == 0:
                await ctx.append_output(f"{task.id} step {steps}")
        await ctx.append_output(f"{task.id} released")
        return TaskResult(success=True, summary=task.id)

    options = AgentOrchestratorPluginOptions(
        providers=[FunctionProvider("work", work)], cancel_grace_period=0.1
    )
    service = await AgentOrchestratorService.start(options=options, store=SqliteStore(db))
    for name, deps in [("a", []), ("b", []), ("c", ["b"]), ("d", [])]:
        await service.create_task(name, name, task_id=name, depends_on=deps)
    summary = await service.run()
    await service.stop()
    print(",".join(f"{k}={v.value}" for k, v in summary.statuses.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(sys.argv[1], sys.argv[2])))
