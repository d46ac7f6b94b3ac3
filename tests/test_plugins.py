"""Plugins: found through the ``dagorch.providers`` entry point, each loaded on its own.

A broken plugin is recorded and shown, never fatal (unless strict mode is on), and every other
provider keeps working. The hook specs are documented and each is tested here.
"""

from __future__ import annotations

import inspect
import os
import sys
from pathlib import Path

import pytest

import orchestrator
from hookspecs import TaskResult, hookimpl, specs
from orchestrator import (
    AgentOrchestratorPluginOptions,
    AgentOrchestratorService,
    DuplicateProviderError,
    MemoryStore,
    PluginError,
    PluginHost,
)
from orchestrator.testing import FunctionProvider, succeed

GOOD = """
from hookspecs import TaskResult, hookimpl

class Provider:
    id = "{id}"
    label = "{id} label"
    description = "made for a test"

    async def execute_task(self, task, ctx):
        await ctx.append_output("ran {id}")
        return TaskResult(success=True, summary="{id} done")

@hookimpl
def register_providers(register):
    register(Provider())
"""


def good(provider_id: str) -> str:
    return GOOD.replace("{id}", provider_id)


def loaded(**kwargs: object) -> PluginHost:
    host = PluginHost(**kwargs)  # type: ignore[arg-type]
    host.load_entry_points()
    return host


def assert_builtins_still_work(host: PluginHost) -> None:
    assert {"echo", "python", "shell"} <= set(host.registry.ids)
    for name in ("echo", "python", "shell"):
        assert record(host, name).error is None


def record(host: PluginHost, name: str) -> orchestrator.PluginRecord:
    return next(r for r in host.records if r.name == name)


async def start(**options: object) -> AgentOrchestratorService:
    return await AgentOrchestratorService.start(
        options=AgentOrchestratorPluginOptions(**options),  # type: ignore[arg-type]
        store=MemoryStore(),
    )


# -- discovery ------------------------------------------------------------------------------


def test_the_builtin_providers_come_from_dagorchs_own_entry_points():
    host = loaded()
    for name in ("echo", "python", "shell"):
        found = record(host, name)
        assert found.distribution == "dagorch"
        assert found.value == f"builtin_providers.{name}"
        assert found.providers == [name]
        assert found.error is None


def test_the_engine_never_imports_the_builtin_providers_directly():
    engine = Path(orchestrator.__file__).parent
    sources = [path.read_text() for path in engine.rglob("*.py")]
    for source in sources:
        assert "import builtin_providers" not in source
        assert "from builtin_providers" not in source


def test_an_installed_distribution_registers_its_providers_with_a_full_record(dists):
    module = dists.plugin("acme-agents", good("acme"), version="2.3.1", ep="acme")
    found = record(loaded(), "acme")
    assert found.distribution == "acme-agents"
    assert found.version == "2.3.1"
    assert found.value == module
    assert found.providers == ["acme"]
    assert found.hooks == ["register_providers"]
    assert found.error is None
    assert found.source == "acme-agents 2.3.1 (plugin 'acme')"


async def test_a_service_runs_a_task_on_a_provider_from_an_installed_distribution(dists):
    dists.plugin("acme-agents", good("acme"))
    async with await start() as service:
        task = await service.create_task("t", "d", provider_id="acme")
        await service.run()
        done = await service.get_task(task.id)
        assert done is not None
        assert done.metadata.result is not None
        assert done.metadata.result.summary == "acme done"
        assert "ran acme" in done.metadata.output


async def test_service_plugins_lists_the_records(dists):
    dists.plugin("acme-agents", good("acme"), ep="acme")
    async with await start() as service:
        names = [r.name for r in service.plugins]
        assert {"echo", "python", "shell", "acme"} <= set(names)


async def test_discover_plugins_false_leaves_only_the_providers_given_in_code(dists):
    dists.plugin("acme-agents", good("acme"))
    mine = FunctionProvider("mine", succeed)
    async with await start(providers=[mine], discover_plugins=False) as service:
        assert service.provider_ids == ["mine"]


