"""The one writer: every change to a task goes through ``Core``, which checks it against the
lifecycle table, keeps the DAG and the scheduler in step, stores it, then emits its events.

Changes are applied to the service's own task objects synchronously (no ``await`` between reading
and writing a field), so concurrent callers cannot lose each other's updates. A ``Batch`` collects
the tasks and events of one operation; ``flush`` stores the tasks in one write and only then
delivers the events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import anyio

from hookspecs.models import (
    OrchestratedTask,
    TaskEvent,
    TaskEventType,
    TaskStatus,
    TaskUserStatus,
    now_ms,
)
from hookspecs.provider import AgentProvider
from orchestrator._batch import Batch
from orchestrator._commits import WriteBehind
from orchestrator._handle import ExecutionHandle
from orchestrator._inbox import LeaseKeeper, take_lease
from orchestrator._residency import Residency
from orchestrator._selection import (
    CURRENT_BY_ROOM_KEY,
    CURRENT_TASK_KEY,
    RoomSelections,
    rooms_from,
)
from orchestrator._table import TaskTable
from orchestrator.config import AgentOrchestratorPluginOptions, get_configured_options
from orchestrator.errors import ConfigurationError, TaskNotFoundError
from orchestrator.events import EventBus
from orchestrator.executor import Executor, LocalExecutor, make_executor
from orchestrator.graph import TaskGraph
from orchestrator.lifecycle import Trigger, next_status
from orchestrator.plugins import PluginHost
from orchestrator.scheduler import Scheduler
from orchestrator.store import SqliteStore, Store, default_store_path
from orchestrator.store._base import EventRecord, KeepTasks, SubmitTasks
from orchestrator.store._shared import SharedStore
from orchestrator.views import OUTPUT_LINES_KEPT

if TYPE_CHECKING:
    from orchestrator.service import AgentOrchestratorService

logger = logging.getLogger("dagorch.service")


_STATUS_EVENTS = {
    TaskStatus.PENDING: TaskEventType.PROGRESS,
    TaskStatus.RUNNING: TaskEventType.STARTED,
    TaskStatus.PAUSED: TaskEventType.PAUSED,
    TaskStatus.COMPLETED: TaskEventType.COMPLETED,
    TaskStatus.FAILED: TaskEventType.FAILED,
    TaskStatus.CANCELLED: TaskEventType.CANCELLED,
}
_PENDING, _RUNNING = TaskStatus.PENDING, TaskStatus.RUNNING
_FAILED, _CANCELLED = TaskStatus.FAILED, TaskStatus.CANCELLED
_EVENT_NAMES = {kind: kind.value for kind in TaskEventType}
"""Each event type's name: an enum's ``.value`` is a Python-level descriptor, read here for
every logged event."""


def _keep_tasks_of(store: Store) -> KeepTasks | None:
    """The store's ``keep_tasks``, when the class that wrote its ``put_tasks`` wrote that too: a
    subclass that replaced only ``put_tasks`` must see every write there. (An instance's own
    ``put_tasks`` is checked at each write, in ``Core._write_now``.)"""
    keep: KeepTasks | None = getattr(store, "keep_tasks", None)
    if keep is None:
        return None
    for klass in type(store).__mro__:
        if "put_tasks" in vars(klass):
            return keep if "keep_tasks" in vars(klass) else None
    return None


class Core:
    """State, storage and the write path shared by the service's methods."""

    def __init__(
        self,
        runtime: Any = None,
        *,
        options: AgentOrchestratorPluginOptions | None = None,
        store: Store | None = None,
    ) -> None:
        self.runtime = runtime
        self._given_options = options
        self.options = options or AgentOrchestratorPluginOptions()
        if store is None:
            chosen = options or get_configured_options() or self.options
            agent_id = str(getattr(runtime, "agent_id", "") or "")
            store = SqliteStore(chosen.store_path or default_store_path(agent_id))
        self._store: Store = store
        # Read once; a store written before the attribute existed is taken to suspend.
        self._store_suspends = getattr(store, "writes_at_once", False) is not True
        self._store_logs_events: bool = store.logs_events
        submit: SubmitTasks | None = getattr(store, "submit_tasks", None)
        self._behind = (
            None
            if submit is None
            else WriteBehind(
                submit,
                self._event_records,
                self._after_commit,
                lambda batch: self._scheduler.settled(batch.ended),
                self._spawn,
            )
        )
        self._bus = EventBus(logged=self._store_logs_events)
        self._keep_now: KeepTasks | None = (
            _keep_tasks_of(store)
            if self._behind is None and not self._store_suspends and not self._store_logs_events
            else None
        )
        """The store's ``keep_tasks`` when a write may be done at once (see ``_write_now``)."""
        self._store_own: dict[str, Any] = getattr(store, "__dict__", {})
        """The store's instance attributes (the live dict): a ``put_tasks`` set on the instance,
        even after start (a test injecting a fault), turns the write at once off."""
        self._executor: Executor = LocalExecutor()
        self._new_scope: Callable[..., anyio.CancelScope] = anyio.CancelScope
        """Makes cancel scopes: once open, the running backend's own class, made directly
        (anyio.CancelScope() looks the backend up at every call, 1 µs of a scope's 2.7)."""
        self._plugins = PluginHost()
        self._registry = self._plugins.registry
        self._plugins_hear_events = False
        self._graph = TaskGraph()
        self._table = TaskTable()
        self._tasks = self._table.tasks
        """The tasks in memory by id (changed only through ``_table``)."""
        self._residency = Residency(self, enabled=getattr(store, "keeps_copies", False) is True)
        self._scheduler = Scheduler(cast("AgentOrchestratorService", self))
        self._current_task_id: str | None = None
        self._current_by_room: RoomSelections = {}
        """Each room's own selection (the reference had one pointer for every room)."""
        self._opened = False
        self._opening: asyncio.Task[None] | None = None
        self._stopping = False
        self._background: set[asyncio.Task[Any]] = set()
        self._handles: dict[str, ExecutionHandle] = {}
        self._lease: str | None = None
        self._lease_keeper: LeaseKeeper | None = None
        """Our lease token when the store is shared between processes."""

    @property
    def agent_id(self) -> str:
        """The host runtime's agent id, or "" without a runtime."""
        return str(getattr(self.runtime, "agent_id", "") or "")

    @property
    def store(self) -> Store:
        """Where this service keeps its state."""
        return self._store

    # -- opening ----------------------------------------------------------------------------

    async def _ensure_open(self) -> None:
        if self._opened and not self._stopping:
            return
        if self._stopping:
            raise ConfigurationError("AgentOrchestratorService is stopped")
        if self._opening is None:
            self._opening = asyncio.get_running_loop().create_task(self._open())
        # Every concurrent first caller waits for the same opening.
        await asyncio.shield(self._opening)

    async def _open(self) -> None:
        self._new_scope = type(anyio.CancelScope())
        self.options = self._given_options or get_configured_options() or self.options
        if self.options.discover_plugins:
            self._plugins.load_entry_points()
        self._registry.register_all(self.options.providers, "options")
        self._connect_plugins()
        self._bus.handler_timeout = self._plugins.hook_timeout = self.options.handler_timeout
        options = self.options
        self._executor = make_executor(
            options.executor, options.scheduler_address, options.max_concurrency, self._origin_of
        )
        await self._executor.start()
        try:
            await self._store.open()
        except BaseException:
            await self._executor.stop()
            self._opening = None
            raise
        try:
            await self._load()
        except BaseException:
            await self._executor.stop()
            # A service that failed to open holds nothing (no lease, no open file, nothing
            # loaded), so a later call can try again from scratch.
            await self._let_go_of_lease()
            await self._store.close()
            self._table.clear()
            self._residency.clear()
            self._graph = TaskGraph()
            self._current_task_id = None
            self._current_by_room.clear()
            self._opening = None
            raise
        self._opened = True

    async def _last_event_seq(self) -> int | None:
        """The store's highest event number, when it can tell (``last_event_seq`` is optional:
        a store written before it existed has none)."""
        last = getattr(self._store, "last_event_seq", None)
        return None if last is None else cast("int | None", await last())

    async def _let_go_of_lease(self) -> None:
        """Stop renewing the lease, then give it up (if it is still ours)."""
        keeper, self._lease_keeper = self._lease_keeper, None
        if keeper is not None:
            await keeper.stop()
        if self._lease is not None and isinstance(self._store, SharedStore):
            with contextlib.suppress(Exception):
                await self._store.release_lease(self._lease)
        self._lease = None

    def _connect_plugins(self) -> None:
        """Hand events to plugins that observe them (once, and only if one does)."""
        if not self._plugins_hear_events and self._plugins.observes("on_task_event"):
            self._plugins_hear_events = True
            self._bus.on("task", self._tell_plugins)

    async def _tell_plugins(self, event: TaskEvent) -> None:
        await self._plugins.notify("on_task_event", event=event)

    async def _load(self) -> None:
        if isinstance(self._store, SharedStore):
            self._lease = await take_lease(self._store, getattr(self._store, "path", "the store"))
            self._lease_keeper = LeaseKeeper(self._store, self._lease)
        loaded = await self._store.load_tasks()
        self._take_in(loaded)
        # Numbering goes on from the log's, which followers check their cursors against.
        self._bus.seq = await self._last_event_seq() or 0
        current = await self._store.get_value(CURRENT_TASK_KEY)
        if isinstance(current, str) and current in self._tasks:
            self._current_task_id = current
        by_room = await self._store.get_value(CURRENT_BY_ROOM_KEY)
        self._current_by_room = rooms_from(by_room, self._knows)
        await self._store.prune_events(self.options.event_log_limit)
        if self.options.recovery != "none":
            await self._recover_interrupted(
                requeue=self.options.recovery == "requeue_retryable", spare_done=False
            )
        self._residency.let_go(loaded)

    def _take_in(self, stored: list[OrchestratedTask]) -> None:
        """Put tasks read from the store into memory, the graph and their groups, with the
        dependencies among the tasks in memory."""
        for task in stored:
            self._table.add(task)
            self._graph.add_task(task.id)
        for task in stored:
            for dep in task.metadata.depends_on:
                if dep in self._tasks:
                    self._graph.add_dependency(task.id, dep)
        self._residency.took_in(stored)

    async def _recover_interrupted(
        self, *, requeue: bool, spare_done: bool
    ) -> list[OrchestratedTask]:
        """Deal with tasks marked running that have no live run (a crash left them so):
        queue again those with attempts left when ``requeue``, pause the others. ``spare_done``
        leaves alone tasks the user marked done (the reference's rule for its own call)."""
        batch = Batch()
        recovered: list[OrchestratedTask] = []
        for task in self._tasks.values():
            md = task.metadata
            if md.status is not TaskStatus.RUNNING or self._scheduler.has_live_runner(task.id):
                continue
            if requeue and md.attempts <= md.retries:
                self._transition(batch, task, Trigger.REQUEUE)
                self._append_lines(batch, task, "Interrupted by a restart; queued again.")
            elif not (spare_done and md.user_status is TaskUserStatus.DONE):
                self._transition(batch, task, Trigger.PAUSE)
                self._append_lines(batch, task, "Paused due to restart.")
            else:
                continue
            recovered.append(task)
        await self._flush(batch)
        return recovered

    def _require_running_sync(self) -> None:
        if self._stopping:
            raise ConfigurationError("AgentOrchestratorService is stopped")
        if not self._opened:
            raise ConfigurationError(
                "AgentOrchestratorService is not started: use await AgentOrchestratorService.start()"
            )

    def _require(self, task_id: str) -> OrchestratedTask:
        task = self._lookup(task_id) if isinstance(task_id, str) else None
        if task is None:
            raise TaskNotFoundError(str(task_id))
        return task

    def _lookup(self, task_id: str) -> OrchestratedTask | None:
        """The task in memory (its group read back from the store if it had gone), or None."""
        return self._residency.bring_back(task_id)

    def _peek(self, task_id: str) -> OrchestratedTask | None:
        """The task for reading only (a copy from the store if it had gone), or None."""
        return self._residency.peek(task_id)

    def _knows(self, task_id: str) -> bool:
        """True when the task exists, in memory or in the store only."""
        return task_id in self._tasks or task_id in self._residency.gone

    async def _every_task(self) -> list[OrchestratedTask]:
        """Every task, oldest first."""
        return await self._residency.every_task()

    # -- the write path ---------------------------------------------------------------------

    def _transition(
        self,
        batch: Batch,
        task: OrchestratedTask,
        trigger: Trigger,
        *,
        error: str | None = None,
        event: TaskEventType | None = None,
        data: dict[str, Any] | None = None,
        propagate: bool = True,
    ) -> bool:
        """Apply ``trigger`` to ``task``; False when it changed nothing. Raises before any change."""
        md = task.metadata
        old = md.status
        new = next_status(task.id, old, trigger)
        if new is old:
            return False
        task_id = task.id
        # Plain dict writes: these fields are already valid, and this is the hottest write path.
        fields = md.__dict__
        fields["status"] = new
        if new.is_terminal:
            fields["completed_at"] = now_ms()
            batch.ended.append(task_id)
            if self._residency.enabled:
                self._residency.finished(task_id)
        elif new is _RUNNING and md.started_at is None:
            fields["started_at"] = now_ms()
        if error is not None:
            fields["error"] = error
        self._table.changed(task_id, new, error)
        if self._bus.recording:
            if data is None:
                data = {"status": new.value}
                if error is not None:
                    data["error"] = error
            batch.add(task, event or _STATUS_EVENTS[new], data)
        else:
            batch.tasks[task_id] = task
        if new is not _RUNNING or old is not _PENDING:
            # A start changes nothing the scheduler keeps: it made the run that starts.
            self._scheduler.status_changed(task, old, new)
        if propagate and (new is _FAILED or new is _CANCELLED) and self._has_dependents(task_id):
            for down in self._graph.descendants(task_id):
                self._end_from_upstream(batch, self._tasks[down], propagate=False)
        return True

    def _has_dependents(self, task_id: str) -> bool:
        return next(self._graph.downstream(task_id), None) is not None

    def _end_from_upstream(
        self, batch: Batch, task: OrchestratedTask, *, propagate: bool = True
    ) -> None:
        """End ``task`` if one of its upstream tasks failed or was cancelled, naming that task."""
        if task.metadata.status.is_terminal:
            return
        for up_id in self._graph.upstream(task.id):
            up = self._tasks[up_id]
            status = up.metadata.status
            if status is _FAILED or status is _CANCELLED:
                verb = "failed" if status is _FAILED else "was cancelled"
                trigger = Trigger.FAIL if status is _FAILED else Trigger.CANCEL
                error = f'Upstream task "{up.name}" ({up.id}) {verb}'
                self._transition(batch, task, trigger, error=error, propagate=propagate)
                return

    def _drop_dependency(self, task: OrchestratedTask, depends_on_id: str) -> None:
        """Take ``depends_on_id`` (listed) out of the task's dependencies, in memory."""
        had_edge = self._graph.remove_dependency(task.id, depends_on_id)
        task.metadata.depends_on.remove(depends_on_id)
        upstream = self._tasks.get(depends_on_id)
        # A stored task may list a dependency the graph lacks (an id listed twice, or one that
        # did not exist when the task was loaded): the scheduler never counted it.
        if had_edge and upstream is not None:
            self._scheduler.dependency_removed(task.id, upstream)

    def _append_lines(self, batch: Batch, task: OrchestratedTask, text: str) -> None:
        lines = [line for line in str(text).split("\n") if line.strip()]
        if not lines:
            return
        self._keep_lines(batch, task, lines)

    def _keep_lines(self, batch: Batch, task: OrchestratedTask, lines: list[str]) -> None:
        output = task.metadata.output
        output.extend(lines)
        if len(output) > OUTPUT_LINES_KEPT:
            del output[: len(output) - OUTPUT_LINES_KEPT]
        if self._bus.recording:
            batch.add(task, TaskEventType.OUTPUT, {"output": lines})
        else:
            batch.tasks[task.id] = task

    def _write_now(self, batch: Batch) -> bool:
        """Do ``_flush``'s work at once when nothing in it can suspend (a store that keeps the
        tasks in memory, and nobody to hear the batch's events); False, with nothing done,
        when it must be awaited through ``_flush`` (which tries it first too). The runner calls
        it itself before ``_flush``: that saves the hot path two coroutines a write.
        """
        keep = self._keep_now
        if (
            keep is None
            or "put_tasks" in self._store_own
            or (batch.events and self._bus.has_listeners)
        ):
            return False
        try:
            if batch.tasks:
                keep(batch.tasks.values())
        finally:
            if batch.ended:
                self._scheduler.settled(batch.ended)
        if self._residency.enabled:
            self._residency.let_go(batch.tasks.values(), batch.ended)
        return True

    async def _flush(self, batch: Batch, *, wait: bool = True) -> None:
        """Store the batch's tasks in one write, then deliver its events.

        With ``wait=False`` (the runner's own writes) and a store that can queue a write
        without waiting, the write is queued now and the caller goes on: the events are still
        delivered, and waiters for the task released, only once it is committed.
        """
        if self._write_now(batch):
            return
        behind = self._behind
        if behind is not None:
            if not wait:
                behind.add(batch)
                await behind.keep_up()
                return
            behind.send()  # earlier changes reach the store first
        stored = False
        try:
            if (
                self._store_suspends
                or self._store_logs_events
                or (batch.events and self._bus.has_listeners)
            ):
                # Shielded: once a change is made in memory, a cancelled caller (or a provider
                # whose scope is cancelled) must not stop it from being stored and announced.
                with self._new_scope(shield=True):
                    await self._store_and_deliver(batch)
            elif batch.tasks:
                # Nothing here suspends, so nothing can cut the write short: no need for the
                # shield (about 7 µs, a tenth of a small task's whole cost).
                await self._store.put_tasks(list(batch.tasks.values()))
            stored = True
        finally:
            # Waiters are released even when the store refused the write: the error reaches the
            # caller (or the runner's log), and nobody waits forever for a state already reached.
            if batch.ended:
                self._scheduler.settled(batch.ended)
        if stored and self._residency.enabled:
            self._residency.let_go(batch.tasks.values(), batch.ended)

    def _event_records(self, batch: Batch) -> list[EventRecord]:
        if not batch.events or not self._store_logs_events:
            return []
        now = batch.logged_at = now_ms()
        names = _EVENT_NAMES
        return [(names[kind], task_id, data, now) for kind, task_id, data in batch.events]

    async def _after_commit(self, batch: Batch, pending: Awaitable[int | None]) -> None:
        # Called by the commit follower only, a background task nobody cancels: no shield.
        stored = False
        try:
            await self._deliver(batch, await pending)
            stored = True
        finally:
            self._scheduler.settled(batch.ended)
        if stored:
            self._residency.let_go(batch.tasks.values(), batch.ended)

    async def _store_and_deliver(self, batch: Batch) -> None:
        records = self._event_records(batch)
        first: int | None = None
        if records:
            first = await self._store.put_tasks(list(batch.tasks.values()), records)
        elif batch.tasks:
            await self._store.put_tasks(list(batch.tasks.values()))
        await self._deliver(batch, first)

    async def _deliver(self, batch: Batch, first: int | None) -> None:
        """Announce the batch's events (stored already), numbered from ``first`` if logged."""
        events = batch.events
        if first is not None:
            self._bus.seq = max(self._bus.seq, first + len(events) - 1)
        if events and self._bus.has_listeners:
            bus, at = self._bus, batch.logged_at
            built = [
                bus.build(kind, task_id, data, None if first is None else first + index, at)
                for index, (kind, task_id, data) in enumerate(events)
            ]
            # Handed over together: events a handler's changes raise come after all of these.
            await bus.deliver(*built)

    def _spawn(self, awaitable: Any) -> None:
        async def guarded() -> None:
            try:
                await awaitable
            except Exception:
                logger.exception("Background work failed")

        job = asyncio.get_running_loop().create_task(guarded())
        self._background.add(job)
        job.add_done_callback(self._background.discard)

    def _origin_of(self, provider: AgentProvider) -> str:
        """Where a provider comes from: its plugin's distribution, or the module that defined
        it when it was given in code."""
        record = self._plugins.record_of(provider.id)
        if record is not None and record.distribution:
            return f"distribution {record.distribution} {record.version}"
        return f"module {type(provider).__module__} (given in code)"
