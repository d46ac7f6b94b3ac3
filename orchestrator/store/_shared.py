"""Sharing one store file between processes: the owner's lease and the command inbox.

One service at a time owns a file: it holds a lease (a heartbeat in the file) and is the only
writer of tasks. Other processes send it commands (pause, resume, cancel) through an inbox table;
the owner applies them through its normal write path and records the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

LEASE_SECONDS = 2.0
"""A lease whose heartbeat is older than this is free for the taking (its owner died)."""

POLL_SECONDS = 0.1
"""How often an owner renews its lease and reads its inbox."""

COMMANDS = ("pause", "resume", "cancel")
"""What another process may ask the owner to do to a task."""


@dataclass(frozen=True)
class Lease:
    """Who owns a store file."""

    token: str
    pid: int
    heartbeat_ms: int
    host: str = ""


@dataclass(frozen=True)
class Command:
    """A request in the inbox."""

    seq: int
    task_id: str
    action: str


@runtime_checkable
class SharedStore(Protocol):
    """A store several processes can open: a lease for the one writer, and an inbox."""

    async def acquire_lease(
        self, token: str, pid: int, host: str, *, replacing: str | None = None
    ) -> Lease | None:
        """Take the lease unless a live one is held by another token; None when taken, else the
        lease that blocks. ``replacing`` names a dead owner's token that may be taken over."""
        ...

    async def renew_lease(self, token: str) -> bool:
        """Refresh the heartbeat; False if the lease is no longer ours."""
        ...

    async def release_lease(self, token: str) -> None:
        """Give the lease up if it is ours."""
        ...

    async def current_lease(self) -> Lease | None:
        """The live lease, if any."""
        ...

    async def submit_command(self, task_id: str, action: str) -> int:
        """Put a command in the inbox; returns its number."""
        ...

    async def expire_command(self, seq: int) -> bool:
        """Withdraw a command nobody applied yet; False if it was applied meanwhile."""
        ...

    async def pending_commands(self) -> list[Command]:
        """Commands not yet applied, oldest first."""
        ...

    async def claim_command(self, seq: int) -> bool:
        """Take a pending command to apply it; False if it was withdrawn or taken already."""
        ...

    async def finish_command(self, seq: int, state: str, message: str) -> None:
        """Record a claimed command's outcome: state "done" or "error", with a message."""
        ...

    async def command_outcome(self, seq: int) -> tuple[str, str | None]:
        """A command's state and message."""
        ...
