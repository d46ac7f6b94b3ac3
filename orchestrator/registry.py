"""The providers an orchestrator can run tasks on, by id."""

from __future__ import annotations

import os
from collections.abc import Iterable

from hookspecs.provider import AgentProvider
from orchestrator.errors import DuplicateProviderError, InvalidTaskError, UnknownProviderError


class ProviderRegistry:
    """Providers by id, each remembered with where it came from."""

    def __init__(self) -> None:
        self._providers: dict[str, AgentProvider] = {}
        self._sources: dict[str, str] = {}

    def register(self, provider: AgentProvider, source: str = "code") -> None:
        """Add ``provider``; a second provider with the same id is refused, naming both sources."""
        provider_id = getattr(provider, "id", None)
        if not isinstance(provider_id, str) or not provider_id:
            raise InvalidTaskError(f"Provider {provider!r} from {source} has no string id")
        if not callable(getattr(provider, "execute_task", None)):
            raise InvalidTaskError(f'Provider "{provider_id}" from {source} has no execute_task')
        if provider_id in self._providers:
            if self._providers[provider_id] is provider:
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

    @property
    def ids(self) -> list[str]:
        """The registered ids, sorted."""
        return sorted(self._providers)

    def select(self, explicit: str | None, env_var: str, default_id: str) -> AgentProvider:
        """The reference's order: the explicit id, then the environment variable, then the default."""
        chosen = (explicit or "").strip() or os.environ.get(env_var, "").strip() or default_id
        if not chosen:
            if len(self._providers) == 1:
                return next(iter(self._providers.values()))
            raise UnknownProviderError(
                "",
                self._providers,
                hint=f"No provider selected: pass provider_id, set ${env_var} or "
                "configure default_provider_id",
            )
        return self.get(chosen)
