"""Plugins: found through entry points, loaded one at a time, each failure kept on its record.

Every orchestrator owns a ``PluginHost`` (there is no process-wide plugin manager). Loading reads
the ``dagorch.providers`` entry-point group and, for each entry point: imports what it names,
registers it with a pluggy manager, checks that it implements only known hooks, and calls its
``register_providers`` hook. Anything that goes wrong is written on that plugin's
``PluginRecord`` and loading goes on with the next one, unless strict mode is on
(``DAGORCH_STRICT_PLUGINS=1``), where the first broken plugin raises ``PluginError``.
``DAGORCH_DISABLE_PLUGINS=a,b`` skips the named entry points without importing them.

Observer hooks are called one implementation at a time, so one that raises is logged and does not
keep the others (or the task) from going on.
"""

from __future__ import annotations

import inspect
import logging
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from hookspecs import specs
from hookspecs.provider import AgentProvider
from hookspecs.specs import ENTRY_POINT_GROUP, PROJECT_NAME
from orchestrator._deadline import finished_within
from orchestrator.errors import DagorchError, PluginError
from orchestrator.registry import ProviderRegistry

logger = logging.getLogger("dagorch.plugins")

_ATTEMPT_HOOKS = ("before_task_run", "after_task_run", "on_task_error")

STRICT_ENV = "DAGORCH_STRICT_PLUGINS"
"""Set to 1 to make a broken plugin an error instead of a record."""

DISABLE_ENV = "DAGORCH_DISABLE_PLUGINS"
"""A comma-separated list of entry-point names to skip."""

OBSERVER_HOOKS = ("on_task_event", "before_task_run", "after_task_run", "on_task_error")
"""The hooks that watch tasks (the others are for discovery)."""


@dataclass
class PluginRecord:
    """What loading one plugin gave: where it came from, what it offers, what went wrong."""

    name: str
    """The entry-point name (or the name a plugin was added under in code)."""
    value: str = ""
    """What the entry point names, e.g. ``"builtin_providers.echo"``."""
    distribution: str | None = None
    """The installed distribution that declares the entry point."""
    version: str | None = None
    """That distribution's version."""
    providers: list[str] = field(default_factory=list)
    """The ids of the providers it registered."""
    hooks: list[str] = field(default_factory=list)
    """The hooks it implements."""
    error: str | None = None
    """Why it is broken (or partly broken), if it is."""
    disabled: bool = False
    """True when ``DAGORCH_DISABLE_PLUGINS`` named it; it was not imported."""

    @property
    def source(self) -> str:
        """How errors name this plugin: its distribution, version and entry point."""
        if self.distribution is None:
            return f"plugin {self.name!r}"
        return f"{self.distribution} {self.version} (plugin {self.name!r})"

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON-ready data."""
        return asdict(self)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _env_list(name: str) -> set[str]:
    return {item.strip() for item in os.environ.get(name, "").split(",") if item.strip()}


_FoundEntryPoints = list[tuple[metadata.EntryPoint, str, str]]
_PathState = tuple[tuple[str, object], ...]
_scans: dict[str, tuple[_PathState, _FoundEntryPoints]] = {}
"""The last scan of each group, with the state of ``sys.path`` it was made in."""
_listings: dict[str, tuple[int, frozenset[tuple[str, int]]]] = {}
"""Each ``sys.path`` folder's time when last listed, and the distribution folders it held."""


def _entry_points(group: str) -> _FoundEntryPoints:
    """The entry points of ``group`` with their distribution's name and version, the first
    distribution of each name on ``sys.path`` winning (as ``importlib.metadata`` does).

    A scan reads every installed distribution's files (about 10 ms here), so it is kept for as
    long as no distribution on ``sys.path`` comes, goes or is reinstalled: each of those adds,
    removes or replaces a ``.dist-info`` (or ``.egg-info``) folder.
    """
    state = _path_state()
    cached = _scans.get(group)
    if cached is not None and cached[0] == state:
        return list(cached[1])
    found = _scan_entry_points(group)
    _scans[group] = (state, found)
    return list(found)


