"""Writes the runner does not wait for: gathered per event-loop turn, queued in the store as one,
and followed, in order, by one coroutine.

The runner's own writes (a run starting, a run ending) go into a buffer; at the end of the
event-loop turn the buffer becomes one store write (each task written once, in its state at that
moment, with every event in order), so a run that starts and ends within a turn costs one write,
and a hundred runs ending together cost one. One follower coroutine awaits the commits in the order
they were queued and, after each, delivers its events and releases whoever waits for its tasks: a
change is still announced only once it is stored. A write that is waited for sends the buffer
first, so the store sees every change in the order it was made. When too many commits are
outstanding, the runner waits, so a fast producer cannot run ahead of the disk without bound.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from orchestrator._batch import Batch

if TYPE_CHECKING:
    from orchestrator.store._base import SubmitTasks

logger = logging.getLogger("dagorch.service")

OUTSTANDING_LIMIT = 64
"""Commits that may be outstanding before the runner waits for the disk."""


class WriteBehind:
    """The buffer of writes nobody waits for, and the follower of their commits."""

    def __init__(
        self,
        submit: SubmitTasks,
        records: Callable[[Batch], list[tuple[str, str, dict[str, object] | None, int]]],
        follow: Callable[[Batch, Awaitable[int | None]], Awaitable[None]],
        settle: Callable[[Batch], None],
        spawn: Callable[[Awaitable[None]], None],
    ) -> None:
        self._submit = submit
        self._records = records
        self._follow = follow
        self._settle = settle
        self._spawn = spawn
        self._buffer: Batch | None = None
        self._queue: deque[tuple[Batch, Awaitable[int | None]]] = deque()
        self._following = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._space = asyncio.Event()

    def add(self, batch: Batch) -> None:
        """Buffer ``batch``; it is sent at the end of this event-loop turn."""
        buffer = self._buffer
        if buffer is None:
            buffer = self._buffer = Batch()
            asyncio.get_running_loop().call_soon(self.send)
        buffer.tasks.update(batch.tasks)
        buffer.events.extend(batch.events)
        buffer.ended.extend(batch.ended)

    def send(self) -> None:
        """Queue the buffer in the store now (a write that is waited for calls this first)."""
        batch, self._buffer = self._buffer, None
        if batch is None:
            return
        try:
            commit = self._submit(list(batch.tasks.values()), self._records(batch))
        except Exception:
            logger.exception("Could not queue a write")
            self._settle(batch)
            return
        self._queue.append((batch, commit))
        if not self._following:
            self._following = True
            self._idle.clear()
            self._spawn(self._drain())

    async def keep_up(self) -> None:
        """Wait while too many commits are outstanding."""
        while len(self._queue) > OUTSTANDING_LIMIT:
            self._space.clear()
            await self._space.wait()

    async def drained(self) -> None:
        """Return once everything buffered is committed and followed."""
        self.send()
        await self._idle.wait()

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, commit = self._queue[0]
                try:
                    await self._follow(batch, commit)
                except Exception:
                    # The store refused it (a full disk): logged, and the next ones followed.
                    logger.exception("A queued write failed")
                finally:
                    self._queue.popleft()
                    self._space.set()
        finally:
            self._following = False
            self._idle.set()
