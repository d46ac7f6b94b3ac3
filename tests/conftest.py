"""Fixtures are factories: each test builds the services and providers it needs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from orchestrator import (
    AgentOrchestratorPluginOptions,
    AgentOrchestratorService,
    AgentProvider,
    reset_configuration,
)
from orchestrator.testing import FunctionProvider, succeed

ServiceFactory = Callable[..., Awaitable[AgentOrchestratorService]]


@pytest.fixture(autouse=True)
def _no_global_configuration() -> Any:
    reset_configuration()
    yield
    reset_configuration()


@pytest.fixture
async def make_service() -> AsyncIterator[ServiceFactory]:
    """Start services with the given providers (default: one succeeding ``ok`` provider).

    Scheduler timings are shortened so tests stay fast; keyword arguments override any option.
    Every service made is stopped after the test.
    """
    made: list[AgentOrchestratorService] = []

    async def factory(*providers: AgentProvider, **options: Any) -> AgentOrchestratorService:
        chosen = list(providers) or [FunctionProvider("ok", succeed)]
        settings: dict[str, Any] = {
            "providers": chosen,
            "default_provider_id": chosen[0].id,
            "cancel_grace_period": 0.05,
            "retry_backoff": 0.001,
            "retry_backoff_max": 0.01,
        }
        settings.update(options)
        store = settings.pop("store", None)
        service = await AgentOrchestratorService.start(
            options=AgentOrchestratorPluginOptions(**settings), store=store
        )
        made.append(service)
        return service

    yield factory
    for service in made:
        await service.stop()
