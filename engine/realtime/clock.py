"""The engine's real-time clock: what "now" is, how a clock thread waits, and how late it was.

There is one clock loop — the session host's clock thread (:class:`engine.sessions.host.SessionHost`),
which plays every live session: ``affetto serve``'s many and ``affetto play``/``demo``'s one —
and the output process's device loop beside it (:mod:`engine.outputs.output_process`), which
only sends what the host handed it early. The offline render
(:func:`engine.sessions.render.render`) is the same conductor and event queue with a
virtual "now" that advances block by block. The pieces they share live here: the process setup
for real time (:func:`enter_realtime`), the wait (:func:`wait_until`) and the lateness counter
(:class:`Lateness`).
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Final

#: Python's thread switch interval while live music plays (the default 5 ms would let the
#: composing thread delay the clock thread by that much)
SWITCH_INTERVAL_S: Final = 0.0001
#: a clock thread sleeps until this long before its next event, then yields the GIL in a loop
#: (a timed wait alone wakes up to a few hundred microseconds late)
SPIN_S: Final = 0.0005
#: an event sent more than this after its time counts as late
LATE_S: Final = 0.005
#: SCHED_FIFO priority of a clock thread (JACK's own threads run at 70 and above)
RT_PRIORITY: Final = 20
#: what :func:`realtime_priority` returns when the thread got SCHED_FIFO
REALTIME: Final = 2


def enter_realtime() -> None:
    """Prepare this process for a clock thread: a short thread switch interval, and the start-up
    heap collected and frozen (a full collection holds the GIL for ~10 ms: never again while the
    music plays). Call it after loading the hot loops, before the clock starts."""
    if sys.getswitchinterval() > SWITCH_INTERVAL_S:
        sys.setswitchinterval(SWITCH_INTERVAL_S)
    gc.collect()
    gc.freeze()


def realtime_priority() -> int:
    """Ask the kernel to run the calling thread first, as audio software does its clock (best
    effort, where the user may: root, or a real-time limit such as the ``audio`` group's):
    SCHED_FIFO at a priority below JACK's, else a lower nice value. Returns 2 (real-time), 1
    (niced) or 0.

    The output process's clock sleeps between events (it never spins), so it cannot starve the
    machine. (The session host's clock thread stays at normal priority: it polls before events,
    and the audio callback it shares the GIL with must win it.)"""
    if hasattr(os, "sched_setscheduler"):
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(RT_PRIORITY))
            return REALTIME
    with contextlib.suppress(OSError, AttributeError):
        os.nice(-10)
        return 1
    return 0


def wait_until(deadline: float, wake: threading.Condition, has_work: Callable[[], bool]) -> None:
    """Wait until ``deadline`` (``time.perf_counter()`` seconds) or a notify on ``wake``,
    whichever is first: a timed wait until :data:`SPIN_S` before, then polling that yields the
    GIL (a waiting thread would get it back only a switch interval after it asks, or later).
    ``has_work()`` is read under ``wake``'s lock before a timed wait (work notified before the
    wait began returns at once); the poll takes no lock. Call with ``wake`` not held.
    """
    wait = deadline - time.perf_counter()
    if wait > SPIN_S:
        with wake:
            if not has_work():
                wake.wait(min(wait - SPIN_S, 0.05))
    elif wait > 0:
        time.sleep(0)  # the last fraction of a millisecond: poll, yielding the GIL and the core


class Lateness:
    """How late a clock sent its events (seconds after their time; an event composed after its
    time counts from when it was composed: its delay is the control latency, not the clock's).

    Args:
        late_s: the threshold above which an event counts as late.
        keep: keep up to this many lateness samples (for percentiles; 0: none).
        log: remember the latest ``log`` late events as (due, sent) pairs.
    """

    def __init__(self, late_s: float = LATE_S, *, keep: int = 0, log: int = 0) -> None:
        self.late_s = float(late_s)
        self.events = 0
        self.late = 0
        self.worst_s = 0.0
        self.keep = int(keep)
        self.samples_s: list[float] = []
        self.late_log: deque[tuple[float, float]] = deque(maxlen=max(1, log))
        self._log = log > 0

    def add(self, due_s: float, queued_s: float, sent_s: float) -> float:
        """Count one event due at ``due_s``, composed at ``queued_s``, sent at ``sent_s`` (all on
        one clock); returns its lateness."""
        lateness_s = sent_s - max(due_s, queued_s)
        self.events += 1
        if lateness_s > self.late_s:
            self.late += 1
            if self._log:
                self.late_log.append((due_s, sent_s))
        if lateness_s > self.worst_s:
            self.worst_s = lateness_s
        if len(self.samples_s) < self.keep:
            self.samples_s.append(lateness_s)
        return lateness_s
