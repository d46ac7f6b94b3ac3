"""The owner side of sharing a store: hold the lease, apply commands other processes send."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from typing import TYPE_CHECKING

from orchestrator.errors import ConfigurationError, DagorchError
from orchestrator.store._shared import COMMANDS, POLL_SECONDS, SharedStore

if TYPE_CHECKING:
    from orchestrator.service import AgentOrchestratorService

logger = logging.getLogger("dagorch.inbox")


async def take_lease(store: SharedStore, where: object) -> str:
    """Become the store's owner, or raise ``ConfigurationError`` naming the process that is."""
    token = uuid.uuid4().hex
    host = socket.gethostname()
    blocking = await store.acquire_lease(token, os.getpid(), host)
    if blocking is not None and blocking.host == host and not _alive(blocking.pid):
        # Its owner died on this machine (a crash or SIGKILL): no need to wait out the lease,
        # but take it over only if nobody else did in the meantime.
        blocking = await store.acquire_lease(token, os.getpid(), host, replacing=blocking.token)
    if blocking is not None:
        raise ConfigurationError(
            f"{where} is in use by another orchestrator (process {blocking.pid}); control its "
            "tasks with orchestrator.RemoteControl or the dagorch command instead"
        )
    return token


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def serve(
    service: AgentOrchestratorService, store: SharedStore, token: str, stop: asyncio.Event
) -> None:
    """Renew the lease and apply inbox commands every ``POLL_SECONDS`` until ``stop`` is set.

    It stops between commands, never in the middle of one, so no command is applied without its
    outcome being recorded.
    """
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), POLL_SECONDS)
        if stop.is_set():
            return
        try:
            if not await store.renew_lease(token):
                # Fenced: the store refuses this service's writes from now on.
                logger.error(
                    "Another orchestrator took over the store; no longer applying commands"
                )
                return
            for command in await store.pending_commands():
                if stop.is_set():
                    return
                await _apply(service, store, command.seq, command.task_id, command.action)
        except DagorchError:
            logger.exception("Could not read the command inbox")


async def _apply(
    service: AgentOrchestratorService, store: SharedStore, seq: int, task_id: str, action: str
) -> None:
    if not await store.claim_command(seq):
        return  # withdrawn by its sender (it gave up waiting), or taken by another owner
    if action not in COMMANDS:
        await store.finish_command(seq, "error", f"Unknown command {action!r}")
        return
    try:
        await getattr(service, f"{action}_task")(task_id)
    except Exception as exc:
        if not isinstance(exc, DagorchError):
            logger.exception("Command %s %s failed", action, task_id)
        await store.finish_command(seq, "error", f"{type(exc).__name__}: {exc}")
    else:
        await store.finish_command(seq, "done", "")
