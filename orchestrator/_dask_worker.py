"""The Dask executor, worker side: run a batch of provider calls, report each call home.

``run_batch`` runs as ONE Dask task for several provider calls (a batch). It finds each provider
through the worker's own ``dagorch.providers`` entry points and runs the calls concurrently on the
worker's event loop, each with its own ``WorkerContext``. What a call reports travels home as a
``[key, message]`` pair on the executor's topic (``worker.log_event``); the pairs made in one
loop tick go as one event, so a call that reports often does not cost one scheduler message per
line. A call's last message (``end``) carries its outcome, a pickled result or exception, so a call
that ends early does not wait for its batch-mates and one call's failure stays its own. Outcomes
over ``INLINE_LIMIT`` bytes are returned as the batch's Dask result instead, to keep them out of
the scheduler's event log.

Control comes the other way: the coordinator keeps one record per executor on the scheduler
(``set_metadata``) naming the calls that are cancelled, paused or dropped (the coordinator stopped
waiting), and each batch polls it every 0.1 s. When the worker runs in the coordinator's own
process (an in-process cluster), the calls and reports are handed over in memory instead of
pickled (``hand_over``/``take``).
"""

from __future__ import annotations

import asyncio
import itertools
import pickle
import uuid
from collections.abc import Mapping
from typing import Any, NamedTuple

import anyio

from hookspecs.models import OrchestratedTask, TaskResult, TaskStatus
from hookspecs.provider import ProviderError
from orchestrator.context import TaskFacts
from orchestrator.errors import TaskCancelledError

_POLL = 0.1
INLINE_LIMIT = 64 * 1024
"""Pickled outcomes up to this many bytes travel in the call's ``end`` message."""
Outcome = tuple[str, Any]
"""``("result", pickled value)`` or ``("error", pickled exception)``; in this process
``("value", value)`` or ``("raised", exception)``."""
_hosts: dict[int, Any] = {}  # one plugin registry per worker process, found once
_tickets = itertools.count()
_handed: dict[str, dict[int, Any]] = {}  # per executor topic, while the executor runs


def open_handover(topic: str) -> None:
    """Let the executor reporting on ``topic`` and its in-process workers hand objects over.

    When the workers run in the coordinator's own process, a batch's calls and their reports
    are left here instead of being pickled: nothing crosses a process boundary."""
    _handed[topic] = {}


def close_handover(topic: str) -> None:
    """Forget what is still left for ``topic`` (its executor stopped: nobody will take it)."""
    _handed.pop(topic, None)


def hand_over(topic: str, value: Any) -> int | None:
    """Leave ``value`` for the other side; a ticket to ``take`` it (None: ``topic`` is closed)."""
    box = _handed.get(topic)
    if box is None:
        return None
    ticket = next(_tickets)
    box[ticket] = value
    return ticket


def take(topic: str, ticket: int) -> Any:
    """What ``hand_over`` left under ``ticket`` (once)."""
    return _handed[topic].pop(ticket)


class CallSpec(NamedTuple):
    """One provider call, as the coordinator sends it to a worker."""

    key: str
    provider_id: str
    origin: str
    task: OrchestratedTask
    upstream: dict[str, TaskResult]
    attempt: int
    working_directory: str


def _providers() -> Any:
    import os

    from orchestrator.plugins import PluginHost

    host = _hosts.get(os.getpid())
    if host is None:
        host = PluginHost(strict=False)
        host.load_entry_points()
        _hosts[os.getpid()] = host
    return host.registry


