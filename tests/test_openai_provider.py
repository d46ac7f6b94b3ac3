"""The ``openai`` provider against a real chat-completions server on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from chat_server import ChatServer

from orchestrator import (
    AgentOrchestratorPluginOptions,
    AgentOrchestratorService,
    MemoryStore,
    TaskStatus,
)


@pytest.fixture
async def service() -> AsyncIterator[AgentOrchestratorService]:
    options = AgentOrchestratorPluginOptions(cancel_grace_period=5)
    async with await AgentOrchestratorService.start(options=options, store=MemoryStore()) as svc:
        yield svc


def params(server: ChatServer, model: str, **more: Any) -> dict[str, Any]:
    return {"model": model, "base_url": server.base_url, "api_key_env": "TEST_CHAT_KEY", **more}


async def run(service: AgentOrchestratorService, **kwargs: Any):
    task = await service.create_task(
        "ask", kwargs.pop("description", "Say hello"), provider_id="openai", **kwargs
    )
    service.start_task_execution(task.id)
    with anyio.fail_after(30):
        return await service.wait_for_task(task.id)


async def test_the_answer_streams_into_the_output_line_by_line(service, chat_server):
    done = await run(service, params=params(chat_server, "streams"))
    assert done.metadata.status is TaskStatus.COMPLETED
    assert done.metadata.output[-2:] == ["Hello", "world"]
    assert done.metadata.result.summary == "Hello\nworld"
    assert done.metadata.progress == 100


async def test_token_usage_and_the_model_are_recorded_in_the_result(service, chat_server):
    done = await run(service, params=params(chat_server, "streams"))
    extra = done.metadata.result.extra
    assert extra["usage"] == {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    assert extra["model"] == "streams"


async def test_the_prompt_is_the_description_and_the_upstream_results(service, chat_server):
    first = await service.create_task(
        "facts", "", provider_id="echo", params={"text": "Water is wet"}
    )
    await service.create_task(
        "ask",
        "Summarise the facts",
        provider_id="openai",
        depends_on=[first.id],
        params=params(chat_server, "streams", system="Be brief", temperature=0.2, max_tokens=50),
    )
    await service.run()
    sent = chat_server.requests[-1]
    assert sent["headers"]["Authorization"] == "Bearer test-key"
    body = sent["body"]
    assert body["stream"] is True
    assert (body["temperature"], body["max_tokens"]) == (0.2, 50)
    assert body["messages"] == [
        {"role": "system", "content": "Be brief"},
        {
            "role": "user",
            "content": (
                "Summarise the facts\n\nResults of the tasks this one depends on:\n\n"
                f"## {first.id}\nWater is wet"
            ),
        },
    ]


async def test_a_429_is_retried_after_the_retry_after_delay(service, chat_server):
    started = time.monotonic()
    done = await run(service, params=params(chat_server, "rate-limited"))
    assert done.metadata.status is TaskStatus.COMPLETED
    assert time.monotonic() - started >= 0.3
    assert "HTTP 429: Slow down; retrying in 0.3s" in done.metadata.output
    assert len(chat_server.requests) == 2
    assert done.metadata.attempts == 1


async def test_a_server_that_keeps_failing_fails_the_task_naming_the_error(service, chat_server):
    done = await run(service, params=params(chat_server, "broken", max_retries=1))
    assert done.metadata.status is TaskStatus.FAILED
    assert done.metadata.error == "HTTP 500: The engine is overloaded (after 2 tries)"
    assert len(chat_server.requests) == 2


async def test_a_stalled_stream_fails_after_the_read_timeout(service, chat_server):
    started = time.monotonic()
    done = await run(service, params=params(chat_server, "stalls", max_retries=0, read_timeout=0.3))
    assert done.metadata.status is TaskStatus.FAILED
    assert done.metadata.error == (
        "The server sent nothing for too long (read timeout) (after 1 tries)"
    )
    assert time.monotonic() - started < 3


async def test_a_wrong_api_key_fails_at_once_without_retrying(service, chat_server, monkeypatch):
    monkeypatch.setenv("TEST_CHAT_KEY", "wrong")
    done = await run(service, params=params(chat_server, "streams"), retries=2)
    assert done.metadata.status is TaskStatus.FAILED
    assert done.metadata.error == "HTTP 401: Incorrect API key provided; check the API key"
    assert done.metadata.attempts == 1
    assert len(chat_server.requests) == 1


async def test_an_unknown_model_fails_with_the_servers_message(service, chat_server):
    done = await run(service, params=params(chat_server, "nope"))
    assert done.metadata.error == "HTTP 404: The model `nope` does not exist"


async def test_malformed_json_in_the_stream_fails_clearly(service, chat_server):
    done = await run(service, params=params(chat_server, "garbled"))
    assert done.metadata.status is TaskStatus.FAILED
    assert done.metadata.error == "The server sent malformed data in its stream: '{not json'"


async def test_cancel_closes_the_request_and_ends_the_task_within_a_second(service, chat_server):
    task = await service.create_task(
        "ask", "", provider_id="openai", params=params(chat_server, "slow")
    )
    service.start_task_execution(task.id)
    with anyio.fail_after(10):
        while "tick" not in (await service.get_task(task.id)).metadata.output:
            await anyio.sleep(0.02)
    started = time.monotonic()
    await service.cancel_task(task.id)
    done = await service.wait_for_task(task.id)
    assert done.metadata.status is TaskStatus.CANCELLED
    assert time.monotonic() - started <= 1.0
    with anyio.fail_after(5):
        while chat_server.disconnects == 0:
            await anyio.sleep(0.05)


async def test_openais_own_url_needs_a_key(service, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    done = await run(service, params={"model": "gpt-4o-mini"})
    assert done.metadata.error == "Set $OPENAI_API_KEY to an OpenAI API key"


async def test_a_missing_model_parameter_names_the_field(service):
    done = await run(service, params={})
    assert done.metadata.error == "Missing parameter params.model (or set $OPENAI_MODEL)"
