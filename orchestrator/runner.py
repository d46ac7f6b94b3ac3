"""Driving one task through its attempts: call the provider, judge the outcome, retry or finish.

Only the provider call and the retry back-off can be cancelled (they run inside the worker's
``CancelRegion``): the writes before and after them always finish, so a cancel or a stop never
cuts one short.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

import anyio

from hookspecs.models import OrchestratedTask, TaskResult, TaskStatus
from hookspecs.provider import AgentProvider, ProviderError
from orchestrator._snapshot import snapshot
from orchestrator.context import Run, TaskContext
from orchestrator.errors import TaskCancelledError
from orchestrator.executor import LocalExecutor
from orchestrator.templating import has_placeholders, render

if TYPE_CHECKING:
    from orchestrator.service import AgentOrchestratorService

logger = logging.getLogger("dagorch.runner")

_PAUSED = TaskStatus.PAUSED
"""Read once: looking an enum member up on its class costs about 50 ns, and this one is read at
every attempt."""

Outcome = tuple[TaskResult | None, str | None, bool]
"""What one attempt gave: the result, the error, and whether a failure may be retried."""


async def drive(svc: AgentOrchestratorService, run: Run, region: CancelRegion) -> None:
    """Run the task of ``run`` to a terminal state (or until it is cancelled or stopped), its
    provider calls and back-offs inside the worker's ``region``."""
    try:
        task = svc._tasks.get(run.task_id)
        if task is None or run.cancelled:
            return
        started = svc._begin_run(task, run)
        if started is None:
            return
        # Waited for when somebody listens: a handler of task:started may still cancel the
        # task before its provider is called. (Written out here, as at the end: the writes
        # that need no await cost no coroutine.)
        if not svc._write_now(started):
            await svc._flush(started, wait=svc._bus.has_listeners)
        md = task.metadata
        plugins = svc._plugins
        while True:
            # A cancel, a stop or a hand-made final status may have come during the last write.
            if run.cancelled or svc._stopping or md.status.is_terminal:
                return
            attempt = md.attempts
            # Looked up at every attempt: set_task_sub_agent_type applies from the next one.
            provider = svc._registry.find(md.provider_id)
            if provider is None:
                run.finished = True
                await svc._end_run(task, None, svc._registry_error(md.provider_id))
                return
            outcome: Outcome | None = None
            with region.around(run, svc._stopping):
                outcome = await _attempt(svc, run, task, provider, attempt, region)
            reason: str | None
            if outcome is None:
                result, reason, will_retry = None, "Cancelled", False
            else:
                result, reason, retryable = outcome
                # A failure: the error, else the result's own, else a generic one.
                if reason is None and (result is None or not result.success):
                    reason = (result.error if result else None) or "Provider reported failure"
                will_retry = reason is not None and retryable and attempt <= md.retries
            if plugins.attempts_observed and (
                plugins.observes("after_task_run") or plugins.observes("on_task_error")
            ):
                await _observe_attempt(svc, task, attempt, result, reason, will_retry)
            if outcome is None or run.cancelled or svc._stopping or md.status.is_terminal:
                return
            if not will_retry or reason is None:
                run.finished = True
                ended = svc._ended(task, result, reason)
                if ended is not None and not svc._write_now(ended):
                    await svc._flush(ended, wait=False)
                return
            delay = backoff(svc.options.retry_backoff, svc.options.retry_backoff_max, attempt)
            await svc._note_retry(task, attempt, reason, delay)
            with region.around(run, svc._stopping):
                await run.sleep(delay)
                try:
                    await run.checkpoint(task)
                except TaskCancelledError:
                    return
            if run.cancelled or svc._stopping or md.status.is_terminal:
                return
            await svc._next_attempt(task)
    except Exception as exc:
        logger.exception("Runner for task %s failed", run.task_id)
        await svc._fail_after_internal_error(run.task_id, exc)


