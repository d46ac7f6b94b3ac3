"""The ElizaOS plugin on the real ``elizaos`` runtime (2.0.0a5), offline.

Each test builds its own ``AgentRuntime`` (a new agent name, so a new agent id and store file in
the test's own ``DAGORCH_HOME``), registers the plugin and drives it the way the runtime does:
``compose_state``, ``process_actions`` and the whole ``message_service.handle_message`` loop with a
scripted model standing in for the remote LLM.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog
from elizaos import AgentRuntime, Character
from elizaos.types import Content, Memory, Plugin

from orchestrator import TaskStatus
from orchestrator.eliza import (
    AgentOrchestratorPluginOptions,
    AgentOrchestratorService,
    configure_agent_orchestrator_plugin,
    create_task_action,
    get_task_context,
    list_tasks_action,
    plugin,
)

structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


class ScriptedModel:
    """Stands in for the remote model: answers each prompt with the next scripted action."""

    def __init__(self) -> None:
        self.replies: list[tuple[str, str, dict[str, Any] | None]] = []
        self.prompts: list[str] = []

    def say(self, action: str, text: str, params: dict[str, Any] | None = None) -> None:
        self.replies.append((action, text, params))

    async def __call__(self, runtime: Any, params: dict[str, Any]) -> str:
        self.prompts.append(str(params.get("prompt", "")))
        action, text, action_params = self.replies.pop(0)
        xml = f"<response><thought>scripted</thought><actions>{action}</actions><text>{text}</text>"
        if action_params is not None:
            xml += f"<params>{json.dumps({action: action_params})}</params>"
        return xml + "<simple>false</simple></response>"

    def plugin(self) -> Plugin:
        return Plugin(
            name="scripted-model",
            description="A scripted offline model",
            models={"TEXT_LARGE": self, "TEXT_SMALL": self},
        )


@pytest.fixture
async def runtime_factory() -> AsyncIterator[Any]:
    made: list[AgentRuntime] = []

    async def make(*extra: Plugin, **options: Any) -> AgentRuntime:
        configure_agent_orchestrator_plugin(
            AgentOrchestratorPluginOptions(default_provider_id="echo", **options)
        )
        runtime = AgentRuntime(
            character=Character(name=f"Orch-{uuid.uuid4().hex[:8]}", bio=["orchestrates"]),
            plugins=[*extra, plugin],
            check_should_respond=False,
            settings={"VALIDATION_LEVEL": "trusted"},
        )
        await runtime.initialize()
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        await runtime.stop()


def user_message(text: str, room: str | None = None) -> Memory:
    return Memory(
        id=str(uuid.uuid4()),
        entity_id=str(uuid.uuid4()),
        room_id=room or str(uuid.uuid4()),
        content=Content(text=text),
    )


def service_of(runtime: AgentRuntime) -> AgentOrchestratorService:
    service = runtime.get_service("CODE_TASK")
    assert isinstance(service, AgentOrchestratorService)
    return service


class Replies:
    """A runtime callback: receives a ``Content`` and returns the memories it made (none)."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    async def __call__(self, content: Content) -> list[Memory]:
        assert isinstance(content, Content)
        self.texts.append(content.text)
        return []


# -- registration ---------------------------------------------------------------------------


def test_the_plugin_is_a_real_elizaos_plugin():
    assert isinstance(plugin, Plugin)
    assert plugin.name == "agent-orchestrator"
    assert [a.name for a in plugin.actions] == [
        "CREATE_TASK",
        "LIST_TASKS",
        "SWITCH_TASK",
        "SEARCH_TASKS",
        "PAUSE_TASK",
        "RESUME_TASK",
        "CANCEL_TASK",
    ]
    assert [p.name for p in plugin.providers] == ["TASK_CONTEXT"]


async def test_a_runtime_with_the_plugin_initialises_and_serves_code_task(runtime_factory):
    runtime = await runtime_factory()
    service = service_of(runtime)
    assert service.runtime is runtime
    assert {"echo", "python", "shell"} <= set(service.provider_ids)


