"""One ACP session for the ``acp`` provider: the subprocess, the client side, the ending.

Imported when an ``acp`` task first runs (it needs agent-client-protocol).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Any

import anyio
from acp import PROTOCOL_VERSION, RequestError, connect_to_agent, text_block
from acp.schema import (
    AgentMessageChunk,
    AllowedOutcome,
    ClientCapabilities,
    DeniedOutcome,
    FileSystemCapabilities,
    Implementation,
    PermissionOption,
    ReadTextFileResponse,
    RequestPermissionResponse,
    ToolCallProgress,
    ToolCallStart,
    ToolCallUpdate,
    WriteTextFileResponse,
)

from hookspecs.models import TaskResult
from hookspecs.provider import ProviderError, ProviderTaskExecutionContext

_POLL = 0.05
_STEP_STATUS = {
    "pending": "pending",
    "in_progress": "running",
    "completed": "completed",
    "failed": "failed",
}


class TaskClient:
    """The client side of the session: where the agent's updates and requests land."""

    def __init__(self, ctx: ProviderTaskExecutionContext, cwd: Path, allowed: set[str]) -> None:
        self.ctx = ctx
        self.cwd = cwd
        self.allowed = allowed
        self.message: list[str] = []
        self._pending = ""
        self.steps: dict[str, str] = {}
        self.created: list[str] = []
        self.modified: list[str] = []
        self.problems: list[str] = []

    # -- updates ----------------------------------------------------------------------------

    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None:
        if isinstance(update, AgentMessageChunk):
            text = getattr(update.content, "text", None)
            if isinstance(text, str):
                self.message.append(text)
                self._pending += text
                if "\n" in self._pending:
                    complete, _, self._pending = self._pending.rpartition("\n")
                    await self.ctx.append_output(complete)
        elif isinstance(update, ToolCallStart):
            step = await self.ctx.add_step(f"{update.title} ({update.kind or 'other'})")
            if step is not None:
                self.steps[update.tool_call_id] = step
            await self._step_status(update.tool_call_id, update.status)
        elif isinstance(update, ToolCallProgress):
            await self._step_status(update.tool_call_id, update.status)

    async def _step_status(self, call_id: str, status: str | None) -> None:
        step = self.steps.get(call_id)
        if step is not None and status in _STEP_STATUS:
            await self.ctx.update_step(step, _STEP_STATUS[status])

    async def flush(self) -> None:
        if self._pending.strip():
            await self.ctx.append_output(self._pending)
        self._pending = ""

    # -- permissions --------------------------------------------------------------------------

    async def request_permission(
        self,
        session_id: str,
        tool_call: ToolCallUpdate,
        options: list[PermissionOption],
        **kwargs: Any,
    ) -> RequestPermissionResponse:
        title = tool_call.title or tool_call.tool_call_id
        kind = tool_call.kind or "other"
        allow = kind in self.allowed or title in self.allowed
        wanted = ("allow_once", "allow_always") if allow else ("reject_once", "reject_always")
        choice = next((o for k in wanted for o in options if o.kind == k), None)
        if allow:
            await self.ctx.append_output(f"Permission granted: {title} ({kind})")
        else:
            self.problems.append(
                f'Permission denied for "{title}" ({kind}); allow it with params.allow_tools'
            )
            await self.ctx.append_output(f"Permission denied: {title} ({kind})")
        if choice is None:
            return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
        return RequestPermissionResponse(
            outcome=AllowedOutcome(outcome="selected", option_id=choice.option_id)
        )

    # -- files, confined to the working directory -------------------------------------------------

    def _inside(self, path: str, verb: str) -> Path:
        target = Path(path)
        if not target.is_absolute():
            target = self.cwd / target
        resolved = target.resolve()
        if not resolved.is_relative_to(self.cwd):
            problem = f"Refused to {verb} {path}: outside the working directory {self.cwd}"
            self.problems.append(problem)
            raise RequestError.invalid_params({"path": path, "reason": problem})
        return resolved

    async def write_text_file(
        self, session_id: str, path: str, content: str, **kwargs: Any
    ) -> WriteTextFileResponse:
        target = self._inside(path, "write")
        existed = target.exists()
        await anyio.to_thread.run_sync(_write, target, content)
        relative = str(target.relative_to(self.cwd))
        bucket = self.modified if existed and relative not in self.created else self.created
        if relative not in bucket:
            bucket.append(relative)
        await self.ctx.append_output(
            f"{'Modified' if bucket is self.modified else 'Created'} {relative}"
        )
        return WriteTextFileResponse()

    async def read_text_file(
        self,
        session_id: str,
        path: str,
        line: int | None = None,
        limit: int | None = None,
        **kwargs: Any,
    ) -> ReadTextFileResponse:
        target = self._inside(path, "read")
        try:
            text = await anyio.to_thread.run_sync(target.read_text)
        except OSError as exc:
            raise RequestError.invalid_params({"path": path, "reason": str(exc)}) from None
        if line is not None or limit is not None:
            lines = text.splitlines(keepends=True)
            start = max(0, (line or 1) - 1)
            text = "".join(lines[start : start + limit if limit is not None else None])
        return ReadTextFileResponse(content=text)

    # -- what this client does not offer ------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)

        async def refuse(*args: Any, **kwargs: Any) -> Any:
            raise RequestError.method_not_found(name)

        return refuse

    def on_connect(self, conn: Any) -> None:
        pass


