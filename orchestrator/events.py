"""Delivering task events to handlers and streams, isolated from the code that emits them."""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from hookspecs.models import TaskEvent, TaskEventType
from orchestrator._deadline import finished_within

logger = logging.getLogger("dagorch.events")

ALL_EVENTS = "task"
"""Subscribe to this name to receive every event."""

EventHandler = Callable[[TaskEvent], Awaitable[None] | None]
"""A handler: a function or coroutine function taking one ``TaskEvent``."""


class _Subscription:
    """What every event iterator shares: ``next(timeout)``, ``close`` and ``async with``."""

    async def __anext__(self) -> TaskEvent:
        raise NotImplementedError

    async def next(self, timeout: float | None = None) -> TaskEvent:
        """The next event; ``TimeoutError`` if none arrives within ``timeout`` seconds."""
        with anyio.fail_after(timeout):
            return await self.__anext__()

    def close(self) -> None:
        """Stop receiving events."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Close (async form, for ``contextlib.aclosing``)."""
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._finish()

    def _finish(self) -> None:
        self.close()


class EventStream(_Subscription):
    """An async iterator over events, registered from the moment it is created.

    Use it as ``async with service.stream_events() as events: async for event in events: ...``;
    iteration ends when the stream is closed or the service stops.
    """

    def __init__(self, bus: EventBus, event: str) -> None:
        self._bus = bus
        self.event = event
        send, receive = anyio.create_memory_object_stream[TaskEvent](math.inf)
        self._send: MemoryObjectSendStream[TaskEvent] = send
        self._receive: MemoryObjectReceiveStream[TaskEvent] = receive
        bus._streams.append(self)
        bus._listeners_changed()

    def _offer(self, event: TaskEvent) -> None:
        try:
            self._send.send_nowait(event)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._bus._drop_stream(self)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> TaskEvent:
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None

    def close(self) -> None:
        """Stop receiving; events already queued can still be read."""
        self._bus._drop_stream(self)
        self._send.close()

    def _finish(self) -> None:
        self.close()
        self._receive.close()


EventReader = Callable[[int, int], Awaitable[list[TaskEvent]]]
"""Reads logged events: ``reader(after, limit)`` gives those numbered above ``after``."""


class EventFollower(_Subscription):
    """Replays logged events after a cursor, then follows live ones, without repeats.

    It subscribes to live events before reading the log, so an event emitted while the log is
    being read arrives once. Live events can arrive out of order when several changes are
    announced at once; when a number is skipped, the follower reads the log from its cursor
    first, so events come back in the order they were numbered. ``cursor`` is the highest number returned so far; a consumer that
    keeps it can resume after a restart.
    """

    _REMEMBERED = 4096

    def __init__(
        self,
        bus: EventBus,
        reader: EventReader,
        after: int,
        event: str,
        last: Callable[[], Awaitable[int | None]] | None = None,
    ) -> None:
        self._live = bus.stream(event)
        self._reader = reader
        self._last = last
        self._began_at = bus.seq
        self._event = event
        self.cursor = after
        self._log_mark = after
        self._backlog: list[TaskEvent] = []
        self._replaying = True
        self._held: TaskEvent | None = None
        self._seen: set[int] = set()
        self._seen_order: deque[int] = deque()

    def __aiter__(self) -> EventFollower:
        return self

    def _gap_checked(self, event: TaskEvent) -> bool:
        # A follower of one event type sees gaps all the time (the other types); the log was
        # already read past this event when it was held once.
        return self._held is None and self._log_mark >= event.seq

    def _fresh(self, event: TaskEvent) -> bool:
        # True the first time a number is returned; a bounded memory of recent numbers.
        if event.seq <= self.cursor - self._REMEMBERED or event.seq in self._seen:
            return False
        self._seen.add(event.seq)
        self._seen_order.append(event.seq)
        if len(self._seen_order) > self._REMEMBERED:
            self._seen.discard(self._seen_order.popleft())
        self.cursor = max(self.cursor, event.seq)
        return True

    async def __anext__(self) -> TaskEvent:
        while True:
            while self._backlog:
                event = self._backlog.pop(0)
                if self._fresh(event):
                    return event
            if self._replaying:
                page = await self._reader(self._log_mark, 500)
                if not page and self._last is not None and await self._cursor_was_past_the_end():
                    continue  # read again, from where this follower began
                if page:
                    self._log_mark = page[-1].seq
                    self._backlog = [e for e in page if self._event in (ALL_EVENTS, e.type.value)]
                    continue
                self._replaying = False
                held, self._held = self._held, None
                if held is not None and self._fresh(held):
                    return held  # the log had nothing for the gap (a store without one)
            event = await self._live.__anext__()
            if event.seq <= self._log_mark or event.seq in self._seen:
                continue
            if event.seq > self.cursor + 1 and not self._gap_checked(event):
                # Numbers were skipped: read them (and this one) from the log first, so events
                # come back in the order they were numbered.
                self._held = event
                self._log_mark = min(self._log_mark, self.cursor)
                self._replaying = True
                continue
            if self._fresh(event):
                return event

    async def _cursor_was_past_the_end(self) -> bool:
        # Checked once, when the log first has nothing after the cursor: a cursor kept from
        # another (recreated or restored) file can be past the end of this log, and every live
        # event would then look already seen. It then follows from the last event announced
        # when it was made.
        last, self._last = self._last, None
        highest = await last() if last is not None else None
        if highest is None or self._log_mark <= highest:
            return False
        logger.warning(
            "Event cursor %d is past the end of the event log (%d); following from event %d",
            self._log_mark,
            highest,
            self._began_at,
        )
        self.cursor = self._log_mark = min(self._began_at, highest)
        return True

    def close(self) -> None:
        """Stop following."""
        self._live.close()


