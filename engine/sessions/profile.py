"""Game profiles in YAML: parameters mapped to emotion, states, instrumentation, tempo and key.

A profile tells affetto about one game: which raw game parameters it will send (``param`` op)
and how each one moves the music's emotion, which named states it uses, which General MIDI
instruments play each layer, the tempo range, the key, and how transitions behave by default.
It is plain YAML data (read with a safe loader: no tags, no anchors or aliases, no code), and
every mistake is reported as ``FILE:LINE: where: what is wrong (allowed: ...)``.

Every key is optional; what is left out keeps the engine's defaults (see
:mod:`engine.music.config`). A complete example::

    version: 1                      # the schema version (only 1)
    name: action                    # default: the file name without .yaml
    description: Fast arena shooter
    base: {valence: 0.2, arousal: 0.0, tension: 0.1}   # emotion when no parameter pushes it
    tempo:
      range_bpm: [100, 168]         # tempo follows arousal inside this range
      fixed_bpm: null               # or a fixed tempo (overrides the range)
    key:
      tonic: E                      # C, C#, Db, ... B, a pitch class 0..11, or auto/null (seed picks)
      mode: auto                    # major | minor | auto (mode follows valence)
      strength: 1.5                 # pull toward the key, 0..8
    transition:                     # defaults for states and for parameter-driven changes
      sync: bar                     # immediate | beat | bar | phrase
      seek_per_s: 0.5               # emotion units per second; null: jump at once
      phrase_bars: 4                # bars per phrase (the "phrase" sync point), 1..64
    humanize: {timing_ms: 4, velocity: 6}     # jitter (standard deviations), 0..30 each
    composer: {temperature: 1.0, top_p: 0.95} # sampling (advanced)
    layers:                         # melody required; harmony, bass, drums optional
      melody:  {channel: 0, program: 81, instrument: pluck, gain_db: 0, enter_intensity: 0}
      drums:   {channel: 9, program: 0, instrument: drums, gain_db: -4, enter_intensity: 0.45}
    states:                         # replaces the default states when given
      explore: {valence: 0.4, arousal: -0.1, tension: 0.0, seek_per_s: 0.4, sync: bar}
      combat:  {valence: -0.4, arousal: 0.9, tension: 0.9}
    start_state: explore            # default: explore if declared, else the first state
    stingers:                       # replaces the default stingers when given
      hit: [[0, -7, 8, 1.0], [0, 0, 8, 0.9]]   # [onset 16ths, scale degree, duration 16ths, velocity]
    params:
      health:
        description: player health
        range: [0, 100]             # game units; values outside are clamped
        curve: smoothstep           # linear | smoothstep | exponential | steps
        default: 100                # value before the game sends one (default: contributes 0)
        affects: {valence: 0.3, tension: -0.5}   # weights in [-2, 2]
      enemies_near:
        range: [0, 10]
        curve: steps
        steps: [[1, 0.4], [3, 0.7], [6, 1.0]]    # [at or above this value, s]
        affects: {arousal: 0.9, tension: 0.6}
      speed:
        range: [0, 12]
        curve: exponential
        exponent: 2.0               # s = x ** exponent, exponent in (0, 100]
        affects: {arousal: 0.4}

How a parameter moves the emotion is described in :class:`ParamMapper`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path
from typing import Any, Final

import yaml

from engine.model.composer import MAX_KEY_STRENGTH
from engine.music.config import (
    DEFAULT_LAYERS,
    DEFAULT_STATES,
    DEFAULT_STINGERS,
    LAYER_NAMES,
    MAX_SEEK_PER_S,
    STINGER_CHANNEL,
    SYNC_POINTS,
    ConductorConfig,
    Emotion,
    Layer,
    State,
    Stinger,
    check_seek,
    check_sync,
)
from engine.music.tempo_map import MAX_TEMPO_BPM, MIN_TEMPO_BPM
from engine.synth.polysynth import INSTRUMENTS

CURVES: Final = ("linear", "smoothstep", "exponential", "steps")
MODE_POLICIES: Final = ("auto", "major", "minor")
DIMENSIONS: Final = ("valence", "arousal", "tension")
SCHEMA_VERSION: Final = 1
MAX_WEIGHT: Final = 2.0
MAX_EXPONENT: Final = 100.0
DEFAULT_EXPONENT: Final = 2.0
MAX_TEMPERATURE: Final = 10.0
MAX_HUMANIZE: Final = 30.0
MAX_NAME_CHARS: Final = 64
MAX_PARAMS: Final = 256
MAX_STATES: Final = 256
MAX_STINGERS: Final = 64
MAX_STINGER_NOTES: Final = 64
MAX_STEPS: Final = 64
MAX_PROFILE_CHARS: Final = 1_000_000
#: State, parameter and stinger names: what the protocol can carry in an OSC string.
NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")

_NOTE_PCS: Final = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_ACCIDENTALS: Final = {"": 0, "#": 1, "♯": 1, "b": -1, "♭": -1}
_DEFAULT_LAYER: Final = {layer.name: layer for layer in DEFAULT_LAYERS}
_DEFAULT_CONFIG: Final = ConductorConfig()


class ProfileError(ValueError):
    """A profile cannot be read or is not valid (the message says file, line and what is wrong)."""


# ------------------------------------------------------------------------------ the model
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


def _finite_number(name: str, value: object) -> float:
    """``value`` as a finite float.

    Raises:
        TypeError: not a real number (bool is refused).
        ValueError: NaN, infinite, or too large for a float.
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a finite number, got {type(value).__name__}")
    try:
        v = float(value)
    except OverflowError as exc:
        raise ValueError(f"{name} must be a finite number, got {value!r}") from exc
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return v


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
            v = _finite_number(f"parameter {name!r}", value)
        except TypeError as exc:
            raise ValueError(str(exc)) from exc
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


