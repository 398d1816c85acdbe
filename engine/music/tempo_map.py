"""Beats ↔ seconds under tempo changes: a piecewise-constant tempo map.

The map is a list of segments, each starting at a beat with a tempo that holds until the next
one. The first segment starts at beat 0, second 0. Changes are appended in beat order as the
music is composed; :meth:`TempoMap.truncate` drops the ones after a cut point so the future can
be composed again, and :meth:`TempoMap.forget_before` lets a live session drop the ones long
played, so a map that changes tempo at every bar for days stays the same size.

Readers on other threads (a status, the clock's beat events) see a consistent map (short of the
changes a cut is replacing): the segment arrays and their count are published together, arrays
once compacted away are never written again, and one-value reads share no scratch buffer.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from engine.checks import check_real
from engine.realtime.jit import njit

MIN_TEMPO_BPM: Final = 20.0
MAX_TEMPO_BPM: Final = 400.0
#: (slowest, fastest): the tempo that follows arousal moves inside this range by default
DEFAULT_TEMPO_RANGE_BPM: Final = (72.0, 144.0)


def tempo_for_emotion(
    arousal: float, tension: float = 0.0, tempo_range_bpm: tuple[float, float] = DEFAULT_TEMPO_RANGE_BPM
) -> float:
    """The tempo (BPM, 0.1 resolution) for an emotion: arousal (and a little tension) mapped
    into ``tempo_range_bpm`` — the slowest at arousal -1, the fastest at +1 (the model itself
    is tempo-free; the engine sets the tempo)."""
    lo, hi = tempo_range_bpm
    x = min(1.0, max(0.0, (arousal + 1.0) / 2.0 + 0.1 * tension))
    return round(lo + (hi - lo) * x, 1)


def check_tempo(tempo_bpm: object) -> float:
    """``tempo_bpm`` as a float in [MIN_TEMPO_BPM, MAX_TEMPO_BPM].

    Raises:
        TypeError: not a real number.
        ValueError: not finite or out of range.
    """
    return check_real("tempo_bpm", tempo_bpm, MIN_TEMPO_BPM, MAX_TEMPO_BPM)


@njit(cache=True)
def _segment(starts: np.ndarray, n: int, x: float) -> int:  # pragma: no cover - numba
    lo, hi = 0, n - 1
    while lo < hi:  # last segment whose start <= x
        mid = (lo + hi + 1) // 2
        if starts[mid] <= x:
            lo = mid
        else:
            hi = mid - 1
    return lo


@njit(cache=True)
def _to_seconds(
    start_beat: np.ndarray, start_s: np.ndarray, bpm: np.ndarray, n: int, beat: float
) -> float:  # pragma: no cover - numba
    k = _segment(start_beat, n, beat)
    return start_s[k] + (beat - start_beat[k]) * 60.0 / bpm[k]


@njit(cache=True)
def _to_beat(
    start_beat: np.ndarray, start_s: np.ndarray, bpm: np.ndarray, n: int, time_s: float
) -> float:  # pragma: no cover - numba
    k = _segment(start_s, n, time_s)
    return start_beat[k] + (time_s - start_s[k]) * bpm[k] / 60.0


@njit(cache=True)
def beats_to_seconds(
    start_beat: np.ndarray, start_s: np.ndarray, bpm: np.ndarray, n: int, beats: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - numba
    """out[i] = the time of beats[i] (any order; beats before the first segment extrapolate its tempo)."""
    for i in range(beats.size):
        out[i] = _to_seconds(start_beat, start_s, bpm, n, beats[i])


@njit(cache=True)
def seconds_to_beats(
    start_beat: np.ndarray, start_s: np.ndarray, bpm: np.ndarray, n: int, times: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - numba
    """out[i] = the beat sounding at times[i]."""
    for i in range(times.size):
        out[i] = _to_beat(start_beat, start_s, bpm, n, times[i])


class TempoMap:
    """Piecewise-constant tempo, from beat 0 at time 0.

    Args:
        tempo_bpm: the tempo from beat 0.
        capacity: segments preallocated. When they are full, the segments wholly before the beat
            given to :meth:`forget_before` are dropped (into new arrays of the same size when that
            frees at least half of them, else of twice the size), so appending is amortized O(1).

    Raises:
        TypeError, ValueError: tempo out of [MIN_TEMPO_BPM, MAX_TEMPO_BPM].
    """

    def __init__(self, tempo_bpm: float, capacity: int = 256) -> None:
        capacity = max(2, int(capacity))
        beat = np.zeros(capacity, dtype=np.float64)
        sec = np.zeros(capacity, dtype=np.float64)
        bpm = np.zeros(capacity, dtype=np.float64)
        bpm[0] = check_tempo(tempo_bpm)
        #: (start beats, start seconds, tempos, segment count): replaced as a whole, so a reader
        #: never pairs arrays with a count that is not theirs
        self._table: tuple[np.ndarray, np.ndarray, np.ndarray, int] = (beat, sec, bpm, 1)
        self._forget_before = -math.inf

    def __len__(self) -> int:
        return self._table[3]

    @property
    def capacity(self) -> int:
        """Segments the arrays hold now."""
        return int(self._table[0].size)

    @property
    def segments(self) -> list[tuple[float, float, float]]:
        """(start_beat, start_s, tempo_bpm) of every segment kept, in order (the first starts at
        beat 0 unless :meth:`forget_before` let older ones go)."""
        beat, sec, bpm, n = self._table
        return list(zip(beat[:n].tolist(), sec[:n].tolist(), bpm[:n].tolist(), strict=True))

    def tempo_at(self, beat: float) -> float:
        """The tempo in effect at ``beat``, BPM."""
        starts, _, bpm, n = self._table
        return float(bpm[_segment(starts, n, float(beat))])

    def set_tempo(self, beat: float, tempo_bpm: float) -> None:
        """The tempo from ``beat`` on (>= the last change; replaces a change at the same beat).

        Raises:
            TypeError, ValueError: bad tempo, or ``beat`` before the last change.
        """
        tempo = check_tempo(tempo_bpm)
        at = float(beat)
        starts, sec, bpm, n = self._table
        last = starts[n - 1]
        if not math.isfinite(at) or at < last:
            raise ValueError(f"tempo changes must come in beat order: {at} is before {last}")
        if tempo == bpm[n - 1]:
            return
        if at == last:
            bpm[n - 1] = tempo
            if n > 1 and bpm[n - 2] == tempo:  # the change undid the previous one
                self._table = (starts, sec, bpm, n - 1)
            return
        if n == starts.size:
            starts, sec, bpm, n = self._compact()
        sec[n] = sec[n - 1] + (at - starts[n - 1]) * 60.0 / bpm[n - 1]
        starts[n] = at
        bpm[n] = tempo
        self._table = (starts, sec, bpm, n + 1)  # published after the new segment is written

    def forget_before(self, beat: float) -> None:
        """Let the segments that end at or before ``beat`` go (when the arrays are next full).

        :meth:`seconds`, :meth:`beat` and :meth:`tempo_at` stay exact from ``beat`` on (and for
        times from its time on); before it they may extrapolate the oldest tempo kept. O(1).
        """
        self._forget_before = max(self._forget_before, float(beat))

    def _compact(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """The full arrays without the segments forgotten, in new arrays (readers may still be
        reading the old ones): the same size when that frees half of them at least, else twice."""
        starts, sec, bpm, n = self._table
        drop = _segment(starts, n, self._forget_before) if math.isfinite(self._forget_before) else 0
        kept = n - drop
        size = starts.size if kept <= starts.size // 2 else 2 * starts.size
        table = []
        for old in (starts, sec, bpm):
            new = np.zeros(size, dtype=np.float64)
            new[:kept] = old[drop:n]
            table.append(new)
        return table[0], table[1], table[2], kept

    def truncate(self, beat: float) -> None:
        """Forget the changes at or after ``beat`` (the first segment kept always stays)."""
        starts, sec, bpm, total = self._table
        n = 1
        while n < total and starts[n] < beat:
            n += 1
        self._table = (starts, sec, bpm, n)

    def seconds(self, beat: float) -> float:
        """The time of ``beat``, seconds from beat 0."""
        starts, sec, bpm, n = self._table
        return float(_to_seconds(starts, sec, bpm, n, float(beat)))

    def beat(self, time_s: float) -> float:
        """The beat sounding at ``time_s``."""
        starts, sec, bpm, n = self._table
        return float(_to_beat(starts, sec, bpm, n, float(time_s)))

    def seconds_many(self, beats: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The times of many beats (float64 arrays)."""
        starts, sec, bpm, n = self._table
        beats = np.ascontiguousarray(beats, dtype=np.float64)
        result = np.empty_like(beats) if out is None else out
        beats_to_seconds(starts, sec, bpm, n, beats, result)
        return result
