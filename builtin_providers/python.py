"""The ``python`` provider: calls a Python function named by the task.

Parameters:

- ``function`` (str, required): ``"package.module:function"`` (the part after the colon may be
  dotted, e.g. ``"tools:Builder.run"``). When the module is not importable from ``sys.path``,
  the task's working directory is added to the end of ``sys.path`` and the import tried again,
  so a pipeline's own modules are found next to it.

The function receives, by name, whichever of these it declares: ``task`` (the task),
``upstream`` (a dict from upstream task id to its ``TaskResult``) and, for an ``async``
function, ``ctx`` (the task's context, for output, progress and pause points). A function that
declares other names is called as ``function(task, upstream)``. A plain function runs in a worker
thread so it cannot block the orchestrator; an ``async`` one runs on the event loop.

What it returns becomes the result: a ``TaskResult`` as is, ``None`` an empty success, a string
the summary, anything else its JSON text (or ``repr``) as the summary. An exception fails the
task with its message.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import sys
from typing import TYPE_CHECKING, Any

from builtin_providers._params import param
from hookspecs.provider import ProviderError
from hookspecs.specs import hookimpl

if TYPE_CHECKING:
    from collections.abc import Callable

    from hookspecs.models import OrchestratedTask, TaskResult
    from hookspecs.provider import AgentProvider, ProviderTaskExecutionContext

_INJECTED = ("task", "upstream", "ctx")


def resolve(spec: str, search_dir: str | None = None) -> Callable[..., Any]:
    """The callable named by ``"module:attribute"``; a clear ``ProviderError`` otherwise."""
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name.strip() or not attribute.strip():
        raise ProviderError(
            f"params.function must look like 'module:function', got {spec!r}", retryable=False
        )
    try:
        module = _import(module_name.strip(), search_dir)
    except ProviderError:
        raise
    except Exception as exc:
        raise ProviderError(
            f"Importing {module_name!r} for params.function failed: {type(exc).__name__}: {exc}",
            retryable=False,
        ) from exc
    target: Any = module
    for part in attribute.strip().split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ProviderError(
                f"params.function: module {module_name!r} has no {attribute.strip()!r}",
                retryable=False,
            ) from None
    if not callable(target):
        raise ProviderError(f"params.function: {spec!r} is not callable", retryable=False)
    return target  # type: ignore[no-any-return]


def _import(module_name: str, search_dir: str | None) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        top = module_name.split(".")[0]
        if exc.name != top or not search_dir or search_dir in sys.path:
            raise ProviderError(
                f"params.function: no module named {exc.name!r}", retryable=False
            ) from None
    sys.path.append(search_dir)
    importlib.invalidate_caches()
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ProviderError(
            f"params.function: no module named {exc.name!r} (looked in sys.path and {search_dir})",
            retryable=False,
        ) from None


def _arguments(
    function: Callable[..., Any], available: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return (available["task"], available["upstream"]), {}
    names = [
        name
        for name, p in parameters.items()
        if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]
    if all(name in available for name in names):
        return (), {name: available[name] for name in names}
    return (available["task"], available["upstream"]), {}


def as_result(value: Any) -> TaskResult:
    """Turn what a function returned into a ``TaskResult``."""
    from hookspecs.models import TaskResult

    if isinstance(value, TaskResult):
        return value
    if value is None:
        return TaskResult(success=True)
    if isinstance(value, str):
        return TaskResult(success=True, summary=value)
    try:
        return TaskResult(success=True, summary=json.dumps(value))
    except (TypeError, ValueError):
        return TaskResult(success=True, summary=repr(value))


class PythonProvider:
    """Calls the ``module:function`` in its ``function`` parameter with the task and upstream
    results; a plain function runs in a worker thread."""

    id = "python"
    label = "Python function"
    description = "Calls the Python function named by its function parameter (module:function)"

    async def execute_task(
        self, task: OrchestratedTask, ctx: ProviderTaskExecutionContext
    ) -> TaskResult:
        """Import and call the function, then turn what it returned into the result."""
        spec = param(task, "function", str)
        function = resolve(spec, task.metadata.working_directory or None)
        available: dict[str, Any] = {"task": task, "upstream": dict(ctx.upstream_results)}
        is_async = inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
            getattr(function, "__call__", None)  # noqa: B004
        )
        if is_async:
            available["ctx"] = ctx
        args, kwargs = _arguments(function, available)
        await ctx.append_output(f"Calling {spec}")
        if is_async:
            returned = await function(*args, **kwargs)
        else:
            import anyio.to_thread

            call = functools.partial(function, *args, **kwargs)
            # Abandoned on cancel: a thread cannot be interrupted, but the task must not wait.
            returned = await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
        result = as_result(returned)
        if result.success:
            await ctx.update_progress(100)
        return result


@hookimpl
def register_providers(register: Callable[[AgentProvider], None]) -> None:
    """Offer the ``python`` provider."""
    register(PythonProvider())
