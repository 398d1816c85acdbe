"""Game profiles: parameters mapped to emotion, states, instrumentation, tempo and key.

A :class:`Profile` tells affetto about one game: which raw game parameters it will send
(``param`` op) and how each one moves the music's emotion (:class:`Param`, mapped by
:class:`ParamMapper`), and the conductor's settings (states, layers, stingers, tempo, key). This
module is the data model, pure and without I/O; profiles are written in YAML and read by
:mod:`engine.sessions.profile_file`, whose docstring documents the schema.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from engine.checks import check_finite
from engine.music.config import ConductorConfig, Emotion, check_seek, check_sync

CURVES: Final = ("linear", "smoothstep", "exponential", "steps")
DIMENSIONS: Final = ("valence", "arousal", "tension")
MAX_WEIGHT: Final = 2.0
MAX_EXPONENT: Final = 100.0
DEFAULT_EXPONENT: Final = 2.0


def curve_value(curve: str, x: float, exponent: float = DEFAULT_EXPONENT) -> float:
    """A continuous curve at ``x`` in [0, 1] (clamped), in [0, 1].

    * ``linear``: ``x``;
    * ``smoothstep``: ``3x² - 2x³`` (flat at both ends, 0.5 at the midpoint);
    * ``exponential``: ``x ** exponent`` (exponent > 1 stays low then rises late; < 1 rises early).

    Args:
        curve: "linear", "smoothstep" or "exponential" (``steps`` needs thresholds: see
            :meth:`Param.shape`).
        x: the normalised value.
        exponent: for ``exponential``, in (0, MAX_EXPONENT].

    Raises:
        ValueError: another curve, or a NaN ``x``.
    """
    if math.isnan(x):
        raise ValueError("curve input must not be NaN")
    x = min(1.0, max(0.0, x))
    if curve == "linear":
        s = x
    elif curve == "smoothstep":
        s = x * x * (3.0 - 2.0 * x)
    elif curve == "exponential":
        s = x**exponent
    else:
        raise ValueError(f"curve must be one of linear, smoothstep, exponential, got {curve!r}")
    return min(1.0, max(0.0, s))


@dataclass(frozen=True)
class Param:
    """A game parameter and how it moves the emotion.

    Attributes:
        name: the name the game sends.
        range: (lo, hi) in game units, lo < hi, both finite; values outside are clamped.
        curve: one of CURVES.
        exponent: for ``exponential``: ``s = x ** exponent``, in (0, MAX_EXPONENT].
        steps: for ``steps``: ((threshold in game units, s in [0, 1]), ...), thresholds strictly
            increasing inside ``range``; s is that of the last threshold at or below the value,
            0 below the first.
        affects: weights (valence, arousal, tension), each in [-MAX_WEIGHT, MAX_WEIGHT].
        default: the value assumed until the game sends one (inside ``range``); None: the
            parameter contributes nothing until then.
        description: free text for people.

    Raises:
        ValueError: any attribute out of its range.
    """

    name: str
    range: tuple[float, float]
    curve: str = "linear"
    exponent: float = DEFAULT_EXPONENT
    steps: tuple[tuple[float, float], ...] = ()
    affects: tuple[float, float, float] = (0.0, 0.0, 0.0)
    default: float | None = None
    description: str = ""

    def __post_init__(self) -> None:
        lo, hi = self.range
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi and math.isfinite(hi - lo)):
            raise ValueError(
                f"param {self.name!r}: range must be [lo, hi] with lo < hi, finite, got {self.range}"
            )
        if self.curve not in CURVES:
            raise ValueError(f"param {self.name!r}: curve must be one of {CURVES}, got {self.curve!r}")
        if not (math.isfinite(self.exponent) and 0.0 < self.exponent <= MAX_EXPONENT):
            raise ValueError(
                f"param {self.name!r}: exponent must be in (0, {MAX_EXPONENT:g}], got {self.exponent}"
            )
        if (self.curve == "steps") != bool(self.steps):
            raise ValueError(f"param {self.name!r}: steps are required with curve 'steps' and only with it")
        previous = -math.inf
        for x, s in self.steps:
            if not (lo <= x <= hi and x > previous and 0.0 <= s <= 1.0):
                raise ValueError(
                    f"param {self.name!r}: steps must be [x, s] with x strictly increasing in the range "
                    f"and s in [0, 1], got {self.steps}"
                )
            previous = x
        if len(self.affects) != 3 or not all(math.isfinite(w) and abs(w) <= MAX_WEIGHT for w in self.affects):
            raise ValueError(f"param {self.name!r}: affects must be 3 weights in [-2, 2], got {self.affects}")
        if self.default is not None and not lo <= self.default <= hi:
            raise ValueError(f"param {self.name!r}: default must be inside the range, got {self.default}")

    def normalise(self, value: float) -> float:
        """``value`` (game units, finite) mapped to [0, 1] over ``range``, clamped."""
        lo, hi = self.range
        v = min(hi, max(lo, value))
        return min(1.0, max(0.0, (v - lo) / (hi - lo)))

    def shape(self, value: float) -> float:
        """The curve's output s in [0, 1] for ``value`` (game units, finite; clamped to the range)."""
        if self.curve == "steps":
            lo, hi = self.range
            v = min(hi, max(lo, value))
            s = 0.0
            for threshold, level in self.steps:
                if v < threshold:
                    break
                s = level
            return s
        return curve_value(self.curve, self.normalise(value), self.exponent)

    def contribution(self, value: float) -> tuple[float, float, float]:
        """``w * s`` for each of (valence, arousal, tension)."""
        s = self.shape(value)
        return (self.affects[0] * s, self.affects[1] * s, self.affects[2] * s)


