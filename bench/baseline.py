"""The baseline: a minimal networkx + anyio DAG executor, written the way one would by hand.

Each task runs once all its predecessors have finished, inside one anyio task group, with at most
``max_concurrency`` task functions running at once. A task function gets the results of its
predecessors, by task id. No retries, no pause, no events, no store: the least an executor does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import TypeVar

import anyio
import networkx as nx

Node = TypeVar("Node", bound=Hashable)
Result = TypeVar("Result")

TaskFunction = Callable[[Node, Mapping[Node, Result]], Awaitable[Result]]
"""``await fn(task_id, {predecessor_id: predecessor_result})`` gives the task's result."""


async def run_dag(
    graph: nx.DiGraph[Node],
    fn: TaskFunction[Node, Result],
    max_concurrency: int,
) -> dict[Node, Result]:
    """Run every node of ``graph`` (an edge ``u -> v`` means ``v`` needs ``u``); their results.

    A task that raises cancels the rest; the error comes out of the task group.
    """
    if not nx.is_directed_acyclic_graph(graph):
        raise ValueError("the graph has a cycle")
    results: dict[Node, Result] = {}
    waiting_on = {node: graph.in_degree(node) for node in graph}
    limiter = anyio.CapacityLimiter(max_concurrency)

    async with anyio.create_task_group() as tg:

        async def run(node: Node) -> None:
            async with limiter:
                upstream = {pred: results[pred] for pred in graph.predecessors(node)}
                results[node] = await fn(node, upstream)
            for succ in graph.successors(node):
                waiting_on[succ] -= 1
                if waiting_on[succ] == 0:
                    tg.start_soon(run, succ)

        for node, count in waiting_on.items():
            if count == 0:
                tg.start_soon(run, node)

    return results