async def test_explicit_providers_join_the_same_registry_as_plugins():
    mine = FunctionProvider("mine", succeed)
    async with await start(providers=[mine]) as service:
        assert service.provider_ids == ["acp", "echo", "mine", "openai", "python", "shell"]


async def test_an_explicit_provider_clashing_with_a_plugin_names_both_sources():
    clash = FunctionProvider("echo", succeed)
    with pytest.raises(DuplicateProviderError) as caught:
        await start(providers=[clash])
    assert str(caught.value) == (
        "Provider id \"echo\" is registered twice: by dagorch 0.1.0 (plugin 'echo') and by options"
    )


async def test_the_environment_variable_selects_a_plugin_provider(monkeypatch):
    monkeypatch.setenv("ELIZA_CODE_ACTIVE_SUB_AGENT", " echo ")
    mine = FunctionProvider("mine", succeed)
    async with await start(providers=[mine], default_provider_id="mine") as service:
        task = await service.create_task("t", "d")
        assert task.metadata.provider_id == "echo"
        other = await service.create_task("u", "d", provider_id="mine")
        assert other.metadata.provider_id == "mine"


# -- broken plugins -------------------------------------------------------------------------


def test_a_plugin_whose_import_raises_is_recorded_and_the_others_still_work(dists):
    dists.plugin("boom", "raise RuntimeError('no config file')\n")
    dists.plugin("fine", good("fine"))
    host = loaded()
    assert record(host, "boom").error == (
        f"import of {record(host, 'boom').value!r} failed: RuntimeError: no config file"
    )
    assert record(host, "fine").providers == ["fine"]
    assert_builtins_still_work(host)


def test_a_hook_with_the_wrong_signature_is_recorded(dists):
    dists.plugin(
        "wrong-args",
        """
        from hookspecs import hookimpl

        @hookimpl
        def register_providers(register, extra):
            pass
        """,
    )
    host = loaded()
    error = record(host, "wrong-args").error
    assert_builtins_still_work(host)
    assert error is not None
    assert error.startswith("invalid hook implementation:")
    assert "extra" in error


def test_a_plugin_implementing_an_unknown_hook_is_recorded(dists):
    dists.plugin(
        "unknown-hook",
        """
        from hookspecs import hookimpl

        @hookimpl
        def register_widgets(register):
            pass
        """,
    )
    host = loaded()
    error = record(host, "unknown-hook").error
    assert error == (
        "implements unknown hook(s) register_widgets; known hooks: after_task_run, "
        "before_task_run, on_task_error, on_task_event, register_providers"
    )
    assert_builtins_still_work(host)


def test_a_plugin_with_no_marked_hook_is_recorded(dists):
    dists.plugin("unmarked", "def register_providers(register):\n    pass\n")
    host = loaded()
    error = record(host, "unmarked").error
    assert_builtins_still_work(host)
    assert error is not None
    assert error.startswith("implements no dagorch hook (is each hook marked with @hookimpl?)")


def test_a_plugin_registering_something_that_is_not_a_provider_is_recorded(dists):
    dists.plugin(
        "not-a-provider",
        good("kept")
        + """
@hookimpl
def register_providers(register):
    register("a string")
""",
    )
    host = loaded()
    found = record(host, "not-a-provider")
    assert found.error is not None
    assert "registered 'a string', which is not a usable provider: it has no string id" in (
        found.error
    )
    assert_builtins_still_work(host)


def test_a_plugin_keeps_its_good_providers_when_one_is_refused(dists):
    dists.plugin(
        "half-good",
        """
        from hookspecs import TaskResult, hookimpl

        class Good:
            id = "good"
            label = "Good"
            description = None

            async def execute_task(self, task, ctx):
                return TaskResult(success=True)

        class NoLabel:
            id = "nolabel"

            async def execute_task(self, task, ctx):
                return TaskResult(success=True)

        @hookimpl
        def register_providers(register):
            register(Good())
            register(NoLabel())
        """,
    )
    host = loaded()
    found = record(host, "half-good")
    assert found.providers == ["good"]
    assert found.error is not None
    assert 'provider "nolabel" has no string label' in found.error


