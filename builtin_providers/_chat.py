"""One streamed chat completion over HTTP for the ``openai`` provider: retries, SSE, cancel.

Imported when an ``openai`` task first runs (it needs httpx).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import anyio
import httpx

from builtin_providers.openai import describe_error, retry_after
from hookspecs.provider import ProviderError

if TYPE_CHECKING:
    from hookspecs.models import TaskResult
    from hookspecs.provider import ProviderTaskExecutionContext

_CANCEL_POLL = 0.05


class _Retry(Exception):
    def __init__(self, reason: str, wait: float) -> None:
        super().__init__(reason)
        self.wait = wait


async def stream_chat(
    ctx: ProviderTaskExecutionContext,
    *,
    url: str,
    headers: dict[str, str],
    body: dict[str, Any],
    max_retries: int,
    read_timeout: float,
) -> TaskResult:
    """POST ``body`` to ``url``, retrying 429 and 5xx, and stream the answer into ``ctx``."""
    timeout = httpx.Timeout(connect=10.0, read=read_timeout, write=30.0, pool=10.0)
    async with httpx.AsyncClient(timeout=timeout) as client:
        for attempt in range(max_retries + 1):
            try:
                result: TaskResult = await _cancellable(
                    ctx, _one_request(client, ctx, url, headers, body)
                )
                return result
            except _Retry as retry:
                if attempt == max_retries:
                    raise ProviderError(f"{retry} (after {max_retries + 1} tries)") from None
                wait = retry.wait if retry.wait >= 0 else float(2**attempt)
                await ctx.append_output(f"{retry}; retrying in {wait:g}s")
                await _pausable_sleep(ctx, wait)
    raise AssertionError("unreachable")


async def _cancellable(ctx: ProviderTaskExecutionContext, work: Any) -> Any:
    """Run ``work``; the moment the task is cancelled, close the request."""
    result: Any = None
    try:
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                # The context offers a flag, not an event: polling it is the contract.
                while not ctx.is_cancelled():  # noqa: ASYNC110
                    await anyio.sleep(_CANCEL_POLL)
                group.cancel_scope.cancel()

            async def run() -> None:
                nonlocal result
                result = await work
                group.cancel_scope.cancel()

            group.start_soon(watch)
            group.start_soon(run)
    except BaseExceptionGroup as failed:
        if len(failed.exceptions) == 1:
            raise failed.exceptions[0] from None
        raise
    if ctx.is_cancelled():
        raise ProviderError("Cancelled", retryable=False)
    return result


async def _pausable_sleep(ctx: ProviderTaskExecutionContext, seconds: float) -> None:
    with anyio.move_on_after(seconds):
        while True:
            await ctx.checkpoint()
            await anyio.sleep(0.05)
    await ctx.checkpoint()


async def _one_request(
    client: httpx.AsyncClient,
    ctx: ProviderTaskExecutionContext,
    url: str,
    headers: dict[str, str],
    body: dict[str, Any],
) -> TaskResult:
    from hookspecs.models import TaskResult

    try:
        async with client.stream("POST", url, headers=headers, json=body) as response:
            if response.status_code != 200:
                text = (await response.aread()).decode("utf-8", "replace")
                reason = describe_error(response.status_code, text)
                if response.status_code == 429 or response.status_code >= 500:
                    raise _Retry(reason, retry_after(response.headers.get("retry-after"), -1))
                hint = "; check the API key" if response.status_code in (401, 403) else ""
                raise ProviderError(f"{reason}{hint}", retryable=False)
            answer, usage, model = await _read_stream(response, ctx)
    except httpx.ReadTimeout:
        raise _Retry("The server sent nothing for too long (read timeout)", -1) from None
    except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as exc:
        raise _Retry(f"Connection to {url} failed: {exc}", -1) from None
    await ctx.update_progress(100)
    extra: dict[str, Any] = {"model": model}
    if usage is not None:
        extra["usage"] = usage
    return TaskResult(success=True, summary=answer, extra=extra)


async def _read_stream(
    response: httpx.Response, ctx: ProviderTaskExecutionContext
) -> tuple[str, dict[str, Any] | None, str | None]:
    """Read server-sent events: text into the output line by line; returns the answer, the
    usage and the model."""
    answer: list[str] = []
    pending = ""
    usage: dict[str, Any] | None = None
    model: str | None = None
    done = False
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue  # comments, event names and blank separators
        data = line[5:].strip()
        if data == "[DONE]":
            done = True
            break
        try:
            chunk = json.loads(data)
        except ValueError:
            raise ProviderError(
                f"The server sent malformed data in its stream: {data[:200]!r}", retryable=False
            ) from None
        if not isinstance(chunk, dict):
            raise ProviderError(
                f"The server sent an unexpected event: {data[:200]!r}", retryable=False
            )
        if "error" in chunk:
            raise ProviderError(describe_error(200, data), retryable=False)
        model = chunk.get("model") or model
        if isinstance(chunk.get("usage"), dict):
            usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            delta = (choice.get("delta") or {}).get("content") if isinstance(choice, dict) else None
            if isinstance(delta, str) and delta:
                answer.append(delta)
                pending += delta
                if "\n" in pending:
                    complete, _, pending = pending.rpartition("\n")
                    await ctx.append_output(complete)
    if pending.strip():
        await ctx.append_output(pending)
    if not done and not answer:
        raise ProviderError("The server ended the stream without an answer", retryable=True)
    return "".join(answer), usage, model
