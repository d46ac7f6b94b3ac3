"""Structured action parameters, read with checks whose errors name the parameter."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.actions._base import ActionInputError


def text_param(params: Mapping[str, Any], *names: str) -> str | None:
    """The first of ``names`` present, as stripped text (None when absent or blank)."""
    for name in names:
        value = params.get(name)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise ActionInputError(f'Parameter "{name}" must be text, got {type(value).__name__}.')
        return value.strip() or None
    return None


def list_param(params: Mapping[str, Any], *names: str, what: str) -> list[str] | None:
    """The first of ``names`` present, as a list of non-blank strings; a single string is a
    one-item list (a comma-separated string is split)."""
    for name in names:
        value = params.get(name)
        if value is None or value == "" or value == []:
            continue
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
            return [item.strip() for item in value if item.strip()]
        raise ActionInputError(f'Parameter "{name}" must be a list of {what}.')
    return None


def flag_param(params: Mapping[str, Any], name: str) -> bool:
    """A yes/no parameter (also accepting the strings "true"/"false")."""
    value = params.get(name)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "false", "no", "0"):
        return value.strip().lower() in ("true", "yes", "1")
    raise ActionInputError(f'Parameter "{name}" must be true or false.')