def _write(target: Path, content: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content)


async def run_session(
    ctx: ProviderTaskExecutionContext,
    *,
    command: list[str],
    env: dict[str, str],
    cwd: str,
    allowed: set[str],
    prompt: str,
    grace: float,
) -> TaskResult:
    """Run one prompt turn with the agent ``command`` and turn its ending into a result."""
    workdir = _resolved(cwd)
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=workdir,
            env={**os.environ, **env},
            start_new_session=True,
        )
    except OSError as exc:
        raise ProviderError(f"Cannot run {command!r}: {exc}", retryable=False) from None
    client = TaskClient(ctx, workdir, allowed)
    stderr_tail: list[str] = []
    conn = connect_to_agent(client, process.stdin, process.stdout)
    session_id: str | None = None
    response: Any = None
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(_drain_stderr, process, stderr_tail)
            group.start_soon(_watch_exit, process)
            try:
                await conn.initialize(
                    protocol_version=PROTOCOL_VERSION,
                    client_capabilities=ClientCapabilities(
                        fs=FileSystemCapabilities(read_text_file=True, write_text_file=True),
                        terminal=False,
                    ),
                    client_info=Implementation(name="dagorch", version="0.1.0"),
                )
                session = await conn.new_session(cwd=str(workdir), mcp_servers=[])
                session_id = session.session_id
                response = await _prompt_until_cancelled(ctx, conn, session_id, prompt, grace)
            finally:
                group.cancel_scope.cancel()
    except anyio.get_cancelled_exc_class():
        raise
    except Exception as exc:
        failure: BaseException = exc
        while isinstance(failure, BaseExceptionGroup):
            failure = failure.exceptions[0]
        if isinstance(failure, ProviderError):
            raise failure from None
        if not client.problems:  # else the agent failed because we refused it something
            with anyio.CancelScope(shield=True), anyio.move_on_after(1):
                await process.wait()  # a closed connection usually means the agent died
            raise _agent_failure(failure, process, stderr_tail) from None
    finally:
        with anyio.CancelScope(shield=True):
            if session_id is not None and process.returncode is None:
                with contextlib.suppress(Exception), anyio.move_on_after(0.5):
                    await conn.cancel(session_id=session_id)
            with contextlib.suppress(Exception):
                await conn.close()
            await _end_group(process, grace)
    await client.flush()
    summary = "".join(client.message).strip()
    files = {"files_created": client.created, "files_modified": client.modified}
    if client.problems:
        return TaskResult(success=False, summary=summary, error="; ".join(client.problems), **files)
    if ctx.is_cancelled() or response is None:
        return TaskResult(success=False, error="Cancelled")
    reason = str(response.stop_reason)
    if reason != "end_turn":
        return TaskResult(
            success=False, summary=summary, error=f"The agent stopped: {reason}", **files
        )
    await ctx.update_progress(100)
    return TaskResult(success=True, summary=summary, **files)


async def _prompt_until_cancelled(
    ctx: ProviderTaskExecutionContext, conn: Any, session_id: str, prompt: str, grace: float
) -> Any:
    """Send the prompt; on cancel, send ``session/cancel`` and give the agent ``grace`` seconds."""
    response: Any = None
    async with anyio.create_task_group() as group:

        async def ask() -> None:
            nonlocal response
            response = await conn.prompt(session_id=session_id, prompt=[text_block(prompt)])
            group.cancel_scope.cancel()

        group.start_soon(ask)
        # The context offers a flag, not an event: polling it is the contract.
        while not ctx.is_cancelled():  # noqa: ASYNC110
            await anyio.sleep(_POLL)
        with contextlib.suppress(Exception):
            await conn.cancel(session_id=session_id)
        await anyio.sleep(grace)
        group.cancel_scope.cancel()
    return None if ctx.is_cancelled() else response


class _AgentExited(Exception):
    """The agent process ended while the session still needed it."""


def _resolved(cwd: str) -> Path:
    return Path(cwd).resolve()


async def _watch_exit(process: Any) -> None:
    await process.wait()
    await anyio.sleep(0.2)  # let a last response that raced the exit arrive first
    raise _AgentExited()


async def _drain_stderr(process: Any, tail: list[str]) -> None:
    assert process.stderr is not None
    async for raw in process.stderr:
        line = raw.decode("utf-8", "replace").strip()
        if line:
            tail[:] = [*tail[-4:], line]


def _agent_failure(exc: BaseException, process: Any, stderr_tail: list[str]) -> ProviderError:
    code = process.returncode
    said = f": {stderr_tail[-1]}" if stderr_tail else ""
    if code is not None:
        return ProviderError(f"The ACP agent exited with code {code}{said}")
    return ProviderError(f"The ACP agent failed ({type(exc).__name__}: {exc}){said}")


async def _end_group(process: Any, grace: float) -> None:
    """Nothing the agent started outlives the task: TERM the group, then KILL it."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        with anyio.move_on_after(max(0.1, min(grace, 5))):
            await process.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.returncode is None:
        await process.wait()
