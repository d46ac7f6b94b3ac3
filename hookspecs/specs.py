"""The hook specifications a dagorch plugin may implement.

Plugins are found through the ``dagorch.providers`` entry-point group; the module or object each
entry point names implements any of these hooks with ``@hookimpl``. Every hook is called once per
implementation and never stops at a first result.

- ``register_providers`` is for discovery: synchronous, called once when an orchestrator loads
  its plugins.
- The observer hooks (``on_task_event``, ``before_task_run``, ``after_task_run``,
  ``on_task_error``) may be plain functions or coroutines; the orchestrator awaits what is
  awaitable. Each implementation runs on its own: one that raises is logged and the others, and
  the task, carry on.

An implementation may take fewer arguments than its spec (pluggy passes the ones it names).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from hookspecs.models import OrchestratedTask, TaskEvent, TaskResult
    from hookspecs.provider import AgentProvider

PROJECT_NAME = "dagorch"
"""The pluggy project name shared by specs and implementations."""

ENTRY_POINT_GROUP = "dagorch.providers"
"""The entry-point group a plugin package names its module in."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
"""Marks a hook specification."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marks a plugin's implementation of a hook."""


@hookspec
def register_providers(register: Callable[[AgentProvider], None]) -> None:
    """Register the providers this plugin offers by calling ``register(provider)`` for each.

    A provider is an object with a string ``id``, a ``label``, a ``description`` and an
    ``async def execute_task(task, ctx)``. Keep this hook cheap: import a provider's heavy SDK
    inside ``execute_task``, not here, so listing providers stays fast.
    """


@hookspec
def on_task_event(event: TaskEvent) -> None:
    """Observe every task event (``task:created``, ``task:progress``, ...), after it is stored."""


@hookspec
def before_task_run(task: OrchestratedTask, attempt: int) -> None:
    """Observe a task about to be handed to its provider; ``attempt`` starts at 1."""


@hookspec
def after_task_run(
    task: OrchestratedTask, attempt: int, result: TaskResult | None, error: str | None
) -> None:
    """Observe the end of one attempt: the provider's ``result`` and the ``error`` if it failed
    (``result`` is None when the provider raised, hung or was cancelled)."""


@hookspec
def on_task_error(task: OrchestratedTask, attempt: int, error: str, will_retry: bool) -> None:
    """Observe a failed attempt: ``error`` says why, ``will_retry`` whether another attempt
    follows."""
