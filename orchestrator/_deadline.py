"""Awaiting somebody else's code for a limited time (event handlers, observer hooks)."""

from __future__ import annotations

from collections.abc import Awaitable

import anyio


async def finished_within(awaitable: Awaitable[object], seconds: float) -> bool:
    """Await ``awaitable`` for at most ``seconds``; False when it was cut off."""
    with anyio.move_on_after(seconds) as waited:
        await awaitable
    return not waited.cancelled_caught
