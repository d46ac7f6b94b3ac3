"""Groups of connected tasks and how many of each are unfinished, so that finished work can
leave memory a whole group at a time.

A group is a set of tasks joined by dependencies (a weakly connected part of the DAG, such as
one pipeline run). Once every task of a group is terminal, nothing that is still going can depend
on it through the group, so the service may let the whole group go to its store and read it back
whole, edges and all, when somebody needs it again. Groups are kept as a union-find forest with
the members listed at each root; removing a dependency never splits a group (keeping two parts
together is only ever more cautious).
"""

from __future__ import annotations

from collections.abc import Iterable


class TaskGroups:
    """Which tasks belong together, and how many in each group are unfinished."""

    def __init__(self) -> None:
        self._parent: dict[str, str] = {}
        self._members: dict[str, list[str]] = {}
        self._unfinished: dict[str, int] = {}
        self._unstored: dict[str, int] = {}
        """Members that are terminal in memory while the write saying so is not stored yet."""

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._parent

    def add(self, task_id: str, *, unfinished: bool, upstream: Iterable[str] = ()) -> None:
        """A new member, joined to the groups of the known tasks in ``upstream``."""
        self._parent[task_id] = task_id
        self._members[task_id] = [task_id]
        self._unfinished[task_id] = 1 if unfinished else 0
        self._unstored[task_id] = 0
        for other in upstream:
            if other in self._parent:
                self.join(task_id, other)

    def join(self, a: str, b: str) -> None:
        """Put the groups of ``a`` and ``b`` together (a dependency was added)."""
        root_a, root_b = self._root(a), self._root(b)
        if root_a == root_b:
            return
        if len(self._members[root_a]) < len(self._members[root_b]):
            root_a, root_b = root_b, root_a
        # The smaller group moves into the larger one, so a member moves O(log n) times.
        self._parent[root_b] = root_a
        self._members[root_a].extend(self._members.pop(root_b))
        self._unfinished[root_a] += self._unfinished.pop(root_b)
        self._unstored[root_a] += self._unstored.pop(root_b)

    def finished(self, task_id: str) -> None:
        """A member became terminal (it never leaves a terminal state); ``stored`` follows
        once the write saying so is stored."""
        root = self._root(task_id)
        self._unfinished[root] -= 1
        self._unstored[root] += 1

    def stored(self, task_id: str) -> None:
        """The write that made a member terminal is stored."""
        if task_id in self._parent:
            self._unstored[self._root(task_id)] -= 1

    def removed(self, task_id: str, *, unfinished: bool) -> None:
        """A member was deleted; it stays listed, as a link, until its group goes."""
        if unfinished:
            self._unfinished[self._root(task_id)] -= 1

    def finished_group(self, task_id: str) -> list[str] | None:
        """Every member of ``task_id``'s group when all of them are terminal and stored so,
        else None."""
        if task_id not in self._parent:
            return None
        root = self._root(task_id)
        if self._unfinished[root] or self._unstored[root]:
            return None
        return self._members[root]

    def drop(self, task_id: str) -> list[str]:
        """Forget ``task_id``'s whole group; returns its members."""
        root = self._root(task_id)
        members = self._members.pop(root)
        del self._unfinished[root]
        del self._unstored[root]
        for member in members:
            del self._parent[member]
        return members

    def _root(self, task_id: str) -> str:
        parent = self._parent
        root = task_id
        while parent[root] != root:
            root = parent[root]
        while parent[task_id] != root:  # path compression
            parent[task_id], task_id = root, parent[task_id]
        return root
