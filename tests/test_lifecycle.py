"""The lifecycle table: every (status, trigger) pair is either a legal move or refused.

The reference had no transition rules at all (spec §2.1, bug §6.1.11): a completed task could be
paused, resumed into a "zombie running" state or put back to pending. Here the table is the spec,
and the service refuses every move the table does not list without changing anything.
"""

from __future__ import annotations

import itertools

import pytest

from hookspecs.models import TaskResult, TaskStatus
from orchestrator import TRANSITIONS, IllegalTransitionError, Trigger
from orchestrator.lifecycle import next_status

P, R, Z = TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.PAUSED
C, F, X = TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED
START, PAUSE, RESUME, REQUEUE = Trigger.START, Trigger.PAUSE, Trigger.RESUME, Trigger.REQUEUE
COMPLETE, FAIL, CANCEL = Trigger.COMPLETE, Trigger.FAIL, Trigger.CANCEL

# The specification: all 6 x 7 = 42 pairs; None means the move is refused.
EXPECTED: dict[tuple[TaskStatus, Trigger], TaskStatus | None] = {
    (P, START): R,
    (P, PAUSE): Z,
    (P, RESUME): P,
    (P, REQUEUE): P,
    (P, COMPLETE): C,
    (P, FAIL): F,
    (P, CANCEL): X,
    (R, START): None,
    (R, PAUSE): Z,
    (R, RESUME): R,
    (R, REQUEUE): P,
    (R, COMPLETE): C,
    (R, FAIL): F,
    (R, CANCEL): X,
    (Z, START): None,
    (Z, PAUSE): Z,
    (Z, RESUME): R,
    (Z, REQUEUE): P,
    (Z, COMPLETE): C,
    (Z, FAIL): F,
    (Z, CANCEL): X,
    (C, START): None,
    (C, PAUSE): None,
    (C, RESUME): None,
    (C, REQUEUE): None,
    (C, COMPLETE): None,
    (C, FAIL): None,
    (C, CANCEL): None,
    (F, START): None,
    (F, PAUSE): None,
    (F, RESUME): None,
    (F, REQUEUE): None,
    (F, COMPLETE): None,
    (F, FAIL): None,
    (F, CANCEL): None,
    (X, START): None,
    (X, PAUSE): None,
    (X, RESUME): None,
    (X, REQUEUE): None,
    (X, COMPLETE): None,
    (X, FAIL): None,
    (X, CANCEL): X,
}

TERMINAL = (C, F, X)


def test_the_expected_table_covers_every_status_and_trigger_pair():
    assert set(EXPECTED) == set(itertools.product(TaskStatus, Trigger))
    assert len(EXPECTED) == 42


@pytest.mark.parametrize(
    ("status", "trigger"),
    list(EXPECTED),
    ids=[f"{s.value}-{t.value}" for s, t in EXPECTED],
)
def test_next_status_follows_the_table(status: TaskStatus, trigger: Trigger):
    target = EXPECTED[(status, trigger)]
    if target is not None:
        assert next_status("task-42", status, trigger) is target
    else:
        with pytest.raises(IllegalTransitionError) as info:
            next_status("task-42", status, trigger)
        message = str(info.value)
        assert "task-42" in message
        assert status.value in message
        assert trigger.value in message
        assert (info.value.task_id, info.value.status, info.value.trigger) == (
            "task-42",
            status.value,
            trigger.value,
        )


def test_the_public_transitions_table_lists_exactly_the_legal_moves():
    legal = {pair: target for pair, target in EXPECTED.items() if target is not None}
    assert legal == TRANSITIONS


def test_an_illegal_transition_is_a_value_error_like_the_reference_raised():
    with pytest.raises(ValueError):
        next_status("t", C, PAUSE)


@pytest.mark.parametrize("status", TERMINAL, ids=lambda s: s.value)
def test_a_terminal_status_has_no_way_out(status: TaskStatus):
    for trigger in Trigger:
        try:
            target = next_status("t", status, trigger)
        except IllegalTransitionError:
            continue
        # The only move allowed from a terminal state is the cancel -> cancelled no-op.
        assert (status, trigger, target) == (X, CANCEL, X)


def test_the_refusal_for_a_terminal_task_says_finished_tasks_never_change():
    with pytest.raises(IllegalTransitionError, match="finished tasks never change"):
        next_status("t", F, REQUEUE)