async def test_register_plugin_after_initialise_works_as_the_readme_shows(tmp_path):
    configure_agent_orchestrator_plugin(AgentOrchestratorPluginOptions(default_provider_id="echo"))
    runtime = AgentRuntime(character=Character(name=f"Late-{uuid.uuid4().hex[:6]}", bio=["x"]))
    await runtime.initialize()
    await runtime.register_plugin(plugin)
    try:
        assert isinstance(runtime.get_service("CODE_TASK"), AgentOrchestratorService)
    finally:
        await runtime.stop()


async def test_each_runtime_keeps_its_own_store_file(runtime_factory, tmp_path):
    first = service_of(await runtime_factory())
    second = service_of(await runtime_factory())
    assert first.store.path != second.store.path  # type: ignore[attr-defined]


async def test_the_store_location_is_part_of_the_options(runtime_factory, tmp_path):
    service = service_of(await runtime_factory(store_path=str(tmp_path / "chosen.db")))
    assert str(service.store.path) == str(tmp_path / "chosen.db")  # type: ignore[attr-defined]


# -- compose_state and the provider ---------------------------------------------------------


async def test_compose_state_succeeds_and_contains_the_task_context(runtime_factory):
    runtime = await runtime_factory()
    service = service_of(runtime)
    await service.create_task("Write docs", "Document the API", provider_id="echo")
    state = await runtime.compose_state(user_message("hello"))
    assert "# Task Context" in state.text
    assert "## Current Task (selected): Write docs" in state.text


async def test_task_context_returns_the_reference_values_and_data(runtime_factory):
    runtime = await runtime_factory()
    service = service_of(runtime)
    task = await service.create_task("Write docs", "Document the API")
    result = await get_task_context(runtime, user_message("x"), None)
    assert result.text == "# Task Context\n\n" + await service.get_task_context()
    assert result.values["currentTaskName"] == "Write docs"
    assert result.values["currentTaskStatus"] == "pending"
    assert result.data["taskCount"] == 1
    assert result.data["currentTaskId"] == task.id


async def test_task_context_without_the_service_says_so():
    class NoServices:
        def get_service(self, name: str) -> None:
            return None

    result = await get_task_context(NoServices(), None, None)
    assert result.text == "# Task Context\n\nTask orchestrator service is not available"
    assert result.values["currentTaskName"] == "N/A"
    assert result.data["taskCount"] == 0


# -- actions through process_actions ----------------------------------------------------------


async def test_create_task_through_process_actions_runs_on_a_registry_provider(runtime_factory):
    runtime = await runtime_factory()
    message = user_message("create task: write the release notes")
    response = Memory(
        entity_id=str(runtime.agent_id),
        room_id=message.room_id,
        content=Content(text="on it", actions=["CREATE_TASK"]),
    )
    replies = Replies()
    await runtime.process_actions(message, [response], None, replies)
    assert replies.texts == [
        "Created task: create task: write the release notes\nProvider: Echo\nStarting execution…"
    ]
    (result,) = runtime.get_action_results(message.id)
    assert result.success
    task_id = result.data["taskId"]
    done = await service_of(runtime).wait_for_task(task_id)
    assert done.metadata.status is TaskStatus.COMPLETED
    assert done.metadata.output[-1] == "create task: write the release notes"
    assert done.room_id == message.room_id


async def test_a_request_naming_a_dependency_creates_an_edge(runtime_factory):
    runtime = await runtime_factory()
    service = service_of(runtime)
    login = await service.create_task("login", "Build the login page")
    message = user_message("create a deploy task after the login task")
    response = Memory(
        entity_id=str(runtime.agent_id),
        room_id=message.room_id,
        content=Content(text="ok", actions=["CREATE_TASK"]),
    )
    await runtime.process_actions(message, [response], None, Replies())
    (result,) = runtime.get_action_results(message.id)
    assert service.get_dependencies(result.data["taskId"]) == [login.id]


