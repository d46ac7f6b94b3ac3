"""The Dask executor, coordinator side: submit provider calls, relay their context, steer them.

Each provider call becomes one Dask task (``_dask_worker.run_on_worker``). What the provider
reports through its context travels back as structured events on a topic of its own
(``worker.log_event`` / ``client.subscribe_topic``) and is applied here, in order, to the real
context, so the store and the event stream are written by the coordinator only. Pause and cancel
travel out as two Dask ``Event``s per call, which the worker polls every 0.1 s.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import TYPE_CHECKING, Any

import anyio

from hookspecs.provider import ProviderError
from orchestrator.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Callable

    from hookspecs.models import OrchestratedTask
    from hookspecs.provider import AgentProvider, ProviderTaskExecutionContext

CONNECT_TIMEOUT = 10.0
"""Seconds to reach a scheduler before giving up."""
_POLL = 0.05
_END_WAIT = 5.0


class DaskExecutor:
    """Runs provider calls on a Dask cluster: the scheduler at ``address``, or a local cluster
    started for this service (in-process threads unless ``processes=True``). A worker runs at
    most ``threads_per_worker`` provider calls at once."""

    name = "dask"

    def __init__(
        self,
        address: str | None = None,
        *,
        processes: bool = False,
        n_workers: int | None = None,
        threads_per_worker: int = 8,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.threads_per_worker = threads_per_worker
        self.address = address
        self.connect_timeout = connect_timeout
        self.processes = processes
        self.n_workers = n_workers
        self.client: Any = None
        self._cluster: Any = None
        self.describe_origin: Callable[[AgentProvider], str] = origin_of
        """Names where a provider comes from (its distribution), for a worker that lacks it."""
        self._futures: set[Any] = set()

    async def start(self) -> None:
        """Connect to the scheduler (or start a local cluster); a clear error if it fails."""
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError:
            raise ConfigurationError(
                "The dask executor needs Dask: pip install 'dagorch[dask]'"
            ) from None
        # A worker that dies fails its task at once; the task's own retry policy decides next.
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
        except (OSError, TimeoutError) as exc:
            await self.stop()
            where = self.address or "a local cluster"
            raise ConfigurationError(f"Cannot reach the Dask scheduler at {where}: {exc}") from None

    async def stop(self) -> None:
        """Close the client (and the local cluster, when this executor started one)."""
        client, cluster, self.client, self._cluster = self.client, self._cluster, None, None
        if client is not None and self._futures:
            with contextlib.suppress(Exception), anyio.move_on_after(2):
                await client.cancel(list(self._futures))
        self._futures.clear()
        with contextlib.suppress(Exception):
            if client is not None:
                await client.close()
        with contextlib.suppress(Exception):
            if cluster is not None:
                await cluster.close()

    async def execute(
        self, provider: AgentProvider, task: OrchestratedTask, ctx: ProviderTaskExecutionContext
    ) -> Any:
        """Run the call on a worker, relaying its context until it ends."""
        from distributed import Event, KilledWorker

        from orchestrator._dask_worker import run_on_worker

        client = self.client
        if client is None:
            raise ProviderError("The dask executor is not started", retryable=False)
        key = f"dagorch-{task.id}-{uuid.uuid4().hex[:8]}"
        relay = _Relay(ctx)
        client.subscribe_topic(key, relay.receive)
        cancel, pause = Event(f"{key}-cancel", client=client), Event(f"{key}-pause", client=client)
        future = client.submit(
            run_on_worker,
            provider.id,
            self.describe_origin(provider),
            task,
            dict(ctx.upstream_results),
            ctx.attempt,
            ctx.working_directory,
            key,
            key=key,
            pure=False,
        )
        self._futures.add(future)
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(relay.pump)
                group.start_soon(_steer, ctx, cancel, pause)
                try:
                    result = await future
                except KilledWorker as exc:
                    raise ProviderError(f"The Dask worker running the task died: {exc}") from None
                finally:
                    with anyio.move_on_after(_END_WAIT):
                        await relay.ended.wait()
                    group.cancel_scope.cancel()
        except BaseExceptionGroup as failed:
            first: BaseException = failed
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            raise first from None
        finally:
            self._futures.discard(future)
            with anyio.CancelScope(shield=True):
                if not future.done():
                    with contextlib.suppress(Exception):
                        await future.cancel()
                with contextlib.suppress(Exception):
                    client.unsubscribe_topic(key)
                for event in (cancel, pause):
                    with contextlib.suppress(Exception):
                        await event.clear()
        return result


def origin_of(provider: AgentProvider) -> str:
    """Where a provider comes from, for the error when a worker lacks it."""
    return f"module {type(provider).__module__}"


async def _steer(ctx: ProviderTaskExecutionContext, cancel: Any, pause: Any) -> None:
    """Mirror the task's cancel and pause flags into the call's Dask events."""
    paused = False
    while True:
        if ctx.is_cancelled():
            await cancel.set()
            return
        now = ctx.is_paused()
        if now != paused:
            await (pause.set() if now else pause.clear())
            paused = now
        await anyio.sleep(_POLL)


class _Relay:
    """Applies the worker's context messages to the real context, in the order they were sent."""

    def __init__(self, ctx: ProviderTaskExecutionContext) -> None:
        self.ctx = ctx
        self.ended = anyio.Event()
        self._send, self._receive = anyio.create_memory_object_stream[dict[str, Any]](1 << 20)
        self._steps: dict[str, str | None] = {}

    def receive(self, event: tuple[float, Any]) -> None:
        """The topic handler (called on the coordinator's event loop)."""
        message = event[1]
        if isinstance(message, dict):
            with contextlib.suppress(anyio.WouldBlock, anyio.ClosedResourceError):
                self._send.send_nowait(message)

    async def pump(self) -> None:
        async for message in self._receive:
            kind = message.get("kind")
            ctx = self.ctx
            if kind == "output":
                await ctx.append_output(str(message.get("text", "")))
            elif kind == "progress":
                await ctx.update_progress(float(message.get("value", 0)))
            elif kind == "add_step":
                self._steps[str(message["id"])] = await ctx.add_step(str(message["description"]))
            elif kind == "update_step":
                step = self._steps.get(str(message["id"]), str(message["id"]))
                if step is not None:
                    await ctx.update_step(step, message["status"], message.get("output"))
            elif kind == "end":
                self.ended.set()
