"""Upstream results in a task's parameters: ``{{ tasks.<id>.<field> }}``.

A string parameter (at any depth of lists and tables) may name a field of a task the task depends
on; the placeholder is replaced when the task starts, once that task has completed:

- ``summary``: the upstream task's result summary;
- ``output``: its last output line;
- ``files_created`` / ``files_modified``: those lists, joined with spaces.

``{{ tasks.fetch.summary }}`` in ``params.text`` of a task that depends on ``fetch`` becomes
``fetch``'s summary. Only direct upstream tasks can be named (a pipeline file is checked for that).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

PLACEHOLDER = re.compile(r"\{\{\s*tasks\.([A-Za-z0-9_.\-/:]+?)\.([A-Za-z0-9_]+)\s*\}\}")
"""``{{ tasks.<id>.<field> }}``."""

FIELDS = ("summary", "output", "files_created", "files_modified")
"""The fields a placeholder may name."""


def references(value: Any, path: str = "params") -> Iterator[tuple[str, str, str]]:
    """Every placeholder in ``value``: (field path, task id, field name)."""
    if isinstance(value, str):
        for match in PLACEHOLDER.finditer(value):
            yield path, match.group(1), match.group(2)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from references(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from references(item, f"{path}[{index}]")


def has_placeholders(value: Any) -> bool:
    """True when ``value`` holds at least one placeholder."""
    return next(references(value), None) is not None


def render(value: Any, lookup: Callable[[str, str], str | None]) -> Any:
    """``value`` with each placeholder replaced by ``lookup(task_id, field)``; a placeholder the
    lookup knows nothing about is left as written."""
    if isinstance(value, str):
        return PLACEHOLDER.sub(lambda m: _text(lookup(m.group(1), m.group(2)), m.group(0)), value)
    if isinstance(value, Mapping):
        return {key: render(item, lookup) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, lookup) for item in value]
    return value


def _text(found: str | None, placeholder: str) -> str:
    return placeholder if found is None else found