@dataclass(frozen=True)
class Transition:
    """Default transition: the sync point and seek speed for states and parameter-driven changes.

    Raises:
        TypeError, ValueError: a sync not in SYNC_POINTS, or a bad seek speed.
    """

    sync: str = "bar"
    seek_per_s: float | None = 0.5

    def __post_init__(self) -> None:
        check_sync(self.sync)
        check_seek(self.seek_per_s)


@dataclass(frozen=True)
class Profile:
    """A game profile.

    Attributes:
        name: the profile's name.
        config: the conductor's settings (states, layers, stingers, tempo, key strength, ...).
        params: the game parameters, by name.
        base: the emotion when no parameter pushes it.
        transition: default sync point and seek speed (for states without their own, and for
            emotion targets computed from parameters).
        start_state: the state a session starts in (a key of ``config.states``).
        description: free text for people.
        source: where it was read from.
    """

    name: str
    config: ConductorConfig = field(default_factory=ConductorConfig)
    params: dict[str, Param] = field(default_factory=dict)
    base: Emotion = field(default_factory=Emotion)
    transition: Transition = field(default_factory=Transition)
    start_state: str = "explore"
    description: str = ""
    source: str = "<default>"

    def __post_init__(self) -> None:
        if self.start_state not in self.config.states:
            raise ValueError(
                f"start_state must be one of {sorted(self.config.states)}, got {self.start_state!r}"
            )
        for name, param in self.params.items():
            if name != param.name:
                raise ValueError(f"params key {name!r} does not match the param's name {param.name!r}")

    @property
    def key_tonic_pc(self) -> int | None:
        """Preferred tonic pitch class 0 (C) .. 11 (B); None: the seed chooses (``config``'s)."""
        return self.config.key_tonic_pc

    @property
    def mode_policy(self) -> str:
        """ "auto" (the mode follows valence), "major" or "minor" (``config``'s)."""
        return self.config.mode_policy


#: For sessions without a profile: ConductorConfig() defaults, no parameters.
DEFAULT_PROFILE: Final = Profile(name="default")


