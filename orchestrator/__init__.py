"""dagorch: a workflow-DAG orchestrator for multi-step agent pipelines.

It keeps the public names of the ElizaOS agent-orchestrator plugin, so moving over means changing
one import line::

    from orchestrator import AgentOrchestratorService, TaskResult

    service = await AgentOrchestratorService.start(options=AgentOrchestratorPluginOptions(
        providers=[MyProvider()], default_provider_id="my-agent"))
    plan = await service.create_task("plan", "Plan the work")
    build = await service.create_task("build", "Build it", depends_on=[plan.id])
    summary = await service.run()

Names are imported on first use, so ``import orchestrator`` stays cheap and a command that only
lists plugins never loads networkx.
"""

import typing

from hookspecs._lazy import lazy_exports as _lazy_exports

if typing.TYPE_CHECKING:
    from hookspecs import (
        AgentProvider,
        AgentProviderId,
        JsonValue,
        OrchestratedTask,
        OrchestratedTaskMetadata,
        ProviderError,
        ProviderTaskExecutionContext,
        TaskEvent,
        TaskEventType,
        TaskResult,
        TaskStatus,
        TaskStep,
        TaskUserStatus,
    )
    from orchestrator._handle import (
        ExecutionHandle,
    )
    from orchestrator.config import (
        AgentOrchestratorPluginOptions,
        configure_agent_orchestrator_plugin,
        get_configured_options,
        reset_configuration,
    )
    from orchestrator.errors import (
        ConfigurationError,
        CycleError,
        DagorchError,
        DependencyError,
        DependentsExistError,
        DuplicateProviderError,
        DuplicateTaskError,
        IllegalTransitionError,
        InvalidProviderError,
        InvalidTaskError,
        PluginError,
        RemoteControlError,
        StepNotFoundError,
        StoreError,
        TaskCancelledError,
        TaskInterruptedError,
        TaskNotFoundError,
        UnknownDependencyError,
        UnknownProviderError,
    )
    from orchestrator.events import (
        EventFollower,
        EventStream,
    )
    from orchestrator.lifecycle import (
        TRANSITIONS,
        Trigger,
    )
    from orchestrator.plugins import (
        PluginHost,
        PluginRecord,
    )
    from orchestrator.remote import (
        RemoteControl,
    )
    from orchestrator.service import (
        AgentOrchestratorService,
    )
    from orchestrator.store import (
        MemoryStore,
        SqliteStore,
        Store,
    )
    from orchestrator.views import (
        RunSummary,
    )

_HOMES = {
    "AgentOrchestratorPluginOptions": "orchestrator.config",
    "AgentOrchestratorService": "orchestrator.service",
    "AgentProvider": "hookspecs",
    "AgentProviderId": "hookspecs",
    "ConfigurationError": "orchestrator.errors",
    "CycleError": "orchestrator.errors",
    "DagorchError": "orchestrator.errors",
    "DependencyError": "orchestrator.errors",
    "DependentsExistError": "orchestrator.errors",
    "DuplicateProviderError": "orchestrator.errors",
    "DuplicateTaskError": "orchestrator.errors",
    "EventFollower": "orchestrator.events",
    "EventStream": "orchestrator.events",
    "ExecutionHandle": "orchestrator._handle",
    "IllegalTransitionError": "orchestrator.errors",
    "InvalidProviderError": "orchestrator.errors",
    "InvalidTaskError": "orchestrator.errors",
    "JsonValue": "hookspecs",
    "MemoryStore": "orchestrator.store",
    "OrchestratedTask": "hookspecs",
    "OrchestratedTaskMetadata": "hookspecs",
    "PluginError": "orchestrator.errors",
    "PluginHost": "orchestrator.plugins",
    "PluginRecord": "orchestrator.plugins",
    "ProviderError": "hookspecs",
    "ProviderTaskExecutionContext": "hookspecs",
    "RemoteControl": "orchestrator.remote",
    "RemoteControlError": "orchestrator.errors",
    "RunSummary": "orchestrator.views",
    "SqliteStore": "orchestrator.store",
    "StepNotFoundError": "orchestrator.errors",
    "Store": "orchestrator.store",
    "StoreError": "orchestrator.errors",
    "TRANSITIONS": "orchestrator.lifecycle",
    "TaskCancelledError": "orchestrator.errors",
    "TaskInterruptedError": "orchestrator.errors",
    "TaskEvent": "hookspecs",
    "TaskEventType": "hookspecs",
    "TaskNotFoundError": "orchestrator.errors",
    "TaskResult": "hookspecs",
    "TaskStatus": "hookspecs",
    "TaskStep": "hookspecs",
    "TaskUserStatus": "hookspecs",
    "Trigger": "orchestrator.lifecycle",
    "UnknownDependencyError": "orchestrator.errors",
    "UnknownProviderError": "orchestrator.errors",
    "configure_agent_orchestrator_plugin": "orchestrator.config",
    "get_configured_options": "orchestrator.config",
    "reset_configuration": "orchestrator.config",
}

__all__ = [
    "TRANSITIONS",
    "AgentOrchestratorPluginOptions",
    "AgentOrchestratorService",
    "AgentProvider",
    "AgentProviderId",
    "ConfigurationError",
    "CycleError",
    "DagorchError",
    "DependencyError",
    "DependentsExistError",
    "DuplicateProviderError",
    "DuplicateTaskError",
    "EventFollower",
    "EventStream",
    "ExecutionHandle",
    "IllegalTransitionError",
    "InvalidProviderError",
    "InvalidTaskError",
    "JsonValue",
    "MemoryStore",
    "OrchestratedTask",
    "OrchestratedTaskMetadata",
    "PluginError",
    "PluginHost",
    "PluginRecord",
    "ProviderError",
    "ProviderTaskExecutionContext",
    "RemoteControl",
    "RemoteControlError",
    "RunSummary",
    "SqliteStore",
    "StepNotFoundError",
    "Store",
    "StoreError",
    "TaskCancelledError",
    "TaskEvent",
    "TaskEventType",
    "TaskInterruptedError",
    "TaskNotFoundError",
    "TaskResult",
    "TaskStatus",
    "TaskStep",
    "TaskUserStatus",
    "Trigger",
    "UnknownDependencyError",
    "UnknownProviderError",
    "configure_agent_orchestrator_plugin",
    "get_configured_options",
    "reset_configuration",
]


__getattr__, __dir__ = _lazy_exports(__name__, _HOMES, __all__)
