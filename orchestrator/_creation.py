"""Creating tasks, one or many: checked, built, added to the graph and stored in one write.

A mixin of ``AgentOrchestratorService``.
"""

from __future__ import annotations

import inspect
import logging
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from pydantic import ValidationError

from hookspecs.models import OrchestratedTask, OrchestratedTaskMetadata, TaskEventType, now_ms
from hookspecs.provider import AgentProvider
from orchestrator._batch import Batch
from orchestrator._collector import collections_paused
from orchestrator._core import Core
from orchestrator._selection import CURRENT_BY_ROOM_KEY, CURRENT_TASK_KEY
from orchestrator._snapshot import TaskMold, snapshot
from orchestrator.config import AgentOrchestratorPluginOptions
from orchestrator.errors import (
    DagorchError,
    DuplicateTaskError,
    InvalidTaskError,
    UnknownDependencyError,
)
from orchestrator.views import DEFAULT_TAGS

logger = logging.getLogger("dagorch.service")


class TaskCreation(Core):
    """The creating methods of the service."""

    async def _world_id(self, room_id: str | None) -> str | None:
        runtime = self.runtime
        if runtime is None:
            return None
        get_room = getattr(runtime, "get_room", None)
        if room_id and callable(get_room):
            room = await get_room(room_id)
            world = getattr(room, "world_id", None) if room is not None else None
            if world:
                return str(world)
        return self.agent_id or None

    async def create_task(
        self,
        name: str,
        description: str = "",
        room_id: str | None = None,
        provider_id: str | None = None,
        *,
        depends_on: str | Iterable[str] = (),
        task_id: str | None = None,
        retries: int | None = None,
        timeout: float | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Iterable[str] | None = None,
        working_directory: str | None = None,
    ) -> OrchestratedTask:
        """Create a pending task on a provider, after the tasks in ``depends_on``.

        The provider is ``provider_id``, else the one named by the options' environment variable,
        else the default. Inside a ``run()`` the new task is scheduled at once. Nothing is stored
        when an argument is refused.
        """
        await self._ensure_open()
        world_id = await self._world_id(room_id) if self.runtime is not None else None
        spec = {
            "name": name,
            "description": description,
            "room_id": room_id,
            "provider_id": provider_id,
            "depends_on": depends_on,
            "task_id": task_id,
            "retries": retries,
            "timeout": timeout,
            "params": params,
            "tags": tags,
            "working_directory": working_directory,
            "world_id": world_id,
        }
        new = self._prepare_task({}, _Choices(self.options, now_ms()), spec)
        await self._store_new_tasks([new], self._insert_tasks([new]))
        return snapshot(new.task)

    async def create_tasks(self, specs: Iterable[Mapping[str, Any]]) -> list[str]:
        """Create many tasks at once, each spec holding ``create_task``'s arguments by name.

        A spec may depend on tasks created before it in the same call. Every spec is checked
        before anything is stored, and all are stored in one write; an error carries a note naming
        the spec. Returns the new tasks' ids in order. This is how pipelines are loaded.
        """
        await self._ensure_open()
        prepared: dict[str, _New] = {}
        world_ids: list[str | None] = []
        if self.runtime is not None:
            specs = [dict(spec) for spec in specs]
            world_ids = [await self._world_id(spec.get("room_id")) for spec in specs]
        # Tasks created together are created at the same moment.
        chosen = _Choices(self.options, now_ms())
        # One pause for building and inserting: the collection that follows it scans the new
        # tasks once (two pauses made two such collections).
        with collections_paused():
            for index, spec in enumerate(specs):
                try:
                    if world_ids:
                        spec = {**spec, "world_id": world_ids[index]}
                    new = self._prepare_task(prepared, chosen, spec)
                except TypeError as exc:
                    raise InvalidTaskError(f"tasks[{index}]: {exc}") from None
                except DagorchError as exc:
                    exc.add_note(f"in tasks[{index}]")
                    raise
                prepared[new.id] = new
            made = list(prepared.values())
            batch = self._insert_tasks(made)
        await self._store_new_tasks(made, batch)
        return list(prepared)

    def _prepare_task(
        self, pending: Mapping[str, object], chosen: _Choices, spec: Mapping[str, Any]
    ) -> _New:
        """A checked new task, not yet added, from ``spec`` (``create_task``'s arguments by
        name, plus ``world_id``; ``TypeError`` names a field it does not know); ``pending``
        holds tasks about to be added with it, ``chosen`` what the call has decided once for
        all of them."""
        if not _SPEC_FIELDS.issuperset(spec):
            unknown = sorted(str(key) for key in spec if key not in _SPEC_FIELDS)
            raise TypeError(f"unknown field {unknown[0]!r} (known: {', '.join(_SPEC_ORDER)})")
        get = spec.get
        name = get("name")
        description = get("description", "")
        room_id = get("room_id")
        provider_id = get("provider_id")
        task_id = get("task_id")
        retries = get("retries")
        timeout = get("timeout")
        params = get("params")
        tags = get("tags")
        working_directory = get("working_directory")
        world_id = get("world_id")
        if not isinstance(name, str) or not name.strip():
            raise InvalidTaskError("Task name must be a non-empty string (field: name)")
        if task_id is not None:
            if not isinstance(task_id, str) or not task_id.strip():
                raise InvalidTaskError("Task id must be a non-empty string (field: task_id)")
            if self._knows(task_id) or task_id in pending:
                raise DuplicateTaskError(task_id)
            if self._scheduler.run_of(task_id) is not None:
                raise InvalidTaskError(
                    f"Task id {task_id!r} belongs to a deleted task whose run is still stopping"
                )
        # A str subclass given as an id is stored as a plain str, as validation would store it.
        new_id = (
            (task_id if type(task_id) is str else str.__str__(task_id))
            if task_id
            else str(uuid.uuid4())
        )
        options = self.options
        provider = chosen.providers.get(provider_id)
        if provider is None:
            provider = chosen.providers[provider_id] = self._registry.select(
                provider_id, options.active_provider_env_var, options.default_provider_id
            )
        upstream = _task_ids(get("depends_on", ()), "depends_on")
        for dep in upstream:
            if dep not in pending and self._lookup(dep) is None:
                raise UnknownDependencyError(new_id, dep)
        now = chosen.now
        simple = (
            chosen.simple_defaults
            and type(description) is str
            and (room_id is None or type(room_id) is str)
            and tags is None
            and retries is None
            and timeout is None
            and not params
            and working_directory is None
        )
        try:
            if simple:
                task = chosen.mold(provider).task(
                    new_id, name, description, list(DEFAULT_TAGS), room_id, world_id, upstream
                )
                return _New(new_id, task, upstream, room_id)
            task = OrchestratedTask(
                id=new_id,
                name=name,
                description=description,
                tags=list(DEFAULT_TAGS if tags is None else tags),
                room_id=room_id,
                world_id=world_id,
                metadata=OrchestratedTaskMetadata(
                    working_directory=working_directory or chosen.working_directory(),
                    provider_id=provider.id,
                    sub_agent_type=provider.id,
                    provider_label=provider.label,
                    created_at=now,
                    user_status_updated_at=now,
                    depends_on=upstream,
                    retries=options.default_retries if retries is None else retries,
                    timeout=options.default_timeout if timeout is None else timeout,
                    params=dict(params or {}),
                ),
            )
        except ValidationError as exc:
            raise InvalidTaskError(_describe(exc)) from None
        return _New(new_id, task, upstream, task.room_id)

    async def _store_new_tasks(self, made: list[_New], batch: Batch) -> None:
        """Store the tasks ``_insert_tasks`` added (its ``batch``), in one write; taken back
        out if the store refuses them."""
        try:
            if not self._write_now(batch):
                # The write may suspend, and meanwhile the tasks may be wanted (a dependency
                # made on one, a run() begun): none starts before the store has taken them.
                ids = [new.id for new in made]
                self._scheduler.hold_until_stored(ids)
                try:
                    await self._flush(batch)
                finally:
                    self._scheduler.stored(ids)
        except Exception:
            # The store refused them, so they are not created: take them back out (newest
            # first). A cancellation is not a refusal: the write may well have committed.
            refused = {new.id for new in made}
            changed = Batch()
            for new in reversed(made):
                # Tasks made to depend on it while the write was under way (add_dependency, a
                # concurrent create) no longer do: it was not created.
                for down in list(self._graph.downstream(new.id)):
                    dependent = self._tasks.get(down)
                    if dependent is not None and new.id in dependent.metadata.depends_on:
                        self._drop_dependency(dependent, new.id)
                        if down not in refused:
                            deps = list(dependent.metadata.depends_on)
                            changed.add(dependent, TaskEventType.MESSAGE, {"dependsOn": deps})
                if self._table.discard(new.id) is not None:
                    self._residency.removed(new.task)
                self._graph.remove_task(new.id, lambda _: True)
                self._scheduler.forget(new.id)
            if changed.tasks:
                await self._store_dropped_dependencies(changed)
            raise
        if self._current_task_id is None and made:
            self._current_task_id = made[0].id
            await self._store.set_value(CURRENT_TASK_KEY, made[0].id)
        # A room's first task becomes its selection, as the first task of all does.
        rooms = self._current_by_room
        firsts = {
            new.room_id: new.id
            for new in reversed(made)
            if new.room_id is not None and rooms.get(new.room_id) is None
        }
        if firsts:
            rooms.update(firsts)
            await self._store.set_value(CURRENT_BY_ROOM_KEY, dict(rooms))
        if self._scheduler.auto_wanting():
            self._scheduler.want([new.id for new in made])

    async def _store_dropped_dependencies(self, batch: Batch) -> None:
        """Store the tasks whose dependencies a refused creation dropped, if the store takes
        them now (its refusal is what the caller hears of; this one is only logged)."""
        try:
            await self._flush(batch)
        except Exception:
            logger.exception("Could not store the dependencies dropped by a refused creation")

    def _insert_tasks(self, made: list[_New]) -> Batch:
        """Add checked tasks to the graph and to memory; the batch that stores them."""
        batch = Batch()
        recording = self._bus.recording
        pending: set[str] = set()
        residency, graph, changed = self._residency, self._graph, batch.tasks
        statuses = self._table.statuses
        self._table.add_new([new.id for new in made], [new.task for new in made])
        # What each task's insertion needs is read from ``made``, not from the task: built a
        # while ago, the task has left the caches when 10,000 are created at once.
        for task_id, task, upstream, _ in made:
            if residency.gone:
                for dep in upstream:
                    # Brought back if it went while this call waited (it was checked before).
                    self._lookup(dep)
            # _prepare_task checked the dependencies: they exist, once each.
            graph.add_checked_task(task_id, upstream)
            if residency.enabled:
                residency.added(task)
            if recording:
                data = {"name": task.name, "providerId": task.metadata.provider_id}
                batch.add(task, TaskEventType.CREATED, data)
            else:
                changed[task_id] = task
            # Only dependencies outside ``pending`` (this call's tasks that did not end on
            # insertion) may have ended: the check is skipped when every one is in it.
            if upstream and not pending.issuperset(upstream):
                self._end_from_upstream(batch, task)
            if not statuses[task_id].is_terminal:
                pending.add(task_id)
        return batch

    async def create_code_task(
        self,
        name: str,
        description: str,
        room_id: str | None = None,
        sub_agent_type: str = "eliza",
    ) -> OrchestratedTask:
        """The reference's alias: ``create_task`` with the sub-agent type as provider id."""
        return await self.create_task(name, description, room_id, sub_agent_type)


