"""The task lifecycle: one table of legal moves, ``(status, trigger) -> status``.

=========  =======  =======  =======  =======  ========  ======  =========
status     start    pause    resume   requeue  complete  fail    cancel
=========  =======  =======  =======  =======  ========  ======  =========
pending    running  paused   pending  pending  completed failed  cancelled
running    --       paused   running  pending  completed failed  cancelled
paused     --       paused   running  pending  completed failed  cancelled
completed  --       --       --       --       --        --      --
failed     --       --       --       --       --        --      --
cancelled  --       --       --       --       --        --      cancelled
=========  =======  =======  =======  =======  ========  ======  =========

``--`` is refused with ``IllegalTransitionError``. A move to the same status (pausing a paused
task, cancelling a cancelled one) is allowed and changes nothing: no write, no event. Completed,
failed and cancelled are terminal: nothing moves a task out of them.

Which trigger the service uses:

* ``start``: a runner begins an attempt. Only a pending task starts.
* ``pause``: the user holds the task. A running provider keeps its place and waits at its next
  ``ctx.checkpoint()``.
* ``resume``: a paused task whose provider is still running goes on (``paused -> running``).
* ``requeue``: a task goes back to the queue: a paused task with no live runner on resume, or a
  task whose run was interrupted.
* ``complete`` / ``fail``: the provider finished, or a failure ended the task (including an
  upstream task failing; ``pending -> completed`` lets a caller complete a task by hand).
* ``cancel``: the user cancels, or an upstream task was cancelled.
"""

from __future__ import annotations

from enum import Enum

from hookspecs.models import TaskStatus
from orchestrator.errors import IllegalTransitionError


class Trigger(str, Enum):
    """What happened to a task."""

    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    REQUEUE = "requeue"
    COMPLETE = "complete"
    FAIL = "fail"
    CANCEL = "cancel"


_P, _R, _Z = TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.PAUSED
_C, _F, _X = TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED

TRANSITIONS: dict[tuple[TaskStatus, Trigger], TaskStatus] = {
    (_P, Trigger.START): _R,
    (_P, Trigger.PAUSE): _Z,
    (_P, Trigger.RESUME): _P,
    (_P, Trigger.REQUEUE): _P,
    (_P, Trigger.COMPLETE): _C,
    (_P, Trigger.FAIL): _F,
    (_P, Trigger.CANCEL): _X,
    (_R, Trigger.PAUSE): _Z,
    (_R, Trigger.RESUME): _R,
    (_R, Trigger.REQUEUE): _P,
    (_R, Trigger.COMPLETE): _C,
    (_R, Trigger.FAIL): _F,
    (_R, Trigger.CANCEL): _X,
    (_Z, Trigger.PAUSE): _Z,
    (_Z, Trigger.RESUME): _R,
    (_Z, Trigger.REQUEUE): _P,
    (_Z, Trigger.COMPLETE): _C,
    (_Z, Trigger.FAIL): _F,
    (_Z, Trigger.CANCEL): _X,
    (_X, Trigger.CANCEL): _X,
}
"""Every legal move. A pair missing here is illegal."""

_TRIGGER_FOR_TARGET: dict[TaskStatus, Trigger] = {
    _R: Trigger.START,
    _Z: Trigger.PAUSE,
    _P: Trigger.REQUEUE,
    _C: Trigger.COMPLETE,
    _F: Trigger.FAIL,
    _X: Trigger.CANCEL,
}


def next_status(task_id: str, status: TaskStatus, trigger: Trigger) -> TaskStatus:
    """The status ``trigger`` moves a task to, or ``IllegalTransitionError`` naming the task."""
    target = TRANSITIONS.get((status, trigger))
    if target is None:
        reason = "finished tasks never change" if status.is_terminal else ""
        raise IllegalTransitionError(task_id, status.value, trigger.value, reason)
    return target


def trigger_for(status: TaskStatus, target: TaskStatus) -> Trigger:
    """The trigger that moves ``status`` to ``target``, for callers that name the target status.

    ``paused -> running`` is a resume; everything else maps one target to one trigger.
    """
    if status is _Z and target is _R:
        return Trigger.RESUME
    return _TRIGGER_FOR_TARGET[target]
