"""The Dask executor's coordinator-side state for one call and for one batch of calls.

A ``Call`` is where the worker's messages for one provider call arrive (the executor's topic
handler puts them there) and where they are applied, in order, to the real task context; a
``CallBatch`` is the calls sent together as one Dask task.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from typing import TYPE_CHECKING, Any

from orchestrator import _dask_worker as wire

if TYPE_CHECKING:
    from hookspecs.provider import ProviderTaskExecutionContext


@dataclasses.dataclass(eq=False, slots=True)
class CallBatch:
    """Calls sent together as one Dask task (``holding``: an outcome too large for its end
    message is in the task's result)."""

    calls: list[Call]
    future: Any
    holding: bool = False


class Call:
    """One provider call, coordinator side: the worker's messages for it, applied in order to
    the real context."""

    __slots__ = ("_inbox", "_steps", "_waiter", "abandoned", "batch", "ctx", "ended", "spec")

    def __init__(self, spec: wire.CallSpec, ctx: ProviderTaskExecutionContext) -> None:
        self.spec = spec
        self.ctx = ctx
        self.batch: CallBatch | None = None
        self.ended = False
        """The worker side is over (its end arrived, or its batch ended)."""
        self.abandoned = False
        self._inbox: deque[dict[str, Any]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._steps: dict[str, str | None] = {}

    def put(self, message: dict[str, Any]) -> None:
        """Queue a message from the worker (or the batch's own end) for ``finish``."""
        if self.abandoned:
            return
        self._inbox.append(message)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def abandon(self) -> None:
        """Nobody waits for this call any more: drop what arrives for it."""
        self.abandoned = True
        self._inbox.clear()

    async def finish(self) -> Any:
        """Apply the call's messages to the context until its outcome arrives; return it."""
        ctx = self.ctx
        while True:
            while not self._inbox:
                self._waiter = asyncio.get_running_loop().create_future()
                await self._waiter
            message = self._inbox.popleft()
            kind = message.get("kind")
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
            elif kind == "failed":
                raise message["error"]
            elif kind == "end" and "outcome" in message:
                return wire.unpack(message["outcome"])
            # An end without an outcome: it is held in the batch's result, which follows.