class _New(NamedTuple):
    """A task checked and built, with what inserting and storing it reads (kept here rather
    than read back from the task: 10,000 tasks later, it has left the caches)."""

    id: str
    task: OrchestratedTask
    upstream: list[str]
    room_id: str | None


class _Choices:
    """What one create call decides once for all its tasks: the provider for each provider id
    asked for, the working directory of tasks that name none, and the molds that build tasks
    needing no validation."""

    __slots__ = ("_directory", "_molds", "_options", "now", "providers", "simple_defaults")

    def __init__(self, options: AgentOrchestratorPluginOptions, now: int) -> None:
        self._options = options
        self._directory: str | None = None
        self._molds: dict[str, TaskMold] = {}
        self.providers: dict[str | None, AgentProvider] = {}
        self.now = now
        """The creation time of every task of the call (epoch ms)."""
        self.simple_defaults = (
            type(options.default_retries) is int and options.default_timeout is None
        )
        """True when the options' defaults need no validation (see ``TaskMold``)."""

    def working_directory(self) -> str:
        """``options.get_working_directory()``, called once per create call."""
        if self._directory is None:
            self._directory = self._options.get_working_directory()
        return self._directory

    def mold(self, provider: AgentProvider) -> TaskMold:
        """The mold of the call's tasks that run on ``provider`` with the options' defaults."""
        mold = self._molds.get(provider.id)
        if mold is None:
            mold = self._molds[provider.id] = TaskMold(
                {
                    "working_directory": self.working_directory(),
                    "provider_id": provider.id,
                    "sub_agent_type": provider.id,
                    "provider_label": provider.label,
                    "created_at": self.now,
                    "user_status_updated_at": self.now,
                    "retries": self._options.default_retries,
                }
            )
        return mold


def _task_ids(given: str | Iterable[str], field: str) -> list[str]:
    """Task ids from one id or an iterable of ids, without repeats; anything else is refused."""
    if isinstance(given, str):
        given = [given]
    try:
        ids = list(dict.fromkeys(given))
    except TypeError:
        raise InvalidTaskError(f"{field} must be a list of task ids") from None
    for task_id in ids:
        if type(task_id) is not str and not isinstance(task_id, str):
            raise InvalidTaskError(f"{field} must be a list of task ids (strings)")
    return ids


_SPEC_ORDER = (
    *(name for name in inspect.signature(TaskCreation.create_task).parameters if name != "self"),
    "world_id",
)
_SPEC_FIELDS = frozenset(_SPEC_ORDER)
"""What a task spec may hold: ``create_task``'s arguments, and the world it belongs to."""


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        path = ".".join(str(part) for part in error["loc"])
        problems.append(f"{path}: {error['msg']}")
    return "Invalid task: " + "; ".join(problems)
