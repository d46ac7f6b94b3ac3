"""Running a command for the ``shell`` provider: its process group, its pipes, its end.

Imported when a shell task first runs, so registering the provider stays cheap.
"""

from __future__ import annotations

import codecs
import contextlib
import math
import os
import signal
import subprocess
from typing import TYPE_CHECKING

import anyio
from anyio.abc import ByteReceiveStream, Process

from hookspecs.provider import ProviderError

if TYPE_CHECKING:
    from hookspecs.provider import ProviderTaskExecutionContext

_WATCH_INTERVAL = 0.05


async def run_command(
    command: list[str] | str,
    ctx: ProviderTaskExecutionContext,
    cwd: str | None,
    extra_env: dict[str, str],
    grace: float,
) -> tuple[int | None, str | None]:
    """Run ``command`` in a new process group, streaming its output into ``ctx``; return its
    exit code (negative: killed by that signal) and the last line it wrote to stderr."""
    env = {**os.environ, **extra_env} if extra_env else None
    try:
        process = await anyio.open_process(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    except OSError as exc:
        raise ProviderError(f"Cannot run {command!r}: {exc}", retryable=False) from exc
    stderr_tail: list[str] = []
    try:
        async with anyio.create_task_group() as group:
            assert process.stdout is not None and process.stderr is not None
            group.start_soon(_pump, process.stdout, ctx, None)
            group.start_soon(_pump, process.stderr, ctx, stderr_tail)
            group.start_soon(_watch, process, ctx, group.cancel_scope)
            await process.wait()
            # The readers end when the pipes close, once every process holding them has
            # exited; a child left in the background may hold them, so they get one second.
            group.cancel_scope.deadline = anyio.current_time() + 1
    finally:
        with anyio.CancelScope(shield=True):
            await _stop(process, grace)
    return process.returncode, (stderr_tail[-1] if stderr_tail else None)


def _signal_group(process: Process, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


async def _pump(
    stream: ByteReceiveStream, ctx: ProviderTaskExecutionContext, tail: list[str] | None
) -> None:
    """Copy a pipe into the task output, one write per chunk of complete lines."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    async for chunk in stream:
        pending += decoder.decode(chunk)
        if "\n" not in pending:
            continue
        complete, _, pending = pending.rpartition("\n")
        await _emit(complete, ctx, tail)
    pending += decoder.decode(b"", final=True)
    if pending:
        await _emit(pending, ctx, tail)


async def _emit(text: str, ctx: ProviderTaskExecutionContext, tail: list[str] | None) -> None:
    if tail is not None:
        lines = [line for line in text.split("\n") if line.strip()]
        if lines:
            tail[:] = lines[-1:]
    await ctx.append_output(text)


async def _watch(
    process: Process, ctx: ProviderTaskExecutionContext, scope: anyio.CancelScope
) -> None:
    """Mirror pause and resume onto the process group; end it at once on cancel."""
    stopped = False
    while process.returncode is None:
        if ctx.is_cancelled():
            scope.cancel()
            return
        paused = ctx.is_paused()
        if paused != stopped:
            _signal_group(process, signal.SIGSTOP if paused else signal.SIGCONT)
            stopped = paused
        await anyio.sleep(_WATCH_INTERVAL)


async def _stop(process: Process, grace: float) -> None:
    """End the process group: nothing left running after the task. SIGCONT first, so a stopped
    group can act on SIGTERM."""
    if process.returncode is None:
        _signal_group(process, signal.SIGCONT)
        _signal_group(process, signal.SIGTERM)
        with anyio.move_on_after(grace if math.isfinite(grace) and grace >= 0 else 2):
            await process.wait()
    # Children that outlive the leader still hold the group; they go too.
    _signal_group(process, signal.SIGKILL)
    if process.returncode is None:
        await process.wait()
    await process.aclose()
