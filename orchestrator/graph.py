"""The task DAG: a networkx ``DiGraph`` with an edge from each upstream task to its dependent."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import networkx as nx

from orchestrator.errors import CycleError, DependentsExistError, UnknownDependencyError

_clear_cache = getattr(nx, "_clear_cache", lambda graph: None)
"""Drops what networkx cached about a graph (networkx 3.3 and later cache some results)."""


_NO_ATTRIBUTES: dict[str, Any] = {}
"""The attributes of the nodes and edges ``add_checked_task`` writes (always empty)."""


class TaskGraph:
    """Nodes are task ids; an edge ``u -> v`` means ``v`` depends on ``u``.

    Checks are made before anything changes, so a refused edge leaves the graph as it was.
    """

    def __init__(self) -> None:
        self._g: nx.DiGraph[str] = nx.DiGraph()
        raw: Any = self._g  # the stubs leave out networkx's adjacency dicts
        # The graph's own dicts, kept for its lifetime by networkx (changed in place only).
        self._pred: dict[str, dict[str, Any]] = raw._pred
        self._succ: dict[str, dict[str, Any]] = raw._succ

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._g

    def __len__(self) -> int:
        return len(self._g)

    def __iter__(self) -> Iterator[str]:
        """Task ids in the graph's own order (the order they were added in)."""
        return iter(self._succ)

    def add_task(self, task_id: str, depends_on: Iterable[str] = ()) -> None:
        """Add a node and its upstream edges; every upstream task must exist already.

        A new node has no dependents yet, so its edges cannot close a cycle.
        """
        graph = self._g
        upstream = list(dict.fromkeys(depends_on))
        for dep in upstream:
            if dep not in graph or dep == task_id:
                raise UnknownDependencyError(task_id, dep)
        graph.add_node(task_id)
        for dep in upstream:
            graph.add_edge(dep, task_id)

    def add_checked_task(self, task_id: str, upstream: Iterable[str]) -> None:
        """``add_task`` for a caller that has already checked everything: ``task_id`` is not a
        node yet, every id in ``upstream`` is one, and none is repeated (task creation checks
        them on its own, with better errors)."""
        graph = self._g
        succ = self._succ
        # A new node: networkx's own adjacency dicts are written as DiGraph.add_node and
        # add_edge write them, for a third of their cost (they check again what the caller
        # checked, and clear networkx's cache once per edge).
        succ[task_id] = {}
        pred: dict[str, dict[str, Any]] = {}
        self._pred[task_id] = pred
        raw: Any = graph
        # One empty attribute dict for every node and edge written here, not one each (64 bytes
        # and an allocation apiece): nothing here gives nodes or edges attributes, and
        # networkx writes into an attribute dict only when it is given some.
        raw._node[task_id] = _NO_ATTRIBUTES
        for dep in upstream:
            succ[dep][task_id] = pred[dep] = _NO_ATTRIBUTES
        _clear_cache(graph)

    def check_dependency(
        self, task_id: str, depends_on_id: str, name_of: Callable[[str], str]
    ) -> None:
        """Raise if ``task_id`` may not depend on ``depends_on_id`` (unknown task, or a cycle)."""
        if depends_on_id not in self._g:
            raise UnknownDependencyError(task_id, depends_on_id)
        if task_id == depends_on_id or nx.has_path(self._g, task_id, depends_on_id):
            path: list[str] = (
                [task_id]
                if task_id == depends_on_id
                else nx.shortest_path(self._g, task_id, depends_on_id)
            )
            cycle = [*path, task_id]
            raise CycleError(cycle, [name_of(t) for t in cycle])

    def add_dependency(self, task_id: str, depends_on_id: str) -> None:
        """Add the edge ``depends_on_id -> task_id``; call ``check_dependency`` first."""
        self._g.add_edge(depends_on_id, task_id)

    def has_dependency(self, task_id: str, depends_on_id: str) -> bool:
        """True when the edge ``depends_on_id -> task_id`` exists."""
        return self._g.has_edge(depends_on_id, task_id)

    def remove_dependency(self, task_id: str, depends_on_id: str) -> bool:
        """Remove the edge if it exists; whether it did."""
        if not self.has_dependency(task_id, depends_on_id):
            return False
        self._g.remove_edge(depends_on_id, task_id)
        return True

    def remove_task(self, task_id: str, is_finished: Callable[[str], bool]) -> None:
        """Remove a node; refused while a dependent that is not finished waits on it."""
        waiting = [d for d in self._g.successors(task_id) if not is_finished(d)]
        if waiting:
            raise DependentsExistError(task_id, waiting)
        self._g.remove_node(task_id)

    def upstream(self, task_id: str) -> Iterator[str]:
        """The tasks ``task_id`` depends on directly (``KeyError`` for an unknown task)."""
        # networkx's own adjacency dict: predecessors() wraps the same in a try and a call.
        return iter(self._pred[task_id])

    def downstream(self, task_id: str) -> Iterator[str]:
        """The tasks that depend on ``task_id`` directly (``KeyError`` for an unknown task)."""
        return iter(self._succ[task_id])

    def descendants(self, task_id: str) -> list[str]:
        """Every task that depends on ``task_id``, directly or not, in topological order."""
        below = nx.descendants(self._g, task_id)
        return self.topological_order(below) if below else []

    def topological_order(self, among: Iterable[str] | None = None) -> list[str]:
        """Task ids in networkx topological order, optionally only those in ``among``."""
        if among is None:
            return list(nx.topological_sort(self._g))
        members = among if isinstance(among, set | frozenset) else set(among)
        if not members:
            return []
        if len(members) * 8 < len(self._g):
            # A few tasks of a big graph (one task and its ancestors): sorting only them keeps
            # scheduling many tasks one by one linear instead of quadratic.
            return list(nx.topological_sort(self._g.subgraph(members)))
        # Most of the graph: filtering a sort of the whole graph is faster than a subgraph view.
        return [t for t in nx.topological_sort(self._g) if t in members]

    def as_networkx(self) -> nx.DiGraph[str]:
        """A copy of the graph, for drawing and analysis."""
        return self._g.copy()