async def test_validate_takes_the_runtimes_three_arguments_and_the_references_two(runtime_factory):
    runtime = await runtime_factory()
    message = user_message("list my tasks")
    assert await list_tasks_action.validate(runtime, message, None)
    assert await list_tasks_action.validate(runtime, message)
    assert not await create_task_action.validate(runtime, user_message("what is the address?"))


async def test_validate_is_false_when_the_service_is_missing():
    class NoServices:
        def get_service(self, name: str) -> None:
            return None

    assert not await create_task_action.validate(NoServices(), user_message("create task: x"))


async def test_the_references_five_argument_call_with_dict_options_still_works(runtime_factory):
    runtime = await runtime_factory()
    replies = Replies()
    result = await create_task_action.handler(
        runtime,
        user_message("do it"),
        None,
        {"title": "Ship", "steps": ["build", "", "tag"]},
        replies,
    )
    assert result.success
    task = await service_of(runtime).get_task(result.data["taskId"])
    assert task.name == "Ship"
    assert [s.description for s in task.metadata.steps] == ["build", "tag"]


async def test_the_references_two_argument_call_still_works(runtime_factory):
    runtime = await runtime_factory()
    result = await list_tasks_action.handler(runtime, user_message("list tasks"))
    assert result.success
    assert result.text == "No tasks."


async def test_bad_input_gets_a_clear_reply_and_changes_nothing(runtime_factory):
    runtime = await runtime_factory()
    service = service_of(runtime)
    result = await create_task_action.handler(
        runtime,
        user_message("create task: deploy"),
        None,
        {"dependsOn": ["nothing like it"]},
    )
    assert not result.success
    assert (
        result.text == 'No task found matching "nothing like it" to wait for; nothing was created.'
    )
    assert await service.get_tasks() == []


# -- the whole message loop -------------------------------------------------------------------


async def test_the_message_loop_picks_create_task_then_list_tasks(runtime_factory):
    model = ScriptedModel()
    runtime = await runtime_factory(model.plugin())
    room = str(uuid.uuid4())
    replies = Replies()

    model.say("CREATE_TASK", "Creating it")
    await runtime.message_service.handle_message(
        runtime, user_message("Create task: write the changelog", room), replies
    )
    assert replies.texts[-1].startswith("Created task: Create task: write the changelog")
    service = service_of(runtime)
    (task,) = await service.get_tasks()
    await service.wait_for_task(task.id)

    model.say("LIST_TASKS", "Here they are")
    await runtime.message_service.handle_message(
        runtime, user_message("list my tasks", room), replies
    )
    assert replies.texts[-1] == (
        "Tasks:\n- Create task: write the changelog — completed 100% (current)"
    )
    assert "CREATE_TASK" in model.prompts[0]


async def test_structured_parameters_from_the_model_reach_the_handler(runtime_factory):
    model = ScriptedModel()
    runtime = await runtime_factory(model.plugin())
    service = service_of(runtime)
    login = await service.create_task("login", "Build the login page", provider_id="echo")
    model.say("CREATE_TASK", "Planning", {"title": "Deploy", "dependsOn": "login"})
    replies = Replies()
    await runtime.message_service.handle_message(runtime, user_message("ship it"), replies)
    assert replies.texts[-1].splitlines()[:3] == [
        "Created task: Deploy",
        "Provider: Echo",
        "Waits on: login",
    ]
    deploy = next(t for t in await service.get_tasks() if t.name == "Deploy")
    assert service.get_dependencies(deploy.id) == [login.id]


def test_without_elizaos_the_core_works_and_the_adapter_names_the_extra():
    script = (
        "import sys\n"
        "sys.modules['elizaos'] = None\n"  # as if it were not installed
        "import orchestrator\n"
        "orchestrator.AgentOrchestratorService\n"
        "try:\n"
        "    import orchestrator.eliza\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'dagorch[eliza]'" in done.stdout
