"""The ``openai`` provider: chat completions from any OpenAI-compatible server, streamed.

Works with OpenAI, vLLM, llama.cpp's server, Ollama, LM Studio: anything that serves
``POST {base_url}/chat/completions`` with server-sent events. It speaks HTTP through ``httpx``
(``pip install 'dagorch[openai]'``), imported when a task first runs: httpx is anyio-native, so
cancelling the task closes the request at once, and the protocol is small enough that an SDK
would add weight, not safety.

Parameters:

- ``model``: the model name the server knows; default ``$OPENAI_MODEL`` (one of the two is
  required).
- ``base_url``: default ``$OPENAI_BASE_URL``, else ``https://api.openai.com/v1``.
- ``api_key_env``: the environment variable holding the key, default ``OPENAI_API_KEY`` (a
  local server may need none; OpenAI's own URL requires it).
- ``temperature``, ``max_tokens``, ``system`` (a system message).
- ``max_retries`` (default 2): how often a 429 or 5xx is retried within one attempt, waiting
  what ``Retry-After`` says (capped at 60 s), else 1, 2, 4 ... seconds.
- ``read_timeout`` (default 60): seconds without a byte from the server before the attempt fails.

The prompt is the task's description, followed by the results of the tasks it depends on::

    <description>

    Results of the tasks this one depends on:

    ## <upstream task id>
    <its result's summary>

Text streams into the task's output line by line as tokens arrive. The result's summary is the
whole answer; ``result.extra["usage"]`` holds the token counts the server reported, and
``result.extra["model"]`` the model that answered.
"""

from __future__ import annotations

import json
import os
import re
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from builtin_providers._params import param, require
from hookspecs.provider import ProviderError
from hookspecs.specs import hookimpl

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from hookspecs.models import OrchestratedTask, TaskResult
    from hookspecs.provider import AgentProvider, ProviderTaskExecutionContext

OPENAI_URL = "https://api.openai.com/v1"
_RETRY_AFTER_CAP = 60.0
_CANCEL_POLL = 0.05


def build_prompt(description: str, upstream: Mapping[str, Any]) -> str:
    """The user message: the description, then each upstream task's summary."""
    parts = [description.strip()]
    if upstream:
        parts.append("Results of the tasks this one depends on:")
        for task_id, result in upstream.items():
            parts.append(f"## {task_id.split('/')[-1]}\n{result.summary}")
    return "\n\n".join(part for part in parts if part)


def retry_after(value: str | None, fallback: float) -> float:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), capped."""
    if value:
        value = value.strip()
        if re.fullmatch(r"\d+(\.\d+)?", value):
            return min(float(value), _RETRY_AFTER_CAP)
        try:
            import datetime as dt

            when = parsedate_to_datetime(value)
            return max(
                0.0, min((when - dt.datetime.now(when.tzinfo)).total_seconds(), _RETRY_AFTER_CAP)
            )
        except (TypeError, ValueError):
            pass
    return fallback


class OpenAIProvider:
    """Streams a chat completion for the task from an OpenAI-compatible server."""

    id = "openai"
    label = "OpenAI-compatible chat model"
    description = "Chat completions from any OpenAI-compatible server (OpenAI, vLLM, Ollama, ...)"

    async def execute_task(
        self, task: OrchestratedTask, ctx: ProviderTaskExecutionContext
    ) -> TaskResult:
        """Send the prompt, stream the answer into the output, return it with token usage."""
        require("httpx", "openai", "openai", "httpx")
        from builtin_providers._chat import stream_chat

        model = param(task, "model", str, os.environ.get("OPENAI_MODEL") or None)
        if not model:
            raise ProviderError(
                "Missing parameter params.model (or set $OPENAI_MODEL)", retryable=False
            )
        base_url = param(task, "base_url", str, os.environ.get("OPENAI_BASE_URL") or OPENAI_URL)
        key_env = param(task, "api_key_env", str, "OPENAI_API_KEY")
        key = os.environ.get(key_env, "").strip()
        if not key and base_url.rstrip("/") == OPENAI_URL:
            raise ProviderError(f"Set ${key_env} to an OpenAI API key", retryable=False)
        body: dict[str, Any] = {"model": model, "messages": [], "stream": True}
        body["stream_options"] = {"include_usage": True}
        system = param(task, "system", str, None)
        if system:
            body["messages"].append({"role": "system", "content": system})
        body["messages"].append(
            {"role": "user", "content": build_prompt(task.description, ctx.upstream_results)}
        )
        temperature = param(task, "temperature", (int, float), None)
        if temperature is not None:
            body["temperature"] = float(temperature)
        max_tokens = param(task, "max_tokens", int, None)
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        return await stream_chat(
            ctx,
            url=base_url.rstrip("/") + "/chat/completions",
            headers={"Authorization": f"Bearer {key}"} if key else {},
            body=body,
            max_retries=param(task, "max_retries", int, 2),
            read_timeout=float(param(task, "read_timeout", (int, float), 60)),
        )


def describe_error(status: int, text: str) -> str:
    """The server's own error message when it sent one (OpenAI's ``{"error": {"message"}}``)."""
    try:
        data = json.loads(text)
        message = (
            data.get("error", {}).get("message")
            if isinstance(data.get("error"), dict)
            else data.get("error")
        )
    except (ValueError, AttributeError):
        message = None
    detail = message or text.strip()[:300] or "no details"
    return f"HTTP {status}: {detail}"


@hookimpl
def register_providers(register: Callable[[AgentProvider], None]) -> None:
    """Offer the ``openai`` provider."""
    register(OpenAIProvider())
