"""The ``shell`` provider: runs a command in a subprocess and streams its output.

Parameters:

- ``command`` (list of str, required): the program and its arguments, run without a shell, so
  nothing in a task's text can reach a shell. A single string is accepted only with
  ``shell = true``, and then runs through ``/bin/sh -c``.
- ``shell`` (bool, default false): see above.
- ``env`` (table of str): variables added to the environment.
- ``cwd`` (str): where to run; the task's working directory by default.
- ``kill_grace`` (number, default 2): seconds between SIGTERM and SIGKILL when stopping it.

Stdout and stderr lines go into the task output as they come. Exit code 0 is success; any other
fails the task, naming the code and the last line of stderr. The command runs in its own process
group: pausing the task stops the whole group (SIGSTOP) and resuming continues it (SIGCONT);
cancel and timeout terminate the whole group, children included.
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

from builtin_providers._params import param
from hookspecs.provider import ProviderError
from hookspecs.specs import hookimpl

if TYPE_CHECKING:
    from collections.abc import Callable

    from hookspecs.models import OrchestratedTask, TaskResult
    from hookspecs.provider import AgentProvider, ProviderTaskExecutionContext


def command_of(task: OrchestratedTask) -> list[str] | str:
    """The command to run, checked: a list of strings, or a string with ``shell = true``."""
    command = param(task, "command", (list, str))
    use_shell = param(task, "shell", bool, False)
    if isinstance(command, str):
        if not use_shell:
            raise ProviderError(
                "params.command is a string: give a list of arguments, or set params.shell = "
                "true to run the string through /bin/sh",
                retryable=False,
            )
        return command
    if not command or not all(isinstance(part, str) for part in command):
        raise ProviderError("params.command must be a non-empty list of strings", retryable=False)
    return list(command)


class ShellProvider:
    """Runs its ``command`` parameter in a subprocess; exit code 0 is success."""

    id = "shell"
    label = "Shell command"
    description = "Runs its command parameter (a list of arguments) and streams its output"

    async def execute_task(
        self, task: OrchestratedTask, ctx: ProviderTaskExecutionContext
    ) -> TaskResult:
        """Run the command to its end (or until cancelled), streaming output; judge the code."""
        from hookspecs.models import TaskResult

        command = command_of(task)
        extra_env = param(task, "env", dict, {})
        if not all(isinstance(v, str) for v in extra_env.values()):
            raise ProviderError("params.env values must be strings", retryable=False)
        cwd = param(task, "cwd", str, task.metadata.working_directory or None)
        grace = float(param(task, "kill_grace", (int, float), 2))
        from builtin_providers._process import run_command

        await ctx.checkpoint()
        code, last_error_line = await run_command(command, ctx, cwd, extra_env, grace)
        if ctx.is_cancelled():
            return TaskResult(success=False, error="Cancelled")
        if code == 0:
            await ctx.update_progress(100)
            return TaskResult(success=True, summary="exit code 0")
        reason = f"Command exited with code {code}"
        if code is not None and code < 0:
            reason = f"Command killed by signal {signal.Signals(-code).name}"
        if last_error_line:
            reason += f": {last_error_line}"
        return TaskResult(success=False, summary=reason, error=reason)


@hookimpl
def register_providers(register: Callable[[AgentProvider], None]) -> None:
    """Offer the ``shell`` provider."""
    register(ShellProvider())
