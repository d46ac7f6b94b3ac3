"""The tasks of a store file as the actions see a service, from a process that does not own it.

Reads come from the file (what the owner last committed); pause, resume and cancel go through
``RemoteControl`` (the owner's inbox, or applied directly when no orchestrator owns the file).
So ``dagorch pause TASK`` in a second terminal takes the same action code path as a chat message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import networkx as nx

from hookspecs.models import OrchestratedTask, TaskStep
from orchestrator._selection import (
    CURRENT_BY_ROOM_KEY,
    CURRENT_TASK_KEY,
    RoomSelections,
    current_in,
    room_of,
    rooms_from,
    select_in,
    store_selections,
)
from orchestrator.errors import RemoteControlError
from orchestrator.remote import RemoteControl
from orchestrator.views import rank_tasks


class RemoteTasks:
    """A ``TaskService`` over a store file another process may be running."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._remote = RemoteControl(path)
        self._tasks: dict[str, OrchestratedTask] = {}
        self._current: str | None = None
        self._by_room: RoomSelections = {}

    async def __aenter__(self) -> Self:
        await self._remote.__aenter__()
        await self.refresh()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._remote.__aexit__(exc_type, exc, tb)

    @property
    def store(self) -> Any:
        """The store file, for reading values and events."""
        return self._remote._store

    async def refresh(self) -> None:
        """Read the tasks and the current-task pointer as last committed."""
        tasks = await self._remote.get_tasks()
        self._tasks = {task.id: task for task in tasks}
        await self._read_selections()
        if self._current not in self._tasks:
            self._current = None

    async def _read_selections(self) -> None:
        current = await self.store.get_value(CURRENT_TASK_KEY)
        self._current = current if isinstance(current, str) else None
        by_room = await self.store.get_value(CURRENT_BY_ROOM_KEY)
        # Every id is kept: tasks the owner made since this view read its own may be selected.
        self._by_room = rooms_from(by_room, lambda _: True)

    # -- reads ------------------------------------------------------------------------------

    async def get_task(self, task_id: str) -> OrchestratedTask | None:
        await self.refresh()
        return self._tasks.get(task_id)

    async def get_tasks(self) -> list[OrchestratedTask]:
        await self.refresh()
        return list(self._tasks.values())

    async def get_recent_tasks(self, limit: int = 20) -> list[OrchestratedTask]:
        await self.refresh()
        newest = sorted(self._tasks.values(), key=lambda t: t.metadata.created_at, reverse=True)
        return newest[: max(0, limit)]

    async def search_tasks(self, query: str) -> list[OrchestratedTask]:
        await self.refresh()
        return rank_tasks(self._tasks.values(), query)

    async def get_current_task(self, room_id: str | None = None) -> OrchestratedTask | None:
        await self.refresh()
        return self._tasks.get(self.get_current_task_id(room_id) or "")

    def get_current_task_id(self, room_id: str | None = None) -> str | None:
        """As the service's: a room's own selection, else the last one if it is in that room
        (or in none)."""
        return current_in(self._current, self._by_room, room_id, self._room_of)

    def _room_of(self, task_id: str) -> str | bool | None:
        return room_of(self._tasks.get(task_id))

    def get_downstream(self, task_id: str) -> list[str]:
        graph: nx.DiGraph[str] = nx.DiGraph()
        for task in self._tasks.values():
            graph.add_node(task.id)
            graph.add_edges_from((up, task.id) for up in task.metadata.depends_on)
        if task_id not in graph:
            return []
        below = nx.descendants(graph, task_id)
        return [node for node in nx.topological_sort(graph) if node in below]

    def get_dependencies(self, task_id: str) -> list[str]:
        task = self._tasks.get(task_id)
        return list(task.metadata.depends_on) if task else []

    # -- control ----------------------------------------------------------------------------

    async def pause_task(self, task_id: str) -> None:
        await self._remote.pause_task(task_id)

    async def resume_task(self, task_id: str) -> None:
        await self._remote.resume_task(task_id)

    async def cancel_task(self, task_id: str) -> None:
        await self._remote.cancel_task(task_id)

    def start_task_execution(self, task_id: str) -> None:
        """Nothing to do here: the owner runs resumed tasks (``dagorch run --resume`` when no
        process owns the store)."""

    async def select_task(self, task_id: str | None, room_id: str | None = None) -> None:
        await self._read_selections()  # as last committed, not as first read
        self._current = select_in(self._current, self._by_room, task_id, room_id, self._room_of)
        await store_selections(self.store, self._current, self._by_room, room_id)

    # -- what only the owning process can do ---------------------------------------------------

    async def create_task(
        self,
        name: str,
        description: str = "",
        room_id: str | None = None,
        provider_id: str | None = None,
        *,
        depends_on: str | Iterable[str] = (),
    ) -> OrchestratedTask:
        raise RemoteControlError("Tasks are created by a pipeline run: dagorch run FILE")

    async def create_tasks(self, specs: Iterable[Mapping[str, Any]]) -> list[str]:
        raise RemoteControlError("Tasks are created by a pipeline run: dagorch run FILE")

    async def add_step(self, task_id: str, description: str) -> TaskStep:
        raise RemoteControlError("Steps are added by the process that owns the store")

    async def append_output(self, task_id: str, text: str) -> None:
        raise RemoteControlError("Output is written by the process that owns the store")
