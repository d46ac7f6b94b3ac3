"""``dagorch providers`` and ``dagorch plugins``: what the installed plugins offer.

Loading plugins imports only pluggy and the plugins themselves: no networkx, no store, no models
(a provider's SDK is imported when it first runs a task).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from orchestrator.errors import PluginError
from orchestrator.plugins import PluginHost, PluginRecord

_PROVIDERS_EXAMPLES = """\
examples:
  dagorch providers
  dagorch providers --json | jq '.providers[].id'
  DAGORCH_DISABLE_PLUGINS=shell dagorch providers
"""

_PLUGINS_EXAMPLES = """\
examples:
  dagorch plugins
  dagorch plugins --json
  DAGORCH_STRICT_PLUGINS=1 dagorch plugins    exit 1 if any plugin is broken
"""


def add_commands(commands: Any) -> None:
    """Register the ``providers`` and ``plugins`` subcommands."""
    providers = commands.add_parser(
        "providers",
        help="list installed providers",
        description="List every provider the installed plugins register, and broken plugins.",
        epilog=_PROVIDERS_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    providers.add_argument("--json", action="store_true", help="print JSON instead of a table")
    providers.set_defaults(handler=run_providers)
    plugins = commands.add_parser(
        "plugins",
        help="list installed plugins and their hooks",
        description="List every plugin found through the dagorch.providers entry point.",
        epilog=_PLUGINS_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    plugins.add_argument("--json", action="store_true", help="print JSON instead of a table")
    plugins.set_defaults(handler=run_plugins)


def _load() -> PluginHost | None:
    host = PluginHost()
    try:
        host.load_entry_points()
    except PluginError as exc:
        print(f"dagorch: {exc}", file=sys.stderr)
        return None
    return host


def provider_rows(host: PluginHost) -> list[dict[str, Any]]:
    """One row per registered provider, with the plugin it came from."""
    rows = []
    for provider_id in host.registry.ids:
        provider = host.registry.get(provider_id)
        record = host.record_of(provider_id)
        rows.append(
            {
                "id": provider_id,
                "label": provider.label,
                "description": provider.description,
                "plugin": record.name if record else None,
                "distribution": record.distribution if record else None,
                "version": record.version if record else None,
            }
        )
    return rows


def _broken(host: PluginHost) -> list[PluginRecord]:
    return [record for record in host.records if record.error is not None]


def run_providers(args: argparse.Namespace) -> int:
    """Print the providers (and broken plugins); 1 when strict mode refused a plugin."""
    host = _load()
    if host is None:
        return 1
    rows = provider_rows(host)
    broken = _broken(host)
    if args.json:
        report = {
            "providers": rows,
            "broken": [
                {key: r.to_dict()[key] for key in ("name", "distribution", "version", "error")}
                for r in broken
            ],
        }
        print(json.dumps(report, indent=2))
        return 0
    columns = ("id", "label", "plugin", "distribution", "version", "description")
    print(_table(columns, [[row[c] for c in columns] for row in rows]))
    if not rows:
        print("(no providers: install a plugin that registers one)")
    if broken:
        print("\nbroken plugins:")
        for record in broken:
            print(f"  {record.source}: {record.error}")
    return 0


def run_plugins(args: argparse.Namespace) -> int:
    """Print the plugins with their hooks, providers and errors."""
    host = _load()
    if host is None:
        return 1
    if args.json:
        print(json.dumps([record.to_dict() for record in host.records], indent=2))
        return 0
    columns = ("name", "distribution", "version", "status", "hooks", "providers")
    rows = [
        [
            r.name,
            r.distribution,
            r.version,
            "disabled" if r.disabled else ("broken" if r.error else "ok"),
            ", ".join(r.hooks),
            ", ".join(r.providers),
        ]
        for r in host.records
    ]
    print(_table(columns, rows))
    for record in _broken(host):
        print(f"\n{record.source}: {record.error}")
    return 0


def _table(columns: tuple[str, ...], rows: list[list[Any]]) -> str:
    cells = [[str(c).upper() for c in columns]] + [
        ["-" if value is None else str(value) for value in row] for row in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "\n".join(
        "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )
