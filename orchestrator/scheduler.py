"""Running tasks: which are wanted, which are ready, and the runner that drives each provider.

A task is *wanted* once ``run()`` or ``start_task_execution()`` asks for it. A wanted task waits
until all its upstream tasks completed, then joins the ready queue in the order it became ready
(networkx topological order for a whole graph). Runners take tasks off the queue while the global
and per-provider limits allow. Completing a task costs O(its out-degree): only its dependents'
counters change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections import Counter, deque
from collections.abc import Iterable
from typing import TYPE_CHECKING

import anyio

from hookspecs.models import OrchestratedTask, TaskResult, TaskStatus
from hookspecs.provider import AgentProvider, ProviderError
from orchestrator._snapshot import snapshot
from orchestrator.context import Run, TaskContext
from orchestrator.errors import TaskCancelledError

if TYPE_CHECKING:
    from orchestrator.service import AgentOrchestratorService

logger = logging.getLogger("dagorch.scheduler")

_PENDING, _RUNNING, _PAUSED = TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.PAUSED
_COMPLETED = TaskStatus.COMPLETED


class Scheduler:
    """Wanted tasks, the ready queue, live runs and the futures callers await."""

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
        self._members: list[list[str]] = []

    # -- asking for tasks -------------------------------------------------------------------

    def want(self, task_ids: Iterable[str]) -> None:
        """Schedule these tasks (in the order given); each starts once its upstream completed."""
        tasks = self._svc._tasks
        for task_id in task_ids:
            task = tasks[task_id]
            if task.metadata.status.is_terminal or task_id in self._wanted:
                continue
            self._wanted.add(task_id)
            for members in self._members:
                members.append(task_id)
            blocking = sum(
                1
                for up in self._svc._graph.upstream(task_id)
                if tasks[up].metadata.status is not _COMPLETED
            )
            if blocking:
                self._waiting[task_id] = blocking
            else:
                self._ready.append(task_id)
        self._pump()

    def dependency_added(self, task_id: str, upstream: OrchestratedTask) -> None:
        """A wanted task got a new upstream task that has not completed: it waits for it too."""
        if task_id in self._wanted and upstream.metadata.status is not _COMPLETED:
            self._waiting[task_id] = self._waiting.get(task_id, 0) + 1

    def dependency_removed(self, task_id: str, upstream: OrchestratedTask) -> None:
        """A wanted task no longer waits on ``upstream``."""
        if task_id in self._waiting and upstream.metadata.status is not _COMPLETED:
            self._release(task_id)
            self._pump()

    def auto_wanting(self) -> bool:
        """True while a ``run()`` is going: new tasks join it."""
        return bool(self._members)

    def future(self, task_id: str) -> asyncio.Future[None]:
        """A future resolved when the task reaches a terminal state (or is deleted)."""
        fut = self._finished.get(task_id)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            self._finished[task_id] = fut
            if self._svc._tasks[task_id].metadata.status.is_terminal:
                fut.set_result(None)
        return fut

    def run_of(self, task_id: str) -> Run | None:
        """The task's run, while one exists."""
        return self._runs.get(task_id)

    def has_live_runner(self, task_id: str) -> bool:
        """True when a provider call for the task has begun and not ended."""
        run = self._runs.get(task_id)
        return run is not None and run.started and not run.finished

    async def run_all(self) -> None:
        """Want every unfinished task in topological order; return once all of them (and tasks
        created meanwhile) are terminal."""
        members: list[str] = []
        self._members.append(members)
        try:
            tasks = self._svc._tasks
            unfinished = [t for t, task in tasks.items() if not task.metadata.status.is_terminal]
            order = self._svc._graph.topological_order(unfinished)
            members.extend(t for t in order if t in self._wanted)
            self.want(order)
            index = 0
            while index < len(members):
                task_id = members[index]
                task = tasks.get(task_id)
                if task is not None and not task.metadata.status.is_terminal:
                    await self.future(task_id)
                index += 1
        finally:
            self._members.remove(members)

    # -- reacting to changes ----------------------------------------------------------------

    def status_changed(self, task: OrchestratedTask, old: TaskStatus, new: TaskStatus) -> None:
        """Keep queues, runs and futures in step with a task's new status."""
        task_id = task.id
        run = self._runs.get(task_id)
        if run is not None:
            if new is _PAUSED:
                run.gate.clear()
                self._hold_deadline(run)
            elif old is _PAUSED:
                self._unpause(run)
        if new is _COMPLETED:
            for down in self._svc._graph.downstream(task_id):
                if down in self._waiting:
                    self._release(down)
        elif new is _PENDING and task_id in self._wanted and task_id not in self._waiting:
            self._ready.append(task_id)
        if new.is_terminal:
            self._wanted.discard(task_id)
            self._waiting.pop(task_id, None)
            if run is not None and not run.finished:
                self._stop_run(run, cancelled=new is TaskStatus.CANCELLED)
        self._pump()

    def settled(self, tasks: Iterable[OrchestratedTask]) -> None:
        """These tasks' changes are stored and announced: release whoever waits for the terminal ones."""
        finished = self._finished
        if not finished:
            return
        for task in tasks:
            if task.metadata.status.is_terminal:
                fut = finished.pop(task.id, None)
                if fut is not None and not fut.done():
                    fut.set_result(None)

    def forget(self, task_id: str) -> None:
        """The task was deleted: stop its run and release whoever waits on it."""
        self._wanted.discard(task_id)
        self._waiting.pop(task_id, None)
        run = self._runs.get(task_id)
        if run is not None:
            self._stop_run(run, cancelled=True)
        fut = self._finished.pop(task_id, None)
        if fut is not None and not fut.done():
            fut.set_result(None)

    def _release(self, task_id: str) -> None:
        left = self._waiting[task_id] - 1
        if left:
            self._waiting[task_id] = left
        else:
            del self._waiting[task_id]
            self._ready.append(task_id)

    def _hold_deadline(self, run: Run) -> None:
        # A paused attempt does not use up its timeout: keep what is left until resume.
        scope = run.timeout_scope
        if scope is not None and run.time_left is None:
            run.time_left = scope.deadline - anyio.current_time()
            scope.deadline = math.inf

    def _unpause(self, run: Run) -> None:
        scope = run.timeout_scope
        if scope is not None and run.time_left is not None:
            scope.deadline = anyio.current_time() + run.time_left
        run.time_left = None
        run.gate.set()

    def _stop_run(self, run: Run, *, cancelled: bool) -> None:
        run.cancelled = run.cancelled or cancelled
        run.gate.set()
        run.wake.set()
        grace = self._svc.options.cancel_grace_period
        if grace > 0:
            asyncio.get_running_loop().call_later(grace, run.cancel_now)
        else:
            run.cancel_now()

    # -- dispatch ---------------------------------------------------------------------------

    def _pump(self) -> None:
        options = self._svc.options
        limits = options.provider_concurrency
        tasks = self._svc._tasks
        for provider_id, queue in self._blocked.items():
            free = min(len(queue), limits.get(provider_id, 0) - self._per_provider[provider_id])
            if free > 0:
                self._ready.extendleft(reversed([queue.popleft() for _ in range(free)]))
        while self._ready and self._active < options.max_concurrency:
            task_id = self._ready.popleft()
            task = tasks.get(task_id)
            if (
                task is None
                or task_id in self._runs
                or task_id not in self._wanted
                or task.metadata.status is not _PENDING
            ):
                continue
            provider_id = task.metadata.provider_id
            limit = limits.get(provider_id)
            if limit is not None and self._per_provider[provider_id] >= limit:
                self._blocked.setdefault(provider_id, deque()).append(task_id)
                continue
            self._launch(task_id, provider_id)

    def _launch(self, task_id: str, provider_id: str) -> None:
        run = Run(task_id)
        self._runs[task_id] = run
        self._active += 1
        self._per_provider[provider_id] += 1
        run.worker = asyncio.get_running_loop().create_task(
            self._drive(run, provider_id), name=f"dagorch:{task_id}"
        )

    async def _drive(self, run: Run, provider_id: str) -> None:
        try:
            await self._attempts(run)
        except Exception as exc:
            logger.exception("Runner for task %s failed", run.task_id)
            await self._svc._fail_after_internal_error(run.task_id, exc)
        finally:
            run.finished = True
            self._runs.pop(run.task_id, None)
            self._active -= 1
            self._per_provider[provider_id] -= 1
            if not self._svc._stopping:
                self._pump()

    async def _attempts(self, run: Run) -> None:
        # Only the provider call and the retry back-off run inside the run's cancel scope: the
        # writes before and after them always finish, so a cancel or a stop never cuts one short.
        svc = self._svc
        task = svc._tasks.get(run.task_id)
        if task is None or run.cancelled or not await svc._begin_run(task):
            return
        run.started = True
        provider = svc._registry.find(task.metadata.provider_id)
        if provider is None:
            await svc._end_run(task, None, svc._registry_error(task.metadata.provider_id))
            return
        while True:
            attempt = task.metadata.attempts
            outcome: tuple[TaskResult | None, str | None, bool] | None = None
            with self._cancellable(run):
                outcome = await self._attempt(run, task, provider, attempt)
            if outcome is None or self._interrupted(run, task):
                return
            result, error, retryable = outcome
            if error is None and result is not None and result.success:
                run.finished = True
                await svc._end_run(task, result, None)
                return
            reason = error or (result.error if result else None) or "Provider reported failure"
            if not retryable or attempt > task.metadata.retries:
                run.finished = True
                await svc._end_run(task, result, reason)
                return
            delay = self._backoff(attempt)
            await svc._note_retry(task, attempt, reason, delay)
            with self._cancellable(run):
                await run.sleep(delay)
                await run.checkpoint(task)
            if self._interrupted(run, task):
                return
            await svc._next_attempt(task)

    def _cancellable(self, run: Run) -> anyio.CancelScope:
        scope = anyio.CancelScope()
        run.scope = scope
        if run.cancelled or self._svc._stopping:
            scope.cancel()
        return scope

    def _interrupted(self, run: Run, task: OrchestratedTask) -> bool:
        run.scope = None
        return run.cancelled or self._svc._stopping or task.metadata.status.is_terminal

    async def _attempt(
        self, run: Run, task: OrchestratedTask, provider: AgentProvider, attempt: int
    ) -> tuple[TaskResult | None, str | None, bool]:
        ctx = TaskContext(self._svc, run, task, attempt, self._svc.agent_id)
        timeout = task.metadata.timeout
        given = snapshot(task)
        try:
            if timeout is None:
                outcome = await provider.execute_task(given, ctx)
            else:
                with anyio.fail_after(timeout) as timeout_scope:
                    run.timeout_scope = timeout_scope
                    if task.metadata.status is _PAUSED:
                        self._hold_deadline(run)
                    outcome = await provider.execute_task(given, ctx)
        except TimeoutError:
            return None, f"Timed out after {timeout:g}s", True
        except TaskCancelledError:
            return None, "Cancelled", False
        except anyio.get_cancelled_exc_class():
            raise
        except ProviderError as exc:
            return None, str(exc) or type(exc).__name__, exc.retryable
        except Exception as exc:
            return None, str(exc) or type(exc).__name__, True
        finally:
            run.timeout_scope = None
            run.time_left = None
        if not isinstance(outcome, TaskResult):
            return (
                None,
                (
                    f'Provider "{provider.id}" returned {type(outcome).__name__}, '
                    "expected a TaskResult"
                ),
                False,
            )
        return outcome, None, True

    def _backoff(self, attempt: int) -> float:
        options = self._svc.options
        ceiling = min(options.retry_backoff_max, options.retry_backoff * 2 ** (attempt - 1))
        return float(ceiling * random.uniform(0.5, 1.0))

    # -- shutdown ---------------------------------------------------------------------------

    async def stop(self) -> None:
        """Cancel every provider call, let the runners finish their writes, cancel all waiters."""
        runs = list(self._runs.values())
        for run in runs:
            run.cancel_now()
        workers = [run.worker for run in runs if run.worker is not None]
        if workers:
            _, stuck = await asyncio.wait(workers, timeout=5)
            for worker in stuck:
                worker.cancel()
            for worker in stuck:
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
        for fut in self._finished.values():
            fut.cancel()
        self._finished.clear()
        self._ready.clear()
        self._wanted.clear()
        self._waiting.clear()
