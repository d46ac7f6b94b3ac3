"""Looking at processes from tests (Linux ``/proc``)."""

from __future__ import annotations

from pathlib import Path


def state(pid: int) -> str | None:
    """The process's state letter (``R``, ``S``, ``T``, ``Z`` ...), None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, dead but not reaped, counts as gone)."""
    return state(pid) not in (None, "Z")
