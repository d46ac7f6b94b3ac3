"""The orchestrator as an ElizaOS service: a real ``elizaos`` ``Service`` registered as
``CODE_TASK``, with the core service's whole API."""

from __future__ import annotations

from typing import Any, Self

from elizaos.types.service import Service

from orchestrator.config import AgentOrchestratorPluginOptions
from orchestrator.service import AgentOrchestratorService as CoreService
from orchestrator.store import Store

SERVICE_TYPE = "CODE_TASK"
"""The service type actions look the orchestrator up by (the reference's)."""


class AgentOrchestratorService(Service, CoreService):
    """The orchestrator service for an ElizaOS runtime.

    ``runtime.get_service("CODE_TASK")`` returns it. Tasks live in dagorch's own store (by
    default one SQLite file per agent id, or ``options.store_path``), so it works whether or not
    the runtime has a database adapter.
    """

    service_type = SERVICE_TYPE

    def __init__(
        self,
        runtime: Any = None,
        *,
        options: AgentOrchestratorPluginOptions | None = None,
        store: Store | None = None,
    ) -> None:
        Service.__init__(self, runtime)
        CoreService.__init__(self, runtime, options=options, store=store)

    @property
    def runtime(self) -> Any:
        """The ElizaOS runtime (None before one is given; the core service allows that)."""
        return self._runtime

    @runtime.setter
    def runtime(self, value: Any) -> None:
        self._runtime = value

    capability_description = "Orchestrates tasks across registered agent providers"
    """What the service offers, for the runtime's listings."""

    @classmethod
    async def start(
        cls,
        runtime: Any = None,
        *,
        options: AgentOrchestratorPluginOptions | None = None,
        store: Store | None = None,
    ) -> Self:
        """Start for ``runtime`` (the core calls ``start(runtime)``), with the configured options."""
        service = cls(runtime, options=options, store=store)
        await service._ensure_open()
        return service

    async def stop(self) -> None:
        """Stop every run and close the store (tasks that were running are left paused)."""
        await CoreService.stop(self)
