"""The ``dagorch`` command.

Each subcommand lives in its own module and registers itself on the parser; ``main`` parses the
arguments and runs the chosen one. Subcommands import what they need when they run, so
``dagorch --help`` and ``dagorch providers`` start fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from orchestrator.cli import _plugins, _run, _tasks
from orchestrator.cli._common import EXIT_USAGE

__all__ = ["build_parser", "main"]

_EXAMPLES = """\
examples:
  dagorch run examples/hello.toml   run a pipeline with a live view
  dagorch validate pipeline.toml    check a pipeline file
  dagorch providers            list the providers installed plugins offer
  dagorch providers --json     the same, as JSON
  dagorch plugins              list plugins, the hooks each implements and their errors
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="dagorch",
        description="Run and control workflow DAGs of agent tasks.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _run.add_commands(commands)
    _tasks.add_commands(commands)
    _plugins.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``dagorch`` command with ``argv`` (default: ``sys.argv[1:]``); return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    code: int = handler(args)
    return code


if __name__ == "__main__":  # pragma: no cover - python -m orchestrator.cli
    sys.exit(main())
