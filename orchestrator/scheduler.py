"""Deciding what runs: which tasks are wanted, which are ready, and the workers that run them.

A task is *wanted* once ``run()`` or ``start_task_execution()`` asks for it. A wanted task counts
its upstream tasks that have not completed; at zero it joins the ready queue, so a whole graph is
queued in networkx topological order. Completing a task touches only its direct dependents'
counters: O(out-degree), no re-sort.

A pool of at most ``max_concurrency`` worker coroutines takes tasks off the queue; a worker that
finishes a task takes the next one at once, without a trip through the event loop, and parks when
the queue is empty. A task whose provider is at its ``provider_concurrency`` limit waits in that
provider's blocked queue and goes back to the front when a slot frees.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from collections.abc import Iterable
from typing import TYPE_CHECKING

from hookspecs.models import OrchestratedTask, TaskStatus
from orchestrator._collector import RUNS
from orchestrator.context import Run
from orchestrator.errors import ConfigurationError, TaskInterruptedError
from orchestrator.runner import CancelRegion, drive, hold_deadline, restore_deadline

if TYPE_CHECKING:
    from orchestrator.service import AgentOrchestratorService

logger = logging.getLogger("dagorch.scheduler")

_PENDING, _PAUSED = TaskStatus.PENDING, TaskStatus.PAUSED
_COMPLETED, _CANCELLED = TaskStatus.COMPLETED, TaskStatus.CANCELLED


class _Watch:
    """One ``run()`` call: the tasks it still waits for."""

    __slots__ = ("done", "interrupted", "pending")

    def __init__(self) -> None:
        self.pending: set[str] = set()
        self.done = asyncio.Event()
        self.interrupted: TaskInterruptedError | None = None
        """Set when a task it waits for lost its worker (see ``Scheduler._interrupted``)."""


class Scheduler:
    """Wanted tasks, the ready queue, the worker pool, live runs and the futures callers await."""

    def __init__(self, service: AgentOrchestratorService) -> None:
        self._svc = service
        self._wanted: set[str] = set()
        self._waiting: dict[str, int] = {}
        self._ready: deque[str] = deque()
        self._blocked: dict[str, deque[str]] = {}
        self._runs: dict[str, Run] = {}
        self._active = 0
        self._per_provider: Counter[str] = Counter()
        self._finished: dict[str, asyncio.Future[None]] = {}
        self._watches: list[_Watch] = []
        self._unsettled: set[str] = set()
        """Tasks terminal in memory whose final write is not yet stored and announced."""
        self._idle: deque[asyncio.Future[Run | None]] = deque()
        self._workers: set[asyncio.Task[None]] = set()
        self._pump_due = False
        self._lost: dict[str, TaskInterruptedError] = {}
        """Tasks whose worker was cancelled from outside, until their status changes: a later
        waiter gets the same error instead of waiting forever."""
        self._unstored: set[str] = set()
        """New tasks whose creation the store has not taken yet: they may be wanted, but none
        starts before it is stored (a refused creation must leave no run behind)."""
        self._held: list[str] = []
        """Ready tasks set aside because their creation is not stored yet."""

    # -- asking for tasks -------------------------------------------------------------------

    def want(self, task_ids: Iterable[str]) -> None:
        """Schedule these tasks (in the order given); each starts once its upstream completed."""
        statuses = self._svc._table.statuses
        upstream = self._svc._graph.upstream
        wanted, watches, waiting, ready = self._wanted, self._watches, self._waiting, self._ready
        for task_id in task_ids:
            if task_id in wanted:
                continue
            status = statuses.get(task_id)
            # Gone: deleted, or finished and let go to the store while the caller awaited.
            if status is None or status.is_terminal:
                continue
            wanted.add(task_id)
            for watch in watches:
                watch.pending.add(task_id)
            blocking = 0
            for up in upstream(task_id):
                if statuses[up] is not _COMPLETED:
                    blocking += 1
            if blocking:
                waiting[task_id] = blocking
            else:
                ready.append(task_id)
        self._request_pump()

    def dependency_added(self, task_id: str, upstream: OrchestratedTask, needed: list[str]) -> None:
        """A wanted task got a new upstream task: it waits for it too, and ``needed`` (the
        upstream task and what it needs that is not wanted yet, as ``unwanted_ancestors`` gave
        them to the caller's check) is wanted as well."""
        if task_id not in self._wanted or upstream.metadata.status is _COMPLETED:
            return
        self._waiting[task_id] = self._waiting.get(task_id, 0) + 1
        self.want(needed)

    def unwanted_ancestors(self, task_id: str) -> list[str]:
        """The unfinished tasks ``task_id`` depends on, directly or not, that are not wanted yet,
        in networkx topological order.

        The walk stops at wanted tasks: whatever a wanted task depends on is wanted already
        (a task is only ever wanted with its unfinished ancestors), so wanting every task of a
        deep graph one by one (``dagorch run`` does) stays linear instead of quadratic.
        """
        statuses, wanted = self._svc._table.statuses, self._wanted
        upstream = self._svc._graph.upstream
        found: set[str] = set()
        stack = [task_id]
        while stack:
            for up in upstream(stack.pop()):
                if up in found or up in wanted:
                    continue
                status = statuses.get(up)
                if status is None or status.is_terminal:
                    continue
                found.add(up)
                stack.append(up)
        return self._svc._graph.topological_order(found) if found else []

    def dependency_removed(self, task_id: str, upstream: OrchestratedTask) -> None:
        """A wanted task no longer waits on ``upstream``."""
        if task_id in self._waiting and upstream.metadata.status is not _COMPLETED:
            self._release(task_id)
            self._request_pump()

    def provider_changed(self, task_id: str) -> None:
        """The task moved to another provider: if it waits for a slot of its old one, it is
        queued again, to wait for its new provider's limit (if any) instead."""
        for queue in self._blocked.values():
            if task_id in queue:
                queue.remove(task_id)
                self._ready.appendleft(task_id)
                self._request_pump()

    def is_blocked(self, task_id: str) -> bool:
        """True when a wanted task waits for upstream tasks that have not completed."""
        return task_id in self._waiting

    def hold_until_stored(self, task_ids: Iterable[str]) -> None:
        """These new tasks' creation is being written: none of them starts until ``stored``."""
        self._unstored.update(task_ids)

    def stored(self, task_ids: Iterable[str]) -> None:
        """The write of these tasks' creation is over (a refusal then forgets them)."""
        self._unstored.difference_update(task_ids)
        if self._held:
            held, self._held = self._held, []
            for task_id in held:
                (self._held if task_id in self._unstored else self._ready).append(task_id)
            self._request_pump()

    def wants(self, task_id: str) -> bool:
        """True when ``task_id`` is wanted (asked for and not finished)."""
        return task_id in self._wanted

    def auto_wanting(self) -> bool:
        """True while a ``run()`` is going: new tasks join it."""
        return bool(self._watches)

    def future(self, task_id: str) -> asyncio.Future[None]:
        """A future resolved once the task's terminal state is stored (or the task deleted)."""
        fut = self._finished.get(task_id)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            lost = self._lost.get(task_id)
            if lost is not None:
                fut.set_exception(lost)
                fut.exception()  # retrieved here, so nobody is warned when no one awaited it
                return fut
            task = self._svc._tasks.get(task_id)
            # A task missing here was let go to the store: finished and stored long ago.
            if task is None or (
                task.metadata.status.is_terminal and task_id not in self._unsettled
            ):
                fut.set_result(None)  # done already: kept nowhere, so nothing piles up
            else:
                self._finished[task_id] = fut
        return fut

    def run_of(self, task_id: str) -> Run | None:
        """The task's run, while one exists."""
        return self._runs.get(task_id)

    def has_live_runner(self, task_id: str) -> bool:
        """True when a provider call for the task has begun and not ended."""
        run = self._runs.get(task_id)
        return run is not None and run.started and not run.finished

    async def run_all(self, unfinished: list[str]) -> None:
        """Want these tasks (every unfinished one, in the graph's order); return once all of
        them (and tasks created meanwhile) are terminal.

        The graph's order needs no sort and is all the ready queue needs: the tasks queued at
        once are those whose upstream tasks have all completed, so none of them waits for
        another, and networkx's topological sort of the unfinished tasks lists exactly these
        first, in the graph's order. Every other task joins the queue when its last upstream
        task completes.
        """
        watch = _Watch()
        self._watches.append(watch)
        freezing = self._svc.options.freeze_gc_during_run
        try:
            with RUNS.during_run() if freezing else contextlib.nullcontext():
                watch.pending.update(unfinished)
                watch.pending.update(self._unsettled)
                self.want(unfinished)
                if watch.pending:
                    await watch.done.wait()
        finally:
            self._watches.remove(watch)
        if watch.interrupted is not None:
            raise watch.interrupted
        if watch.pending:
            # Ended by stop(), not by every task finishing: as for wait_for_task.
            raise ConfigurationError("The orchestrator stopped before the run finished")

    # -- reacting to changes ----------------------------------------------------------------

    def status_changed(self, task: OrchestratedTask, old: TaskStatus, new: TaskStatus) -> None:
        """Keep queues and runs in step with a task's new status."""
        task_id = task.id
        if self._lost:
            self._lost.pop(task_id, None)
        run = self._runs.get(task_id)
        if run is not None:
            if new is _PAUSED:
                hold_deadline(run)
            elif old is _PAUSED:
                restore_deadline(run)
                run.poke()
        if new is _COMPLETED:
            waiting = self._waiting
            if waiting:
                for down in self._svc._graph.downstream(task_id):
                    if down in waiting:
                        self._release(down)
        elif new is _PENDING and task_id in self._wanted and task_id not in self._waiting:
            self._ready.append(task_id)
        if new.is_terminal:
            self._unsettled.add(task_id)
            self._wanted.discard(task_id)
            self._waiting.pop(task_id, None)
            if run is not None and not run.finished:
                self._stop_run(run, cancelled=new is _CANCELLED)
        if self._ready and not self._pump_due:
            self._request_pump()

    def settled(self, ended: Iterable[str]) -> None:
        """The writes that made these tasks terminal are stored and announced: release who
        waits for them. (Only those writes: an earlier write of the task may be stored after
        the task ended in memory, and must not release anyone.)"""
        unsettled = self._unsettled
        for task_id in ended:
            if task_id in unsettled:
                unsettled.discard(task_id)
                self._release_waiters(task_id)

    def forget(self, task_id: str) -> None:
        """The task was deleted: stop its run (detached, so the id can be used again) and release
        whoever waits on it."""
        self._lost.pop(task_id, None)
        self._unstored.discard(task_id)
        self._wanted.discard(task_id)
        self._waiting.pop(task_id, None)
        self._unsettled.discard(task_id)
        run = self._runs.pop(task_id, None)
        if run is not None:
            self._stop_run(run, cancelled=True)
        self._release_waiters(task_id)

    def _release_waiters(self, task_id: str) -> None:
        fut = self._finished.pop(task_id, None)
        if fut is not None and not fut.done():
            fut.set_result(None)
        for watch in self._watches:
            pending = watch.pending
            if task_id in pending:
                pending.discard(task_id)
                if not pending:
                    watch.done.set()

    def _interrupted(self, task_id: str) -> None:
        """Something outside the service cancelled the worker running ``task_id``: a provider
        that cancelled its own asyncio task, or the event loop shutting down. Which of the two
        cannot be told, so the task is left marked running, as a crash leaves it (failing it
        would lose a run that recovery can resume), and whoever waits for it, or for a run that
        includes it, gets ``TaskInterruptedError`` instead of waiting forever."""
        task = self._svc._tasks.get(task_id)
        error = TaskInterruptedError(task_id, task.name if task is not None else task_id)
        self._lost[task_id] = error
        fut = self._finished.pop(task_id, None)
        if fut is not None and not fut.done():
            fut.set_exception(error)
            fut.exception()  # retrieved here, so nobody is warned when no one awaited it
        for watch in self._watches:
            if task_id in watch.pending:
                watch.interrupted = watch.interrupted or error
                watch.done.set()

    def _is_finished(self, task_id: str) -> bool:
        """True when the task is terminal, or no longer in memory."""
        status = self._svc._table.statuses.get(task_id)
        return status is None or status.is_terminal

    def _release(self, task_id: str) -> None:
        left = self._waiting[task_id] - 1
        if left:
            self._waiting[task_id] = left
        else:
            del self._waiting[task_id]
            self._ready.append(task_id)

    def _stop_run(self, run: Run, *, cancelled: bool) -> None:
        run.cancelled = run.cancelled or cancelled
        run.poke()
        grace = self._svc.options.cancel_grace_period
        if grace > 0:
            asyncio.get_running_loop().call_later(grace, run.cancel_now)
        else:
            run.cancel_now()

    # -- the worker pool --------------------------------------------------------------------

    def _request_pump(self) -> None:
        # Deferred to the next loop turn: a worker that is finishing a task takes the next ready
        # one itself, which is cheaper than handing it to another worker.
        if not self._pump_due and not self._svc._stopping:
            self._pump_due = True
            asyncio.get_running_loop().call_soon(self._pump)

    def _pump(self) -> None:
        self._pump_due = False
        if self._svc._stopping:
            return
        while True:
            run = self._take()
            if run is None:
                return
            while self._idle and self._idle[0].done():
                self._idle.popleft()  # its worker was cancelled while parked
            if self._idle:
                self._idle.popleft().set_result(run)
            else:
                worker = asyncio.get_running_loop().create_task(self._work(run), name="dagorch")
                self._workers.add(worker)
                worker.add_done_callback(self._workers.discard)

    def _take(self) -> Run | None:
        """The next ready task that may start now, as a new run holding its slots."""
        options = self._svc.options
        if self._active >= options.max_concurrency:
            return None
        limits = options.provider_concurrency
        tasks, ready = self._svc._tasks, self._ready
        if self._blocked:
            for provider_id, queue in self._blocked.items():
                free = limits.get(provider_id, 1 << 30) - self._per_provider[provider_id]
                back: list[str] = []
                while queue and len(back) < free:
                    task_id = queue.popleft()
                    if self._startable(task_id, tasks.get(task_id)):
                        back.append(task_id)
                ready.extendleft(reversed(back))
        wanted, waiting, runs = self._wanted, self._waiting, self._runs
        unstored = self._unstored
        while ready:
            task_id = ready.popleft()
            task = tasks.get(task_id)
            # As _startable, written out: this runs once for every task.
            if (
                task is None
                or task.metadata.status is not _PENDING
                or task_id not in wanted
                or task_id in waiting
                or task_id in runs
            ):
                continue
            if unstored and task_id in unstored:
                self._held.append(task_id)
                continue
            provider_id = task.metadata.provider_id
            if limits:
                limit = limits.get(provider_id)
                if limit is not None and self._per_provider[provider_id] >= limit:
                    self._blocked.setdefault(provider_id, deque()).append(task_id)
                    continue
            run = Run(task_id, provider_id)
            runs[task_id] = run
            self._active += 1
            self._per_provider[provider_id] += 1
            return run
        return None

    def _startable(self, task_id: str, task: OrchestratedTask | None) -> bool:
        return (
            task is not None
            and task.metadata.status is _PENDING
            and task_id in self._wanted
            and task_id not in self._waiting
            and task_id not in self._runs
        )

    async def _work(self, first: Run) -> None:
        worker = asyncio.current_task()
        region = CancelRegion(self._svc._new_scope)
        try:
            run: Run | None = first
            while run is not None:
                run.worker = worker
                try:
                    await drive(self._svc, run, region)
                except asyncio.CancelledError:
                    # The service's own cancels end inside drive, unless a provider left a
                    # cancel request on the worker (it caught a cancellation without
                    # uncancel()), which makes anyio let even our own cancel through: a run the
                    # service cancelled or ended is not an interruption.
                    if self._svc._stopping:
                        raise
                    if run.cancelled or self._is_finished(run.task_id):
                        # This worker ends with the cancellation; another takes the queue.
                        self._request_pump()
                    else:
                        self._interrupted(run.task_id)
                    raise
                finally:
                    run.finished = True
                    run.close()
                    if self._runs.get(run.task_id) is run:
                        del self._runs[run.task_id]
                    self._active -= 1
                    self._per_provider[run.provider_id] -= 1
                if self._svc._stopping:
                    return
                run = self._take()
                if run is None:
                    parked = asyncio.get_running_loop().create_future()
                    self._idle.append(parked)
                    run = await parked
        finally:
            region.close()

    # -- shutdown ---------------------------------------------------------------------------

    async def stop(self) -> None:
        """Cancel every provider call, let the runs finish their writes, end the workers and
        cancel every waiter."""
        for run in list(self._runs.values()):
            run.cancel_now()
        while self._idle:
            parked = self._idle.popleft()
            if not parked.done():
                parked.set_result(None)
        workers = list(self._workers)
        if workers:
            _, stuck = await asyncio.wait(workers, timeout=5)
            for worker in stuck:
                worker.cancel()
            for worker in stuck:
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
        stopped = ConfigurationError("The orchestrator stopped before the task finished")
        for fut in self._finished.values():
            if not fut.done():
                fut.set_exception(stopped)
                fut.exception()  # retrieved here, so nobody is warned when no one awaited it
        self._finished.clear()
        for watch in self._watches:
            watch.done.set()
        self._ready.clear()
        self._held.clear()
        self._wanted.clear()
        self._waiting.clear()
