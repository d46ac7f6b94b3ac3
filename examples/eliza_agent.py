"""An ElizaOS agent that runs a small multi-step pipeline from chat messages, offline.

The real ``elizaos`` runtime handles each message: it composes the agent's state (with the
TASK_CONTEXT provider), asks the model which action to take, and dispatches it to the
orchestrator's actions. The model here is scripted (it picks the action whose ``validate``
accepts the message), so the example needs no network and no API key. Tasks run on the builtin
``echo`` provider.

    pip install -e ".[eliza]" && python examples/eliza_agent.py
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import uuid
from typing import Any

import structlog
from elizaos import AgentRuntime, Character
from elizaos.types import Content, Memory, Plugin

from orchestrator.eliza import (
    AgentOrchestratorPluginOptions,
    AgentOrchestratorService,
    configure_agent_orchestrator_plugin,
    plugin,
)

CHAT = [
    "Create task: draft the outline",
    "Create task: write the chapters after the outline task",
    "Create task: proofread after the chapters task",
    "list my tasks",
]


class ScriptedModel:
    """Chooses the first orchestrator action that accepts the user's message, like a model
    reading the action list would; REPLY otherwise."""

    def __init__(self) -> None:
        self.runtime: Any = None
        self.message: Memory | None = None

    async def __call__(self, runtime: Any, params: dict[str, Any]) -> str:
        chosen = "REPLY"
        for action in plugin.actions:
            if await action.validate(runtime, self.message, None):
                chosen = action.name
                break
        return (
            f"<response><thought>The user wants {chosen}</thought><actions>{chosen}</actions>"
            "<text>On it.</text><simple>false</simple></response>"
        )


async def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    folder = tempfile.TemporaryDirectory(prefix="dagorch-eliza-")
    configure_agent_orchestrator_plugin(
        AgentOrchestratorPluginOptions(
            default_provider_id="echo", store_path=f"{folder.name}/agent.db"
        )
    )
    model = ScriptedModel()
    runtime = AgentRuntime(
        character=Character(name="Planner", bio=["Plans work as a graph of tasks"]),
        plugins=[
            Plugin(name="scripted-model", description="offline", models={"TEXT_LARGE": model}),
            plugin,
        ],
        check_should_respond=False,
        settings={"VALIDATION_LEVEL": "trusted"},
    )
    await runtime.initialize()
    service = runtime.get_service("CODE_TASK")
    assert isinstance(service, AgentOrchestratorService)
    room = str(uuid.uuid4())

    async def show(content: Content) -> list[Memory]:
        print(f"agent> {content.text}\n")
        return []

    try:
        for text in CHAT:
            if text == "list my tasks":
                await service.run()  # let the pipeline finish before asking for the list
            print(f"user> {text}")
            model.message = Memory(
                id=str(uuid.uuid4()),
                entity_id=str(uuid.uuid4()),
                room_id=room,
                content=Content(text=text),
            )
            await runtime.message_service.handle_message(runtime, model.message, show)
    finally:
        await runtime.stop()
        folder.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
