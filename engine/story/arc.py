"""From per-line estimates to an emotional arc: scenes that change when the story does.

A scene is one quadrant of the valence–arousal plane (valence positive or not, arousal positive or
not). The arc is a hidden Markov model over the four quadrants, in time rather than in lines:

* the chance that the scene goes on for ``dt`` seconds between two lines is ``exp(-dt / scene_s)``
  (``scene_s`` is the mean scene length: the Call of the Wild labels change about every 4 minutes);
* each line's evidence is its scene head's probabilities of a positive valence and a positive
  arousal, tempered by ``evidence_weight`` (neighbouring lines share most of their context, so
  their evidence is far from independent: counting each line fully would make every run of a
  few odd lines a scene).

Offline (:func:`build_arc`) the arc is the most likely path (Viterbi), then scenes shorter than
``min_scene_s`` are merged into the neighbour they fit best. Live (:class:`LiveArc`) it is the
forward filter: the scene changes when another quadrant's posterior passes ``switch_probability``
and the current scene has lasted ``min_scene_s`` — never on a single line.

A scene's valence and arousal (what the music is asked for) keep the quadrant's signs, with a size
from how sure the lines were: ``0.35 + 0.65 * |2 p - 1|`` for the scene's mean probability ``p``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from engine.music.config import Emotion

#: quadrant index → (valence positive, arousal positive); the order of the HMM's states
QUADRANTS: tuple[tuple[bool, bool], ...] = ((True, True), (False, True), (False, False), (True, False))
_QUADRANT_NAMES = ("+V+A", "-V+A", "-V-A", "+V-A")


@dataclass(frozen=True)
class ArcConfig:
    """How readily the arc changes.

    Attributes:
        scene_s: mean scene length, seconds (> 0).
        evidence_weight: how much one line's evidence counts, in (0, 1].
        min_scene_s: no scene is shorter than this, seconds (>= 0).
        switch_probability: live, the posterior another quadrant needs to take over, in (0.5, 1).

    The defaults were chosen on the Call of the Wild episodes, leave-one-episode-out, among five
    settings of ``evidence_weight`` (0.35, 0.2, 0.1) and ``min_scene_s`` (30, 60, 90): this one
    changes scenes about as often as the hand labels do (5-6 changes an episode against 6-14).
    """

    scene_s: float = 240.0
    evidence_weight: float = 0.2
    min_scene_s: float = 60.0
    switch_probability: float = 0.9

    @classmethod
    def for_length(cls, length_s: float) -> ArcConfig:
        """The defaults, scaled down for a short text: scenes of about an eighth of it (30..240 s),
        none shorter than a sixteenth (12..60 s). A 30-minute transcript gets the defaults; a
        3-minute story can have a handful of scenes."""
        length = length_s if math.isfinite(length_s) and length_s > 0 else 0.0
        return cls(scene_s=min(240.0, max(30.0, length / 8)), min_scene_s=min(60.0, max(12.0, length / 16)))

    def __post_init__(self) -> None:
        if not (math.isfinite(self.scene_s) and self.scene_s > 0):
            raise ValueError(f"scene_s must be > 0 seconds, not {self.scene_s!r}")
        if not (0 < self.evidence_weight <= 1):
            raise ValueError(f"evidence_weight must be in (0, 1], not {self.evidence_weight!r}")
        if not (math.isfinite(self.min_scene_s) and self.min_scene_s >= 0):
            raise ValueError(f"min_scene_s must be >= 0 seconds, not {self.min_scene_s!r}")
        if not (0.5 < self.switch_probability < 1):
            raise ValueError(f"switch_probability must be in (0.5, 1), not {self.switch_probability!r}")


@dataclass(frozen=True)
class Scene:
    """One stretch of the arc: lines ``first_line..last_line`` (indices), one quadrant."""

    start_s: float
    end_s: float
    first_line: int
    last_line: int
    valence_positive: bool
    arousal_positive: bool
    valence: float  # in [-1, 1], the quadrant's sign
    arousal: float

    @property
    def quadrant(self) -> str:
        return _QUADRANT_NAMES[QUADRANTS.index((self.valence_positive, self.arousal_positive))]


@dataclass(frozen=True)
class Arc:
    scenes: list[Scene]
    line_scenes: list[Scene] = field(repr=False)  # the scene of each line, in line order


def _log_evidence(p_valence: np.ndarray, p_arousal: np.ndarray, weight: float) -> np.ndarray:
    """(N, 4) tempered log-likelihood of each quadrant for each line."""
    pv = np.clip(np.asarray(p_valence, np.float64), 1e-4, 1 - 1e-4)
    pa = np.clip(np.asarray(p_arousal, np.float64), 1e-4, 1 - 1e-4)
    cols = [
        (np.log(pv) if vp else np.log1p(-pv)) + (np.log(pa) if ap else np.log1p(-pa)) for vp, ap in QUADRANTS
    ]
    return weight * np.stack(cols, axis=1)


def _log_transition(dt_s: float, scene_s: float) -> np.ndarray:
    """(4, 4) log chance of going from one quadrant to another in ``dt_s`` seconds."""
    stay = math.exp(-max(dt_s, 0.0) / scene_s)
    stay = min(max(stay, 1e-9), 1 - 1e-9)
    move = (1 - stay) / 3
    return np.where(np.eye(4, dtype=bool), math.log(stay), math.log(move))


def scene_emotion(scene: Scene) -> Emotion:
    """The emotion a scene asks of the music; tension rises with arousal and falls with valence
    (``-V+A`` scenes are the tense ones)."""
    tension = max(-1.0, min(1.0, 0.5 * scene.arousal - 0.5 * scene.valence))
    return Emotion(scene.valence, scene.arousal, tension)


def scene_size(mean_probability: float) -> float:
    """How far from neutral a scene's valence or arousal is, from its lines' mean probability."""
    return 0.35 + 0.65 * abs(2.0 * mean_probability - 1.0)


def _scene(
    starts: Sequence[float],
    ends: Sequence[float],
    pv: np.ndarray,
    pa: np.ndarray,
    first: int,
    last: int,
    q: int,
) -> Scene:
    vp, ap = QUADRANTS[q]
    mv = float(pv[first : last + 1].mean())
    ma = float(pa[first : last + 1].mean())
    return Scene(
        start_s=float(starts[first]),
        end_s=float(max(ends[first : last + 1])),
        first_line=first,
        last_line=last,
        valence_positive=vp,
        arousal_positive=ap,
        valence=scene_size(mv) if vp else -scene_size(mv),
        arousal=scene_size(ma) if ap else -scene_size(ma),
    )


def _validate(starts: Sequence[float], ends: Sequence[float], pv: np.ndarray, pa: np.ndarray) -> None:
    n = len(starts)
    if not (len(ends) == len(pv) == len(pa) == n):
        raise ValueError(f"starts, ends and probabilities must have one entry per line ({n})")
    if n and not (np.all(np.isfinite(starts)) and np.all(np.isfinite(ends))):
        raise ValueError("line times must be finite seconds")
    if n and np.any(np.diff(np.asarray(starts, np.float64)) < 0):
        raise ValueError("lines must be in order of start time")
    if n and not (np.all((pv >= 0) & (pv <= 1)) and np.all((pa >= 0) & (pa <= 1))):
        raise ValueError("probabilities must be in [0, 1]")


def build_arc(
    starts_s: Sequence[float] | np.ndarray,
    ends_s: Sequence[float] | np.ndarray,
    p_valence: Sequence[float] | np.ndarray,
    p_arousal: Sequence[float] | np.ndarray,
    config: ArcConfig | None = None,
) -> Arc:
    """The arc of a whole text: the most likely scenes, none shorter than ``min_scene_s``.

    Args:
        starts_s, ends_s: each line's times, seconds, in order of start.
        p_valence, p_arousal: each line's probability that its scene is positive in valence /
            arousal (the text model's scene head).
        config: the arc's settings.

    Raises:
        ValueError: the sequences differ in length, a time is not finite, lines are out of order,
            or a probability is outside [0, 1].
    """
    cfg = config or ArcConfig()
    starts = [float(x) for x in starts_s]
    ends = [float(x) for x in ends_s]
    pv = np.asarray(p_valence, np.float64)
    pa = np.asarray(p_arousal, np.float64)
    _validate(starts, ends, pv, pa)
    n = len(starts)
    if n == 0:
        return Arc([], [])
    evidence = _log_evidence(pv, pa, cfg.evidence_weight)
    score = evidence[0] + math.log(0.25)
    back = np.zeros((n, 4), np.int64)
    for i in range(1, n):
        moves = score[:, None] + _log_transition(starts[i] - starts[i - 1], cfg.scene_s)  # (from, to)
        back[i] = np.argmax(moves, axis=0)
        score = moves[back[i], np.arange(4)] + evidence[i]
    path = np.zeros(n, np.int64)
    path[-1] = int(np.argmax(score))
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    runs = _runs(path)
    runs = _merge_short(runs, starts, ends, evidence, cfg.min_scene_s)
    scenes = [_scene(starts, ends, pv, pa, a, b, q) for a, b, q in runs]
    line_scenes = [s for s in scenes for _ in range(s.first_line, s.last_line + 1)]
    return Arc(scenes, line_scenes)


def _runs(path: np.ndarray) -> list[tuple[int, int, int]]:
    runs: list[tuple[int, int, int]] = []
    start = 0
    for i in range(1, len(path) + 1):
        if i == len(path) or path[i] != path[start]:
            runs.append((start, i - 1, int(path[start])))
            start = i
    return runs


def _merge_short(
    runs: list[tuple[int, int, int]],
    starts: Sequence[float],
    ends: Sequence[float],
    evidence: np.ndarray,
    min_s: float,
) -> list[tuple[int, int, int]]:
    """Merge runs shorter than ``min_s`` (shortest first) into the neighbour their lines fit best."""

    def length(r: tuple[int, int, int]) -> float:
        a, b, _ = r
        following = starts[b + 1] if b + 1 < len(starts) else ends[b]
        return float(following - starts[a])

    runs = list(runs)
    while len(runs) > 1:
        i = min(range(len(runs)), key=lambda k: length(runs[k]))
        if length(runs[i]) >= min_s:
            break
        a, b, _ = runs[i]
        options = [k for k in (i - 1, i + 1) if 0 <= k < len(runs)]
        k = max(options, key=lambda k: float(evidence[a : b + 1, runs[k][2]].sum()))
        q = runs[k][2]
        lo, hi = min(a, runs[k][0]), max(b, runs[k][1])
        runs[min(i, k)] = (lo, hi, q)
        del runs[max(i, k)]
        # a merge can join two runs of one quadrant
        merged: list[tuple[int, int, int]] = []
        for r in runs:
            if merged and merged[-1][2] == r[2]:
                merged[-1] = (merged[-1][0], r[1], r[2])
            else:
                merged.append(r)
        runs = merged
    return runs


@dataclass(frozen=True)
class ArcDecision:
    """What one live line did to the arc."""

    scene: Scene  # the scene after this line (its end_s: this line's end)
    changed: bool  # a new scene began with this line
    posterior: float  # the posterior of the scene's quadrant, in [0, 1]


class LiveArc:
    """The arc of lines as they arrive (the forward filter, with a minimum scene length).

    Memory is constant: the filter's four numbers and the current scene's sums.
    """

    def __init__(self, config: ArcConfig | None = None) -> None:
        self.config = config or ArcConfig()
        self.reset()

    def reset(self) -> None:
        self._log_belief = np.full(4, math.log(0.25))
        self._last_s: float | None = None
        self._quadrant: int | None = None
        self._scene_start_s = 0.0
        self._lines = 0
        self._first_line = 0
        self._sum_pv = 0.0
        self._sum_pa = 0.0
        self._count = 0

    def add(self, start_s: float, end_s: float, p_valence: float, p_arousal: float) -> ArcDecision:
        """Take one line's scene probabilities; say whether the scene changes with it.

        Raises:
            ValueError: a time is not finite, the line starts before the last one, or a
                probability is outside [0, 1].
        """
        if not (math.isfinite(start_s) and math.isfinite(end_s)):
            raise ValueError("line times must be finite seconds")
        if self._last_s is not None and start_s < self._last_s:
            raise ValueError(f"a live line must not start before the last one ({start_s} < {self._last_s})")
        if not (0 <= p_valence <= 1 and 0 <= p_arousal <= 1):
            raise ValueError("probabilities must be in [0, 1]")
        cfg = self.config
        evidence = _log_evidence(np.array([p_valence]), np.array([p_arousal]), cfg.evidence_weight)[0]
        if self._last_s is not None:
            moves = self._log_belief[:, None] + _log_transition(start_s - self._last_s, cfg.scene_s)
            prior = np.logaddexp.reduce(moves, axis=0)
        else:
            prior = self._log_belief
        belief = prior + evidence
        belief -= np.logaddexp.reduce(belief)
        self._log_belief = belief
        self._last_s = start_s
        index = self._lines
        self._lines += 1
        best = int(np.argmax(belief))
        changed = False
        if self._quadrant is None or (
            best != self._quadrant
            and math.exp(belief[best]) >= cfg.switch_probability
            and start_s - self._scene_start_s >= cfg.min_scene_s
        ):
            self._quadrant, changed = best, True
        if changed:
            self._scene_start_s = start_s
            self._first_line = index
            self._sum_pv = self._sum_pa = 0.0
            self._count = 0
        self._sum_pv += p_valence
        self._sum_pa += p_arousal
        self._count += 1
        vp, ap = QUADRANTS[self._quadrant]
        mv, ma = self._sum_pv / self._count, self._sum_pa / self._count
        scene = Scene(
            start_s=self._scene_start_s,
            end_s=end_s,
            first_line=self._first_line,
            last_line=index,
            valence_positive=vp,
            arousal_positive=ap,
            valence=scene_size(mv) if vp else -scene_size(mv),
            arousal=scene_size(ma) if ap else -scene_size(ma),
        )
        return ArcDecision(scene, changed, float(math.exp(belief[self._quadrant])))
