"""A small fan-out / fan-in agent pipeline on dagorch, with no network and no model.

plan -> three research steps in parallel -> merge -> review. Each "agent" is a tiny provider
defined here; the review task is paused while it runs and resumed, and one optional task is
cancelled, to show control reaching providers. State is kept in a fresh SQLite file (the
embedded default store) whose path is printed. Run it with ``python examples/hello_dag.py``.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from orchestrator import (
    AgentOrchestratorPluginOptions,
    AgentOrchestratorService,
    OrchestratedTask,
    ProviderTaskExecutionContext,
    SqliteStore,
    TaskEvent,
    TaskEventType,
    TaskResult,
)


class Planner:
    """Splits the goal into topics."""

    id = "planner"
    label = "Planner"
    description = "Breaks a goal into research topics"

    async def execute_task(
        self, task: OrchestratedTask, ctx: ProviderTaskExecutionContext
    ) -> TaskResult:
        topics = task.metadata.params["topics"]
        await ctx.append_output(f"Plan: research {', '.join(topics)}")
        return TaskResult(success=True, summary=";".join(topics))


class Researcher:
    """Writes one note about its topic, step by step, obeying pause and cancel."""

    id = "researcher"
    label = "Researcher"
    description = "Researches one topic"

    async def execute_task(
        self, task: OrchestratedTask, ctx: ProviderTaskExecutionContext
    ) -> TaskResult:
        topic = task.metadata.params["topic"]
        for percent in (25, 50, 75, 100):
            await ctx.checkpoint()  # waits here while paused, raises once cancelled
            await asyncio.sleep(0.02)
            await ctx.update_progress(percent)
        await ctx.append_output(f"{topic}: found {len(topic)} facts")
        return TaskResult(success=True, summary=f"{topic}={len(topic)}")


class Merger:
    """Combines whatever its upstream tasks produced."""

    id = "merger"
    label = "Merger"
    description = "Merges upstream results"

    async def execute_task(
        self, task: OrchestratedTask, ctx: ProviderTaskExecutionContext
    ) -> TaskResult:
        await ctx.checkpoint()
        parts = sorted(result.summary for result in ctx.upstream_results.values())
        await ctx.append_output("Merged: " + ", ".join(parts))
        return TaskResult(success=True, summary=" | ".join(parts))


async def main() -> int:
    options = AgentOrchestratorPluginOptions(
        providers=[Planner(), Researcher(), Merger()], default_provider_id="researcher"
    )
    store = SqliteStore(Path(tempfile.mkdtemp(prefix="dagorch-hello-")) / "hello.db")
    async with await AgentOrchestratorService.start(options=options, store=store) as service:
        names: dict[str, str] = {}

        def show(event: TaskEvent) -> None:
            if event.type is TaskEventType.CREATED:
                names[event.task_id] = event.data["name"] if event.data else event.task_id
            elif (
                event.type is not TaskEventType.OUTPUT and event.type is not TaskEventType.PROGRESS
            ):
                print(f"  {event.type.value:<15} {names[event.task_id]}")

        service.on("task", show)
        topics = ["dags", "agents", "queues"]
        plan = await service.create_task(
            "plan", "Plan the report", provider_id="planner", params={"topics": topics}
        )
        research = [
            await service.create_task(
                f"research {topic}",
                f"Research {topic}",
                depends_on=[plan.id],
                params={"topic": topic},
            )
            for topic in topics
        ]
        optional = await service.create_task(
            "research extras",
            "Optional extra research",
            depends_on=[plan.id],
            params={"topic": "extras"},
        )
        merge = await service.create_task(
            "merge",
            "Merge the notes",
            provider_id="merger",
            depends_on=[task.id for task in research],
        )
        await service.create_task(
            "review", "Review the report", provider_id="merger", depends_on=[merge.id, optional.id]
        )

        print("Running the pipeline:")
        run = asyncio.create_task(service.run())
        await service.cancel_task(optional.id)  # its dependent "review" is cancelled with it
        await service.pause_task(research[0].id)
        await asyncio.sleep(0.05)
        await service.resume_task(research[0].id)
        summary = await run

        print("\nFinal states:")
        for task_id, status in summary.statuses.items():
            task = await service.get_task(task_id)
            assert task is not None
            note = f"  ({task.metadata.error})" if task.metadata.error else ""
            print(f"  {task.name:<18} {status.value}{note}")
        merged = await service.get_task(merge.id)
        assert merged is not None and merged.metadata.result is not None
        print(f"\nMerged result: {merged.metadata.result.summary}")
        print(f"State kept in {store.path}")
        return 0 if merged.metadata.status.value == "completed" else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