async def run_batch(topic: str, control: str, payload: bytes | int) -> dict[str, Outcome]:
    """Run the calls in ``payload`` (a pickled list of ``CallSpec``, or the ``hand_over``
    ticket of one when the worker runs in the coordinator's process) here at once, reporting
    on ``topic`` and obeying the ``control`` record; returns the outcomes too large to have
    travelled in their ``end`` message."""
    from distributed import get_worker

    worker = get_worker()
    local = isinstance(payload, int)
    calls: list[CallSpec] = (
        take(topic, payload) if isinstance(payload, int) else pickle.loads(payload)
    )
    outbox = _Outbox(worker, topic, local)
    contexts = {spec.key: WorkerContext(outbox, spec) for spec in calls}
    held: dict[str, Outcome] = {}
    # Plain asyncio tasks: an anyio task group costs several times more per call, and the
    # calls of a batch are micro-tasks in the common case.
    watch = asyncio.ensure_future(_watch(worker, control, contexts))
    running = []
    for spec in calls:
        ctx = contexts[spec.key]
        ctx.task = asyncio.ensure_future(_run_one(worker, spec, ctx, held, local))
        running.append(ctx.task)
    try:
        await asyncio.gather(*running)
    finally:
        watch.cancel()
        for task in running:
            task.cancel()
        outbox.flush()
    return held


async def _run_one(
    worker: Any, spec: CallSpec, ctx: WorkerContext, held: dict[str, Outcome], local: bool
) -> None:
    pack = _keep if local else _pack
    try:
        provider = _providers().find(spec.provider_id)
        if provider is None:
            raise ProviderError(
                f'Provider "{spec.provider_id}" is not installed on Dask worker '
                f"{worker.address} (on the coordinator it comes from {spec.origin}: "
                "install that there)",
                retryable=False,
            )
        outcome = pack("result", await provider.execute_task(spec.task, ctx))
    except Exception as exc:  # a call's failure is its own: its batch-mates go on
        outcome = pack("error", exc)
    except asyncio.CancelledError:
        if not ctx.dropped:
            raise  # the whole batch is being cancelled
        # Dropped: the coordinator no longer waits for it; its batch-mates go on.
        outcome = pack("error", TaskCancelledError(f"Task {spec.task.id} was cancelled"))
    if not local and len(outcome[1]) > INLINE_LIMIT:
        held[spec.key] = outcome
        ctx.send({"kind": "end", "held": True})
    else:
        ctx.send({"kind": "end", "outcome": list(outcome)})


def dumps(value: Any) -> bytes:
    """Pickle ``value``: by reference, else by value (cloudpickle: a lambda, a class made in a
    test), as Dask does without its extra checks, which cost more than the pickling here."""
    try:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        import cloudpickle  # type: ignore[import-untyped]

        data: bytes = cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        return data


def _keep(kind: str, value: Any) -> Outcome:
    return ("value" if kind == "result" else "raised"), value


def _pack(kind: str, value: Any) -> Outcome:
    """Pickle an outcome here, one call at a time, so that a value that cannot travel fails
    only its own call (a whole batch's result would fail every call in it)."""
    try:
        return kind, dumps(value)
    except Exception as exc:
        what = "result" if kind == "result" else f"error ({type(value).__name__}: {value})"
        error = ProviderError(
            f"The task's {what} could not be serialized to travel home from the Dask worker: "
            f"{type(exc).__name__}: {exc}",
            retryable=False,
        )
        return "error", dumps(error)


def unpack(outcome: Outcome | list[Any]) -> Any:
    """On the coordinator: the result an ``end`` message carried, or raise the error it did."""
    kind, data = outcome
    if kind == "value":
        return data
    if kind == "raised":
        raise data
    try:
        value = pickle.loads(data)
    except Exception as exc:
        raise ProviderError(
            f"The task's {kind} could not be read back from the Dask worker: "
            f"{type(exc).__name__}: {exc}",
            retryable=False,
        ) from None
    if kind == "error":
        raise value if isinstance(value, BaseException) else ProviderError(repr(value))
    return value


async def _watch(worker: Any, control: str, contexts: Mapping[str, WorkerContext]) -> None:
    """Mirror the executor's control record into this batch's contexts every 0.1 s."""
    # Asked straight through the worker's own connection to the scheduler: a Dask object here
    # would make a worker client, which outlives the cluster and warns when collected.
    scheduler = worker.scheduler
    while True:
        # Asked first after one interval: most batches of small calls are over by then, and a
        # flag set before the batch started is still seen within 0.1 s.
        await anyio.sleep(_POLL)
        try:
            record = await scheduler.get_metadata(keys=[control], default=None)
        except Exception:
            # The scheduler is gone (the cluster is closing): nobody is left to steer us.
            for ctx in contexts.values():
                ctx.steer(cancelled=True, paused=False, dropped=False)
            return
        record = record or {}
        cancelled = set(record.get("cancelled", ()))
        paused = set(record.get("paused", ()))
        dropped = set(record.get("dropped", ()))
        for key, ctx in contexts.items():
            ctx.steer(
                cancelled=key in cancelled or key in dropped,
                paused=key in paused,
                dropped=key in dropped,
            )


