"""Options for an orchestrator, given per service or set once for the process (the reference way)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hookspecs.provider import AgentProvider
from orchestrator.errors import ConfigurationError

RECOVERY_POLICIES = ("requeue_retryable", "pause", "none")
"""The accepted values of ``AgentOrchestratorPluginOptions.recovery``."""


@dataclass
class AgentOrchestratorPluginOptions:
    """How an orchestrator runs tasks.

    The first four fields are the ElizaOS reference's. The rest tune the scheduler; every one has a
    default that suits an interactive agent.
    """

    providers: list[AgentProvider] = field(default_factory=list)
    """Providers given in code; they join the ones found through entry points."""
    default_provider_id: str = ""
    """The provider a task gets when none is named and the environment variable is unset."""
    get_working_directory: Callable[[], str] = os.getcwd
    """Where new tasks work, for tasks created without their own ``working_directory``; called
    once per ``create_task`` or ``create_tasks`` call."""
    active_provider_env_var: str = "ELIZA_CODE_ACTIVE_SUB_AGENT"
    """The environment variable that picks the provider when a task names none."""
    store_path: str | None = None
    """The SQLite file a service keeps its state in when it is started without ``store=``;
    None for the default (``$DAGORCH_HOME`` or ``.dagorch/``, one file per agent id)."""
    executor: Any = "local"
    """Where provider calls run: ``"local"`` (this process), ``"dask"`` (a Dask cluster: the one
    at ``scheduler_address``, else a local in-process one), or an ``Executor`` object."""
    scheduler_address: str | None = None
    """The Dask scheduler to use with ``executor="dask"`` (e.g. ``"tcp://10.0.0.5:8786"``)."""
    discover_plugins: bool = True
    """Load the plugins installed under the ``dagorch.providers`` entry point (the builtin
    providers among them). False leaves only the providers given in code."""
    max_concurrency: int = 32
    """How many tasks may run at once."""
    provider_concurrency: dict[str, int] = field(default_factory=dict)
    """How many tasks of a provider may run at once, by provider id."""
    default_retries: int = 0
    """Retries for tasks created without their own ``retries``."""
    default_timeout: float | None = None
    """Seconds per attempt for tasks created without their own ``timeout``; None for no limit."""
    retry_backoff: float = 0.5
    """Seconds before the first retry; each later retry waits twice as long, with jitter."""
    retry_backoff_max: float = 30.0
    """The longest wait between two attempts."""
    cancel_grace_period: float = 1.0
    """Seconds a cancelled provider has to return on its own before its coroutine is cancelled."""
    handler_timeout: float = 1.0
    """Seconds an async event handler or observer hook may take before it is cut off (and
    logged): a slow or stuck handler must not hold up the orchestrator."""
    event_log_limit: int = 100_000
    """How many of the newest events a logging store keeps; older ones are pruned at start and
    stop."""
    freeze_gc_during_run: bool = True
    """Keep Python's cyclic garbage collector off the objects that exist when ``run()`` starts
    (``gc.freeze()``, undone when the last run ends): otherwise a 10,000-task graph is rescanned
    while the collector carries it to its oldest generation, about a tenth of the run. Reference counting frees objects as usual; only
    reference cycles dropped during the run wait for its end (turn it off for a ``run()`` meant
    to last for hours). Nothing is done when collection is off or objects are already frozen by
    the host."""
    recovery: str = "requeue_retryable"
    """What a starting service does with tasks a crash left marked running: ``"requeue_retryable"``
    queues again those with retries left and pauses the rest, ``"pause"`` pauses them all (the
    reference's ``detect_and_pause_interrupted_tasks``), ``"none"`` leaves them for the host."""

    def __post_init__(self) -> None:
        checks = {
            "max_concurrency": self.max_concurrency >= 1,
            "default_retries": self.default_retries >= 0,
            "default_timeout": self.default_timeout is None or self.default_timeout > 0,
            "retry_backoff": self.retry_backoff >= 0,
            "retry_backoff_max": self.retry_backoff_max >= 0,
            "cancel_grace_period": self.cancel_grace_period >= 0,
            "recovery": self.recovery in RECOVERY_POLICIES,
            "event_log_limit": self.event_log_limit >= 0,
            "handler_timeout": self.handler_timeout > 0,
        }
        for provider_id, limit in self.provider_concurrency.items():
            checks[f"provider_concurrency.{provider_id}"] = limit >= 1
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ConfigurationError(f"Invalid orchestrator options: {', '.join(bad)}")


_configured: AgentOrchestratorPluginOptions | None = None


def configure_agent_orchestrator_plugin(options: AgentOrchestratorPluginOptions) -> None:
    """Set the options services use when they are started without their own."""
    global _configured
    _configured = options


def get_configured_options() -> AgentOrchestratorPluginOptions | None:
    """The options set with ``configure_agent_orchestrator_plugin``, if any."""
    return _configured


def reset_configuration() -> None:
    """Forget the process-wide options (for tests)."""
    global _configured
    _configured = None
