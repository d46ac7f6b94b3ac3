"""Reading a task's provider parameters, with errors that name the field."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hookspecs.provider import ProviderError

if TYPE_CHECKING:
    from hookspecs.models import OrchestratedTask

_MISSING: Any = object()


def param(
    task: OrchestratedTask, name: str, kinds: type | tuple[type, ...], default: Any = _MISSING
) -> Any:
    """The task's parameter ``name``, checked against ``kinds``; a missing required parameter or
    a wrong type fails the task without retries, naming ``params.<name>``."""
    params = task.metadata.params
    if name not in params or params[name] is None:
        if default is _MISSING:
            raise ProviderError(f"Missing parameter params.{name}", retryable=False)
        return default
    value = params[name]
    # bool is an int: a flag must not pass where a number is wanted, nor a number as a flag.
    wanted = kinds if isinstance(kinds, tuple) else (kinds,)
    if isinstance(value, bool) and bool not in wanted:
        value_ok = False
    else:
        value_ok = isinstance(value, wanted)
    if not value_ok:
        names = " or ".join(kind.__name__ for kind in wanted)
        raise ProviderError(
            f"Parameter params.{name} must be {names}, got {type(value).__name__}", retryable=False
        )
    return value


def require(module: str, extra: str, provider: str, package: str) -> None:
    """Fail the task without retries when ``module`` (a provider's SDK) is not installed,
    naming the extra that installs it."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ProviderError(
            f"The {provider} provider needs {package}: pip install 'dagorch[{extra}]'",
            retryable=False,
        )