# -- through the service ----------------------------------------------------------------------


async def completed_task(service):
    task = await service.create_task("done", "finish me")
    await service.run()
    finished = await service.get_task(task.id)
    assert finished.metadata.status is C
    return finished


async def cancelled_task(service):
    task = await service.create_task("dropped", "cancel me")
    await service.cancel_task(task.id)
    cancelled = await service.get_task(task.id)
    assert cancelled.metadata.status is X
    return cancelled


async def failed_task(service):
    task = await service.create_task("broken", "fail me")
    await service.set_task_error(task.id, "boom")
    failed = await service.get_task(task.id)
    assert failed.metadata.status is F
    return failed


class Watch:
    """Records every event the service emits and what the store holds for one task."""

    def __init__(self, service, task_id: str) -> None:
        self.service = service
        self.task_id = task_id
        self.events: list = []
        service.on("task", self.events.append)

    async def state(self) -> tuple[dict, dict]:
        task = await self.service.get_task(self.task_id)
        stored = [t for t in await self.service.store.load_tasks() if t.id == self.task_id]
        assert len(stored) == 1
        return task.to_dict(), stored[0].to_dict()


async def assert_refused_without_effect(service, task, attempt) -> IllegalTransitionError:
    watch = Watch(service, task.id)
    before = await watch.state()
    with pytest.raises(IllegalTransitionError) as info:
        await attempt()
    assert await watch.state() == before
    assert watch.events == []
    assert task.id in str(info.value)
    return info.value


async def test_pausing_a_completed_task_is_refused_and_changes_nothing(make_service):
    service = await make_service()
    task = await completed_task(service)
    error = await assert_refused_without_effect(service, task, lambda: service.pause_task(task.id))
    assert (error.status, error.trigger) == ("completed", "pause")


async def test_resuming_a_cancelled_task_is_refused_and_changes_nothing(make_service):
    service = await make_service()
    task = await cancelled_task(service)
    error = await assert_refused_without_effect(service, task, lambda: service.resume_task(task.id))
    assert error.status == "cancelled"


async def test_setting_a_completed_task_back_to_pending_is_refused_and_changes_nothing(
    make_service,
):
    service = await make_service()
    task = await completed_task(service)
    error = await assert_refused_without_effect(
        service, task, lambda: service.update_task_status(task.id, TaskStatus.PENDING)
    )
    assert (error.status, error.trigger) == ("completed", "requeue")


async def test_resuming_a_completed_task_does_not_make_it_running_again(make_service):
    service = await make_service()
    task = await completed_task(service)
    await assert_refused_without_effect(service, task, lambda: service.resume_task(task.id))


async def test_pausing_a_cancelled_task_is_refused_and_changes_nothing(make_service):
    service = await make_service()
    task = await cancelled_task(service)
    await assert_refused_without_effect(service, task, lambda: service.pause_task(task.id))


async def test_setting_a_failed_task_to_running_is_refused_and_changes_nothing(make_service):
    service = await make_service()
    task = await failed_task(service)
    await assert_refused_without_effect(
        service, task, lambda: service.update_task_status(task.id, TaskStatus.RUNNING)
    )


async def test_a_result_for_a_cancelled_task_is_refused_and_changes_nothing(make_service):
    service = await make_service()
    task = await cancelled_task(service)
    await assert_refused_without_effect(
        service,
        task,
        lambda: service.set_task_result(task.id, TaskResult(success=True, summary="late")),
    )


async def test_an_error_for_a_completed_task_is_refused_and_changes_nothing(make_service):
    service = await make_service()
    task = await completed_task(service)
    await assert_refused_without_effect(
        service, task, lambda: service.set_task_error(task.id, "too late")
    )


async def test_cancelling_a_cancelled_task_changes_nothing_and_emits_nothing(make_service):
    service = await make_service()
    task = await cancelled_task(service)
    watch = Watch(service, task.id)
    before = await watch.state()
    await service.cancel_task(task.id)
    assert await watch.state() == before
    assert watch.events == []


async def test_cancelling_a_completed_task_is_refused(make_service):
    service = await make_service()
    task = await completed_task(service)
    await assert_refused_without_effect(service, task, lambda: service.cancel_task(task.id))