async def _observe_attempt(
    svc: AgentOrchestratorService,
    task: OrchestratedTask,
    attempt: int,
    result: TaskResult | None,
    error: str | None,
    will_retry: bool,
) -> None:
    """Tell the plugins observing attempts how this one ended (they see a copy of the task)."""
    plugins = svc._plugins
    seen = snapshot(task)
    await plugins.notify("after_task_run", task=seen, attempt=attempt, result=result, error=error)
    if error is not None:
        await plugins.notify(
            "on_task_error", task=seen, attempt=attempt, error=error, will_retry=will_retry
        )


async def _attempt(
    svc: AgentOrchestratorService,
    run: Run,
    task: OrchestratedTask,
    provider: AgentProvider,
    attempt: int,
    region: CancelRegion,
) -> Outcome:
    """One provider call, inside ``region`` (``region.around(run)``)."""
    ctx = TaskContext(svc, run, task, attempt)
    timeout = task.metadata.timeout
    given = snapshot(task)
    if given.metadata.params and has_placeholders(given.metadata.params):
        rendered = render(given.metadata.params, svc._upstream_field)
        given.metadata.__dict__["params"] = rendered
    if svc._plugins.attempts_observed and svc._plugins.observes("before_task_run"):
        await svc._plugins.notify("before_task_run", task=snapshot(task), attempt=attempt)
    # A cancel or pause that came while the attempt was prepared (its start write, a hook, the
    # next-attempt write) is obeyed before the provider is called, not after.
    if run.cancelled:
        return None, "Cancelled", False
    executor = svc._executor
    timeout_scope: anyio.CancelScope | None = None
    try:
        if task.metadata.status is _PAUSED:
            await run.checkpoint(task)
        # The local executor would only await the provider: calling it here saves a coroutine.
        # (Inside the try: a provider whose execute_task has the wrong signature raises here.)
        if type(executor) is LocalExecutor:
            call = provider.execute_task(given, ctx)
        else:
            call = executor.execute(provider, given, ctx)
        if timeout is None:
            outcome = await call
        else:
            # A scope of our own rather than fail_after: the attempt timed out when this scope
            # caught its cancellation, whatever the deadline became since (a pause that came
            # during the provider's clean-up parks it), and a TimeoutError the provider raises
            # itself is the provider failing, not the timeout.
            try:
                with svc._new_scope(deadline=anyio.current_time() + timeout) as timeout_scope:
                    run.timeout_scope = timeout_scope
                    if task.metadata.status is _PAUSED:
                        hold_deadline(run)
                    outcome = await call
            finally:
                run.timeout_scope = None
                run.time_left = None
            if timeout_scope.cancelled_caught:
                return None, f"Timed out after {timeout:g}s", True
    except TaskCancelledError:
        return None, "Cancelled", False
    except anyio.get_cancelled_exc_class():
        # The cancel requests the worker carried when the call's scope was entered (a provider
        # may have left some behind): the region keeps that count until the call ends.
        if _cancellation_is_ours(run, timeout_scope, region.cancel_requests):
            raise
        # The provider let a cancellation of its own escape (it awaited something cancelled);
        # nobody cancelled the run, so this is the provider failing, not the task stopping.
        return None, f'Provider "{provider.id}" raised CancelledError', True
    except ProviderError as exc:
        return None, str(exc) or type(exc).__name__, exc.retryable
    except Exception as exc:
        return None, str(exc) or type(exc).__name__, True
    if not isinstance(outcome, TaskResult):
        kind = type(outcome).__name__
        return None, f'Provider "{provider.id}" returned {kind}, expected a TaskResult', False
    return outcome, None, True


