"""Fixtures are factories: each test builds the services and providers it needs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator import (
    AgentOrchestratorPluginOptions,
    AgentOrchestratorService,
    AgentProvider,
    MemoryStore,
    SqliteStore,
    reset_configuration,
)
from orchestrator.testing import FunctionProvider, succeed

pytest_plugins = ["plugin_dists", "chat_server"]

ServiceFactory = Callable[..., Awaitable[AgentOrchestratorService]]


@pytest.fixture(autouse=True)
def _no_global_configuration() -> Any:
    reset_configuration()
    yield
    reset_configuration()


@pytest.fixture(autouse=True)
def _dagorch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A service started without a store keeps its SQLite file in the test's own folder."""
    home = tmp_path / "dagorch-home"
    monkeypatch.setenv("DAGORCH_HOME", str(home))
    return home


@pytest.fixture(params=["memory", "sqlite"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Every test that makes services runs once on each store."""
    return str(request.param)


@pytest.fixture
async def make_service(store_kind: str, tmp_path: Path) -> AsyncIterator[ServiceFactory]:
    """Start services with the given providers (default: one succeeding ``ok`` provider).

    Scheduler timings are shortened so tests stay fast; keyword arguments override any option.
    Each service gets a fresh store of the test's kind (a new SQLite file, or a MemoryStore) unless
    ``store=`` is given (to restart on the same one, pass the first service's ``store``). Every
    service made is stopped after the test.
    """
    made: list[AgentOrchestratorService] = []

    def fresh_store() -> MemoryStore | SqliteStore:
        if store_kind == "memory":
            return MemoryStore()
        return SqliteStore(tmp_path / f"test-{len(made)}.db")

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
        store = settings.pop("store", None) or fresh_store()
        service = await AgentOrchestratorService.start(
            options=AgentOrchestratorPluginOptions(**settings), store=store
        )
        made.append(service)
        return service

    yield factory
    for service in made:
        await service.stop()
