"""Every error dagorch raises, in one hierarchy.

::

    DagorchError
     ├── ConfigurationError (also RuntimeError)   options missing or wrong, service stopped
     ├── TaskNotFoundError (also ValueError)      no task with that id
     ├── StepNotFoundError (also ValueError)      no step with that id on the task
     ├── InvalidTaskError (also ValueError)       a bad field on a task or step
     │    └── DuplicateTaskError                  a task id that is already taken
     ├── DependencyError (also ValueError)
     │    ├── CycleError                          the dependency would close a cycle
     │    ├── UnknownDependencyError              the upstream task does not exist
     │    └── DependentsExistError                unfinished tasks still wait on this one
     ├── IllegalTransitionError (also ValueError) the lifecycle table forbids the change
     ├── UnknownProviderError (also ValueError)   no provider with that id
     ├── DuplicateProviderError (also ValueError) two providers claim one id
     ├── InvalidProviderError (also ValueError)   an object that is not a usable provider
     ├── PluginError                              a plugin failed to load (fatal in strict mode)
     ├── StoreError                               the store file cannot be opened, read or written
     ├── RemoteControlError                       the process owning a store refused or timed out
     ├── TaskCancelledError                       raised in a provider by ``ctx.checkpoint()``
     └── TaskInterruptedError (also RuntimeError) a task's run was cut short outside the service

``hookspecs.ProviderError`` is the one a provider raises to fail its task; it is not a
``DagorchError`` because providers import only the SDK.

The builtin bases (``ValueError``, ``RuntimeError``) keep code written against the ElizaOS
reference, which raised those, working.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class DagorchError(Exception):
    """Base of every error raised by dagorch."""


class ConfigurationError(DagorchError, RuntimeError):
    """The orchestrator is not configured, configured wrongly, or already stopped."""


class TaskNotFoundError(DagorchError, ValueError):
    """No task has the given id."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"Task {task_id} not found")
        self.task_id = task_id


class StepNotFoundError(DagorchError, ValueError):
    """The task has no step with the given id."""

    def __init__(self, task_id: str, step_id: str) -> None:
        super().__init__(f"Task {task_id} has no step {step_id}")
        self.task_id = task_id
        self.step_id = step_id


class InvalidTaskError(DagorchError, ValueError):
    """A field of a task or step is not acceptable; the message names the field."""


class DuplicateTaskError(InvalidTaskError):
    """A task with this id exists already."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"A task with id {task_id!r} already exists")
        self.task_id = task_id


class DependencyError(DagorchError, ValueError):
    """A dependency between tasks cannot be added or removed."""


class CycleError(DependencyError):
    """Adding the dependency would close a cycle; ``cycle`` lists its task ids in order."""

    def __init__(self, cycle: Sequence[str], names: Sequence[str]) -> None:
        shown = " -> ".join(
            f"{name} ({task_id})" for task_id, name in zip(cycle, names, strict=True)
        )
        super().__init__(f"Dependency would create a cycle: {shown}")
        self.cycle = list(cycle)


class UnknownDependencyError(DependencyError):
    """A task names an upstream task that does not exist."""

    def __init__(self, task_id: str, missing: str) -> None:
        super().__init__(f"Task {task_id} depends on unknown task {missing!r}")
        self.task_id = task_id
        self.missing = missing


class DependentsExistError(DependencyError):
    """The task cannot go away while unfinished tasks depend on it."""

    def __init__(self, task_id: str, dependents: Iterable[str]) -> None:
        self.dependents = sorted(dependents)
        super().__init__(
            f"Task {task_id} still has unfinished dependents: {', '.join(self.dependents)}; "
            "cancel or delete them first"
        )
        self.task_id = task_id


class IllegalTransitionError(DagorchError, ValueError):
    """The lifecycle table has no move for this status and trigger."""

    def __init__(self, task_id: str, status: str, trigger: str, reason: str = "") -> None:
        text = f"Cannot {trigger} task {task_id}: it is {status}"
        super().__init__(f"{text}; {reason}" if reason else text)
        self.task_id = task_id
        self.status = status
        self.trigger = trigger


class UnknownProviderError(DagorchError, ValueError):
    """No provider is registered under the id; the message lists the ones that are."""

    def __init__(self, provider_id: str, available: Iterable[str], hint: str = "") -> None:
        self.available = sorted(available)
        listing = ", ".join(self.available) if self.available else "(none registered)"
        opening = hint or f'Unknown provider "{provider_id}"'
        super().__init__(f"{opening}. Available: {listing}")
        self.provider_id = provider_id


class DuplicateProviderError(DagorchError, ValueError):
    """Two providers were registered under one id."""

    def __init__(self, provider_id: str, first: str, second: str) -> None:
        super().__init__(
            f'Provider id "{provider_id}" is registered twice: by {first} and by {second}'
        )
        self.provider_id = provider_id


class InvalidProviderError(DagorchError, ValueError):
    """An object offered as a provider lacks what a provider needs; the message says what."""

    def __init__(self, provider: object, source: str, problem: str) -> None:
        super().__init__(
            f"{source} registered {provider!r}, which is not a usable provider: {problem}"
        )
        self.source = source
        self.problem = problem


class PluginError(DagorchError):
    """A plugin could not be loaded. Raised only in strict mode (``DAGORCH_STRICT_PLUGINS=1``);
    otherwise the error is recorded on the plugin and shown by ``dagorch plugins``."""

    def __init__(self, plugin: str, problem: str) -> None:
        super().__init__(f"Plugin {plugin!r} failed: {problem}")
        self.plugin = plugin
        self.problem = problem


class TaskCancelledError(DagorchError):
    """Raised inside a provider by ``ctx.checkpoint()`` once its task is cancelled."""


class TaskInterruptedError(DagorchError, RuntimeError):
    """Raised to whoever waits for a task (``run()``, ``wait_for_task``) whose worker something
    outside the service cancelled: a provider that cancels its own asyncio task, or an event
    loop shutting down. The task is left marked running, as a crash leaves it, until it is
    cancelled, or paused by ``detect_and_pause_interrupted_tasks`` (or by ``stop()``)."""

    def __init__(self, task_id: str, name: str) -> None:
        super().__init__(
            f'Task "{name}" ({task_id}) stopped without finishing: something outside the '
            "orchestrator cancelled its worker (a provider that cancels its own asyncio task "
            "does this). It is left running: cancel it, or pause it "
            "(detect_and_pause_interrupted_tasks) and resume it"
        )
        self.task_id = task_id


class StoreError(DagorchError):
    """The store cannot be opened, read or written; the message names the file and the cause."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


class RemoteControlError(DagorchError):
    """The orchestrator owning a store refused a command, or did not answer in time."""
