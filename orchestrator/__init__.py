"""dagorch: a workflow-DAG orchestrator for multi-step agent pipelines.

It keeps the public names of the ElizaOS agent-orchestrator plugin, so moving over means changing
one import line::

    from orchestrator import AgentOrchestratorService, TaskResult

    service = await AgentOrchestratorService.start(options=AgentOrchestratorPluginOptions(
        providers=[MyProvider()], default_provider_id="my-agent"))
    plan = await service.create_task("plan", "Plan the work")
    build = await service.create_task("build", "Build it", depends_on=[plan.id])
    summary = await service.run()
"""

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
from orchestrator._handle import ExecutionHandle
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
    InvalidTaskError,
    RemoteControlError,
    StepNotFoundError,
    StoreError,
    TaskCancelledError,
    TaskNotFoundError,
    UnknownDependencyError,
    UnknownProviderError,
)
from orchestrator.events import EventFollower, EventStream
from orchestrator.lifecycle import TRANSITIONS, Trigger
from orchestrator.remote import RemoteControl
from orchestrator.service import AgentOrchestratorService
from orchestrator.store import MemoryStore, SqliteStore, Store
from orchestrator.views import RunSummary

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
    "InvalidTaskError",
    "JsonValue",
    "MemoryStore",
    "OrchestratedTask",
    "OrchestratedTaskMetadata",
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