class _Outbox:
    """Gathers a batch's messages and sends those of one loop tick as one event, in order."""

    def __init__(self, worker: Any, topic: str, local: bool) -> None:
        self._worker = worker
        self._topic = topic
        self._local = local
        self._pending: list[list[Any]] = []
        self._scheduled = False

    def send(self, key: str, message: dict[str, Any]) -> None:
        self._pending.append([key, message])
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if self._pending:
            pending, self._pending = self._pending, []
            # Pickled here in one go: Dask would otherwise walk every message twice on its
            # way (worker to scheduler to client) looking for objects to serialise.
            sent = hand_over(self._topic, pending) if self._local else pickle.dumps(pending)
            if sent is not None:  # None: the executor stopped, nobody listens
                self._worker.log_event(self._topic, sent)


class WorkerContext(TaskFacts):
    """The context a provider gets on a worker: reports travel home through the batch's outbox,
    control comes from the executor's record, polled by the batch every 0.1 s."""

    def __init__(self, outbox: _Outbox, spec: CallSpec) -> None:
        self._outbox = outbox
        self._key = spec.key
        self._task = spec.task
        self._upstream = spec.upstream  # a fresh copy: unpickled from the batch
        self._attempt = spec.attempt
        self._working_directory = spec.working_directory
        self._cancelled = False
        self._paused = False
        self.dropped = False
        """The coordinator gave up on the call (its timeout, or the grace period)."""
        self.task: asyncio.Future[None] | None = None
        """The asyncio task running the call, cancelled when it is dropped."""

    def send(self, message: dict[str, Any]) -> None:
        """Send one report home, tagged with this call's key."""
        self._outbox.send(self._key, message)

    def steer(self, *, cancelled: bool, paused: bool, dropped: bool) -> None:
        """Apply the control record's flags for this call (a cancel is never taken back)."""
        self._cancelled = self._cancelled or cancelled
        self._paused = paused
        if dropped and not self.dropped and self.task is not None:
            self.dropped = True
            self.task.cancel()

    # -- the ProviderTaskExecutionContext protocol -------------------------------------------

    @property
    def runtime_agent_id(self) -> str:
        return ""

    @property
    def working_directory(self) -> str:
        return self._working_directory

    @property
    def attempt(self) -> int:
        return self._attempt

    @property
    def upstream_results(self) -> Mapping[str, TaskResult]:
        return self._upstream

    async def append_output(self, text: str) -> None:
        self.send({"kind": "output", "text": str(text)})

    async def update_progress(self, progress: float) -> None:
        self.send({"kind": "progress", "value": float(progress)})

    async def add_step(self, description: str) -> str | None:
        step_id = uuid.uuid4().hex
        self.send({"kind": "add_step", "id": step_id, "description": str(description)})
        return step_id

    async def update_step(
        self, step_id: str, status: TaskStatus | str, output: str | None = None
    ) -> None:
        self.send(
            {
                "kind": "update_step",
                "id": step_id,
                "status": TaskStatus(status).value,
                "output": None if output is None else str(output),
            }
        )

    def is_cancelled(self) -> bool:
        return self._cancelled

    def is_paused(self) -> bool:
        return self._paused and not self._cancelled

    async def checkpoint(self) -> None:
        # The flags are refreshed by the batch's watch from the scheduler: polling is the design.
        while self._paused and not self._cancelled:  # noqa: ASYNC110
            await anyio.sleep(_POLL)
        if self._cancelled:
            raise TaskCancelledError(f"Task {self._task.id} was cancelled")
