"""The Dask executor, coordinator side: batch provider calls, relay their context, steer them.

``execute`` queues each call; the queue goes to the cluster as Dask tasks (``run_batch``) of
many calls each: at ``batch_size`` calls, at the end of the loop tick once as many calls wait as
run (none running: a chain's next call goes at once), else ``linger`` seconds after the first.
A flush makes at least one batch per worker, so a burst spreads over the cluster.

Reports travel back on ONE topic per executor (``worker.log_event``), tagged with the call's
key, and are applied here in order to the real context: only the coordinator writes the store.
A call's ``end`` message carries its outcome, so it never waits for its batch-mates. Cancel,
pause and drop go out through one record per executor on the scheduler (``set_metadata``),
rewritten when a flag changes and polled by every running batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import pickle
import uuid
from typing import TYPE_CHECKING, Any

import anyio

from hookspecs.provider import ProviderError
from orchestrator import _dask_worker as wire
from orchestrator._dask_calls import Call, CallBatch
from orchestrator.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Callable

    from hookspecs.models import OrchestratedTask
    from hookspecs.provider import AgentProvider, ProviderTaskExecutionContext

CONNECT_TIMEOUT = 10.0
"""Seconds to reach a scheduler before giving up."""
_POLL = 0.05
_SEND_INTERVAL = 0.001


class DaskExecutor:
    """Runs provider calls on a Dask cluster: the scheduler at ``address``, or a local cluster
    started for this service (in-process threads unless ``processes=True``).

    Calls are sent in batches of up to ``batch_size``, each batch one Dask task that runs its
    calls concurrently on the worker's event loop; a call waits at most ``linger`` seconds for
    batch-mates. ``batch_size=1`` sends every call as a Dask task of its own. A worker runs at
    most ``threads_per_worker`` batches at once."""

    name = "dask"

    def __init__(
        self,
        address: str | None = None,
        *,
        processes: bool = False,
        n_workers: int | None = None,
        threads_per_worker: int = 8,
        connect_timeout: float = CONNECT_TIMEOUT,
        batch_size: int = 64,
        linger: float = 0.005,
    ) -> None:
        if batch_size < 1 or linger < 0:
            raise ConfigurationError("The dask executor needs batch_size ≥ 1 and linger ≥ 0")
        self.threads_per_worker = threads_per_worker
        self.address = address
        self.connect_timeout = connect_timeout
        self.processes = processes
        self.n_workers = n_workers
        self.batch_size = batch_size
        self.linger = linger
        self.client: Any = None
        self._cluster: Any = None
        self.describe_origin: Callable[[AgentProvider], str] = origin_of
        """Names where a provider comes from (its distribution), for a worker that lacks it."""
        self.batches_sent = 0
        """Dask tasks submitted so far (each one batch of calls)."""
        self._topic = f"dagorch-{uuid.uuid4().hex[:12]}"
        self._control = f"{self._topic}-control"
        self._numbers = itertools.count()
        self._calls: dict[str, Call] = {}
        """Calls with a worker side that may still run: waited for, or dropped but not ended."""
        self._pending: list[Call] = []
        self._flush_handle: asyncio.Handle | None = None
        self._flush_soon = False
        self._running = 0
        """Calls submitted whose end has not arrived."""
        self._batches: set[CallBatch] = set()
        self._watchers: set[asyncio.Task[None]] = set()
        self._steering: asyncio.Task[None] | None = None
        self._published: dict[str, list[str]] = {}
        self._in_process = False
        """The workers run in this process: calls and reports are handed over, not pickled."""

    async def start(self) -> None:
        """Connect to the scheduler (or start a local cluster); a clear error if it fails."""
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError:
            raise ConfigurationError(
                "The dask executor needs Dask: pip install 'dagorch[dask]'"
            ) from None
        # A worker that dies fails its calls at once; each task's own retry policy decides next.
        dask.config.set({"distributed.scheduler.allowed-failures": 0})
        try:
            if self.address:
                # Kept before it connects, so a failed connection can still be closed here (a
                # client left to the garbage collector complains about its closed loop).
                self.client = Client(self.address, asynchronous=True, timeout=self.connect_timeout)
                with anyio.fail_after(self.connect_timeout):
                    await self.client
            else:
                self._cluster = await LocalCluster(
                    processes=self.processes,
                    n_workers=self.n_workers or (2 if self.processes else 1),
                    threads_per_worker=self.threads_per_worker,
                    asynchronous=True,
                    dashboard_address=None,
                )
                self.client = await Client(self._cluster, asynchronous=True)
                self._in_process = not self.processes
                if self._in_process:
                    wire.open_handover(self._topic)
        except (OSError, TimeoutError) as exc:
            await self.stop()
            where = self.address or "a local cluster"
            raise ConfigurationError(f"Cannot reach the Dask scheduler at {where}: {exc}") from None
        self._send_sooner()
        # Sent before any batch on the same ordered stream, so no report can beat it there.
        self.client.subscribe_topic(self._topic, self._on_event)

    def _send_sooner(self) -> None:
        """Shorten the intervals Dask holds messages for, to send several at once (client to
        scheduler 10 ms, scheduler to worker 5 ms, worker and scheduler to client 2 ms): every
        call of a chain waits for them, while the batches already group the calls. The
        scheduler and in-process workers of a cluster started here are reached too."""
        streams: list[Any] = []
        with contextlib.suppress(AttributeError):  # Dask's internals: best effort
            streams.append(self.client.scheduler_comm)
            if self._cluster is not None:
                scheduler = self._cluster.scheduler
                streams += [*scheduler.stream_comms.values(), *scheduler.client_comms.values()]
            if self._in_process:
                streams += [worker.batched_stream for worker in self._cluster.workers.values()]
        for stream in streams:
            with contextlib.suppress(AttributeError):
                stream.interval = _SEND_INTERVAL

    async def stop(self) -> None:
        """Close the client (and the local cluster, when this executor started one)."""
        client, cluster, self.client, self._cluster = self.client, self._cluster, None, None
        self._flush()  # with no client: fails the calls still waiting for a batch
        tasks = [*self._watchers, *([self._steering] if self._steering else [])]
        for task in tasks:
            task.cancel()
        with anyio.CancelScope(shield=True):
            await asyncio.gather(*tasks, return_exceptions=True)
            futures = [batch.future for batch in self._batches]
            self._batches.clear()
            if client is not None and futures:
                with contextlib.suppress(Exception), anyio.move_on_after(2):
                    await client.cancel(futures)
            if client is not None:
                with contextlib.suppress(Exception):  # not subscribed when it never connected
                    client.unsubscribe_topic(self._topic)
                with contextlib.suppress(Exception):
                    await client.close()
            with contextlib.suppress(Exception):
                if cluster is not None:
                    await cluster.close()
            wire.close_handover(self._topic)

    async def execute(
        self, provider: AgentProvider, task: OrchestratedTask, ctx: ProviderTaskExecutionContext
    ) -> Any:
        """Run the call on a worker (in a batch), relaying its context until it ends."""
        if self.client is None:
            raise ProviderError("The dask executor is not started", retryable=False)
        key = f"c{next(self._numbers)}"
        spec = wire.CallSpec(
            key,
            provider.id,
            self.describe_origin(provider),
            task,
            dict(ctx.upstream_results),
            ctx.attempt,
            ctx.working_directory,
        )
        call = self._calls[key] = Call(spec, ctx)
        self._enqueue(call)
        if self._steering is None:
            self._steering = asyncio.get_running_loop().create_task(self._steer())
        try:
            return await call.finish()
        finally:
            if call.batch is None:
                with contextlib.suppress(ValueError):
                    self._pending.remove(call)
            if call.ended or call.batch is None:
                del self._calls[key]
            else:
                # Given up here (its timeout, the grace period, the service stopping): the
                # worker hears "dropped" through the control record and cancels it there.
                call.abandon()

    # -- batching -----------------------------------------------------------------------------

    def _enqueue(self, call: Call) -> None:
        self._pending.append(call)
        pending = len(self._pending)
        if pending >= self.batch_size:
            self._flush()
        elif pending >= self._running:
            # As many waiting as running (none running: a chain's next call): worth sending
            # without the linger, once the calls made in this loop tick have joined.
            if not self._flush_soon:
                if self._flush_handle is not None:
                    self._flush_handle.cancel()
                self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)
                self._flush_soon = True
        elif self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_later(self.linger, self._flush)

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle, self._flush_soon = None, False
        pending, self._pending = self._pending, []
        if not pending or self.client is None:
            for call in pending:
                call.put({"kind": "failed", "error": ProviderError("The dask executor stopped")})
            return
        workers = int(self.client.scheduler_info().get("n_workers") or 1)
        count = max(-(-len(pending) // self.batch_size), min(len(pending), workers))
        size = -(-len(pending) // count)
        for first in range(0, len(pending), size):
            self._send(pending[first : first + size])

    def _send(self, calls: list[Call]) -> None:
        try:
            self._submit(calls)
        except Exception as exc:  # run from the loop: nobody else would see it
            if len(calls) > 1:  # e.g. one task that cannot be pickled: the others still go
                for call in calls:
                    self._send([call])
            else:
                error = ProviderError(f"Sending the call to Dask failed: {exc!r}")
                calls[0].put({"kind": "failed", "error": error})

    def _submit(self, calls: list[Call]) -> None:
        # Pickled here: Dask pickles a task's arguments anyway, but walks them first looking
        # for futures, which costs more than the pickling for a batch of task models.
        specs = [call.spec for call in calls]
        ticket = wire.hand_over(self._topic, specs) if self._in_process else None
        payload = wire.dumps(specs) if ticket is None else ticket
        future = self.client.submit(
            wire.run_batch,
            self._topic,
            self._control,
            payload,
            key=f"dagorch-batch-{uuid.uuid4().hex}",
            pure=False,
        )
        batch = CallBatch(calls, future)
        for call in calls:
            call.batch = batch
        self._running += len(calls)
        self.batches_sent += 1
        self._batches.add(batch)
        watcher = asyncio.get_running_loop().create_task(self._watch(batch))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)

    async def _watch(self, batch: CallBatch) -> None:
        """Wait for the batch's Dask task; fail the calls it left without an outcome."""
        from distributed import KilledWorker

        future, held = batch.future, {}
        try:
            # Waits for the task's state only: its result is fetched (a round trip to the
            # worker) only when some outcome was too large for its end message.
            error = await future.exception()
            if error is None and future.status == "finished" and batch.holding:
                try:
                    held = await future
                except Exception as exc:  # the worker holding it is gone
                    error = exc
        except Exception as exc:  # the client lost its scheduler
            error = exc
        except BaseException:
            self._end(batch, {}, "The dask executor stopped before the call ended")
            raise
        if isinstance(error, KilledWorker):
            failure = f"The Dask worker running the task died: {error}"
        elif error is not None:
            failure = f"The Dask task running the call failed: {error!r}"
        elif future.status != "finished":
            failure = f"The Dask task running the call was {future.status}"
        else:  # every end message precedes the task's end on the same ordered streams
            failure = "The Dask worker ended the batch without the call's outcome"
        self._end(batch, held, failure)

    def _end(self, batch: CallBatch, held: dict[str, wire.Outcome], failure: str) -> None:
        self._batches.discard(batch)
        # The task's result is no longer needed: let the worker free it now, not when the
        # future is garbage-collected.
        with contextlib.suppress(Exception):
            batch.future.release()
        for call in batch.calls:
            outcome = held.get(call.spec.key)
            if outcome is not None:
                call.put({"kind": "end", "outcome": outcome})
            elif not call.ended:
                call.put({"kind": "failed", "error": ProviderError(failure)})
            self._settle(call)
            if call.abandoned:
                self._calls.pop(call.spec.key, None)

    def _settle(self, call: Call) -> None:
        if not call.ended:
            call.ended = True
            self._running -= 1

    def _on_event(self, event: tuple[float, Any]) -> None:
        """The topic's handler (on the coordinator's loop): hand each message to its call."""
        calls, sent = self._calls, event[1]
        messages = wire.take(self._topic, sent) if isinstance(sent, int) else pickle.loads(sent)
        for key, message in messages:
            call = calls.get(key)
            if call is None:
                continue
            if message.get("kind") == "end":
                self._settle(call)
                if message.get("held") and call.batch is not None:
                    call.batch.holding = True
                if call.abandoned:
                    del calls[key]
            call.put(message)

    # -- steering -----------------------------------------------------------------------------

    async def _steer(self) -> None:
        """Keep the control record in step with the calls' cancel and pause flags (checked every
        50 ms) and with the dropped calls, while any call is live."""
        try:
            while True:
                record = self._record()
                client = self.client
                if record != self._published and client is not None:
                    with contextlib.suppress(Exception):
                        await client.set_metadata(self._control, record)
                        self._published = record
                if not self._calls:
                    return
                await asyncio.sleep(_POLL)
        finally:
            self._steering = None

    def _record(self) -> dict[str, list[str]]:
        record: dict[str, list[str]] = {}
        for key, call in self._calls.items():
            if call.abandoned:
                record.setdefault("dropped", []).append(key)
            elif call.ctx.is_cancelled():
                record.setdefault("cancelled", []).append(key)
            elif call.ctx.is_paused():
                record.setdefault("paused", []).append(key)
        return record


def origin_of(provider: AgentProvider) -> str:
    """Where a provider comes from, for the error when a worker lacks it."""
    return f"module {type(provider).__module__}"