# ------------------------------------------------------------------------------ reading YAML
_TAG: Final = "tag:yaml.org,2002:"
_SCALAR_TAGS: Final = frozenset(_TAG + t for t in ("str", "int", "float", "bool", "null"))


class _Loader(yaml.SafeLoader):
    """A safe loader that refuses anchors and aliases (no shared nodes, no alias bombs) and reads
    ``1e3`` and ``2.5E-2`` as numbers (YAML 1.1 wants a dot and a signed exponent)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in profiles", event.start_mark
            )
        if getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(
                None, None, "anchors (&name) are not allowed in profiles", event.start_mark
            )
        return super().compose_node(parent, index)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


@dataclass(frozen=True)
class _Node:
    """A YAML value with where it is: ``line`` where it starts, ``key_line`` where its key is."""

    value: Any  # str | int | float | bool | None | list[_Node] | dict[str, _Node]
    line: int
    key_line: int
    path: str
    source: str

    def error(self, message: str, *, at_key: bool = False) -> ProfileError:
        where = f" {self.path}:" if self.path else ""
        return ProfileError(f"{self.source}:{self.key_line if at_key else self.line}:{where} {message}")


def _tag_name(tag: str) -> str:
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


def _convert(loader: _Loader, node: Any, source: str, path: str, key_line: int) -> _Node:
    line = node.start_mark.line + 1
    here = _Node(None, line, key_line, path, source)
    if isinstance(node, yaml.ScalarNode):
        if node.tag not in _SCALAR_TAGS:
            raise here.error(
                f"YAML tag {_tag_name(node.tag)} is not allowed "
                "(allowed: plain strings, numbers, booleans, null, lists and mappings; no tags)"
            )
        try:
            value = loader.construct_object(node, deep=True)
        except (ValueError, yaml.YAMLError) as exc:
            raise here.error(f"cannot read {node.value!r} as {_tag_name(node.tag)}") from exc
        return _Node(value, line, key_line, path, source)
    if isinstance(node, yaml.SequenceNode):
        if node.tag != _TAG + "seq":
            raise here.error(f"YAML tag {_tag_name(node.tag)} is not allowed (allowed: plain lists; no tags)")
        items = [
            _convert(loader, item, source, f"{path}[{i}]", item.start_mark.line + 1)
            for i, item in enumerate(node.value)
        ]
        return _Node(items, line, key_line, path, source)
    if node.tag != _TAG + "map":
        raise here.error(f"YAML tag {_tag_name(node.tag)} is not allowed (allowed: plain mappings; no tags)")
    mapping: dict[str, _Node] = {}
    for key_node, value_node in node.value:
        k_line = key_node.start_mark.line + 1
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in _SCALAR_TAGS:
            raise _Node(None, k_line, k_line, path, source).error(
                "mapping keys must be plain names (allowed: a name like health or combat)"
            )
        key = str(key_node.value)
        if key in mapping:
            raise _Node(None, k_line, k_line, path, source).error(
                f"duplicate key {key!r} (first at line {mapping[key].key_line})"
            )
        child = f"{path}.{key}" if path else key
        mapping[key] = _convert(loader, value_node, source, child, k_line)
    return _Node(mapping, line, key_line, path, source)


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _mapping(
    node: _Node, allowed: Sequence[str], required: Sequence[str] = (), *, example: str = ""
) -> dict[str, _Node]:
    if not isinstance(node.value, dict):
        hint = f", like {example}" if example else f" with keys {', '.join(allowed)}"
        raise node.error(f"expected a mapping{hint}, got {_describe(node.value)}")
    items: dict[str, _Node] = node.value
    for key, child in items.items():
        if key not in allowed:
            raise child.error(f"unknown key {key!r} (allowed: {', '.join(allowed)})", at_key=True)
    for key in required:
        if key not in items:
            raise node.error(f"missing required key {key!r} (allowed: {', '.join(allowed)})", at_key=True)
    return items


def _list(node: _Node, what: str, lo: int, hi: int) -> list[_Node]:
    if not isinstance(node.value, list):
        raise node.error(f"expected a list of {what}, got {_describe(node.value)}")
    if not lo <= len(node.value) <= hi:
        raise node.error(f"expected {lo}..{hi} {what}, got {len(node.value)}")
    items: list[_Node] = node.value
    return items


def _number(node: _Node, lo: float, hi: float, *, open_lo: bool = False, allowed: str = "") -> float:
    value = node.value
    bounds = allowed or f"a number in {'(' if open_lo else '['}{lo:g}, {hi:g}]"
    if isinstance(value, bool) or not isinstance(value, int | float):
        hint = " (write numbers without quotes)" if isinstance(value, str) and _looks_numeric(value) else ""
        raise node.error(f"expected a number, got {_describe(value)}{hint} (allowed: {bounds})")
    try:
        v = float(value)
    except OverflowError as exc:
        raise node.error(f"{value!r} is too large (allowed: {bounds})") from exc
    if not math.isfinite(v):
        raise node.error(f"{value!r} is not a finite number (allowed: {bounds})")
    if not ((lo < v if open_lo else lo <= v) and v <= hi):
        raise node.error(f"{value!r} is out of range (allowed: {bounds})")
    return v


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _int(node: _Node, lo: int, hi: int) -> int:
    value = node.value
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise node.error(f"expected a whole number, got {_describe(value)} (allowed: {lo}..{hi})")
    if not lo <= int(value) <= hi:
        raise node.error(f"{value!r} is out of range (allowed: {lo}..{hi})")
    return int(value)


def _choice(node: _Node, choices: Sequence[str], what: str) -> str:
    if not isinstance(node.value, str) or node.value not in choices:
        raise node.error(f"unknown {what} {_describe(node.value)} (allowed: {', '.join(choices)})")
    return node.value


def _text(node: _Node, max_chars: int = 10_000) -> str:
    if not isinstance(node.value, str) or len(node.value) > max_chars:
        raise node.error(f"expected text (at most {max_chars} characters), got {_describe(node.value)}")
    return node.value


def _names(node: _Node, what: str, most: int) -> dict[str, _Node]:
    """A mapping of names (of states, params, stingers) to their nodes; null: none."""
    if node.value is None:
        return {}
    if not isinstance(node.value, dict):
        raise node.error(f"expected a mapping of {what} by name, got {_describe(node.value)}")
    items: dict[str, _Node] = node.value
    if len(items) > most:
        raise node.error(f"too many {what}: {len(items)} (allowed: at most {most})")
    for name, child in items.items():
        if len(name) > MAX_NAME_CHARS or not NAME_PATTERN.fullmatch(name):
            raise child.error(
                f"bad name {name!r} (allowed: up to {MAX_NAME_CHARS} letters, digits, _ . -; "
                "starting with a letter, digit or _)",
                at_key=True,
            )
    return items


def _emotion(node: _Node) -> Emotion:
    items = _mapping(node, DIMENSIONS, example="{valence: 0.5, arousal: -0.2, tension: 0.1}")
    values = [_number(items[d], -1.0, 1.0) if d in items else 0.0 for d in DIMENSIONS]
    return Emotion(*values)


def _transition(node: _Node | None) -> tuple[Transition, int]:
    if node is None:
        return Transition(), 4
    items = _mapping(node, ("sync", "seek_per_s", "phrase_bars"))
    sync = _choice(items["sync"], SYNC_POINTS, "sync point") if "sync" in items else "bar"
    seek = _seek(items["seek_per_s"]) if "seek_per_s" in items else 0.5
    phrase_bars = _int(items["phrase_bars"], 1, 64) if "phrase_bars" in items else 4
    return Transition(sync, seek), phrase_bars


def _seek(node: _Node) -> float | None:
    if node.value is None:
        return None
    allowed = f"a number in (0, {MAX_SEEK_PER_S:g}] or null"
    return _number(node, 0.0, MAX_SEEK_PER_S, open_lo=True, allowed=allowed)


def _tempo(node: _Node | None) -> tuple[tuple[float, float], float | None]:
    default = _DEFAULT_CONFIG.tempo_range_bpm
    if node is None:
        return default, None
    items = _mapping(node, ("range_bpm", "fixed_bpm"))
    tempo_range = default
    if "range_bpm" in items:
        pair = _list(items["range_bpm"], "tempos [slowest, fastest]", 2, 2)
        lo, hi = (_number(p, MIN_TEMPO_BPM, MAX_TEMPO_BPM) for p in pair)
        if lo > hi:
            raise items["range_bpm"].error(
                f"[{lo:g}, {hi:g}] is not [slowest, fastest] (allowed: slowest <= fastest)"
            )
        tempo_range = (lo, hi)
    fixed = None
    if "fixed_bpm" in items and items["fixed_bpm"].value is not None:
        fixed = _number(items["fixed_bpm"], MIN_TEMPO_BPM, MAX_TEMPO_BPM)
    return tempo_range, fixed


def _tonic(node: _Node) -> int | None:
    value = node.value
    if value is None or value == "auto":
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 11:
        return value
    if isinstance(value, str) and 1 <= len(value) <= 2:
        letter, accidental = value[0].upper(), value[1:]
        if letter in _NOTE_PCS and accidental in _ACCIDENTALS:
            return (_NOTE_PCS[letter] + _ACCIDENTALS[accidental]) % 12
    raise node.error(
        f"unknown tonic {_describe(value)} (allowed: C, C#, Db, D, ... B, a pitch class 0..11, or auto)"
    )


def _key(node: _Node | None) -> tuple[int | None, str, float]:
    default_strength = _DEFAULT_CONFIG.key_strength
    if node is None:
        return None, "auto", default_strength
    items = _mapping(node, ("tonic", "mode", "strength"))
    tonic = _tonic(items["tonic"]) if "tonic" in items else None
    mode = _choice(items["mode"], MODE_POLICIES, "mode") if "mode" in items else "auto"
    strength = _number(items["strength"], 0.0, MAX_KEY_STRENGTH) if "strength" in items else default_strength
    return tonic, mode, strength


def _layers(node: _Node | None) -> tuple[Layer, ...]:
    if node is None:
        return DEFAULT_LAYERS
    if not isinstance(node.value, dict):
        raise node.error(
            f"expected a mapping of layers by name ({', '.join(LAYER_NAMES)}), got {_describe(node.value)}"
        )
    layers = []
    used: dict[int, tuple[str, int]] = {}
    for name, child in node.value.items():
        if name not in LAYER_NAMES:
            raise child.error(f"unknown layer {name!r} (allowed: {', '.join(LAYER_NAMES)})", at_key=True)
        d = _DEFAULT_LAYER[name]
        items = _mapping(child, ("channel", "program", "instrument", "gain_db", "enter_intensity"))
        channel = _int(items["channel"], 0, 15) if "channel" in items else d.channel
        where, at_key = (items["channel"], False) if "channel" in items else (child, True)
        if channel == STINGER_CHANNEL:
            raise where.error(
                f"channel {STINGER_CHANNEL} is reserved for stingers (allowed: 0..15 except 3)", at_key=at_key
            )
        if channel in used:
            other, other_line = used[channel]
            raise where.error(
                f"channel {channel} is already used by layer {other!r} (line {other_line}) "
                f"(allowed: a channel of its own per layer, 0..15 except {STINGER_CHANNEL})",
                at_key=at_key,
            )
        used[channel] = (name, where.key_line if at_key else where.line)
        program = _int(items["program"], 0, 127) if "program" in items else d.program
        instrument = d.instrument
        if "instrument" in items:
            instrument = _choice(items["instrument"], INSTRUMENTS, "instrument")
        gain_db = _number(items["gain_db"], -60.0, 6.0) if "gain_db" in items else d.gain_db
        enter = d.enter_intensity
        if "enter_intensity" in items:
            enter = _number(items["enter_intensity"], 0.0, 1.0)
        layers.append(Layer(name, channel, program, instrument, gain_db, enter))
    if "melody" not in node.value:
        raise node.error(
            f"the melody layer is required (allowed layers: {', '.join(LAYER_NAMES)})", at_key=True
        )
    return tuple(layers)


def _states(node: _Node | None, transition: Transition) -> dict[str, State]:
    if node is None:
        return dict(DEFAULT_STATES)
    states = {}
    for name, child in _names(node, "states", MAX_STATES).items():
        items = _mapping(child, (*DIMENSIONS, "seek_per_s", "sync"), example="{valence: 0.5, arousal: -0.2}")
        emotion = Emotion(*(_number(items[d], -1.0, 1.0) if d in items else 0.0 for d in DIMENSIONS))
        seek = _seek(items["seek_per_s"]) if "seek_per_s" in items else transition.seek_per_s
        sync = _choice(items["sync"], SYNC_POINTS, "sync point") if "sync" in items else transition.sync
        states[name] = State(emotion, seek, sync)
    if not states:
        raise node.error("declare at least one state (or leave 'states' out for the defaults)", at_key=True)
    return states


def _stingers(node: _Node | None) -> dict[str, Stinger]:
    if node is None:
        return dict(DEFAULT_STINGERS)
    stingers = {}
    for name, child in _names(node, "stingers", MAX_STINGERS).items():
        notes = []
        for item in _list(child, "notes [onset, degree, duration, velocity]", 1, MAX_STINGER_NOTES):
            fields = _list(item, "numbers: [onset 16ths, scale degree, duration 16ths, velocity]", 4, 4)
            onset, degree, duration = _int(fields[0], 0, 64), _int(fields[1], -21, 21), _int(fields[2], 1, 64)
            scale = _number(fields[3], 0.0, 1.5, open_lo=True)
            notes.append((onset, degree, duration, scale))
        stingers[name] = Stinger(tuple(notes))
    return stingers


_PARAM_KEYS: Final = ("description", "range", "curve", "exponent", "steps", "default", "affects")


def _param(name: str, node: _Node) -> Param:
    items = _mapping(node, _PARAM_KEYS, ("range", "affects"))
    pair = _list(items["range"], "numbers [lo, hi]", 2, 2)
    lo, hi = (_number(p, -math.inf, math.inf, allowed="a finite number") for p in pair)
    if not (lo < hi and math.isfinite(hi - lo)):
        raise items["range"].error(f"[{lo:g}, {hi:g}] is not a range (allowed: [lo, hi] with lo < hi)")
    curve = _choice(items["curve"], CURVES, "curve") if "curve" in items else "linear"
    exponent = DEFAULT_EXPONENT
    if "exponent" in items:
        if curve != "exponential":
            raise items["exponent"].error("exponent applies only to curve: exponential", at_key=True)
        exponent = _number(items["exponent"], 0.0, MAX_EXPONENT, open_lo=True)
    steps: list[tuple[float, float]] = []
    if curve == "steps":
        if "steps" not in items:
            raise items["curve"].error("curve: steps needs 'steps: [[value, s], ...]'")
        for step in _list(items["steps"], "steps [value, s]", 1, MAX_STEPS):
            x_node, s_node = _list(step, "numbers [value, s]", 2, 2)
            x = _number(x_node, lo, hi, allowed=f"a value in the range [{lo:g}, {hi:g}]")
            if steps and x <= steps[-1][0]:
                raise x_node.error(
                    f"{x:g} is not above the previous step {steps[-1][0]:g} (allowed: increasing values)"
                )
            steps.append((x, _number(s_node, 0.0, 1.0)))
    elif "steps" in items:
        raise items["steps"].error("steps apply only to curve: steps", at_key=True)
    default = None
    if "default" in items and items["default"].value is not None:
        default = _number(items["default"], lo, hi, allowed=f"a value in the range [{lo:g}, {hi:g}]")
    weights = _mapping(items["affects"], DIMENSIONS, example="{valence: 0.5, tension: -0.3}")
    if not weights:
        raise items["affects"].error(f"name at least one of {', '.join(DIMENSIONS)}")
    v, a, t = (_number(weights[d], -MAX_WEIGHT, MAX_WEIGHT) if d in weights else 0.0 for d in DIMENSIONS)
    description = _text(items["description"]) if "description" in items else ""
    return Param(name, (lo, hi), curve, exponent, tuple(steps), (v, a, t), default, description)


_TOP_KEYS: Final = (
    "version", "name", "description", "base", "tempo", "key", "transition", "humanize", "composer",
    "layers", "states", "start_state", "stingers", "params",
)  # fmt: skip


def _profile(root: _Node, default_name: str) -> Profile:
    items = _mapping(root, _TOP_KEYS)
    if "version" in items:
        _int(items["version"], SCHEMA_VERSION, SCHEMA_VERSION)
    name = default_name
    if "name" in items:
        name = _text(items["name"], MAX_NAME_CHARS)
        if not NAME_PATTERN.fullmatch(name):
            raise items["name"].error(f"bad name {name!r} (allowed: letters, digits, _ . -)")
    transition, phrase_bars = _transition(items.get("transition"))
    tempo_range, fixed = _tempo(items.get("tempo"))
    tonic, mode, strength = _key(items.get("key"))
    humanize_ms = humanize_velocity = 0.0
    if "humanize" in items:
        h = _mapping(items["humanize"], ("timing_ms", "velocity"))
        humanize_ms = _number(h["timing_ms"], 0.0, MAX_HUMANIZE) if "timing_ms" in h else 0.0
        humanize_velocity = _number(h["velocity"], 0.0, MAX_HUMANIZE) if "velocity" in h else 0.0
    temperature, top_p = 1.0, 0.95
    if "composer" in items:
        c = _mapping(items["composer"], ("temperature", "top_p"))
        if "temperature" in c:
            temperature = _number(c["temperature"], 0.0, MAX_TEMPERATURE, open_lo=True)
        if "top_p" in c:
            top_p = _number(c["top_p"], 0.0, 1.0, open_lo=True)
    layers = _layers(items.get("layers"))
    states = _states(items.get("states"), transition)
    stingers = _stingers(items.get("stingers"))
    if "start_state" in items:
        start = _choice(items["start_state"], sorted(states), "start state")
    else:
        start = "explore" if "explore" in states else next(iter(states))
    params = (
        {n: _param(n, child) for n, child in _names(items["params"], "params", MAX_PARAMS).items()}
        if "params" in items
        else {}
    )
    base = _emotion(items["base"]) if "base" in items else Emotion()
    description = _text(items["description"]) if "description" in items else ""
    try:
        config = ConductorConfig(
            states=states,
            layers=layers,
            stingers=stingers,
            tempo_range_bpm=tempo_range,
            fixed_tempo_bpm=fixed,
            phrase_bars=phrase_bars,
            key_strength=strength,
            temperature=temperature,
            top_p=top_p,
            humanize_ms=humanize_ms,
            humanize_velocity=humanize_velocity,
            key_tonic_pc=tonic,
            mode_policy=mode,
        )
        return Profile(
            name=name,
            config=config,
            params=params,
            base=base,
            transition=transition,
            start_state=start,
            description=description,
            source=root.source,
        )
    except (TypeError, ValueError) as exc:  # a check the parser above does not repeat
        raise root.error(str(exc)) from exc


def parse_profile(text: str, source: str = "<string>") -> Profile:
    """Parse a profile from YAML text (see the module docstring for the schema).

    Args:
        text: the YAML document.
        source: the name errors start with (a file name); its stem is the default profile name.

    Raises:
        ProfileError: not YAML, not plain data (tags, anchors, aliases), or not a valid profile;
            the message is ``SOURCE:LINE: where: what is wrong (allowed: ...)``.
    """
    if not isinstance(text, str):
        raise ProfileError(f"{source}: expected YAML text, got {type(text).__name__}")
    if len(text) > MAX_PROFILE_CHARS:
        raise ProfileError(
            f"{source}: too large ({len(text)} characters; allowed: at most {MAX_PROFILE_CHARS})"
        )
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ProfileError(f"{source}:1: the profile is empty (allowed: a mapping of profile settings)")
        root = _convert(loader, node, source, "", node.start_mark.line + 1)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{mark.line + 1}:" if mark is not None else ""
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        raise ProfileError(f"{source}:{where} not valid YAML ({what})") from exc
    except yaml.YAMLError as exc:
        raise ProfileError(f"{source}: not valid YAML ({exc})") from exc
    except RecursionError as exc:
        raise ProfileError(
            f"{source}: nested too deeply (allowed: a few levels of mappings and lists)"
        ) from exc
    finally:
        loader.dispose()
    stem = Path(source).stem if source and not source.startswith("<") else "profile"
    default_name = stem if NAME_PATTERN.fullmatch(stem) and len(stem) <= MAX_NAME_CHARS else "profile"
    return _profile(root, default_name)


def load_profile(path: str | os.PathLike[str]) -> Profile:
    """Read a profile file (see the module docstring for the schema).

    Args:
        path: a YAML file, UTF-8.

    Raises:
        ProfileError: unreadable, not UTF-8, not YAML, or not a valid profile; the message is
            ``PATH:LINE: where: what is wrong (allowed: ...)``.
    """
    p = Path(path)
    try:
        if p.stat().st_size > 4 * MAX_PROFILE_CHARS:
            raise ProfileError(f"{p}: too large (allowed: at most {MAX_PROFILE_CHARS} characters)")
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"{p}: cannot read ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    return parse_profile(text, str(p))


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
