"""How dagorch keeps Python's cyclic garbage collector from rescanning its tasks.

A big graph is many long-lived objects (a task is about a dozen containers). The collector cannot
free any of them, yet it rescans them all: while they are built (a collection every ~700
allocations), and again during the run while the young-generation collections carry them to the
oldest generation, which took 48–63 ms of a 10,000-task run's 460–510 ms here (6–7 ms frozen).
Two remedies, both process-wide and both undone at once:

- ``collections_paused()`` holds collection off while a batch of tasks is built;
- ``FreezeDuringRuns.during_run()`` moves what exists when a ``run()`` starts into the collector's
  permanent generation (``gc.freeze``) and back (``gc.unfreeze``) when the last run ends.

Reference counting still frees frozen objects as usual; only reference cycles that were made
before a run and dropped during it wait for the run's end to be collected.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

__all__ = ["RUNS", "FreezeDuringRuns", "collections_paused"]


@contextlib.contextmanager
def collections_paused() -> Iterator[None]:
    """Hold the cyclic garbage collector off while many tasks are built.

    Building thousands of tasks makes only long-lived objects, which no collection can free,
    yet each ~700 allocations trigger one, and the full ones rescan everything made so far:
    that alone doubled the cost of creating 10,000 tasks. Collection resumes (if it was on)
    as soon as the block ends, so nothing else loses anything but a short delay; what the block
    made goes straight to the oldest generation (``promote_young_objects``), since the young
    collection its allocations would set off at once could free none of it either (15 ms for
    10,000 tasks).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            RUNS.promote_young_objects()
            gc.enable()


class FreezeDuringRuns:
    """Counts the runs under way in the process; the first freezes, the last unfreezes.

    It stays out of the way of a host that manages the collector itself: with collection off it
    does nothing, and once it has seen objects frozen by somebody else (a pre-fork server's
    ``gc.freeze()``) it never freezes again in this process. (It cannot tell its own frozen
    objects from a host's without walking them all, ``gc.get_freeze_count()`` being a count of a
    linked list: a host that starts freezing while a run is under way has its objects unfrozen
    when the run ends.) Runs may overlap from several threads, each with its own event loop: the
    count is kept under a lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs = 0
        self._froze = False
        self._host_freezes = False

    @property
    def frozen(self) -> bool:
        """True while this holder has frozen the collector's objects."""
        return self._froze

    def promote_young_objects(self) -> None:
        """Move every object the collector tracks to its oldest generation without scanning
        any, and reset the count of allocations that sets off the next young collection.

        ``gc.freeze()`` then ``gc.unfreeze()`` does that (both are list splices). Nothing is
        done during a run that froze (unfreezing would undo its freeze, and freezing alone would
        keep any garbage cycle among the young objects until the run ends), nor when somebody
        else has frozen objects (unfreezing would undo their freeze). Reference cycles among the
        promoted objects are freed by the next full collection instead of the next young one.
        """
        with self._lock:
            if self._host_freezes or self._froze:
                return
            # Cheap while nothing is frozen: the count walks the frozen objects.
            if gc.get_freeze_count() > 0:
                self._host_freezes = True
                return
            gc.freeze()
            gc.unfreeze()

    @contextlib.contextmanager
    def during_run(self) -> Iterator[None]:
        """Freeze the objects that exist now for as long as this (and every overlapping) run
        lasts."""
        with self._lock:
            if self._runs == 0 and not self._host_freezes and gc.isenabled():
                # Cheap while nothing is frozen: the count walks the frozen objects.
                self._host_freezes = gc.get_freeze_count() > 0
                self._froze = not self._host_freezes
                if self._froze:
                    gc.freeze()
            self._runs += 1
        try:
            yield
        finally:
            with self._lock:
                self._runs -= 1
                if self._runs == 0 and self._froze:
                    self._froze = False
                    gc.unfreeze()


RUNS = FreezeDuringRuns()
"""The process's one holder: the collector's state is the process's, so overlapping runs of
different services must share the count."""