class ParamMapper:
    """One session's game parameters → target emotion. Pure: no I/O, no clock, deterministic.

    The math, for each declared parameter p with range [lo, hi], curve f and weights w::

        x_p = clamp((value_p - lo) / (hi - lo), 0, 1)      # normalise (values are clamped)
        s_p = f(x_p)                                        # curve, s_p in [0, 1]
        emotion_d = clamp(base_d + Σ_p w_{p,d} · s_p, -1, 1)   for d in valence, arousal, tension

    with ``f`` linear ``x``, smoothstep ``3x² - 2x³``, exponential ``x ** exponent``, or steps
    (the level of the last threshold, in game units, at or below the clamped value; 0 below the
    first). A parameter the game has not sent contributes ``w · f(default)`` if it declares a
    default, else nothing. Each ``|w| <= 2``, so one parameter can swing a dimension end to end.
    Not thread-safe: one session drives it from one thread.

    Args:
        profile: the session's profile.
        base: the emotion with no parameter pushing it (default: ``profile.base``).
    """

    def __init__(self, profile: Profile, base: Emotion | None = None) -> None:
        self.profile = profile
        self._base = base if base is not None else profile.base
        self._values: dict[str, float] = {}
        self._contributions: dict[str, tuple[float, float, float]] = {}
        self._emotion = self.reset()

    @property
    def emotion(self) -> Emotion:
        """The current target emotion."""
        return self._emotion

    @property
    def base(self) -> Emotion:
        return self._base

    @property
    def values(self) -> dict[str, float]:
        """The values the game has sent, by name (a copy)."""
        return dict(self._values)

    def set(self, name: str, value: float) -> Emotion:
        """Set parameter ``name`` to ``value`` (game units) and return the resulting target emotion.

        Args:
            name: a parameter declared in the profile.
            value: a finite number; outside the parameter's range it is clamped.

        Raises:
            ValueError: an unknown name (the message lists the known ones), or a value that is
                not a finite number (NaN, ±inf, a bool, a string, an int too large for a float).
        """
        param = self.profile.params.get(name) if isinstance(name, str) else None
        if param is None:
            known = ", ".join(sorted(self.profile.params)) or "none: this profile declares no parameters"
            raise ValueError(f"unknown parameter {name!r} (allowed: {known})")
        try:
            v = check_finite(f"parameter {name!r}", value)
        except TypeError as exc:
            what = type(value).__name__
            raise ValueError(f"parameter {name!r} must be a finite number, got {what}") from exc
        except ValueError as exc:
            raise ValueError(f"parameter {name!r} must be a finite number, got {value!r}") from exc
        self._values[name] = v
        self._contributions[name] = param.contribution(v)
        self._emotion = self._sum()
        return self._emotion

    def reset(self) -> Emotion:
        """Forget every value the game sent (defaults apply again); returns the target emotion."""
        self._values.clear()
        self._contributions = {
            name: p.contribution(p.default)
            for name, p in self.profile.params.items()
            if p.default is not None
        }
        self._emotion = self._sum()
        return self._emotion

    def rebase(self, base: Emotion) -> Emotion:
        """Make parameters push from ``base`` from now on (e.g. the emotion of a new state).

        Returns:
            The resulting target emotion.
        """
        self._base = base
        self._emotion = self._sum()
        return self._emotion

    def _sum(self) -> Emotion:
        total = [self._base.valence, self._base.arousal, self._base.tension]
        for contribution in self._contributions.values():
            for d in range(3):
                total[d] += contribution[d]
        v, a, t = (min(1.0, max(-1.0, x)) for x in total)
        return Emotion(v, a, t)


def profile_summary(profile: Profile) -> Mapping[str, Any]:
    """A JSON-ready summary (for a status reply or a log line): names of states, params, layers."""
    return {
        "name": profile.name,
        "states": sorted(profile.config.states),
        "params": sorted(profile.params),
        "stingers": sorted(profile.config.stingers),
        "layers": [layer.name for layer in profile.config.layers],
        "start_state": profile.start_state,
        "key_tonic_pc": profile.key_tonic_pc,
        "mode_policy": profile.mode_policy,
    }
