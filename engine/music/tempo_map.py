"""Beats ↔ seconds under tempo changes: a piecewise-constant tempo map.

The map is a list of segments, each starting at a beat with a tempo that holds until the next
one. The first segment starts at beat 0, second 0. Changes are appended in beat order as the
music is composed; :meth:`TempoMap.truncate` drops the ones after a cut point so the future can
be composed again.
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
def beats_to_seconds(
    start_beat: np.ndarray, start_s: np.ndarray, bpm: np.ndarray, n: int, beats: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - numba
    """out[i] = the time of beats[i] (any order; beats before 0 extrapolate the first tempo)."""
    for i in range(beats.size):
        k = _segment(start_beat, n, beats[i])
        out[i] = start_s[k] + (beats[i] - start_beat[k]) * 60.0 / bpm[k]


@njit(cache=True)
def seconds_to_beats(
    start_beat: np.ndarray, start_s: np.ndarray, bpm: np.ndarray, n: int, times: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - numba
    """out[i] = the beat sounding at times[i]."""
    for i in range(times.size):
        k = _segment(start_s, n, times[i])
        out[i] = start_beat[k] + (times[i] - start_s[k]) * bpm[k] / 60.0


class TempoMap:
    """Piecewise-constant tempo, from beat 0 at time 0.

    Args:
        tempo_bpm: the tempo from beat 0.
        capacity: segments preallocated (grows by doubling when exceeded).

    Raises:
        TypeError, ValueError: tempo out of [MIN_TEMPO_BPM, MAX_TEMPO_BPM].
    """

    def __init__(self, tempo_bpm: float, capacity: int = 256) -> None:
        capacity = max(1, int(capacity))
        self._beat = np.zeros(capacity, dtype=np.float64)
        self._sec = np.zeros(capacity, dtype=np.float64)
        self._bpm = np.zeros(capacity, dtype=np.float64)
        self._bpm[0] = check_tempo(tempo_bpm)
        self._n = 1
        self._one_in = np.zeros(1, dtype=np.float64)
        self._one_out = np.zeros(1, dtype=np.float64)

    def __len__(self) -> int:
        return self._n

    @property
    def segments(self) -> list[tuple[float, float, float]]:
        """(start_beat, start_s, tempo_bpm) of every segment, in order."""
        n = self._n
        return list(zip(self._beat[:n].tolist(), self._sec[:n].tolist(), self._bpm[:n].tolist(), strict=True))

    def tempo_at(self, beat: float) -> float:
        """The tempo in effect at ``beat``, BPM."""
        return float(self._bpm[_segment(self._beat, self._n, float(beat))])

    def set_tempo(self, beat: float, tempo_bpm: float) -> None:
        """The tempo from ``beat`` on (>= the last change; replaces a change at the same beat).

        Raises:
            TypeError, ValueError: bad tempo, or ``beat`` before the last change.
        """
        bpm = check_tempo(tempo_bpm)
        beat = float(beat)
        n = self._n
        last = self._beat[n - 1]
        if not math.isfinite(beat) or beat < last:
            raise ValueError(f"tempo changes must come in beat order: {beat} is before {last}")
        if bpm == self._bpm[n - 1]:
            return
        if beat == last:
            self._bpm[n - 1] = bpm
            if n > 1 and self._bpm[n - 2] == bpm:  # the change undid the previous one
                self._n -= 1
            return
        if n == self._beat.size:
            for name in ("_beat", "_sec", "_bpm"):
                old = getattr(self, name)
                grown = np.zeros(old.size * 2, dtype=np.float64)
                grown[:n] = old
                setattr(self, name, grown)
        self._sec[n] = self._sec[n - 1] + (beat - last) * 60.0 / self._bpm[n - 1]
        self._beat[n] = beat
        self._bpm[n] = bpm
        self._n = n + 1

    def truncate(self, beat: float) -> None:
        """Forget the changes at or after ``beat`` (the tempo from beat 0 always stays)."""
        n = 1
        while n < self._n and self._beat[n] < beat:
            n += 1
        self._n = n

    def seconds(self, beat: float) -> float:
        """The time of ``beat``, seconds from beat 0."""
        self._one_in[0] = beat
        beats_to_seconds(self._beat, self._sec, self._bpm, self._n, self._one_in, self._one_out)
        return float(self._one_out[0])

    def beat(self, time_s: float) -> float:
        """The beat sounding at ``time_s``."""
        self._one_in[0] = time_s
        seconds_to_beats(self._beat, self._sec, self._bpm, self._n, self._one_in, self._one_out)
        return float(self._one_out[0])

    def seconds_many(self, beats: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The times of many beats (float64 arrays)."""
        beats = np.ascontiguousarray(beats, dtype=np.float64)
        result = np.empty_like(beats) if out is None else out
        beats_to_seconds(self._beat, self._sec, self._bpm, self._n, beats, result)
        return result
