"""The timed event queue between the conductor and the outputs (numba in the hot loops).

The conductor inserts events a little ahead of time (at most its lookahead); the clock pops the
ones that are due and hands them to the outputs. The queue keeps the note bookkeeping that makes
"every note-on gets its note-off" true whatever happens:

* each note has an id; its NOTE_OFF is only sent if that note still owns its (channel, pitch):
  a new NOTE_ON on a sounding (channel, pitch) first sends the old note's NOTE_OFF (retrigger),
  and the old note's own NOTE_OFF is then dropped, so no note is ever cut by a stale off;
* :meth:`EventQueue.cut` removes composed events from a beat on (the future is composed again)
  and can move the NOTE_OFFs of sounding notes to the cut time;
* :meth:`EventQueue.all_notes_off` sends a NOTE_OFF for every sounding note (stop, disconnect,
  error, exit).

Events with equal times go out NOTE_OFF first, then controls, then NOTE_ON, in insertion order
otherwise. Arrays are preallocated; capacity doubles (outside the clock's pop) when needed.

The kernels keep the GIL (no ``nogil``): each runs for microseconds, and giving the GIL up and
taking it back on every call makes the composing and clock threads hand it back and forth far
more often, which delays the clock thread (measured: ``affetto bench server``).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np

from engine.realtime.jit import njit
from engine.realtime.kinds import KIND_NAMES, NOTE_OFF, NOTE_ON

_CHANNELS: Final = 16


@dataclass
class DueEvents:
    """Events popped by :meth:`EventQueue.pop_due`, in send order (copies)."""

    time_s: np.ndarray
    kind: np.ndarray
    channel: np.ndarray
    a: np.ndarray
    b: np.ndarray
    queued_s: np.ndarray  # when each event was queued (the queue's clock; 0 without one)

    def __len__(self) -> int:
        return int(self.time_s.size)

    def rows(self) -> list[tuple[float, int, int, int, int]]:
        """The events as (time_s, kind, channel, a, b) tuples (a copy)."""
        t, k, ch = self.time_s.tolist(), self.kind.tolist(), self.channel.tolist()
        return list(zip(t, k, ch, self.a.tolist(), self.b.tolist(), strict=True))


@njit(cache=True)
def _insert(
    time_s: np.ndarray,
    kind: np.ndarray,
    seq: np.ndarray,
    cols_f: np.ndarray,
    cols_i: np.ndarray,
    n: int,
    t: float,
    k: int,
    s: int,
    origin_beat: float,
    channel: int,
    a: int,
    b: int,
    note_id: int,
    cuttable: int,
    queued_s: float,
) -> None:  # pragma: no cover - numba
    lo, hi = 0, n
    while lo < hi:  # first index ordered after (t, k, s)
        mid = (lo + hi) // 2
        tm, km = time_s[mid], kind[mid]
        if tm < t or (tm == t and (km < k or (km == k and seq[mid] < s))):
            lo = mid + 1
        else:
            hi = mid
    for j in range(n, lo, -1):
        time_s[j] = time_s[j - 1]
        kind[j] = kind[j - 1]
        seq[j] = seq[j - 1]
        cols_f[j, 0] = cols_f[j - 1, 0]
        cols_f[j, 1] = cols_f[j - 1, 1]
        for c in range(cols_i.shape[1]):
            cols_i[j, c] = cols_i[j - 1, c]
    time_s[lo] = t
    kind[lo] = k
    seq[lo] = s
    cols_f[lo, 0] = origin_beat
    cols_f[lo, 1] = queued_s
    cols_i[lo, 0] = channel
    cols_i[lo, 1] = a
    cols_i[lo, 2] = b
    cols_i[lo, 3] = note_id
    cols_i[lo, 4] = cuttable


@njit(cache=True)
def _pop_due(
    time_s: np.ndarray,
    kind: np.ndarray,
    seq: np.ndarray,
    cols_f: np.ndarray,
    cols_i: np.ndarray,
    n: int,
    until_s: float,
    owner: np.ndarray,
    out_t: np.ndarray,
    out_k: np.ndarray,
    out_ch: np.ndarray,
    out_a: np.ndarray,
    out_b: np.ndarray,
    out_q: np.ndarray,
) -> tuple[int, int]:  # pragma: no cover - numba
    """Pop events with time <= until_s (at most out capacity); returns (popped, written)."""
    cap = out_t.size
    w = 0
    i = 0
    while i < n and time_s[i] <= until_s and w + 2 <= cap:
        k = kind[i]
        ch, a, b, nid = cols_i[i, 0], cols_i[i, 1], cols_i[i, 2], cols_i[i, 3]
        if k == NOTE_ON:
            if owner[ch, a] >= 0:  # retrigger: end the sounding note first
                out_t[w], out_k[w], out_ch[w], out_a[w], out_b[w] = time_s[i], NOTE_OFF, ch, a, 0
                out_q[w] = cols_f[i, 1]
                w += 1
            owner[ch, a] = nid
            out_t[w], out_k[w], out_ch[w], out_a[w], out_b[w] = time_s[i], k, ch, a, b
            out_q[w] = cols_f[i, 1]
            w += 1
        elif k == NOTE_OFF:
            if owner[ch, a] == nid:
                owner[ch, a] = -1
                out_t[w], out_k[w], out_ch[w], out_a[w], out_b[w] = time_s[i], k, ch, a, 0
                out_q[w] = cols_f[i, 1]
                w += 1
        else:
            out_t[w], out_k[w], out_ch[w], out_a[w], out_b[w] = time_s[i], k, ch, a, b
            out_q[w] = cols_f[i, 1]
            w += 1
        i += 1
    if i:
        for j in range(i, n):
            time_s[j - i] = time_s[j]
            kind[j - i] = kind[j]
            seq[j - i] = seq[j]
            cols_f[j - i, 0] = cols_f[j, 0]
            cols_f[j - i, 1] = cols_f[j, 1]
            for c in range(cols_i.shape[1]):
                cols_i[j - i, c] = cols_i[j, c]
    return i, w


@njit(cache=True)
def _cut(
    time_s: np.ndarray,
    kind: np.ndarray,
    seq: np.ndarray,
    cols_f: np.ndarray,
    cols_i: np.ndarray,
    n: int,
    from_beat: float,
    owner: np.ndarray,
    release_s: float,
    moved: np.ndarray,
) -> tuple[int, int]:  # pragma: no cover - numba
    """Drop cuttable events whose note starts at/after from_beat; returns (kept, offs to move).

    The NOTE_OFF of a note already sounding is never dropped (whatever its note's beat).
    With release_s >= 0 the NOTE_OFFs of notes already sounding that fall after release_s are
    taken out too and their indices' data written to ``moved`` rows (channel, pitch, id) so the
    caller re-inserts them at release_s.
    """
    w = 0
    m = 0
    for i in range(n):
        k = kind[i]
        drop = cols_i[i, 4] == 1 and cols_f[i, 0] >= from_beat
        if k == NOTE_OFF:
            ch, a, nid = cols_i[i, 0], cols_i[i, 1], cols_i[i, 3]
            if owner[ch, a] == nid:  # its note sounds: its end is never dropped (a note pulled
                drop = False  # to sound before its beat, as an immediate change's first notes are)
                if release_s >= 0.0 and time_s[i] > release_s and m < moved.shape[0]:
                    moved[m, 0], moved[m, 1], moved[m, 2] = ch, a, nid
                    m += 1
                    drop = True
        if drop:
            continue
        time_s[w] = time_s[i]
        kind[w] = k
        seq[w] = seq[i]
        cols_f[w, 0] = cols_f[i, 0]
        cols_f[w, 1] = cols_f[i, 1]
        for c in range(cols_i.shape[1]):
            cols_i[w, c] = cols_i[i, c]
        w += 1
    return w, m


class EventQueue:
    """Timed MIDI-like events with note bookkeeping (see the module docstring).

    Thread-safe: every method holds the queue's own lock for its few microseconds, so the
    composing thread and the clock thread never wait on each other's longer work.

    Args:
        capacity: events preallocated (grows by doubling on insert).
        max_pop: most events written by one :meth:`pop_due` (the rest stay due; at least 4096).
        clock: if given, each event records ``clock()`` when queued (``DueEvents.queued_s``),
            so the clock can tell lateness from events queued after their time.
    """

    def __init__(
        self, capacity: int = 4096, max_pop: int = 1024, clock: Callable[[], float] | None = None
    ) -> None:
        self.clock = clock
        self._lock = threading.RLock()
        self.sent_until_s = -math.inf  # the clock has popped every event due up to this time
        cap = max(16, int(capacity))
        self._alloc(cap)
        self._n = 0
        self._seq = 0
        self._next_id = 0
        self.owner = np.full((_CHANNELS, 128), -1, dtype=np.int64)  # sounding note id per key
        m = max(2 * _CHANNELS * 128, int(max_pop))
        self._out_t = np.zeros(m, dtype=np.float64)
        self._out_k = np.zeros(m, dtype=np.int64)
        self._out_ch = np.zeros(m, dtype=np.int64)
        self._out_a = np.zeros(m, dtype=np.int64)
        self._out_b = np.zeros(m, dtype=np.int64)
        self._out_q = np.zeros(m, dtype=np.float64)
        self._moved = np.zeros((_CHANNELS * 128, 3), dtype=np.int64)

    def warm_up(self) -> None:
        """Load the compiled hot loops now (numba loads them from its cache on first call, which
        takes milliseconds: a live clock must not pay that on its first event)."""
        with self._lock:
            if self._n == 0:
                self._push(0.0, NOTE_OFF, 0, 0, 0, 0.0, 0, True)
                self._cut(0.0, -1.0)
                self._pop_due_locked(-1.0)

    def _alloc(self, cap: int) -> None:
        self._time = np.zeros(cap, dtype=np.float64)
        self._kind = np.zeros(cap, dtype=np.int64)
        self._seqs = np.zeros(cap, dtype=np.int64)
        self._origin = np.zeros((cap, 2), dtype=np.float64)  # origin beat, queued at (s)
        self._ints = np.zeros((cap, 5), dtype=np.int64)

    def __len__(self) -> int:
        return self._n

    @property
    def sounding(self) -> int:
        """Notes whose NOTE_ON went out and whose NOTE_OFF has not."""
        with self._lock:
            return int((self.owner >= 0).sum())

    def sounding_notes(self) -> list[tuple[int, int]]:
        """(channel, pitch) of every note whose NOTE_ON went out and whose NOTE_OFF has not."""
        with self._lock:
            chans, pitches = np.nonzero(self.owner >= 0)
            return list(zip(chans.tolist(), pitches.tolist(), strict=True))

    @property
    def next_time_s(self) -> float:
        """Time of the earliest queued event; inf when empty."""
        with self._lock:
            return float(self._time[0]) if self._n else float("inf")

    def new_note_id(self) -> int:
        with self._lock:
            self._next_id += 1
            return self._next_id

    def push(
        self,
        time_s: float,
        kind: int,
        channel: int = 0,
        a: int = 0,
        b: int = 0,
        *,
        origin_beat: float = 0.0,
        note_id: int = 0,
        cuttable: bool = True,
    ) -> None:
        """Queue one event (see the kind constants for what ``a`` and ``b`` mean).

        Args:
            time_s: when it is due, seconds on the engine clock.
            kind: one of NOTE_OFF, CLOCK, CONTROL, PROGRAM, BEAT, NOTE_ON.
            channel: MIDI channel 0..15.
            origin_beat: the beat the event belongs to (a note's onset); :meth:`cut` uses it.
            note_id: pairs a note's NOTE_ON and NOTE_OFF (from :meth:`new_note_id`).
            cuttable: False for one-shots (stingers) that a cut must keep.
        """
        with self._lock:
            self._push(float(time_s), int(kind), channel, a, b, origin_beat, note_id, cuttable)

    def _push(
        self,
        time_s: float,
        kind: int,
        channel: int,
        a: int,
        b: int,
        origin_beat: float,
        note_id: int,
        cuttable: bool,
    ) -> None:
        if self._n == self._time.size:
            n = self._n
            old = (self._time, self._kind, self._seqs, self._origin, self._ints)
            self._alloc(2 * n)
            self._time[:n], self._kind[:n], self._seqs[:n], self._origin[:n], self._ints[:n] = old
        self._seq += 1
        _insert(
            self._time, self._kind, self._seqs, self._origin, self._ints, self._n,
            float(time_s), int(kind), self._seq, float(origin_beat), int(channel), int(a), int(b),
            int(note_id), 1 if cuttable else 0, self.clock() if self.clock is not None else 0.0,
        )  # fmt: skip
        self._n += 1

    def push_note(
        self,
        on_s: float,
        off_s: float,
        channel: int,
        pitch: int,
        velocity: int,
        *,
        origin_beat: float,
        cuttable: bool = True,
    ) -> int:
        """Queue a NOTE_ON at ``on_s`` and its NOTE_OFF at ``off_s`` (> on_s); returns the note id."""
        with self._lock:  # both halves at once: the clock never sees an on without its off
            self._next_id += 1
            nid = self._next_id
            self._push(float(on_s), NOTE_ON, channel, pitch, velocity, origin_beat, nid, cuttable)
            self._push(
                max(float(off_s), on_s + 1e-4), NOTE_OFF, channel, pitch, 0, origin_beat, nid, cuttable
            )
            return nid

    def pop_due(self, until_s: float) -> DueEvents:
        """Remove and return the events due at or before ``until_s``, with the bookkeeping applied."""
        with self._lock:
            return self._pop_due_locked(until_s)

    @property
    def lock(self) -> threading.RLock:
        """The queue's re-entrant lock: hold it to read :attr:`sent_until_s` and act on it (cut)
        before the clock can pop anything more."""
        return self._lock

    def _pop_due_locked(self, until_s: float) -> DueEvents:
        self.sent_until_s = max(self.sent_until_s, until_s)
        popped, written = _pop_due(
            self._time, self._kind, self._seqs, self._origin, self._ints, self._n, float(until_s), self.owner,
            self._out_t, self._out_k, self._out_ch, self._out_a, self._out_b, self._out_q,
        )  # fmt: skip
        self._n -= popped
        return self._due(written)

    def _due(self, m: int) -> DueEvents:
        return DueEvents(
            self._out_t[:m].copy(), self._out_k[:m].copy(), self._out_ch[:m].copy(), self._out_a[:m].copy(),
            self._out_b[:m].copy(), self._out_q[:m].copy(),
        )  # fmt: skip

    def cut(self, from_beat: float, release_s: float | None = None) -> None:
        """Drop the cuttable events of notes (and controls) starting at or after ``from_beat``.

        Args:
            from_beat: the first beat composed again.
            release_s: if given, sounding notes due to end after this time end at it instead.
        """
        with self._lock:
            self._cut(float(from_beat), -1.0 if release_s is None else float(release_s))

    def _cut(self, from_beat: float, rel: float) -> None:
        kept, moved = _cut(
            self._time, self._kind, self._seqs, self._origin, self._ints, self._n, from_beat,
            self.owner, rel, self._moved,
        )  # fmt: skip
        self._n = kept
        for ch, pitch, nid in self._moved[:moved].tolist():
            self._push(rel, NOTE_OFF, ch, pitch, 0, -1.0, nid, False)

    def all_notes_off(self, time_s: float) -> DueEvents:
        """NOTE_OFF for every sounding note (at ``time_s``), and drop every queued event."""
        with self._lock:
            return self._all_notes_off(time_s)

    def release_sounding(self, time_s: float) -> DueEvents:
        """NOTE_OFF for every sounding note (at ``time_s``); the queued events stay (a pause: the
        queued offs of those notes then send nothing)."""
        with self._lock:
            return self._all_notes_off(time_s, keep=True)

    def _all_notes_off(self, time_s: float, keep: bool = False) -> DueEvents:
        chans, pitches = np.nonzero(self.owner >= 0)
        m = min(chans.size, self._out_t.size)
        self._out_t[:m] = time_s
        self._out_k[:m] = NOTE_OFF
        self._out_ch[:m] = chans[:m]
        self._out_a[:m] = pitches[:m]
        self._out_b[:m] = 0
        self._out_q[:m] = time_s
        self.owner[...] = -1
        if not keep:
            self._n = 0
        return self._due(m)

    def pending(self) -> list[tuple[float, str, int, int, int]]:
        """The queued events as (time_s, kind name, channel, a, b), for inspection and tests."""
        n = self._n
        return [
            (float(self._time[i]), KIND_NAMES[int(self._kind[i])], *map(int, self._ints[i, :3]))  # type: ignore[misc]
            for i in range(n)
        ]