def test_two_providers_with_one_id_are_refused_naming_both_distributions(dists):
    dists.plugin("first-dist", good("twin"), version="1.0", ep="first")
    dists.plugin("second-dist", good("twin"), version="2.0", ep="second")
    host = loaded()
    errors = [record(host, "first").error, record(host, "second").error]
    assert errors.count(None) == 1
    error = next(e for e in errors if e is not None)
    assert "first-dist 1.0 (plugin 'first')" in error
    assert "second-dist 2.0 (plugin 'second')" in error
    assert error.startswith('Provider id "twin" is registered twice')
    assert host.registry.ids.count("twin") == 1


def test_a_provider_with_a_synchronous_execute_task_is_refused_with_a_clear_message(dists):
    dists.plugin(
        "sync-provider",
        """
        from hookspecs import TaskResult, hookimpl

        class Sync:
            id = "sync"
            label = "Sync"
            description = None

            def execute_task(self, task, ctx):
                return TaskResult(success=True)

        @hookimpl
        def register_providers(register):
            register(Sync())
        """,
    )
    host = loaded()
    error = record(host, "sync-provider").error
    assert error is not None
    assert 'provider "sync" has a synchronous execute_task; it must be `async def' in error
    assert "sync" not in host.registry.ids


def test_an_async_register_providers_is_recorded(dists):
    dists.plugin(
        "async-register",
        """
        from hookspecs import hookimpl

        @hookimpl
        async def register_providers(register):
            pass
        """,
    )
    host = loaded()
    error = record(host, "async-register").error
    assert_builtins_still_work(host)
    assert error == "register_providers must be a plain function, not async"


def test_a_register_providers_that_raises_is_recorded(dists):
    dists.plugin(
        "raising-register",
        """
        from hookspecs import hookimpl

        @hookimpl
        def register_providers(register):
            raise KeyError("API_TOKEN")
        """,
    )
    host = loaded()
    error = record(host, "raising-register").error
    assert_builtins_still_work(host)
    assert error == "register_providers raised KeyError: 'API_TOKEN'"


async def test_a_service_starts_and_runs_tasks_beside_a_broken_plugin(dists):
    dists.plugin("boom", "raise ImportError('missing sdk')\n")
    async with await start() as service:
        assert record_error(service, "boom") == (
            f"import of {record_of(service, 'boom').value!r} failed: ImportError: missing sdk"
        )
        task = await service.create_task("t", "hello", provider_id="echo")
        await service.run()
        done = await service.get_task(task.id)
        assert done is not None and done.metadata.status.value == "completed"


def record_of(service: AgentOrchestratorService, name: str) -> orchestrator.PluginRecord:
    return next(r for r in service.plugins if r.name == name)


def record_error(service: AgentOrchestratorService, name: str) -> str | None:
    return record_of(service, name).error


# -- strict mode and disabling --------------------------------------------------------------