class EventBus:
    """Handlers by event name (or ``"task"`` for all) plus any number of streams.

    A handler that raises is logged and skipped: it never breaks the call that emitted the event.
    Async handlers are awaited in order. When nobody listens, no event object is built.
    """

    def __init__(self, *, logged: bool = False) -> None:
        """``logged``: the store logs every event, so events are built even when nobody
        listens."""
        self._handlers: dict[str, list[EventHandler]] = {}
        self._streams: list[EventStream] = []
        self.seq = 0
        self._delivering: dict[asyncio.Task[Any] | None, deque[TaskEvent]] = {}
        """Per task delivering events: the events its handlers' changes raised meanwhile."""
        self._logged = logged
        self.has_listeners = False
        """True when an emitted event would reach anybody (kept up to date by every change of
        handlers or streams: it is read several times per task on the hot path)."""
        self.recording = logged
        """True when events must be built: somebody listens, or the store logs them (kept up to
        date as ``has_listeners`` is, and read as often)."""
        self.handler_timeout = 1.0
        """Seconds an async handler may take before it is cut off (a slow handler must not
        hold up the orchestrator)."""

    def _listeners_changed(self) -> None:
        self.has_listeners = bool(self._handlers) or bool(self._streams)
        self.recording = self.has_listeners or self._logged

    def on(self, event: str | TaskEventType, handler: EventHandler) -> None:
        """Call ``handler`` for events named ``event``, or for all events when it is ``"task"``."""
        self._handlers.setdefault(_key(event), []).append(handler)
        self._listeners_changed()

    def off(self, event: str | TaskEventType, handler: EventHandler) -> None:
        """Remove a handler added with ``on``; removing one that is not there does nothing."""
        key = _key(event)
        handlers = self._handlers.get(key, [])
        if handler in handlers:
            handlers.remove(handler)
        if not handlers:
            self._handlers.pop(key, None)
        self._listeners_changed()

    def stream(self, event: str | TaskEventType = ALL_EVENTS) -> EventStream:
        """A new stream of events named ``event`` (all events by default)."""
        return EventStream(self, _key(event))

    def follow(
        self,
        reader: EventReader,
        after: int,
        event: str | TaskEventType = ALL_EVENTS,
        last: Callable[[], Awaitable[int | None]] | None = None,
    ) -> EventFollower:
        """Logged events after ``after`` from ``reader``, then live ones; ``last`` gives the
        log's highest number, to catch a cursor beyond it."""
        return EventFollower(self, reader, after, _key(event), last)

    def _drop_stream(self, stream: EventStream) -> None:
        if stream in self._streams:
            self._streams.remove(stream)
        self._listeners_changed()

    def build(
        self,
        event_type: TaskEventType,
        task_id: str,
        data: dict[str, Any] | None,
        seq: int | None = None,
        timestamp: int | None = None,
    ) -> TaskEvent:
        """An event numbered ``seq`` (given by the store's log), else by this bus's own count;
        stamped ``timestamp`` (the log's, in ms), else now."""
        if seq is None:
            self.seq += 1
            seq = self.seq
        else:
            self.seq = seq
        if timestamp is None:
            return TaskEvent(type=event_type, task_id=task_id, data=data, seq=seq)
        return TaskEvent(type=event_type, task_id=task_id, data=data, seq=seq, timestamp=timestamp)

    async def deliver(self, *events: TaskEvent) -> None:
        """Hand each event, in order, to streams, then to its handlers, then to the catch-all
        handlers, each finished (awaited, if async) before the next one starts.

        Events that a handler's own changes raise are delivered after the events being
        delivered, not in the middle of them, so every handler sees events in the order they
        happened (a handler that pauses a task on ``task:started`` must not make the catch-all
        handlers see ``task:paused`` before ``task:started``).
        """
        current = asyncio.current_task()
        queued = self._delivering.get(current)
        if queued is not None:
            queued.extend(events)  # raised by a handler: they follow the ones being delivered
            return
        queued = self._delivering[current] = deque(events)
        try:
            while queued:
                await self._deliver_one(queued.popleft())
        finally:
            del self._delivering[current]

    async def _deliver_one(self, event: TaskEvent) -> None:
        for handler in self._route(event):
            try:
                outcome = handler(event)
                if inspect.isawaitable(outcome) and not await finished_within(
                    outcome, self.handler_timeout
                ):
                    logger.warning(
                        "An event handler took over %gs for %s on task %s; it was cut off",
                        self.handler_timeout,
                        event.type.value,
                        event.task_id,
                    )
            except Exception:
                _log_failure(event)
            except asyncio.CancelledError:
                # A handler that awaited something cancelled fails like any other; only a
                # cancellation of the delivering task itself goes on up.
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
                _log_failure(event)

    def _route(self, event: TaskEvent) -> list[EventHandler]:
        """Offer the event to the streams; return the handlers it goes to, in calling order."""
        name = event.type.value
        for stream in list(self._streams):
            if stream.event in (name, ALL_EVENTS):
                stream._offer(event)
        return [*self._handlers.get(name, ()), *self._handlers.get(ALL_EVENTS, ())]

    def close(self) -> None:
        """Remove every handler and end every stream."""
        self._handlers.clear()
        for stream in list(self._streams):
            stream.close()
        self._listeners_changed()


def _log_failure(event: TaskEvent) -> None:
    logger.exception("Event handler failed for %s on task %s", event.type.value, event.task_id)


def _key(event: str | TaskEventType) -> str:
    return event.value if isinstance(event, TaskEventType) else event