def _path_state() -> _PathState:
    return tuple((entry, _distributions_in(entry or ".")) for entry in sys.path)


def _distributions_in(folder: str) -> object:
    """The distribution folders in ``folder`` with their times, listed again only when the
    folder's own time changed: a file written into the current folder, which is on
    ``sys.path`` under ``python -c`` or the REPL, changes that time without changing what is
    installed."""
    try:
        changed = os.stat(folder).st_mtime_ns
    except OSError:
        return None
    listed = _listings.get(folder)
    if listed is not None and listed[0] == changed:
        return listed[1]
    found: set[tuple[str, int]] = set()
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.endswith((".dist-info", ".egg-info")):
                    found.add((entry.name, entry.stat().st_mtime_ns))
    except OSError:  # not a folder (a zip file), or unreadable: its time stands for it
        return changed
    names = frozenset(found)
    _listings[folder] = (changed, names)
    return names


def _scan_entry_points(group: str) -> _FoundEntryPoints:
    # Cheaper than metadata.entry_points(group=...), which parses every distribution's entry
    # points and metadata: only the few files that mention the group are parsed here.
    found: list[tuple[metadata.EntryPoint, str, str]] = []
    seen: set[str] = set()
    for dist in metadata.distributions():
        text = dist.read_text("entry_points.txt")
        if not text or group not in text:
            continue
        about = dist.metadata
        name, version = about["Name"] or "(unnamed)", about["Version"] or "(no version)"
        key = re.sub(r"[-_.]+", "-", name).lower()  # PEP 503: one project, however spelled
        if key in seen:
            continue
        seen.add(key)
        found.extend((ep, name, version) for ep in dist.entry_points.select(group=group))
    return found