def _cancellation_is_ours(
    run: Run, timeout_scope: anyio.CancelScope | None, cancel_requests: int
) -> bool:
    # A cancel request on the worker beyond those it carried into the call came from outside
    # (stop() cancelling a stuck worker, an event loop shutting down); one a provider left
    # behind on an earlier call is stale, and must not make this provider's own escaped
    # cancellation look like the worker being stopped.
    scope = run.scope
    current = asyncio.current_task()
    return (
        (scope is not None and scope.cancel_called)
        or (current is not None and current.cancelling() > cancel_requests)
        or (timeout_scope is not None and timeout_scope.cancel_called)
    )


def backoff(base: float, ceiling: float, attempt: int) -> float:
    """Seconds to wait after failed attempt ``attempt``: doubling from ``base``, capped at
    ``ceiling``, then scaled by a random factor in [0.5, 1) so retries do not move in step."""
    return float(min(ceiling, base * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0))


def hold_deadline(run: Run) -> None:
    """Park the attempt's timeout while the task is paused, keeping the time that was left."""
    scope = run.timeout_scope
    # Once the timeout has fired, the attempt has timed out: nothing is left to park.
    if scope is not None and run.time_left is None and not scope.cancel_called:
        run.time_left = scope.deadline - anyio.current_time()
        scope.deadline = math.inf


def restore_deadline(run: Run) -> None:
    """Give a resumed attempt back the time it had left when it was paused."""
    scope = run.timeout_scope
    if scope is not None and run.time_left is not None:
        scope.deadline = anyio.current_time() + run.time_left
    run.time_left = None


class CancelRegion:
    """The anyio cancel scope a worker keeps open across the runs it drives, and the part of each
    run that a cancel may cut short.

    ``with region.around(run, stopping):`` marks that part (the provider call, the retry
    back-off): inside it ``run.scope`` is the worker's scope, so ``run.cancel_now()`` cancels it;
    outside it ``run.scope`` is None and a cancel only marks the run. A scope that was cancelled
    is left when the part ends, as a ``with`` block would leave it (swallowing its own
    cancellation), and a new one is entered before the worker awaits anything else.

    Why not a scope per provider call: entering and leaving an anyio scope costs about 3 µs, a
    sixth of a small task's whole cost, and most calls are never cancelled.
    """

    __slots__ = ("_cancelling", "_make", "_run", "_worker", "scope")

    def __init__(self, make: Callable[[], anyio.CancelScope]) -> None:
        self._make = make
        self._run: Run | None = None
        worker = asyncio.current_task()
        if worker is None:
            raise RuntimeError("a CancelRegion belongs to the worker task that makes it")
        self._worker = worker
        self._cancelling = 0
        self.scope: anyio.CancelScope | None = self._enter()

    def _enter(self) -> anyio.CancelScope:
        self._cancelling = self._worker.cancelling()
        return self._make().__enter__()

    @property
    def cancel_requests(self) -> int:
        """The worker's cancel requests when the current scope was entered."""
        return self._cancelling

    def around(self, run: Run, stopping: bool) -> CancelRegion:
        """The cancellable part of ``run`` (cancelled at once if the run already is, or the
        service is stopping)."""
        if self._worker.cancelling() != self._cancelling and self.scope is not None:
            # A provider left a cancel request on the worker (it caught a cancellation without
            # uncancel()): anyio's scope would take every later cancellation of its own for a
            # foreign one and let it through, so a scope entered now takes its place.
            self.scope.__exit__(None, None, None)
            self.scope = self._enter()
        self._run = run
        run.scope = self.scope
        if run.cancelled or stopping:
            run.cancel_now()
        return self

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        run, self._run = self._run, None
        if run is not None:
            run.scope = None
        scope = self.scope
        if scope is None or not scope.cancel_called:
            return False
        self.scope = None
        swallowed = scope.__exit__(exc_type, exc, tb)
        self.scope = self._enter()
        return bool(swallowed)

    def close(self) -> None:
        """Leave the scope for good (the worker is ending)."""
        scope, self.scope = self.scope, None
        if scope is not None:
            scope.__exit__(None, None, None)
