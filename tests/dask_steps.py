"""Task functions for the dask executor's tests (run by the ``python`` provider on workers)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import anyio


def where(task, upstream):
    """The address of the Dask worker this runs on."""
    from distributed import get_worker

    return get_worker().address


async def report(task, ctx):
    """Fifty output lines, a step, progress: everything the context can carry home."""
    step = await ctx.add_step("count to fifty")
    for number in range(1, 51):
        await ctx.append_output(f"line {number}")
    await ctx.update_progress(60)
    await ctx.update_step(step, "completed", "counted")
    return "reported"


async def watch_control(task, ctx):
    """Report when a pause is seen; on cancel, touch ``cancel-seen`` in the working directory."""
    marker = Path(ctx.working_directory) / "cancel-seen"
    said_paused = False
    while True:
        if ctx.is_cancelled():
            marker.write_text(str(time.time()))
            return "stopped"
        if ctx.is_paused() and not said_paused:
            await ctx.append_output("saw pause")
            said_paused = True
        if not ctx.is_paused() and said_paused:
            await ctx.append_output("saw resume")
            return "resumed"
        await anyio.sleep(0.02)


def die(task, upstream):
    """Kill the worker process running this."""
    os._exit(1)


def unserialisable(task, upstream):
    """A result that cannot travel back from a worker process (a lock)."""
    import threading

    from hookspecs import TaskResult

    return TaskResult(success=True, summary="locked", extra={"lock": threading.Lock()})


def boom(task, upstream):
    """Fail with an exception of its own."""
    raise RuntimeError(f"boom from {task.id}")


async def sleepy(task, ctx):
    """Sleep a long time; touch ``<task id>-stopped`` in the working directory if stopped."""
    try:
        await anyio.sleep(30)
    finally:
        (Path(ctx.working_directory) / f"{task.id}-stopped").write_text(str(time.time()))
    return "slept"
