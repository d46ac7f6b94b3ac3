"""The ``acp`` provider: hands a task to a sub-agent worker over the Agent Client Protocol.

It runs the ``command`` parameter (any ACP agent: Gemini CLI, Claude Code or Codex through
their ACP adapters, goose, ...) as a subprocess in its own process group and speaks ACP over
its stdio with the ``agent-client-protocol`` package (``pip install 'dagorch[acp]'``, imported
when a task first runs): initialize, a new session in the task's working directory, one prompt.

Parameters:

- ``command`` (list of str): the agent program and its arguments; default
  ``$DAGORCH_ACP_COMMAND`` split like a shell would (one of the two is required).
- ``env`` (table of str): variables added to the agent's environment.
- ``cwd``: the working directory; default the task's.
- ``allow_tools`` (list of str): the tool kinds (``read``, ``edit``, ``delete``, ``move``,
  ``search``, ``execute``, ``think``, ``fetch``, ``other``) or exact tool titles the agent may use
  when it asks. Permission is **denied by default**; put the list in ``[pipeline] params`` to allow
  the same tools for every task of a pipeline.
- ``cancel_grace`` (number, default 2): seconds between ``session/cancel`` and killing the group.

The prompt is the task's description followed by its upstream results (as for ``openai``).
The agent's message streams into the output line by line; each tool call becomes a step whose
status follows the call's. File reads and writes the agent asks for are served only inside the
working directory (anything else is refused); the files it created and modified are reported in
the result. A denied permission or a refused file access fails the task, naming it. Cancel and
timeout send ``session/cancel``, then kill the process group after the grace period.
"""

from __future__ import annotations

import os
import shlex
from typing import TYPE_CHECKING

from builtin_providers._params import param, require
from hookspecs.provider import ProviderError
from hookspecs.specs import hookimpl

if TYPE_CHECKING:
    from collections.abc import Callable

    from hookspecs.models import OrchestratedTask, TaskResult
    from hookspecs.provider import AgentProvider, ProviderTaskExecutionContext


class AcpProvider:
    """Runs an ACP agent as a subprocess and gives it the task as one prompt."""

    id = "acp"
    label = "ACP sub-agent"
    description = "Hands the task to an Agent Client Protocol agent run as a subprocess"

    async def execute_task(
        self, task: OrchestratedTask, ctx: ProviderTaskExecutionContext
    ) -> TaskResult:
        """Start the agent, prompt it, stream its updates, and judge how the turn ended."""
        require("acp", "acp", "acp", "agent-client-protocol")
        from builtin_providers._acp_session import run_session
        from builtin_providers.openai import build_prompt

        command = param(
            task, "command", list, shlex.split(os.environ.get("DAGORCH_ACP_COMMAND", ""))
        )
        if not command or not all(isinstance(part, str) for part in command):
            raise ProviderError(
                "params.command must be a non-empty list of strings", retryable=False
            )
        env = param(task, "env", dict, {})
        if not all(isinstance(value, str) for value in env.values()):
            raise ProviderError("params.env values must be strings", retryable=False)
        allowed = param(task, "allow_tools", list, [])
        if not all(isinstance(item, str) for item in allowed):
            raise ProviderError("params.allow_tools must be a list of strings", retryable=False)
        cwd = param(task, "cwd", str, task.metadata.working_directory or None)
        if not cwd:
            raise ProviderError(
                "The acp provider needs a working directory (params.cwd)", retryable=False
            )
        return await run_session(
            ctx,
            command=command,
            env=env,
            cwd=cwd,
            allowed=set(allowed),
            prompt=build_prompt(task.description, ctx.upstream_results),
            grace=float(param(task, "cancel_grace", (int, float), 2)),
        )


@hookimpl
def register_providers(register: Callable[[AgentProvider], None]) -> None:
    """Offer the ``acp`` provider."""
    register(AcpProvider())
