"""The hook specifications a dagorch plugin may implement.

Discovery hooks are synchronous. Plugins are found through the ``dagorch.providers`` entry-point
group; each module or object named there may implement any of these hooks with ``@hookimpl``.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from hookspecs.provider import AgentProvider

PROJECT_NAME = "dagorch"
"""The pluggy project name shared by specs and implementations."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
"""Marks a hook specification."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marks a plugin's implementation of a hook."""


@hookspec
def register_providers(register: Callable[[AgentProvider], None]) -> None:
    """Register the providers this plugin offers by calling ``register(provider)`` for each."""
