"""What every action is made of: the request it reads, the reply it gives, and the runner."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from hookspecs.models import OrchestratedTask, TaskStep
from orchestrator.actions._text import text_problem
from orchestrator.errors import DagorchError


class TaskService(Protocol):
    """What the actions use of a service. ``TaskService`` is one; the CLI's view
    of a store owned by another process is another."""

    async def get_task(self, task_id: str) -> OrchestratedTask | None: ...
    async def get_tasks(self) -> list[OrchestratedTask]: ...
    async def get_recent_tasks(self, limit: int = 20) -> list[OrchestratedTask]: ...
    async def search_tasks(self, query: str) -> list[OrchestratedTask]: ...
    async def get_current_task(self, room_id: str | None = None) -> OrchestratedTask | None: ...
    def get_current_task_id(self, room_id: str | None = None) -> str | None: ...
    def get_downstream(self, task_id: str) -> list[str]: ...
    async def select_task(self, task_id: str | None, room_id: str | None = None) -> None: ...
    async def pause_task(self, task_id: str) -> None: ...
    async def resume_task(self, task_id: str) -> None: ...
    async def cancel_task(self, task_id: str) -> None: ...
    def start_task_execution(self, task_id: str) -> object: ...
    async def create_task(
        self,
        name: str,
        description: str = "",
        room_id: str | None = None,
        provider_id: str | None = None,
        *,
        depends_on: str | Iterable[str] = (),
    ) -> OrchestratedTask: ...
    async def create_tasks(self, specs: Iterable[Mapping[str, Any]]) -> list[str]: ...
    async def add_step(self, task_id: str, description: str) -> TaskStep: ...
    async def append_output(self, task_id: str, text: str) -> None: ...


logger = logging.getLogger("dagorch.actions")


@dataclass(frozen=True)
class ActionRequest:
    """A user command: the text typed, the room it came from, and structured parameters."""

    text: str = ""
    """What the user wrote."""
    room_id: str | None = None
    """The chat room (or other origin) the command came from."""
    params: Mapping[str, Any] = field(default_factory=dict)
    """Structured parameters, e.g. ``title``, ``steps``, ``dependsOn``, ``query``."""


@dataclass(frozen=True)
class ActionReply:
    """What an action answers: success, the text to show, and data for programs."""

    success: bool
    """False when nothing was done (a missing task, a bad parameter, ...)."""
    text: str
    """The reply for the user."""
    data: dict[str, Any] = field(default_factory=dict)
    """Ids of what was created or changed."""


class ActionInputError(DagorchError, ValueError):
    """A request the action cannot act on; the message is the reply the user gets."""


Respond = Callable[[ActionReply], Awaitable[object]]
"""Sends a reply to the user before the action's follow-up work (e.g. starting a task)."""

FollowUp = Callable[[], object] | None
Handler = Callable[["TaskService", ActionRequest], Awaitable[tuple[ActionReply, FollowUp]]]


@dataclass(frozen=True)
class TaskAction:
    """One user command over the orchestrator: names and texts as in the ElizaOS reference,
    a ``validate`` that says whether a text asks for it, and a handler."""

    name: str
    """The action's name, e.g. ``"CREATE_TASK"``."""
    similes: tuple[str, ...]
    """Other names the action goes by."""
    description: str
    """What the action does, for a model choosing actions."""
    matches: Callable[[str], bool]
    """Whether a text asks for this action (whole words, never raises)."""
    handler: Handler
    """Does the work; returns the reply and what to do once the reply is sent."""

    def validate(self, text: str | None, service: TaskService | None) -> bool:
        """True when ``text`` asks for this action and the service is there to do it."""
        if service is None or not isinstance(text, str):
            return False
        try:
            return self.matches(text)
        except Exception:  # validate runs for every action on every turn: it must not raise
            logger.exception("validate of %s failed", self.name)
            return False

    async def run(
        self,
        service: TaskService | None,
        request: ActionRequest,
        respond: Respond | None = None,
    ) -> ActionReply:
        """Handle ``request``: send the reply through ``respond`` (if given), then do the
        follow-up (such as starting the new task), and return the reply. Never raises for bad
        input: every problem becomes a reply with ``success=False``."""
        reply, follow_up = await self._handle(service, request)
        if respond is not None:
            await respond(reply)
        if follow_up is not None:
            try:
                follow_up()
            except Exception:
                logger.exception("follow-up of %s failed", self.name)
        return reply

    async def _handle(
        self, service: TaskService | None, request: ActionRequest
    ) -> tuple[ActionReply, FollowUp]:
        if service is None:
            return ActionReply(False, "Task orchestrator service is not available"), None
        text = request.text if isinstance(request.text, str) else ""
        problem = text_problem(text)
        if problem is not None:
            return ActionReply(False, problem), None
        try:
            return await self.handler(service, request)
        except ActionInputError as exc:
            return ActionReply(False, str(exc)), None
        except DagorchError as exc:
            return ActionReply(False, str(exc)), None
        except Exception as exc:
            logger.exception("%s failed", self.name)
            return ActionReply(False, f"{self.name} failed: {exc}"), None
