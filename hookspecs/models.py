"""The contract models shared by the orchestrator and every provider.

The public names and fields match the ElizaOS agent-orchestrator plugin, so code written against it
keeps working. ``to_dict()`` writes the reference's camelCase dictionaries and ``from_dict()`` reads
them back; keys this version does not know are kept in ``extra`` and written out again, so a
document passes through unchanged.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Mapping
from enum import Enum
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field
from pydantic import JsonValue as _PydanticJsonValue
from pydantic.alias_generators import to_camel

JsonValue = _PydanticJsonValue
"""Any value that JSON can hold: str, int, float, bool, None, lists and string-keyed dicts of them."""

AgentProviderId = str
"""The id under which a provider is registered."""


def now_ms() -> int:
    """The current time in milliseconds since the epoch, the unit of every timestamp here."""
    return time.time_ns() // 1_000_000


class TaskStatus(str, Enum):
    """The execution status of a task; see ``orchestrator.lifecycle`` for the legal moves."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    PAUSED = "paused"
    CANCELLED = "cancelled"

    is_terminal: bool
    """True for completed, failed and cancelled: states that never change again. (A plain
    attribute of each member, not a property: it is read about ten times per task run.)"""


for _status in TaskStatus:
    _status.is_terminal = _status in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED)
del _status


class TaskUserStatus(str, Enum):
    """The user's own view of a task (open or done), separate from its execution status."""

    OPEN = "open"
    DONE = "done"


class TaskEventType(str, Enum):
    """The names of the events the orchestrator emits."""

    CREATED = "task:created"
    STARTED = "task:started"
    PROGRESS = "task:progress"
    OUTPUT = "task:output"
    COMPLETED = "task:completed"
    FAILED = "task:failed"
    CANCELLED = "task:cancelled"
    PAUSED = "task:paused"
    RESUMED = "task:resumed"
    MESSAGE = "task:message"


class _Document(BaseModel):
    """A model stored as a camelCase dict whose unknown keys survive a round trip in ``extra``."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    extra: dict[str, Any] = Field(default_factory=dict, exclude=True)
    """Keys of the stored dict that this version does not know; written back by ``to_dict()``."""

    _key_map: ClassVar[dict[str, str] | None] = None

    def to_dict(self) -> dict[str, Any]:
        """The reference's camelCase dict: optional fields only when set, then ``extra`` merged in."""
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        data.update(copy.deepcopy(self.extra))
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Read a dict written by ``to_dict()`` (or by the reference); unknown keys go to ``extra``."""
        known: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            field = cls._field_for_key().get(key)
            if field is None:
                extra[key] = value
            else:
                known[field] = value
        return cls(**cls._defaults_for_missing(known), extra=extra)

    @classmethod
    def _field_for_key(cls) -> dict[str, str]:
        # Built once per class: from_dict runs for every task loaded from a store.
        mapping: dict[str, str] | None = cls.__dict__.get("_key_map")
        if mapping is None:
            mapping = {}
            for name, info in cls.model_fields.items():
                if name != "extra":
                    mapping[info.alias or name] = name
                    mapping[name] = name
            setattr(cls, "_key_map", mapping)  # noqa: B010
        return mapping

    @classmethod
    def _defaults_for_missing(cls, known: dict[str, Any]) -> dict[str, Any]:
        return known


class TaskStep(_Document):
    """One step of a task's plan."""

    id: str
    description: str
    status: TaskStatus = TaskStatus.PENDING
    output: str | None = None

    @classmethod
    def create(cls, description: str) -> TaskStep:
        """A new pending step with a fresh id."""
        return cls(id=str(uuid.uuid4()), description=description)


class TaskResult(_Document):
    """What a provider returns when it finishes a task."""

    success: bool
    summary: str = ""
    files_modified: list[str] = Field(default_factory=list)
    files_created: list[str] = Field(default_factory=list)
    error: str | None = None

    @classmethod
    def _defaults_for_missing(cls, known: dict[str, Any]) -> dict[str, Any]:
        return {"success": False, **known}


class OrchestratedTaskMetadata(_Document):
    """Everything the orchestrator knows about a task besides its name and description.

    Beyond the reference's fields it carries the task's place in the DAG (``depends_on``), its
    execution policy (``retries``, ``timeout``), the attempts made so far and the provider's
    parameters (``params``).
    """

    status: TaskStatus = TaskStatus.PENDING
    progress: int = 0
    output: list[str] = Field(default_factory=list)
    steps: list[TaskStep] = Field(default_factory=list)
    working_directory: str = ""
    provider_id: str = ""
    created_at: int = 0
    result: TaskResult | None = None
    error: str | None = None
    started_at: int | None = None
    completed_at: int | None = None
    provider_label: str | None = None
    sub_agent_type: str | None = None
    user_status: TaskUserStatus = TaskUserStatus.OPEN
    user_status_updated_at: int | None = None
    files_created: list[str] = Field(default_factory=list)
    files_modified: list[str] = Field(default_factory=list)
    depends_on: list[str] = Field(default_factory=list)
    """Ids of the upstream tasks that must complete before this one runs."""
    retries: int = Field(default=0, ge=0, strict=True)
    """How many times a failed attempt is retried (0: run once)."""
    timeout: float | None = Field(default=None, gt=0)
    """Seconds an attempt may take before it fails with a timeout; None for no limit."""
    attempts: int = 0
    """How many attempts have started."""
    params: dict[str, JsonValue] = Field(default_factory=dict)
    """Parameters for the task's provider (JSON values, so they can be stored)."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        steps = data.get("steps")
        result = data.get("result")
        converted = dict(data)
        if isinstance(steps, list):
            converted["steps"] = [
                TaskStep.from_dict(s) if isinstance(s, Mapping) else s for s in steps
            ]
        if isinstance(result, Mapping):
            converted["result"] = TaskResult.from_dict(result)
        return super().from_dict(converted)

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["steps"] = [step.to_dict() for step in self.steps]
        if self.result is not None:
            data["result"] = self.result.to_dict()
        return data


class OrchestratedTask(_Document):
    """A task: a node of the DAG, run by one provider."""

    id: str
    name: str
    description: str = ""
    metadata: OrchestratedTaskMetadata = Field(default_factory=OrchestratedTaskMetadata)
    tags: list[str] = Field(default_factory=list)
    room_id: str | None = None
    world_id: str | None = None

    @property
    def status(self) -> TaskStatus:
        """Shortcut for ``metadata.status``."""
        return self.metadata.status

    @property
    def depends_on(self) -> list[str]:
        """Shortcut for ``metadata.depends_on``."""
        return self.metadata.depends_on

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        converted = dict(data)
        metadata = data.get("metadata")
        if isinstance(metadata, Mapping):
            converted["metadata"] = OrchestratedTaskMetadata.from_dict(metadata)
        return super().from_dict(converted)

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["metadata"] = self.metadata.to_dict()
        return data


class TaskEvent(_Document):
    """A change to a task, delivered to event handlers and streams."""

    type: TaskEventType
    task_id: str
    data: dict[str, Any] | None = None
    timestamp: int = Field(default_factory=now_ms)
    """When the event was emitted, in epoch milliseconds."""
    seq: int = 0
    """The event's number; events of one service are numbered 1, 2, 3, ... in emission order."""
