"""Copying and building tasks on the hot path without re-validating what is already valid."""

from __future__ import annotations

import copy
from typing import Any, TypeVar

from pydantic import BaseModel

from hookspecs.models import OrchestratedTask, OrchestratedTaskMetadata

__all__ = ["fresh_task", "snapshot"]


def snapshot(task: OrchestratedTask) -> OrchestratedTask:
    """A copy of ``task`` that shares nothing mutable with it."""
    md = task.metadata
    result = md.result
    return _clone(
        task,
        {
            "tags": list(task.tags),
            "extra": copy.deepcopy(task.extra) if task.extra else {},
            "metadata": _clone(
                md,
                {
                    "output": list(md.output),
                    "steps": [
                        _clone(step, {"extra": copy.deepcopy(step.extra)}) for step in md.steps
                    ],
                    "depends_on": list(md.depends_on),
                    "files_created": list(md.files_created),
                    "files_modified": list(md.files_modified),
                    "params": copy.deepcopy(md.params) if md.params else {},
                    "extra": copy.deepcopy(md.extra) if md.extra else {},
                    "result": result.model_copy(deep=True) if result is not None else None,
                },
            ),
        },
    )


_M = TypeVar("_M", bound=BaseModel)


def _clone(model: _M, changes: dict[str, Any]) -> _M:
    # A copy of an already valid model with some fields replaced. pydantic's model_copy does the
    # same at twice the cost, and snapshots are taken on the hot path (every create and attempt).
    clone = model.__class__.__new__(model.__class__)
    fields = model.__dict__.copy()
    fields.update(changes)
    object.__setattr__(clone, "__dict__", fields)
    object.__setattr__(clone, "__pydantic_fields_set__", set(model.__pydantic_fields_set__))
    object.__setattr__(clone, "__pydantic_extra__", None)
    object.__setattr__(clone, "__pydantic_private__", None)
    return clone


_TASK_PROTOTYPE = OrchestratedTask(id="prototype", name="prototype")
_METADATA_PROTOTYPE = OrchestratedTaskMetadata()


def fresh_task(
    *,
    task_id: str,
    name: str,
    description: str,
    tags: list[str],
    room_id: str | None,
    world_id: str | None,
    depends_on: list[str],
    **metadata: Any,
) -> OrchestratedTask:
    """A new task from values the caller has already checked: plain strings, ints and timestamps.

    It equals ``OrchestratedTask(...)`` with the same values, at a fraction of the cost; values
    that need pydantic's validation must go through the model's constructor instead.
    """
    md = _clone(
        _METADATA_PROTOTYPE,
        {
            "output": [],
            "steps": [],
            "files_created": [],
            "files_modified": [],
            "depends_on": depends_on,
            "params": {},
            "extra": {},
            **metadata,
        },
    )
    return _clone(
        _TASK_PROTOTYPE,
        {
            "id": task_id,
            "name": name,
            "description": description,
            "tags": tags,
            "room_id": room_id,
            "world_id": world_id,
            "extra": {},
            "metadata": md,
        },
    )
