"""Which tasks the service keeps in memory, and which it has let go to its store.

With a store that keeps its own copy of every task (SQLite), a group of connected tasks
(``_groups``) leaves memory once all of its tasks are terminal and stored: only each task's final
status, error, group and place in creation order stay (a few hundred bytes), so a long-lived
service's memory follows the work in progress, not the work done. A read of a task that went is
served from the store without bringing it back; an operation that needs it in the graph (a new
dependency on it, a change, a delete) brings its whole group back, edges and all, so the graph in
memory is always exact for what it holds. With a store that keeps the service's own objects
(``MemoryStore``) nothing leaves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from hookspecs.models import OrchestratedTask, TaskStatus
from orchestrator._groups import TaskGroups

if TYPE_CHECKING:
    from orchestrator._core import Core

_Item = TypeVar("_Item")

Finished = tuple[TaskStatus, str | None, str]
"""What stays of a task that went: its final status, its error, and a member of its group."""


class Residency:
    """The service's tasks in memory and in the store only."""

    def __init__(self, core: Core, *, enabled: bool) -> None:
        self._core = core
        self.enabled = enabled
        """False when the store keeps the service's own objects: nothing ever leaves."""
        self.gone: dict[str, Finished] = {}
        """Tasks let go to the store, by id."""
        self._gone_groups: dict[str, list[str]] = {}
        """The members of each group that went, by its first member."""
        self._groups = TaskGroups()
        self._order: dict[str, int] = {}
        """Each task's place in creation order (memory alone loses it when a group returns)."""
        self._next_place = 0
        self._returned: set[str] = set()
        """Tasks whose group came back; it goes again at the next write if still finished (an
        operation that was refused, on a finished task, writes nothing to trigger it)."""
        self.reordered = False
        """True once a group came back, so memory no longer lists tasks in creation order."""

    # -- keeping the groups in step ----------------------------------------------------------

    def added(self, task: OrchestratedTask) -> None:
        """A task joined the service (created or loaded)."""
        if self.enabled:
            self._place(task.id)
            md = task.metadata
            self._groups.add(task.id, unfinished=not md.status.is_terminal, upstream=md.depends_on)

    def _place(self, task_id: str) -> None:
        if task_id not in self._order:
            self._order[task_id] = self._next_place
            self._next_place += 1

    def took_in(self, tasks: Iterable[OrchestratedTask]) -> None:
        """Tasks read back from the store (at start, or a group coming back): added, then joined
        along every dependency on a known task. Two passes, because the store's order need not
        put a task after the tasks it depends on (``add_dependency`` may point at a newer
        task), and a dependency missed here would split a group: its finished half could then
        leave memory while a task that still waits for it stays."""
        if not self.enabled:
            return
        tasks = list(tasks)
        for task in tasks:
            self._place(task.id)
            self._groups.add(task.id, unfinished=not task.metadata.status.is_terminal)
        groups = self._groups
        for task in tasks:
            for dep in task.metadata.depends_on:
                if dep in groups:
                    groups.join(task.id, dep)

    def linked(self, task_id: str, depends_on_id: str) -> None:
        """A dependency was added."""
        if self.enabled:
            self._groups.join(task_id, depends_on_id)

    def finished(self, task_id: str) -> None:
        """A task became terminal."""
        if self.enabled:
            self._groups.finished(task_id)

    def removed(self, task: OrchestratedTask) -> None:
        """A task was deleted (or its creation undone)."""
        if self.enabled and task.id in self._groups:
            self._groups.removed(task.id, unfinished=not task.metadata.status.is_terminal)
            self._order.pop(task.id, None)

    def clear(self) -> None:
        """Forget everything (a service that failed to open)."""
        self.gone.clear()
        self._gone_groups.clear()
        self._order.clear()
        self._returned.clear()
        self._groups = TaskGroups()
        self.reordered = False

    # -- letting go and bringing back --------------------------------------------------------

    def let_go(self, stored: Iterable[OrchestratedTask], ended: Iterable[str] = ()) -> None:
        """After a write of ``stored`` tasks that made ``ended`` terminal: let go every group
        all of whose members are now terminal and stored so."""
        if not self.enabled:
            return
        for task_id in ended:
            self._groups.stored(task_id)
        core = self._core
        candidates = list(stored)
        if self._returned:
            candidates.extend(t for t in map(core._tasks.get, self._returned) if t is not None)
            self._returned.clear()
        for task in candidates:
            if not task.metadata.status.is_terminal or task.id not in core._tasks:
                continue
            members = self._groups.finished_group(task.id)
            if members is None:
                continue
            anchor = members[0]
            went: list[str] = []
            for member in self._groups.drop(task.id):
                kept = core._table.discard(member)
                if kept is None:
                    continue  # deleted earlier; it was only a link
                self.gone[member] = (kept.metadata.status, kept.metadata.error, anchor)
                core._graph.remove_task(member, lambda _: True)
                went.append(member)
            self._gone_groups[anchor] = went

    def peek(self, task_id: str) -> OrchestratedTask | None:
        """The task for reading: from memory, else a copy read from the store (not kept)."""
        task = self._core._tasks.get(task_id)
        if task is None and task_id in self.gone:
            task = self._core._store.read_task(task_id)
        return task

    def bring_back(self, task_id: str) -> OrchestratedTask | None:
        """The task in memory, its whole group read back first if it had gone; None if unknown."""
        core = self._core
        task = core._tasks.get(task_id)
        if task is not None or task_id not in self.gone:
            return task
        members = self._gone_groups.pop(self.gone[task_id][2])
        back = [t for t in (core._store.read_task(m) for m in members) if t is not None]
        for member in members:
            del self.gone[member]
        core._take_in(back)
        self._returned.add(task_id)
        self.reordered = True
        return core._tasks.get(task_id)

    def final_states(self) -> tuple[dict[str, TaskStatus], dict[str, str]]:
        """Every task's status, and the error of each that has one, by id in creation order,
        without reading the store (or the tasks: their statuses are kept in the table)."""
        table = self._core._table
        statuses = table.statuses
        errors = table.errors
        if self.gone or self.reordered:
            went = self.gone.items()
            statuses = {**statuses, **{task_id: status for task_id, (status, _, _) in went}}
            errors = {**errors, **{task_id: error for task_id, (_, error, _) in went if error}}
            in_order = dict(self._in_creation_order(list(statuses.items()), lambda item: item[0]))
        else:
            # Memory alone, in creation order: copied whole, with no pair made per task (10,000
            # new tuples set off collections that scanned everything the run made).
            in_order = dict(statuses)
        if not errors:
            return in_order, {}
        return in_order, {task_id: errors[task_id] for task_id in in_order if errors.get(task_id)}

    async def every_task(self) -> list[OrchestratedTask]:
        """Every task, oldest first: those in memory and those gone (read from the store)."""
        core = self._core
        if not self.gone:
            return self._in_creation_order(list(core._tasks.values()), lambda task: task.id)
        before = dict(core._tasks)
        stored = await core._store.load_tasks()
        # Groups may go or come back while the store is read: by id, the freshest copy wins
        # (a task that went meanwhile is still, in ``before``, the object its last write
        # stored), and only tasks that still exist are listed, once each.
        latest = {task.id: task for task in stored if task.id in self.gone}
        latest.update(before)
        latest.update(core._tasks)
        every = [t for i, t in latest.items() if i in core._tasks or i in self.gone]
        return self._in_creation_order(every, lambda task: task.id)

    def _in_creation_order(
        self, items: list[_Item], task_id: Callable[[_Item], str]
    ) -> list[_Item]:
        # Memory alone is in creation order until something went or came back.
        if self.gone or self.reordered:
            order = self._order
            items.sort(key=lambda item: order.get(task_id(item), len(order)))
        return items
