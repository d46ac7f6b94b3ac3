"""Copying and building tasks on the hot path without re-validating what is already valid."""

from __future__ import annotations

import copy
from typing import Any, TypeVar

from pydantic import BaseModel

from hookspecs.models import OrchestratedTask, OrchestratedTaskMetadata

__all__ = ["TaskMold", "assign", "snapshot"]


def snapshot(task: OrchestratedTask) -> OrchestratedTask:
    """A copy of ``task`` that shares nothing mutable with it."""
    # Field by field on copies of the models' dicts (read as dicts: a model's attribute lookup
    # walks its class first), since every provider call is handed one.
    top = task.__dict__.copy()
    md = top["metadata"]
    fields = md.__dict__.copy()
    fields["output"] = fields["output"][:]
    steps = fields["steps"]
    fields["steps"] = [_clone(s, {"extra": copy.deepcopy(s.extra)}) for s in steps] if steps else []
    fields["depends_on"] = fields["depends_on"][:]
    fields["files_created"] = fields["files_created"][:]
    fields["files_modified"] = fields["files_modified"][:]
    params, extra, result = fields["params"], fields["extra"], fields["result"]
    fields["params"] = copy.deepcopy(params) if params else {}
    fields["extra"] = copy.deepcopy(extra) if extra else {}
    if result is not None:
        fields["result"] = result.model_copy(deep=True)
    top["tags"] = top["tags"][:]
    extra = top["extra"]
    top["extra"] = copy.deepcopy(extra) if extra else {}
    top["metadata"] = _built(md, fields)
    return _built(task, top)


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
    # same at three times the cost.
    return _built(model, {**model.__dict__, **changes})


def _built(model: _M, fields: dict[str, Any]) -> _M:
    """A model of ``model``'s class holding ``fields`` (already valid), set as ``model``'s."""
    return _made(model.__class__, fields, model.__pydantic_fields_set__.copy())


def _made(cls: type[_M], fields: dict[str, Any], fields_set: set[str]) -> _M:
    built = _new(cls)
    _SET_DICT(built, fields)
    _SET_FIELDS_SET(built, fields_set)
    _SET_EXTRA(built, None)
    _SET_PRIVATE(built, None)
    return built


def assign(model: BaseModel, **values: Any) -> None:
    """Set fields of a task in memory (or of a model in one) to values already valid.

    Not pydantic's attribute assignment, which would add the fields to a set of given fields
    that a task ``TaskMold`` built shares with every other: a set of the model's own takes its
    place instead.
    """
    model.__dict__.update(values)
    given = model.__pydantic_fields_set__
    if not given.issuperset(values):
        _SET_FIELDS_SET(model, given | values.keys())


_new = object.__new__
_TASK_PROTOTYPE = OrchestratedTask(id="prototype", name="prototype")
_METADATA_PROTOTYPE = OrchestratedTaskMetadata()
_TASK_GIVEN = {"id", "name", "description", "tags", "room_id", "world_id", "metadata"}
"""The fields of a task ``TaskMold`` builds that its constructor would count as given: one set
shared by every such task (a set each cost 216 bytes and a copy). Nothing here adds to it
(``assign`` gives the model a set of its own), and every copy, made by ``snapshot`` or by
pydantic (``model_copy``, ``copy``, pickling), gets a set of its own: a copy can be changed
freely. It is a plain set, not a frozenset, for that reason: copying a frozenset gives the same
object back, which made the copies refuse attribute assignment."""


class _SharedKeys:
    """A plain object whose attribute dict is the prototype metadata's fields, in their order."""


def _key_sharing(fields: dict[str, Any]) -> dict[str, Any]:
    holder = _SharedKeys()
    for name, value in fields.items():
        setattr(holder, name, value)
    return holder.__dict__


_METADATA_FIELDS = _key_sharing(_METADATA_PROTOTYPE.__dict__)
"""The prototype metadata's fields as an object's attribute dict: CPython keeps such a dict's keys
in one table shared with its copies (a key-sharing dict), so each task's metadata dict holds only
its values, 296 bytes instead of 832, small enough for Python's own allocator; the provider's copy
of it is as small. Writing fields already there keeps the sharing. (An interpreter without
key-sharing dicts makes ordinary copies.)"""


class TaskMold:
    """Builds new tasks that share the values of their metadata but for their dependencies.

    A create call makes one for each provider its tasks use: the values those tasks share
    (provider, working directory, creation time, retries) are written once, into a metadata dict
    each task's is copied from, instead of once per task. Give it only values the caller has
    already checked: plain strings, ints and timestamps. Each task it builds equals
    ``OrchestratedTask(...)`` with the same values, at a fraction of the cost; values that need
    pydantic's validation must go through the model's constructor instead.
    """

    __slots__ = ("_fields", "_given")

    def __init__(self, metadata: dict[str, Any]) -> None:
        """``metadata``: the metadata fields, other than ``depends_on``, that differ from their
        defaults."""
        fields = _METADATA_FIELDS.copy()
        fields.update(metadata)  # fields already there: the copies still share their keys
        self._fields = fields
        self._given = {*metadata, "depends_on"}
        """The metadata fields a constructor would count as given: one set shared by every task
        built here (see ``_TASK_GIVEN``)."""

    def task(
        self,
        task_id: str,
        name: str,
        description: str,
        tags: list[str],
        room_id: str | None,
        world_id: str | None,
        depends_on: list[str],
    ) -> OrchestratedTask:
        """A new task; ``tags`` and ``depends_on`` are kept, not copied."""
        fields = self._fields.copy()
        fields["output"] = []
        fields["steps"] = []
        fields["files_created"] = []
        fields["files_modified"] = []
        fields["depends_on"] = depends_on
        fields["params"] = {}
        fields["extra"] = {}
        top = _TASK_PROTOTYPE.__dict__.copy()
        top["id"] = task_id
        top["name"] = name
        top["description"] = description
        top["tags"] = tags
        top["room_id"] = room_id
        top["world_id"] = world_id
        top["extra"] = {}
        top["metadata"] = _made(OrchestratedTaskMetadata, fields, self._given)
        return _made(OrchestratedTask, top, _TASK_GIVEN)
