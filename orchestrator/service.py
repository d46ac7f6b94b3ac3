"""``AgentOrchestratorService``: the one facade every front end calls.

It keeps the ElizaOS reference's methods, names and event payloads, with its bugs fixed: every
change is checked against the lifecycle table, concurrent updates are never lost, control reaches
the provider, and tasks form a DAG.
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Any, ClassVar, Self

from hookspecs.models import (
    OrchestratedTask,
    TaskEvent,
    TaskEventType,
    TaskResult,
    TaskStatus,
    TaskStep,
    TaskUserStatus,
    now_ms,
)
from hookspecs.provider import AgentProvider
from orchestrator import _inbox as inbox
from orchestrator._batch import Batch
from orchestrator._control import TaskControl
from orchestrator._creation import TaskCreation
from orchestrator._selection import (
    CURRENT_BY_ROOM_KEY,
    CURRENT_TASK_KEY,
    current_in,
    room_of,
    select_in,
    store_selections,
)
from orchestrator._snapshot import assign, snapshot
from orchestrator.config import AgentOrchestratorPluginOptions
from orchestrator.errors import (
    IllegalTransitionError,
    InvalidTaskError,
    StepNotFoundError,
    StoreError,
    TaskNotFoundError,
)
from orchestrator.events import ALL_EVENTS, EventFollower, EventHandler, EventStream
from orchestrator.lifecycle import Trigger, trigger_for
from orchestrator.plugins import PluginRecord
from orchestrator.store import Store
from orchestrator.store._shared import SharedStore
from orchestrator.views import (
    clamp_progress,
    rank_tasks,
    task_context_text,
)

logger = logging.getLogger("dagorch.service")


class AgentOrchestratorService(TaskCreation, TaskControl):
    """Creates tasks, wires them into a DAG, runs them on providers and reports what happens.

    Start it with ``await AgentOrchestratorService.start()`` (an ElizaOS runtime, options and a
    store are all optional) and stop it with ``await service.stop()``, or use it as
    ``async with await AgentOrchestratorService.start() as service:``.
    """

    service_type: ClassVar[str] = "CODE_TASK"
    _inbox: asyncio.Task[None] | None = None

    def __init__(
        self,
        runtime: Any = None,
        *,
        options: AgentOrchestratorPluginOptions | None = None,
        store: Store | None = None,
    ) -> None:
        super().__init__(runtime, options=options, store=store)
        self._inbox_stop = asyncio.Event()

    capability_description: ClassVar[str] = "Orchestrates tasks across registered agent providers"

    @classmethod
    async def start(
        cls,
        runtime: Any = None,
        *,
        options: AgentOrchestratorPluginOptions | None = None,
        store: Store | None = None,
    ) -> Self:
        """A started service: options default to the configured ones, the store to SQLite in
        ``$DAGORCH_HOME`` (else ``.dagorch/`` in the current folder)."""
        service = cls(runtime, options=options, store=store)
        await service._ensure_open()
        return service

    async def _ensure_open(self) -> None:
        opening = not self._opened
        await super()._ensure_open()
        if (
            opening
            and self._inbox is None
            and self._lease_keeper is not None
            and isinstance(self._store, SharedStore)
        ):
            self._inbox = asyncio.get_running_loop().create_task(
                inbox.serve(self, self._store, self._inbox_stop, self._lease_keeper.lost),
                name="dagorch-inbox",
            )

    async def stop(self) -> None:
        """Stop every run; tasks that were running are left paused, never marked running."""
        if self._stopping:
            return
        await self._ensure_open()
        self._stopping = True
        try:
            if self._inbox is not None:
                self._inbox_stop.set()
                await asyncio.gather(self._inbox, return_exceptions=True)
            await self._scheduler.stop()
            await self._executor.stop()
            batch = Batch()
            running = TaskStatus.RUNNING
            for task_id in [t for t, status in self._table.statuses.items() if status is running]:
                task = self._tasks[task_id]
                self._transition(batch, task, Trigger.PAUSE)
                self._append_lines(batch, task, "Paused due to shutdown.")
            await self._flush(batch)
            if self._behind is not None:
                await self._behind.drained()
            if self._background:
                await asyncio.gather(*self._background, return_exceptions=True)
            await self._store.prune_events(self.options.event_log_limit)
        except StoreError:
            # The store refuses (a full disk, or another orchestrator owns the file now):
            # stopping still releases everything; what the store holds stays as it was.
            logger.exception("Could not store the final state while stopping")
        finally:
            await self._let_go_of_lease()
            self._bus.close()
            await self._store.close()

    async def __aenter__(self) -> Self:
        await self._ensure_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def register_provider(self, provider: AgentProvider) -> None:
        """Make ``provider`` available to tasks (an id already taken is refused)."""
        self._registry.register(provider, "code")

    def register_plugin(self, plugin: object, name: str | None = None) -> PluginRecord:
        """Add a plugin given in code: an object or module with ``@hookimpl`` functions (its
        providers are registered, its observer hooks called). A broken one raises
        ``PluginError``."""
        record = self._plugins.add_plugin(plugin, name)
        self._connect_plugins()
        return record

    @property
    def plugins(self) -> list[PluginRecord]:
        """What loading each plugin gave, entry points first, in load order."""
        return list(self._plugins.records)

    @property
    def provider_ids(self) -> list[str]:
        """The ids of every registered provider."""
        return self._registry.ids

    # -- current task -----------------------------------------------------------------------

    def get_current_task_id(self, room_id: str | None = None) -> str | None:
        """The id of the selected task. With ``room_id``, that room's: its own selection, else
        the last selection made anywhere if that task is in this room (or in none); without
        it, the last selection made anywhere (the reference's one pointer)."""
        return current_in(self._current_task_id, self._current_by_room, room_id, self._room_of)

    def _room_of(self, task_id: str) -> str | bool | None:
        return room_of(self._peek(task_id))

    def set_current_task(self, task_id: str | None, room_id: str | None = None) -> None:
        """Select a task (None clears the selection), for ``room_id`` when given; emits
        ``task:progress {"selected": True}``."""
        self._require_running_sync()
        if task_id and not self._knows(task_id):
            raise TaskNotFoundError(str(task_id))
        self._select(task_id or None, room_id)
        # Stored, then announced, in the background: a state change is committed before anyone
        # hears of it. ``await select_task(...)`` does the same and waits for it.
        self._spawn(self._store_current_task(task_id or None, room_id))

    async def select_task(self, task_id: str | None, room_id: str | None = None) -> None:
        """Like ``set_current_task``, returning once the selection is stored and announced."""
        await self._ensure_open()
        if task_id and not self._knows(task_id):
            raise TaskNotFoundError(str(task_id))
        self._select(task_id or None, room_id)
        await self._store_current_task(task_id or None, room_id)

    def _select(self, task_id: str | None, room_id: str | None) -> None:
        self._current_task_id = select_in(
            self._current_task_id, self._current_by_room, task_id, room_id, self._room_of
        )

    async def _store_current_task(self, task_id: str | None, room_id: str | None = None) -> None:
        await store_selections(self._store, self._current_task_id, self._current_by_room, room_id)
        batch = Batch()
        if task_id:
            batch.events.append((TaskEventType.PROGRESS, task_id, {"selected": True}))
        await self._flush(batch)

    async def get_current_task(self, room_id: str | None = None) -> OrchestratedTask | None:
        """The selected task (of ``room_id`` when given, see ``get_current_task_id``), if any."""
        await self._ensure_open()
        current = self.get_current_task_id(room_id)
        return await self.get_task(current) if current else None

    # -- creating and reading ---------------------------------------------------------------

    async def get_task(self, task_id: str) -> OrchestratedTask | None:
        """A copy of the task, or None."""
        await self._ensure_open()
        task = self._peek(task_id) if isinstance(task_id, str) else None
        return snapshot(task) if task is not None else None

    async def get_tasks(self) -> list[OrchestratedTask]:
        """Copies of every task, oldest first."""
        await self._ensure_open()
        return [snapshot(task) for task in await self._every_task()]

    async def get_recent_tasks(self, limit: int = 20) -> list[OrchestratedTask]:
        """The newest ``limit`` tasks, newest first."""
        await self._ensure_open()
        newest_first = list(reversed(await self._every_task()))
        newest_first.sort(key=lambda t: t.metadata.created_at, reverse=True)
        return [snapshot(task) for task in newest_first[: max(0, limit)]]

    async def get_tasks_by_status(self, status: TaskStatus | str) -> list[OrchestratedTask]:
        """Copies of the tasks with this status, oldest first."""
        await self._ensure_open()
        wanted = TaskStatus(status)
        # Only finished tasks are ever let go to the store.
        tasks = await self._every_task() if wanted.is_terminal else self._tasks.values()
        return [snapshot(t) for t in tasks if t.metadata.status is wanted]

    async def search_tasks(self, query: str) -> list[OrchestratedTask]:
        """Tasks matching ``query``: exact id, exact name, prefix, then substring matches."""
        await self._ensure_open()
        return [snapshot(task) for task in rank_tasks(await self._every_task(), query)]

    async def get_task_output(self, task_id: str) -> list[str]:
        """All of the task's output: the whole history where the store logs events (within the
        log's retention), else the newest 500 lines the task keeps."""
        await self._ensure_open()
        task = self._peek(task_id) if isinstance(task_id, str) else None
        if task is None:
            raise TaskNotFoundError(str(task_id))
        history = await self._store.read_output(task_id)
        window = list(task.metadata.output)
        if history is None or (window and history[-len(window) :] != window):
            # No log, or the log was pruned past what the task still keeps: the window is more.
            return window
        return history

    async def get_task_context(self, room_id: str | None = None) -> str:
        """Text describing the selected (or newest) task, for an agent's prompt; with
        ``room_id``, that room's selected (or newest) task."""
        await self._ensure_open()
        current = self._peek(self.get_current_task_id(room_id) or "")
        if current is None:
            newest = max(
                (
                    task
                    for task in reversed(await self._every_task())
                    if room_id is None or task.room_id == room_id
                ),
                key=lambda t: t.metadata.created_at,
                default=None,
            )
            return task_context_text(newest, False)
        return task_context_text(current, True)

    # -- updating ---------------------------------------------------------------------------

    async def update_task_status(self, task_id: str, status: TaskStatus | str) -> None:
        """Move the task to ``status`` if the lifecycle table allows it."""
        await self._ensure_open()
        task = self._require(task_id)
        target = TaskStatus(status)
        current = task.metadata.status
        if target is current:
            return
        if target is TaskStatus.RUNNING and current is TaskStatus.PAUSED:
            await self.resume_task(task_id)
            return
        if target is TaskStatus.RUNNING:
            raise IllegalTransitionError(
                task_id,
                current.value,
                Trigger.START.value,
                "a task starts running only through start_task_execution() or run()",
            )
        if target is TaskStatus.PENDING and self._scheduler.run_of(task_id) is not None:
            raise IllegalTransitionError(
                task_id,
                current.value,
                Trigger.REQUEUE.value,
                "its provider is still running; pause or cancel it instead",
            )
        batch = Batch()
        self._transition(batch, task, trigger_for(current, target))
        await self._flush(batch)

    async def update_task_progress(self, task_id: str, progress: float) -> None:
        """Set progress in percent (clamped to 0..100; NaN counts as 0)."""
        await self._ensure_open()
        task = self._require(task_id)
        value = clamp_progress(progress)
        assign(task.metadata, progress=value)
        batch = Batch()
        batch.add(task, TaskEventType.PROGRESS, {"progress": value})
        await self._flush(batch)

    async def append_output(self, task_id: str, text: str) -> None:
        """Append the non-blank lines of ``text``; the newest 500 lines are kept."""
        await self._ensure_open()
        task = self._require(task_id)
        batch = Batch()
        self._append_lines(batch, task, text)
        await self._flush(batch)

    async def add_step(self, task_id: str, description: str) -> TaskStep:
        """Add a pending step to the task's plan."""
        await self._ensure_open()
        task = self._require(task_id)
        if not isinstance(description, str) or not description.strip():
            raise InvalidTaskError("Step description must not be blank (field: description)")
        step = TaskStep.create(description.strip())
        task.metadata.steps.append(step)
        batch = Batch()
        batch.add(task, TaskEventType.PROGRESS, {"stepAdded": step.to_dict()})
        await self._flush(batch)
        return step.model_copy()

    async def update_step(
        self,
        task_id: str,
        step_id: str,
        status: TaskStatus | str,
        output: str | None = None,
    ) -> None:
        """Set a step's status (and output); progress becomes the share of completed steps."""
        await self._ensure_open()
        task = self._require(task_id)
        new_status = TaskStatus(status)
        steps = task.metadata.steps
        step = next((s for s in steps if s.id == step_id), None)
        if step is None:
            raise StepNotFoundError(task_id, step_id)
        step.status = new_status
        if output:  # as the reference: an empty output keeps the step's earlier one
            step.output = output
        done = sum(1 for s in steps if s.status is TaskStatus.COMPLETED)
        assign(task.metadata, progress=clamp_progress(done / len(steps) * 100))
        batch = Batch()
        data = {
            "progress": task.metadata.progress,
            "stepId": step_id,
            "stepStatus": new_status.value,
        }
        batch.add(task, TaskEventType.PROGRESS, data)
        await self._flush(batch)

    async def set_task_result(self, task_id: str, result: TaskResult) -> None:
        """Finish the task with ``result``: completed on success, failed otherwise."""
        await self._ensure_open()
        task = self._require(task_id)
        if not isinstance(result, TaskResult):
            raise InvalidTaskError(f"result must be a TaskResult, not {type(result).__name__}")
        batch = Batch()
        self._record_result(batch, task, result.model_copy(deep=True))
        await self._flush(batch)

    async def set_task_error(self, task_id: str, error: str) -> None:
        """Fail the task with ``error``."""
        await self._ensure_open()
        task = self._require(task_id)
        batch = Batch()
        self._transition(batch, task, Trigger.FAIL, error=str(error), data={"error": str(error)})
        await self._flush(batch)

    async def set_user_status(self, task_id: str, user_status: TaskUserStatus | str) -> None:
        """Mark the task open or done for the user (independent of its execution status)."""
        await self._ensure_open()
        task = self._require(task_id)
        value = TaskUserStatus(user_status)
        assign(task.metadata, user_status=value, user_status_updated_at=now_ms())
        batch = Batch()
        batch.add(task, TaskEventType.PROGRESS, {"userStatus": value.value})
        await self._flush(batch)

    async def set_task_sub_agent_type(self, task_id: str, provider_id: str) -> None:
        """Move the task to another registered provider (used from its next attempt)."""
        await self._ensure_open()
        task = self._require(task_id)
        provider = self._registry.get(provider_id)
        assign(
            task.metadata,
            provider_id=provider.id,
            sub_agent_type=provider.id,
            provider_label=provider.label,
        )
        batch = Batch()
        batch.add(task, TaskEventType.MESSAGE, {"providerId": provider.id})
        self._append_lines(batch, task, f"Provider: {provider.label} ({provider.id})")
        self._scheduler.provider_changed(task_id)
        await self._flush(batch)

    async def rename_task(self, task_id: str, name: str) -> None:
        """Rename the task; a blank or unchanged name is ignored."""
        await self._ensure_open()
        task = self._require(task_id)
        if not isinstance(name, str):
            raise InvalidTaskError(f"Task name must be a string, not {type(name).__name__}")
        new_name = name.strip()
        if not new_name or new_name == task.name:
            return
        assign(task, name=new_name)
        batch = Batch()
        batch.add(task, TaskEventType.MESSAGE, {"message": f"Renamed task to: {new_name}"})
        await self._flush(batch)

    async def delete_task(self, task_id: str) -> None:
        """Delete the task (stopping its run); refused while unfinished tasks depend on it."""
        await self._ensure_open()
        self._require(task_id)
        dependents = [self._tasks[d] for d in self.get_dependents(task_id)]
        self._graph.remove_task(task_id, lambda d: self._tasks[d].metadata.status.is_terminal)
        deleted = self._table.discard(task_id)
        if deleted is not None:
            self._residency.removed(deleted)
        self._scheduler.forget(task_id)
        self._handles.pop(task_id, None)
        if self._behind is not None:
            self._behind.send()  # a queued write of the task must not bring it back
        await self._store.delete_task(task_id)
        cleaned = Batch()
        for held in dependents:
            # While the store deleted, a (finished) dependent may have gone to the store, whose
            # copy is ``held``'s state and is cleaned through it, or come back as a new object,
            # or been deleted too (then it must not be written back).
            dependent = self._tasks.get(held.id)
            if dependent is None and held.id in self._residency.gone:
                dependent = held
            if dependent is not None and task_id in dependent.metadata.depends_on:
                dependent.metadata.depends_on.remove(task_id)
                cleaned.touch(dependent)
        await self._flush(cleaned)
        if self._current_task_id == task_id:
            self._current_task_id = None
            await self._store.set_value(CURRENT_TASK_KEY, None)
        rooms = [room for room, chosen in self._current_by_room.items() if chosen == task_id]
        if rooms:
            for room in rooms:
                self._current_by_room[room] = None
            await self._store.set_value(CURRENT_BY_ROOM_KEY, dict(self._current_by_room))
        batch = Batch()
        batch.events.append((TaskEventType.MESSAGE, task_id, {"deleted": True}))
        await self._flush(batch)

    # -- events -----------------------------------------------------------------------------

    def on(self, event: str | TaskEventType, handler: EventHandler) -> None:
        """Call ``handler`` (sync or async) for ``event``, or for every event with ``"task"``."""
        self._bus.on(event, handler)

    def off(self, event: str | TaskEventType, handler: EventHandler) -> None:
        """Remove a handler added with ``on``."""
        self._bus.off(event, handler)

    def stream_events(self, event: str | TaskEventType = ALL_EVENTS) -> EventStream:
        """An async iterator over the events emitted from now on."""
        return self._bus.stream(event)

    async def read_events(self, after: int = 0, limit: int = 1000) -> list[TaskEvent]:
        """Logged events numbered above ``after``, oldest first (empty on a store without a log)."""
        await self._ensure_open()
        return await self._store.read_events(after, limit)

    def follow_events(
        self, after: int = 0, event: str | TaskEventType = ALL_EVENTS
    ) -> EventFollower:
        """Replay logged events numbered above ``after``, then follow live ones.

        Keep ``follower.cursor`` to resume after a restart:
        ``async for event in service.follow_events(after=cursor): ...``
        """
        self._require_running_sync()
        return self._bus.follow(self._store.read_events, after, event, self._last_event_seq)
