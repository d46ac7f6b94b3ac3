"""What the subcommands share: exit codes, the store location, printing errors."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_OK = 0
"""Everything worked (for ``run``: every task completed)."""
EXIT_FAILED = 1
"""Something the command did failed (for ``run``: a task failed or was cancelled)."""
EXIT_USAGE = 2
"""The command line or an input file is wrong."""
EXIT_INTERRUPTED = 130
"""``run`` was stopped with Ctrl-C (or SIGTERM); its state is stored for ``--resume``."""


def parser_for(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help: str,
    description: str,
    examples: str,
) -> argparse.ArgumentParser:
    """A subcommand parser whose ``--help`` ends with ``examples``."""
    return commands.add_parser(
        name,
        help=help,
        description=description,
        epilog=f"examples:\n{examples}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_store_option(parser: argparse.ArgumentParser) -> None:
    """``--store PATH``: the SQLite file (default: ``$DAGORCH_HOME/dagorch.db`` or
    ``.dagorch/dagorch.db``)."""
    parser.add_argument(
        "--store",
        metavar="PATH",
        help="the SQLite store (default: $DAGORCH_HOME/dagorch.db, else .dagorch/dagorch.db)",
    )


def store_path(given: str | None) -> Path:
    """The store file a command works on."""
    from orchestrator.store import default_store_path

    return Path(given) if given else default_store_path()


def fail(message: str, code: int = EXIT_FAILED) -> int:
    """Print ``message`` on stderr as ``dagorch: ...``; return ``code``."""
    print(f"dagorch: {message}", file=sys.stderr)
    return code


def printable(text: str, *, newlines: bool = True) -> str:
    """``text`` safe to write to a terminal: control characters (escape sequences among them)
    shown as ``\\xNN`` / ``\\uNNNN`` instead of acting on the terminal; a tab shown as a space
    (harmless, but it would break a table's columns); newlines kept when asked."""
    return "".join(
        ch
        if ch.isprintable() or (newlines and ch == "\n")
        else " "
        if ch == "\t"
        else (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        for ch in text
    )
