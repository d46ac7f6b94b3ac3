"""Controlling, from another process, the orchestrator that owns a store file."""

from __future__ import annotations

import os
import socket
from types import TracebackType
from typing import Self

import anyio

from hookspecs.models import OrchestratedTask
from orchestrator._inbox import process_alive
from orchestrator.errors import DagorchError, RemoteControlError, TaskNotFoundError
from orchestrator.store.sqlite import SqliteStore


class RemoteControl:
    """Pause, resume and cancel tasks of the orchestrator that owns a SQLite store file.

    Commands go through the file's inbox; the owner applies them within about 0.1 s and the call
    returns once it has (or raises ``RemoteControlError`` with the owner's reason). When no
    orchestrator owns the file, the command is applied directly by a short-lived service.
    Use it as ``async with RemoteControl(path) as remote: await remote.pause_task(task_id)``.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, timeout: float = 5.0) -> None:
        self._store = SqliteStore(path)
        self.path = self._store.path
        self.timeout = timeout
        """Seconds to wait for the owner to apply a command."""

    async def __aenter__(self) -> Self:
        # Controlling a store that does not exist is a mistake (a wrong path), not a reason to
        # create an empty one there.
        if not self.path.exists():
            raise RemoteControlError(f"{self.path}: no such store")
        await self._store.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._store.close()

    async def pause_task(self, task_id: str) -> None:
        """Pause a task of the owning orchestrator."""
        await self._send("pause", task_id)

    async def resume_task(self, task_id: str) -> None:
        """Resume a paused task of the owning orchestrator."""
        await self._send("resume", task_id)

    async def cancel_task(self, task_id: str) -> None:
        """Cancel a task (and its downstream tasks) of the owning orchestrator."""
        await self._send("cancel", task_id)

    async def get_tasks(self) -> list[OrchestratedTask]:
        """The tasks as last stored by the owner."""
        return await self._store.load_tasks()

    async def get_task(self, task_id: str) -> OrchestratedTask:
        """One task as last stored by the owner."""
        for task in await self._store.load_tasks():
            if task.id == task_id:
                return task
        raise TaskNotFoundError(task_id)

    async def _send(self, action: str, task_id: str) -> None:
        lease = await self._store.current_lease()
        # No owner, or one that died on this machine a moment ago (its lease has not run out
        # yet, but nobody will read the inbox): the command is applied here.
        if lease is None or (lease.host == socket.gethostname() and not process_alive(lease.pid)):
            await self._apply_directly(action, task_id)
            return
        seq = await self._store.submit_command(task_id, action)
        if await self._outcome_within(seq, action, expire=True):
            return
        state, _ = await self._store.command_outcome(seq)
        if state == "expired":
            raise RemoteControlError(
                f"{self.path}: the owning orchestrator did not apply {action} {task_id} within "
                f"{self.timeout:g}s"
            )
        # The owner took the command before it could be withdrawn: its outcome stands, and is
        # waited for once more.
        if await self._outcome_within(seq, action, expire=False):
            return
        raise RemoteControlError(
            f"{self.path}: the owning orchestrator began to apply {action} {task_id} but did "
            f"not finish within {2 * self.timeout:g}s; its outcome is unknown"
        )

    async def _outcome_within(self, seq: int, action: str, *, expire: bool) -> bool:
        """True once the owner applied the command within ``timeout``. With ``expire``, a
        command still pending when the wait ends is withdrawn, also when the caller is
        cancelled, so that a command reported as failed is never applied later."""
        applied = False
        try:
            with anyio.move_on_after(self.timeout):
                while True:
                    if await self._finished(seq, action):
                        applied = True
                        break
                    # The owner is another process: the file is all there is to watch.
                    await anyio.sleep(0.02)
        finally:
            if expire and not applied:
                with anyio.CancelScope(shield=True):
                    await self._store.expire_command(seq)
        return applied

    async def _finished(self, seq: int, action: str) -> bool | None:
        """True once the owner applied the command, None while it is pending; raises the
        owner's reason when it refused."""
        state, message = await self._store.command_outcome(seq)
        if state == "error":
            raise RemoteControlError(message or f"{action} failed")
        return True if state == "done" else None

    async def _apply_directly(self, action: str, task_id: str) -> None:
        from orchestrator.service import AgentOrchestratorService

        async with await AgentOrchestratorService.start(store=SqliteStore(self.path)) as service:
            try:
                await getattr(service, f"{action}_task")(task_id)
            except DagorchError as exc:
                raise RemoteControlError(f"{type(exc).__name__}: {exc}") from exc
