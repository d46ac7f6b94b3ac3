"""A small ACP agent for the ``acp`` provider's tests, written with the same SDK.

    python tests/acp_agent.py MODE

MODE ``works``: streams its message, runs a tool call that asks permission to write
``hello.txt`` and writes it through the client, then ends the turn. ``slow``: streams a line every
0.1 s until cancelled, and honours ``session/cancel``. ``hangs``: ignores cancel and never answers.
``crashes``: dies in the middle of the prompt. ``exits``: exits before it says anything.
``escapes``: tries to write outside its working directory. ``spawns``: starts a child process
(its pid in the message) and then hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from typing import Any

from acp import (
    PROTOCOL_VERSION,
    run_agent,
    start_tool_call,
    update_agent_message_text,
    update_tool_call,
)
from acp.schema import (
    InitializeResponse,
    NewSessionResponse,
    PermissionOption,
    PromptResponse,
    ToolCallUpdate,
)

MODE = sys.argv[1] if len(sys.argv) > 1 else "works"


class TestAgent:
    def __init__(self) -> None:
        self.client: Any = None
        self.cwd = "."
        self.cancelled = asyncio.Event()

    def on_connect(self, conn: Any) -> None:
        self.client = conn

    async def initialize(self, protocol_version: int, **kwargs: Any) -> InitializeResponse:
        return InitializeResponse(protocol_version=PROTOCOL_VERSION)

    async def new_session(self, cwd: str, **kwargs: Any) -> NewSessionResponse:
        self.cwd = cwd
        return NewSessionResponse(session_id="session-1")

    async def cancel(self, session_id: str, **kwargs: Any) -> None:
        self.cancelled.set()

    async def say(self, session_id: str, text: str) -> None:
        await self.client.session_update(
            session_id=session_id, update=update_agent_message_text(text)
        )

    async def prompt(self, prompt: list[Any], session_id: str, **kwargs: Any) -> PromptResponse:
        asked = "".join(getattr(block, "text", "") for block in prompt)
        if MODE == "crashes":
            await self.say(session_id, "about to crash\n")
            print("segfault, sort of", file=sys.stderr, flush=True)
            os._exit(7)
        if MODE == "hangs":
            await self.say(session_id, "thinking forever\n")
            await asyncio.Event().wait()
        if MODE == "spawns":
            child = subprocess.Popen(["sleep", "60"])
            await self.say(session_id, f"child={child.pid}\n")
            await asyncio.Event().wait()
        if MODE == "slow":
            while not self.cancelled.is_set():
                await self.say(session_id, "tick\n")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.cancelled.wait(), 0.1)
            return PromptResponse(stop_reason="cancelled")
        if MODE == "escapes":
            await self.client.write_text_file(
                session_id=session_id, path="/tmp/dagorch-acp-escape.txt", content="x"
            )
            return PromptResponse(stop_reason="end_turn")
        await self.say(session_id, f"Working on: {asked.splitlines()[0]}\n")
        await self.client.session_update(
            session_id=session_id,
            update=start_tool_call("call-1", "Write hello.txt", kind="edit", status="pending"),
        )
        decision = await self.client.request_permission(
            session_id=session_id,
            tool_call=ToolCallUpdate(tool_call_id="call-1", title="Write hello.txt", kind="edit"),
            options=[
                PermissionOption(option_id="yes", name="Allow", kind="allow_once"),
                PermissionOption(option_id="no", name="Reject", kind="reject_once"),
            ],
        )
        allowed = getattr(decision.outcome, "option_id", None) == "yes"
        if allowed:
            await self.client.write_text_file(
                session_id=session_id, path=os.path.join(self.cwd, "hello.txt"), content="hello\n"
            )
        await self.client.session_update(
            session_id=session_id,
            update=update_tool_call("call-1", status="completed" if allowed else "failed"),
        )
        await self.say(session_id, "Done.")
        return PromptResponse(stop_reason="end_turn")


if __name__ == "__main__":
    if MODE == "exits":
        print("no API key configured", file=sys.stderr)
        sys.exit(3)
    asyncio.run(run_agent(TestAgent()))
