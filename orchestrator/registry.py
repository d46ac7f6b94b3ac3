"""The providers an orchestrator can run tasks on, by id, each with where it came from."""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterable

from hookspecs.provider import AgentProvider
from orchestrator.errors import DuplicateProviderError, InvalidProviderError, UnknownProviderError

GIVEN_IN_CODE = ("code", "options")
"""The sources of providers handed over in code rather than found through entry points."""


def provider_problem(provider: object) -> str | None:
    """Why ``provider`` cannot serve as a provider, or None when it can."""
    provider_id = getattr(provider, "id", None)
    if not isinstance(provider_id, str) or not provider_id.strip():
        return "it has no string id"
    if not isinstance(getattr(provider, "label", None), str):
        return f'provider "{provider_id}" has no string label'
    description = getattr(provider, "description", None)
    if description is not None and not isinstance(description, str):
        return f'provider "{provider_id}" has a description that is not a string'
    execute = getattr(provider, "execute_task", None)
    if not callable(execute):
        return f'provider "{provider_id}" has no execute_task method'
    if not (
        inspect.iscoroutinefunction(execute)
        or inspect.iscoroutinefunction(getattr(execute, "__call__", None))  # noqa: B004
    ):
        return (
            f'provider "{provider_id}" has a synchronous execute_task; it must be '
            "`async def execute_task(self, task, ctx)` (run blocking work with "
            "anyio.to_thread.run_sync inside it)"
        )
    return None


class ProviderRegistry:
    """Providers by id, each remembered with where it came from (its source)."""

    def __init__(self) -> None:
        self._providers: dict[str, AgentProvider] = {}
        self._sources: dict[str, str] = {}

    def register(self, provider: AgentProvider, source: str = "code") -> None:
        """Add ``provider``; a second provider with the same id is refused, naming both sources.

        ``source`` says where the provider came from, for errors and listings: ``"code"``,
        ``"options"``, or a plugin's distribution and entry point.
        """
        problem = provider_problem(provider)
        if problem is not None:
            raise InvalidProviderError(provider, source, problem)
        provider_id = provider.id
        known = self._providers.get(provider_id)
        if known is not None:
            if known is provider:
                return
            raise DuplicateProviderError(provider_id, self._sources[provider_id], source)
        self._providers[provider_id] = provider
        self._sources[provider_id] = source

    def register_all(self, providers: Iterable[AgentProvider], source: str = "code") -> None:
        """Register each of ``providers``."""
        for provider in providers:
            self.register(provider, source)

    def get(self, provider_id: str) -> AgentProvider:
        """The provider with this id, or ``UnknownProviderError`` listing the known ids."""
        try:
            return self._providers[provider_id]
        except KeyError:
            raise UnknownProviderError(provider_id, self._providers) from None

    def find(self, provider_id: str) -> AgentProvider | None:
        """The provider with this id, or None."""
        return self._providers.get(provider_id)

    def source_of(self, provider_id: str) -> str:
        """Where the provider with this id came from."""
        return self._sources[provider_id]

    @property
    def ids(self) -> list[str]:
        """The registered ids, sorted."""
        return sorted(self._providers)

    def select(self, explicit: str | None, env_var: str, default_id: str) -> AgentProvider:
        """The reference's order: the explicit id, then the environment variable, then the default."""
        chosen = (explicit or "").strip() or os.environ.get(env_var, "").strip() or default_id
        if not chosen:
            # Beyond the reference: a host that gave exactly one provider in code means that one.
            given = [pid for pid, source in self._sources.items() if source in GIVEN_IN_CODE]
            if len(given) == 1:
                return self._providers[given[0]]
            raise UnknownProviderError(
                "",
                self._providers,
                hint=f"No provider selected: pass provider_id, set ${env_var} or "
                "configure default_provider_id",
            )
        return self.get(chosen)
