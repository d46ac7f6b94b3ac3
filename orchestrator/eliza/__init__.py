"""dagorch as an ElizaOS plugin: the only place that imports ``elizaos``.

It keeps the reference plugin's names, so moving over is one changed import line (plus the
``await`` the real ``register_plugin`` needs)::

    from orchestrator.eliza import (
        AgentOrchestratorPluginOptions,
        configure_agent_orchestrator_plugin,
        plugin,
    )

    configure_agent_orchestrator_plugin(
        AgentOrchestratorPluginOptions(providers=[MyProvider()], default_provider_id="my-agent")
    )
    await runtime.register_plugin(plugin)

``plugin`` is a real ``elizaos.types.Plugin``: the ``CODE_TASK`` service, the seven actions and
the ``TASK_CONTEXT`` provider. Install with ``pip install 'dagorch[eliza]'``.
"""

try:
    import elizaos  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "orchestrator.eliza needs the ElizaOS runtime: pip install 'dagorch[eliza]' "
        "(elizaos==2.0.0a5)"
    ) from exc

from elizaos.types import Plugin as _Plugin

from hookspecs import (
    AgentProvider,
    AgentProviderId,
    JsonValue,
    OrchestratedTask,
    OrchestratedTaskMetadata,
    ProviderTaskExecutionContext,
    TaskEvent,
    TaskEventType,
    TaskResult,
    TaskStatus,
    TaskStep,
    TaskUserStatus,
)
from orchestrator.config import (
    AgentOrchestratorPluginOptions,
    configure_agent_orchestrator_plugin,
    get_configured_options,
    reset_configuration,
)
from orchestrator.eliza._actions import (
    cancel_task_action,
    create_task_action,
    get_task_context,
    list_tasks_action,
    pause_task_action,
    resume_task_action,
    search_tasks_action,
    switch_task_action,
    task_context_provider,
)
from orchestrator.eliza._service import AgentOrchestratorService

plugin = _Plugin(
    name="agent-orchestrator",
    description="Orchestrates tasks across registered agent providers",
    services=[AgentOrchestratorService],
    actions=[
        create_task_action,
        list_tasks_action,
        switch_task_action,
        search_tasks_action,
        pause_task_action,
        resume_task_action,
        cancel_task_action,
    ],
    providers=[task_context_provider],
)
"""The ElizaOS plugin: register it with ``await runtime.register_plugin(plugin)`` or pass it in
``AgentRuntime(plugins=[...])``."""

__all__ = [
    "AgentOrchestratorPluginOptions",
    "AgentOrchestratorService",
    "AgentProvider",
    "AgentProviderId",
    "JsonValue",
    "OrchestratedTask",
    "OrchestratedTaskMetadata",
    "ProviderTaskExecutionContext",
    "TaskEvent",
    "TaskEventType",
    "TaskResult",
    "TaskStatus",
    "TaskStep",
    "TaskUserStatus",
    "cancel_task_action",
    "configure_agent_orchestrator_plugin",
    "create_task_action",
    "get_configured_options",
    "get_task_context",
    "list_tasks_action",
    "pause_task_action",
    "plugin",
    "reset_configuration",
    "resume_task_action",
    "search_tasks_action",
    "switch_task_action",
    "task_context_provider",
]