async def test_strict_mode_makes_a_broken_plugin_fatal(dists, monkeypatch):
    dists.plugin("boom", "raise RuntimeError('bad')\n")
    monkeypatch.setenv("DAGORCH_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError) as caught:
        await start()
    assert caught.value.plugin == "boom"
    assert "RuntimeError: bad" in str(caught.value)
    assert "boom 1.0 (plugin 'boom')" in str(caught.value)


def test_strict_mode_raises_again_on_a_second_load(dists):
    dists.plugin("boom", "raise RuntimeError('bad')\n")
    host = PluginHost(strict=True)
    with pytest.raises(PluginError):
        host.load_entry_points()
    with pytest.raises(PluginError):
        host.load_entry_points()


def test_disabled_plugins_are_recorded_and_never_imported(dists, monkeypatch):
    module = dists.plugin("boom", "raise RuntimeError('imported anyway')\n")
    monkeypatch.setenv("DAGORCH_DISABLE_PLUGINS", "boom, shell")
    host = loaded()
    assert record(host, "boom").disabled
    assert record(host, "boom").error is None
    assert record(host, "shell").disabled
    assert module not in sys.modules
    assert "shell" not in host.registry.ids
    assert "echo" in host.registry.ids


# -- plugins given in code ------------------------------------------------------------------


class Observer:
    """A plugin object recording what its observer hooks saw."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, object]] = []

    @hookimpl
    def on_task_event(self, event):
        self.seen.append(("event", event.type.value))

    @hookimpl
    async def before_task_run(self, task, attempt):
        self.seen.append(("before", (task.name, attempt)))

    @hookimpl
    def after_task_run(self, task, attempt, result, error):
        self.seen.append(("after", (task.name, attempt, result.success if result else None, error)))

    @hookimpl
    async def on_task_error(self, task, attempt, error, will_retry):
        self.seen.append(("error", (task.name, attempt, error, will_retry)))


async def test_register_plugin_refuses_a_broken_plugin_at_once():
    class Bad:
        @hookimpl
        def no_such_hook(self):
            pass

    async with await start(providers=[FunctionProvider("ok", succeed)]) as service:
        with pytest.raises(PluginError) as caught:
            service.register_plugin(Bad(), "bad")
        assert "implements unknown hook(s) no_such_hook" in str(caught.value)
        assert "bad" not in [r.name for r in service.plugins]


async def test_register_plugin_adds_its_providers(dists):
    module = dists.module("inline", good("inline"))
    async with await start(providers=[FunctionProvider("ok", succeed)]) as service:
        found = service.register_plugin(sys.modules.get(module) or __import__(module))
        assert found.providers == ["inline"]
        assert "inline" in service.provider_ids


# -- observer hooks (one test per spec at least; see the last test) --------------------------


async def test_register_providers_is_called_with_a_register_callback():
    got: list[object] = []

    class Plugin:
        @hookimpl
        def register_providers(self, register):
            got.append(register)
            register(FunctionProvider("via-hook", succeed))

    async with await start(discover_plugins=False) as service:
        service.register_plugin(Plugin(), "p")
        assert callable(got[0])
        assert service.provider_ids == ["via-hook"]


async def test_on_task_event_sees_every_event_after_it_is_stored():
    observer = Observer()
    async with await start(providers=[FunctionProvider("ok", succeed)]) as service:
        service.register_plugin(observer, "observer")
        await service.create_task("t", "d")
        await service.run()
    events = [value for kind, value in observer.seen if kind == "event"]
    assert events[0] == "task:created"
    assert events[-1] == "task:completed"


async def test_before_task_run_sees_each_attempt_before_the_provider_runs():
    observer = Observer()
    order: list[str] = []

    async def flaky(task, ctx):
        order.append(f"provider {ctx.attempt}")
        if ctx.attempt == 1:
            raise RuntimeError("first try fails")
        return TaskResult(success=True)

    async with await start(
        providers=[FunctionProvider("flaky", flaky)], retry_backoff=0.001
    ) as service:
        service.register_plugin(observer, "observer")
        await service.create_task("t", "d", retries=1)
        await service.run()
    befores = [value for kind, value in observer.seen if kind == "before"]
    assert befores == [("t", 1), ("t", 2)]


async def test_after_task_run_sees_the_result_or_the_error_of_each_attempt():
    observer = Observer()

    async def flaky(task, ctx):
        if ctx.attempt == 1:
            raise RuntimeError("first try fails")
        return TaskResult(success=True, summary="ok")

    async with await start(
        providers=[FunctionProvider("flaky", flaky)], retry_backoff=0.001
    ) as service:
        service.register_plugin(observer, "observer")
        await service.create_task("t", "d", retries=1)
        await service.run()
    afters = [value for kind, value in observer.seen if kind == "after"]
    assert afters == [("t", 1, None, "first try fails"), ("t", 2, True, None)]


async def test_on_task_error_says_whether_another_attempt_follows():
    observer = Observer()

    async def always_fails(task, ctx):
        raise RuntimeError(f"attempt {ctx.attempt} failed")

    async with await start(
        providers=[FunctionProvider("bad", always_fails)], retry_backoff=0.001
    ) as service:
        service.register_plugin(observer, "observer")
        await service.create_task("t", "d", retries=1)
        await service.run()
    errors = [value for kind, value in observer.seen if kind == "error"]
    assert errors == [("t", 1, "attempt 1 failed", True), ("t", 2, "attempt 2 failed", False)]


async def test_an_observer_that_raises_is_logged_and_the_others_and_the_task_go_on(caplog):
    observer = Observer()

    class Raising:
        @hookimpl
        def before_task_run(self, task):
            raise RuntimeError("observer broke")

        @hookimpl
        def on_task_event(self, event):
            raise RuntimeError("observer broke")

    async with await start(providers=[FunctionProvider("ok", succeed)]) as service:
        service.register_plugin(Raising(), "raising")
        service.register_plugin(observer, "observer")
        task = await service.create_task("t", "d")
        await service.run()
        done = await service.get_task(task.id)
        assert done is not None and done.metadata.status.value == "completed"
    assert ("before", ("t", 1)) in observer.seen
    assert "Plugin raising failed in hook before_task_run" in caplog.text


async def test_observers_see_a_copy_of_the_task_not_the_live_one():
    seen: list[object] = []

    class Meddler:
        @hookimpl
        def before_task_run(self, task):
            task.name = "changed by a plugin"
            seen.append(task)

    async with await start(providers=[FunctionProvider("ok", succeed)]) as service:
        service.register_plugin(Meddler(), "meddler")
        task = await service.create_task("t", "d")
        await service.run()
        stored = await service.get_task(task.id)
        assert stored is not None and stored.name == "t"
    assert len(seen) == 1


# -- the specs themselves -------------------------------------------------------------------


def test_every_hook_spec_is_documented_and_has_a_test_here():
    names = PluginHost().hook_names()
    assert names == [
        "after_task_run",
        "before_task_run",
        "on_task_error",
        "on_task_event",
        "register_providers",
    ]
    tests = [name for name, value in globals().items() if name.startswith("test_")]
    for name in names:
        assert (inspect.getdoc(getattr(specs, name)) or "").strip(), f"{name} has no docstring"
        assert any(test.startswith(f"test_{name}") for test in tests), f"{name} is untested"


@pytest.fixture
def counted_scans(monkeypatch, tmp_path):
    """A folder on sys.path, fresh scan caches, and a count of the scans made."""
    from orchestrator import plugins

    monkeypatch.setattr(plugins, "_scans", {})
    monkeypatch.setattr(plugins, "_listings", {})
    monkeypatch.syspath_prepend(str(tmp_path))
    scans: list[str] = []
    real = plugins._scan_entry_points

    def counting(group: str):
        scans.append(group)
        return real(group)

    monkeypatch.setattr(plugins, "_scan_entry_points", counting)
    return plugins, tmp_path, scans


def _touch_folder(folder: Path, name: str) -> None:
    if name.endswith(".dist-info"):
        (folder / name).mkdir()
    else:
        (folder / name).write_text("x")
    stat = folder.stat()
    # A later time for certain, whatever the file system's clock resolution.
    os.utime(folder, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_a_file_written_into_a_folder_on_sys_path_does_not_rescan_the_entry_points(counted_scans):
    plugins, folder, scans = counted_scans
    plugins._entry_points("dagorch.providers")
    _touch_folder(folder, "notes.txt")

    plugins._entry_points("dagorch.providers")

    assert scans == ["dagorch.providers"]


def test_a_distribution_added_to_a_folder_on_sys_path_is_rescanned_for(counted_scans):
    plugins, folder, scans = counted_scans
    plugins._entry_points("dagorch.providers")
    _touch_folder(folder, "newcomer-1.0.dist-info")

    plugins._entry_points("dagorch.providers")

    assert scans == ["dagorch.providers", "dagorch.providers"]
