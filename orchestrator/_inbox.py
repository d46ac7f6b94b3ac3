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
    if blocking is not None and blocking.host == host and not process_alive(blocking.pid):
        # Its owner died on this machine (a crash or SIGKILL): no need to wait out the lease,
        # but take it over only if nobody else did in the meantime.
        blocking = await store.acquire_lease(token, os.getpid(), host, replacing=blocking.token)
    if blocking is not None:
        raise ConfigurationError(
            f"{where} is in use by another orchestrator (process {blocking.pid}); control its "
            "tasks with orchestrator.RemoteControl or the dagorch command instead"
        )
    return token


def process_alive(pid: int) -> bool:
    """True when a process with this id runs on this machine (or may: not ours to signal)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LeaseKeeper:
    """Renews the owner's lease every ``POLL_SECONDS``, on its own, from the moment the lease
    is taken until ``stop()``: neither loading a big store nor applying a slow command may let
    it lapse while the owner lives (another process would take the file over)."""

    def __init__(self, store: SharedStore, token: str) -> None:
        self._store = store
        self._token = token
        self._stop = asyncio.Event()
        self.lost = asyncio.Event()
        """Set once another orchestrator holds the lease: this one's writes are refused."""
        self._task = asyncio.get_running_loop().create_task(self._renew(), name="dagorch-lease")

    async def _renew(self) -> None:
        while await _next_beat(self._stop):
            try:
                renewed = await self._store.renew_lease(self._token)
            except Exception:
                # A store error, or an unreadable lease record: try again at the next beat.
                logger.exception("Could not renew the lease on the store")
                continue
            if not renewed:
                # Fenced: the store refuses this service's writes from now on.
                logger.error("Another orchestrator took over the store")
                self.lost.set()
                return

    async def stop(self) -> None:
        """Stop renewing (the lease itself is released by the caller)."""
        self._stop.set()
        await asyncio.gather(self._task, return_exceptions=True)


async def serve(
    service: AgentOrchestratorService, store: SharedStore, stop: asyncio.Event, lost: asyncio.Event
) -> None:
    """Apply inbox commands every ``POLL_SECONDS`` until ``stop`` is set or the lease is
    ``lost``.

    It stops between commands, never in the middle of one, so no command is applied without its
    outcome being recorded.
    """
    while await _next_beat(stop):
        if lost.is_set():
            logger.error("No longer applying commands: another orchestrator owns the store")
            return
        try:
            for command in await store.pending_commands():
                if stop.is_set():
                    return
                await _apply(service, store, command.seq, command.task_id, command.action)
        except DagorchError:
            logger.exception("Could not read the command inbox")


async def _next_beat(stop: asyncio.Event) -> bool:
    """Wait ``POLL_SECONDS``; False (at once) when ``stop`` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), POLL_SECONDS)
    return not stop.is_set()


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
