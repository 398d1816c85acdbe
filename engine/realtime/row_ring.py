"""A single-producer / single-consumer ring of timed event rows in shared memory.

It carries events from the server process's clock thread to the output process
(:mod:`engine.outputs.output_process`), which never waits for the server's GIL. Each row is
``(time_s, target, kind, channel, a, b)`` as float64 (``time_s``: absolute ``time.perf_counter()``
seconds, the same clock in both processes on Linux, macOS and Windows; ``target``: which sink of
the output process; the rest as in :mod:`engine.realtime.event_queue`), and when it was composed
(``queued_s``, absolute too; -inf if unknown).

Layout of the block: a header of ``HEADER_SLOTS`` int64 (``read``, ``write``, ``dropped``, then
counters the consumer publishes, ``STAT_*``, and flags the producer raises, ``ASK_*``), then
``capacity`` rows of ``ROW_WIDTH`` float64. The producer writes a row, then publishes it by
advancing ``write`` behind a release fence; the consumer reads rows up to the ``write`` it saw
(acquire fence), then hands the slots back by advancing ``read`` (release fence), as the synth's
event ring does. A full ring refuses the row and counts it in ``dropped``: the producer never
waits.
"""

from __future__ import annotations

import math
from multiprocessing import shared_memory
from typing import Final

import numpy as np

from engine.realtime.atomics import acquire_fence, release_fence
from engine.realtime.jit import njit

ROW_WIDTH: Final = 8  # time_s, target, kind, channel, a, b, queued_s, (spare)
HEADER_SLOTS: Final = 16
READ, WRITE, DROPPED = 0, 1, 2
#: counters the consumer publishes: rows handled, rows late, the worst lateness (ns),
#: rows a device refused, the consumer's scheduling priority (0 normal, 1 niced, 2 real-time), the
#: synth's sounding voices, the audio stream's xruns, the consumer's CPU time (ns), rows composed
#: after their time
STAT_HANDLED, STAT_LATE, STAT_WORST_NS, STAT_ERRORS, STAT_REALTIME = 3, 4, 5, 8, 9  # 6: unused
STAT_VOICES, STAT_XRUNS, STAT_CPU_NS, STAT_COMPOSED_LATE = 10, 11, 12, 14
#: flags the producer raises for the consumer: drain and stop; zero the worst lateness
ASK_STOP, ASK_RESET = 7, 13
MIN_CAPACITY: Final = 16
MAX_CAPACITY: Final = 1 << 22


@njit(cache=True)
def _push(
    rows: np.ndarray, idx: np.ndarray, t: float, target: int, kind: int, ch: int, a: int, b: int, q: float
) -> bool:  # pragma: no cover - numba
    cap = rows.shape[0]
    w = idx[WRITE]
    rd = idx[READ]
    acquire_fence()
    if w - rd >= cap:
        idx[DROPPED] += 1
        return False
    r = rows[w % cap]
    r[0] = t
    r[1] = target
    r[2] = kind
    r[3] = ch
    r[4] = a
    r[5] = b
    r[6] = q
    release_fence()
    idx[WRITE] = w + 1
    return True


@njit(cache=True)
def _pop(rows: np.ndarray, idx: np.ndarray, out: np.ndarray) -> int:  # pragma: no cover - numba
    cap = rows.shape[0]
    r = idx[READ]
    w = idx[WRITE]
    acquire_fence()
    n = min(w - r, out.shape[0])
    for i in range(n):
        out[i, :] = rows[(r + i) % cap]
    release_fence()
    idx[READ] = r + n
    return n


def _warm_up() -> None:
    """Load the kernels' compiled code now (numba holds the GIL for milliseconds doing that), not
    on the first event."""
    rows, idx = np.zeros((2, ROW_WIDTH)), np.zeros(HEADER_SLOTS, dtype=np.int64)
    _push(rows, idx, 0.0, 0, 0, 0, 0, 0, 0.0)
    _pop(rows, idx, np.zeros((1, ROW_WIDTH)))


class RowRing:
    """The ring (see the module docstring). Create it in the producer's process, attach to it by
    :attr:`name` in the consumer's; the creator unlinks the block on :meth:`close`.

    Args:
        capacity: rows it holds, ``MIN_CAPACITY``..``MAX_CAPACITY``.
        name: attach to this existing ring instead of creating one.

    Raises:
        ValueError: capacity out of range.
        FileNotFoundError: no ring called ``name``.
    """

    def __init__(self, capacity: int = 65_536, *, name: str | None = None) -> None:
        if name is None:
            if not MIN_CAPACITY <= capacity <= MAX_CAPACITY:
                raise ValueError(f"capacity must be in {MIN_CAPACITY}..{MAX_CAPACITY}, got {capacity}")
            size = 8 * (HEADER_SLOTS + capacity * ROW_WIDTH)
            self._shm = shared_memory.SharedMemory(create=True, size=size)
            self._owner = True
        else:
            self._shm = shared_memory.SharedMemory(name=name)
            # (a process started by multiprocessing shares its parent's resource tracker, which
            # frees the block only if the creator never does)
            self._owner = False
            capacity = (self._shm.size // 8 - HEADER_SLOTS) // ROW_WIDTH
        buf = self._shm.buf
        self.header = np.ndarray((HEADER_SLOTS,), dtype=np.int64, buffer=buf)
        self.rows = np.ndarray((capacity, ROW_WIDTH), dtype=np.float64, buffer=buf, offset=8 * HEADER_SLOTS)
        if self._owner:
            self.header[:] = 0
        _warm_up()

    @property
    def name(self) -> str:
        return self._shm.name

    @property
    def capacity(self) -> int:
        return int(self.rows.shape[0])

    @property
    def dropped(self) -> int:
        """Rows refused because the ring was full."""
        return int(self.header[DROPPED])

    def __len__(self) -> int:
        return int(self.header[WRITE] - self.header[READ])

    def push(
        self, time_s: float, target: int, kind: int, channel: int, a: int, b: int, queued_s: float = -math.inf
    ) -> bool:
        """Queue one row (producer only); False if the ring is full (the row is dropped)."""
        return bool(_push(self.rows, self.header, time_s, target, kind, channel, a, b, queued_s))

    def pop_into(self, out: np.ndarray) -> int:
        """Move up to ``len(out)`` rows, oldest first, into ``out`` (``(n, ROW_WIDTH)`` float64;
        consumer only); returns how many."""
        return int(_pop(self.rows, self.header, out))

    def close(self) -> None:
        """Detach (and, in the creating process, free the block)."""
        self.header = np.zeros(HEADER_SLOTS, dtype=np.int64)  # drop the views before closing
        self.rows = np.zeros((0, ROW_WIDTH))
        self._shm.close()
        if self._owner:
            self._shm.unlink()
