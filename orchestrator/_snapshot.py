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
            "tags": task.tags[:],
            "extra": copy.deepcopy(task.extra) if task.extra else {},
            "metadata": _clone(
                md,
                {
                    "output": md.output[:],
                    "steps": [
                        _clone(step, {"extra": copy.deepcopy(step.extra)}) for step in md.steps
                    ],
                    "depends_on": md.depends_on[:],
                    "files_created": md.files_created[:],
                    "files_modified": md.files_modified[:],
                    "params": copy.deepcopy(md.params) if md.params else {},
                    "extra": copy.deepcopy(md.extra) if md.extra else {},
                    "result": result.model_copy(deep=True) if result is not None else None,
                },
            ),
        },
    )


_M = TypeVar("_M", bound=BaseModel)


# BaseModel's own slot setters: BaseModel.__setattr__ validates, and object.__setattr__ looks the
# slot up by name at every call.
_SET_DICT, _SET_FIELDS_SET, _SET_EXTRA, _SET_PRIVATE = (
    BaseModel.__dict__[name].__set__
    for name in (
        "__dict__",
        "__pydantic_fields_set__",
        "__pydantic_extra__",
        "__pydantic_private__",
    )
)


def _clone(model: _M, changes: dict[str, Any]) -> _M:
    # A copy of an already valid model with some fields replaced. pydantic's model_copy does the
    # same at three times the cost, and clones are made on the hot path (two per task created,
    # two per attempt).
    clone = object.__new__(model.__class__)
    _SET_DICT(clone, {**model.__dict__, **changes})
    _SET_FIELDS_SET(clone, model.__pydantic_fields_set__.copy())
    _SET_EXTRA(clone, None)
    _SET_PRIVATE(clone, None)
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
