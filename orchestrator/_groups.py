"""Groups of connected tasks and how many of each are unfinished, so that finished work can
leave memory a whole group at a time.

A group is a set of tasks joined by dependencies (a weakly connected part of the DAG, such as
one pipeline run). Once every task of a group is terminal, nothing that is still going can depend
on it through the group, so the service may let the whole group go to its store and read it back
whole, edges and all, when somebody needs it again. Groups are kept as a union-find forest with
the members listed at each root; removing a dependency never splits a group (keeping two parts
together is only ever more cautious).

Nodes are numbers, one per task as it was added: a deleted task's node stays in the forest (other
nodes may hang below it) but no longer answers to the task's id, so a new task may reuse the id.
"""

from __future__ import annotations

from collections.abc import Iterable


class TaskGroups:
    """Which tasks belong together, and how many in each group are unfinished."""

    def __init__(self) -> None:
        self._node_of: dict[str, int] = {}
        self._id_of: dict[int, str] = {}
        self._parent: dict[int, int] = {}
        self._members: dict[int, list[int]] = {}
        self._unfinished: dict[int, int] = {}
        self._unstored: dict[int, int] = {}
        """Members that are terminal in memory while the write saying so is not stored yet."""
        self._waiting_for_store: set[int] = set()
        self._next = 0

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._node_of

    def add(self, task_id: str, *, unfinished: bool, upstream: Iterable[str] = ()) -> None:
        """A new member, joined to the groups of the known tasks in ``upstream``."""
        node = self._next
        self._next += 1
        self._node_of[task_id] = node
        self._id_of[node] = task_id
        self._parent[node] = node
        self._members[node] = [node]
        self._unfinished[node] = 1 if unfinished else 0
        self._unstored[node] = 0
        for other in upstream:
            if other in self._node_of:
                self.join(task_id, other)

    def join(self, a: str, b: str) -> None:
        """Put the groups of ``a`` and ``b`` together (a dependency was added)."""
        root_a, root_b = self._root(self._node_of[a]), self._root(self._node_of[b])
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
        node = self._node_of[task_id]
        root = self._root(node)
        self._unfinished[root] -= 1
        self._unstored[root] += 1
        self._waiting_for_store.add(node)

    def stored(self, task_id: str) -> None:
        """The write that made a member terminal is stored."""
        node = self._node_of.get(task_id)
        if node is not None and node in self._waiting_for_store:
            self._waiting_for_store.discard(node)
            self._unstored[self._root(node)] -= 1

    def removed(self, task_id: str, *, unfinished: bool) -> None:
        """A member was deleted: its node stays, as a link, until its group goes."""
        node = self._node_of.pop(task_id)
        del self._id_of[node]
        root = self._root(node)
        if unfinished:
            self._unfinished[root] -= 1
        if node in self._waiting_for_store:
            self._waiting_for_store.discard(node)
            self._unstored[root] -= 1

    def finished_group(self, task_id: str) -> list[str] | None:
        """The ids of every member of ``task_id``'s group when all of them are terminal and
        stored so, else None."""
        node = self._node_of.get(task_id)
        if node is None:
            return None
        root = self._root(node)
        if self._unfinished[root] or self._unstored[root]:
            return None
        return [self._id_of[m] for m in self._members[root] if m in self._id_of]

    def drop(self, task_id: str) -> list[str]:
        """Forget ``task_id``'s whole group; returns the ids of its members."""
        root = self._root(self._node_of[task_id])
        del self._unfinished[root], self._unstored[root]
        ids = []
        for member in self._members.pop(root):
            del self._parent[member]
            task = self._id_of.pop(member, None)
            if task is not None:
                del self._node_of[task]
                ids.append(task)
        return ids

    def _root(self, node: int) -> int:
        parent = self._parent
        root = node
        while parent[root] != root:
            root = parent[root]
        while parent[node] != root:  # path compression
            parent[node], node = root, parent[node]
        return root