class PluginHost:
    """One orchestrator's plugins: a pluggy manager, the records, and the provider registry.

    ``strict`` and ``disabled`` default to the environment variables ``DAGORCH_STRICT_PLUGINS``
    and ``DAGORCH_DISABLE_PLUGINS``, read when the host is made.
    """

    def __init__(
        self,
        registry: ProviderRegistry | None = None,
        *,
        strict: bool | None = None,
        disabled: Iterable[str] | None = None,
    ) -> None:
        self.manager = pluggy.PluginManager(PROJECT_NAME)
        self.manager.add_hookspecs(specs)
        self.registry = registry if registry is not None else ProviderRegistry()
        self.records: list[PluginRecord] = []
        self.strict = _env_flag(STRICT_ENV) if strict is None else strict
        self.disabled = _env_list(DISABLE_ENV) if disabled is None else set(disabled)
        self._loaded = False
        self._failure: PluginError | None = None
        self._observing: dict[str, bool] = {}
        self.attempts_observed = False
        """True when some plugin implements ``before_task_run``, ``after_task_run`` or
        ``on_task_error``, so that the runner asks nothing more at an attempt when none does."""
        self.hook_timeout = 1.0
        """Seconds an async observer hook may take before it is cut off."""

    # -- loading ----------------------------------------------------------------------------

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> list[PluginRecord]:
        """Load every plugin of ``group`` once; later calls return the same records (and raise
        the same ``PluginError`` in strict mode)."""
        if not self._loaded:
            self._loaded = True
            for entry_point, name, version in _entry_points(group):
                self._load(entry_point, name, version)
                if self._failure is not None:
                    break
        if self._failure is not None:
            raise self._failure
        return self.records

    def _load(self, entry_point: metadata.EntryPoint, distribution: str, version: str) -> None:
        record = PluginRecord(
            name=entry_point.name,
            value=entry_point.value,
            distribution=distribution,
            version=version,
        )
        self.records.append(record)
        if record.name in self.disabled:
            record.disabled = True
            self.manager.set_blocked(record.name)
            return
        try:
            plugin = entry_point.load()
        except Exception as exc:
            self._broken(record, f"import of {record.value!r} failed: {type(exc).__name__}: {exc}")
            return
        self._register(plugin, record)

    def add_plugin(self, plugin: object, name: str | None = None) -> PluginRecord:
        """Add a plugin given in code (an object or module with ``@hookimpl`` functions); a
        broken one raises ``PluginError`` at once, since the caller can fix it."""
        record = PluginRecord(name=name or getattr(plugin, "__name__", None) or repr(plugin))
        self.records.append(record)
        self._register(plugin, record)
        if record.error is not None:
            self.records.remove(record)
            raise PluginError(record.name, record.error)
        return record

    def _register(self, plugin: object, record: PluginRecord) -> None:
        try:
            self.manager.register(plugin, name=record.name)
        except (pluggy.PluginValidationError, ValueError) as exc:
            self._broken(record, f"invalid hook implementation: {exc}")
            return
        callers = self.manager.get_hookcallers(plugin) or []
        record.hooks = sorted(caller.name for caller in callers)
        unknown = [caller.name for caller in callers if not caller.has_spec()]
        if unknown or not callers:
            self.manager.unregister(plugin)
            known = ", ".join(sorted(self.hook_names()))
            if unknown:
                problem = f"implements unknown hook(s) {', '.join(sorted(unknown))}"
            else:
                problem = "implements no dagorch hook (is each hook marked with @hookimpl?)"
            self._broken(record, f"{problem}; known hooks: {known}")
            return
        self._observing.clear()
        self.attempts_observed = any(self.observes(hook) for hook in _ATTEMPT_HOOKS)
        if "register_providers" in record.hooks:
            self._collect_providers(plugin, record)

    def _collect_providers(self, plugin: object, record: PluginRecord) -> None:
        problems: list[str] = []

        def register(provider: AgentProvider) -> None:
            try:
                self.registry.register(provider, record.source)
            except DagorchError as exc:
                problems.append(str(exc))
                return
            if provider.id not in record.providers:
                record.providers.append(provider.id)

        for impl in self.manager.hook.register_providers.get_hookimpls():
            if impl.plugin is not plugin:
                continue
            try:
                returned = impl.function(*[{"register": register}[arg] for arg in impl.argnames])
            except Exception as exc:
                problems.append(f"register_providers raised {type(exc).__name__}: {exc}")
                continue
            if inspect.isawaitable(returned):
                if inspect.iscoroutine(returned):
                    returned.close()
                problems.append("register_providers must be a plain function, not async")
        if problems:
            self._broken(record, "; ".join(problems))

    def _broken(self, record: PluginRecord, problem: str) -> None:
        record.error = problem if record.error is None else f"{record.error}; {problem}"
        logger.warning("dagorch plugin %s is broken: %s", record.source, problem)
        if self.strict and self._failure is None:
            self._failure = PluginError(record.name, f"{problem} (from {record.source})")

    # -- what is known ----------------------------------------------------------------------

    def hook_names(self) -> list[str]:
        """Every hook a plugin may implement."""
        marker = f"{PROJECT_NAME}_spec"  # the attribute pluggy's hookspec marker sets
        return sorted(name for name, value in vars(specs).items() if hasattr(value, marker))

    def record_of(self, provider_id: str) -> PluginRecord | None:
        """The plugin that registered this provider, or None for one given in code."""
        for record in self.records:
            if provider_id in record.providers:
                return record
        return None

    # -- observers --------------------------------------------------------------------------

    def observes(self, hook: str) -> bool:
        """True when some plugin implements observer ``hook`` (cached until plugins change)."""
        known = self._observing.get(hook)
        if known is None:
            known = self._observing[hook] = bool(getattr(self.manager.hook, hook).get_hookimpls())
        return known

    async def notify(self, hook: str, **kwargs: Any) -> None:
        """Call each implementation of observer ``hook`` on its own, awaiting what is awaitable;
        one that raises is logged and the rest still run."""
        for impl in getattr(self.manager.hook, hook).get_hookimpls():
            try:
                returned = impl.function(*[kwargs[arg] for arg in impl.argnames])
                if inspect.isawaitable(returned) and not await finished_within(
                    returned, self.hook_timeout
                ):
                    logger.warning(
                        "Plugin %s took over %gs in hook %s; it was cut off",
                        impl.plugin_name,
                        self.hook_timeout,
                        hook,
                    )
            except Exception:
                logger.exception("Plugin %s failed in hook %s", impl.plugin_name, hook)
