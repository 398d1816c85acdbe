"""Game profile files in YAML: parameters mapped to emotion, states, instrumentation, tempo and key.

A profile tells affetto about one game: which raw game parameters it will send (``param`` op)
and how each one moves the music's emotion, which named states it uses, which General MIDI
instruments play each layer, the tempo range, the key, and how transitions behave by default.
It is plain YAML data (read by :mod:`engine.sessions.yaml_source`: no tags, no anchors or
aliases, no code), and every mistake is reported as ``FILE:LINE: where: what is wrong
(allowed: ...)``. What a profile becomes is :class:`engine.sessions.profile.Profile`.

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
      offbeat: 1.0                  # share of it on notes between beats, 0..1 (less: chromatic colour)
      modulate: true                # a major key's contrasting phrases move to its dominant
    transition:                     # defaults for states and for parameter-driven changes
      sync: bar                     # immediate | beat | bar | phrase
      seek_per_s: 0.5               # emotion units per second; null: jump at once
      phrase_bars: 4                # bars per phrase (the "phrase" sync point), 1..64
    humanize: {timing_ms: 4, velocity: 6}     # jitter (standard deviations), 0..30 each
    composer: {temperature: 1.0, top_p: 0.95, steer: 0} # sampling; steer: candidates per bar, 0..32
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

How a parameter moves the emotion is described in :class:`engine.sessions.profile.ParamMapper`.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Final

from engine.checks import MAX_NAME_CHARS, MAX_STEER
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
)
from engine.music.keys import MAX_KEY_STRENGTH, MODE_POLICIES
from engine.music.tempo_map import MAX_TEMPO_BPM, MIN_TEMPO_BPM
from engine.outputs.gm import INSTRUMENTS
from engine.sessions.profile import (
    CURVES,
    DEFAULT_EXPONENT,
    DIMENSIONS,
    MAX_EXPONENT,
    MAX_WEIGHT,
    Param,
    Profile,
    Transition,
)
from engine.sessions.yaml_source import (
    Format,
    Node,
    SourceError,
    choice,
    describe,
    flag,
    free_text,
    integer,
    mapping,
    number,
    parse_yaml,
    read_yaml_file,
    sequence,
)

SCHEMA_VERSION: Final = 1
MAX_TEMPERATURE: Final = 10.0
MAX_HUMANIZE: Final = 30.0
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


class ProfileError(SourceError):
    """A profile cannot be read or is not valid (the message says file, line and what is wrong)."""


_FORMAT: Final = Format("profile", ProfileError, MAX_PROFILE_CHARS, "a mapping of profile settings")


# ------------------------------------------------------------------------------ the schema
def _names(node: Node, what: str, most: int) -> dict[str, Node]:
    """A mapping of names (of states, params, stingers) to their nodes; null: none."""
    if node.value is None:
        return {}
    if not isinstance(node.value, dict):
        raise node.error(f"expected a mapping of {what} by name, got {describe(node.value)}")
    items: dict[str, Node] = node.value
    if len(items) > most:
        raise node.error(f"too many {what}: {len(items)} (allowed: at most {most})")
    for name, child in items.items():
        if len(name) > MAX_NAME_CHARS or not NAME_PATTERN.fullmatch(name):
            raise child.error(
                f"bad name {describe(name)} (allowed: up to {MAX_NAME_CHARS} letters, digits, _ . -; "
                "starting with a letter, digit or _)",
                at_key=True,
            )
    return items


def _emotion(node: Node) -> Emotion:
    items = mapping(node, DIMENSIONS, example="{valence: 0.5, arousal: -0.2, tension: 0.1}")
    values = [number(items[d], -1.0, 1.0) if d in items else 0.0 for d in DIMENSIONS]
    return Emotion(*values)


def _transition(node: Node | None) -> tuple[Transition, int]:
    if node is None:
        return Transition(), 4
    items = mapping(node, ("sync", "seek_per_s", "phrase_bars"))
    sync = choice(items["sync"], SYNC_POINTS, "sync point") if "sync" in items else "bar"
    seek = _seek(items["seek_per_s"]) if "seek_per_s" in items else 0.5
    phrase_bars = integer(items["phrase_bars"], 1, 64) if "phrase_bars" in items else 4
    return Transition(sync, seek), phrase_bars


def _seek(node: Node) -> float | None:
    if node.value is None:
        return None
    allowed = f"a number in (0, {MAX_SEEK_PER_S:g}] or null"
    return number(node, 0.0, MAX_SEEK_PER_S, open_lo=True, allowed=allowed)


def _tempo(node: Node | None) -> tuple[tuple[float, float], float | None]:
    default = _DEFAULT_CONFIG.tempo_range_bpm
    if node is None:
        return default, None
    items = mapping(node, ("range_bpm", "fixed_bpm"))
    tempo_range = default
    if "range_bpm" in items:
        pair = sequence(items["range_bpm"], "tempos [slowest, fastest]", 2, 2)
        lo, hi = (number(p, MIN_TEMPO_BPM, MAX_TEMPO_BPM) for p in pair)
        if lo > hi:
            raise items["range_bpm"].error(
                f"[{lo:g}, {hi:g}] is not [slowest, fastest] (allowed: slowest <= fastest)"
            )
        tempo_range = (lo, hi)
    fixed = None
    if "fixed_bpm" in items and items["fixed_bpm"].value is not None:
        fixed = number(items["fixed_bpm"], MIN_TEMPO_BPM, MAX_TEMPO_BPM)
    return tempo_range, fixed


def _tonic(node: Node) -> int | None:
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
        f"unknown tonic {describe(value)} (allowed: C, C#, Db, D, ... B, a pitch class 0..11, or auto)"
    )


def _key(node: Node | None) -> tuple[int | None, str, float, float, bool]:
    default_strength, default_offbeat = _DEFAULT_CONFIG.key_strength, _DEFAULT_CONFIG.offbeat_pull
    default_modulate = _DEFAULT_CONFIG.modulate
    if node is None:
        return None, "auto", default_strength, default_offbeat, default_modulate
    items = mapping(node, ("tonic", "mode", "strength", "offbeat", "modulate"))
    tonic = _tonic(items["tonic"]) if "tonic" in items else None
    mode = choice(items["mode"], MODE_POLICIES, "mode") if "mode" in items else "auto"
    strength = number(items["strength"], 0.0, MAX_KEY_STRENGTH) if "strength" in items else default_strength
    offbeat = number(items["offbeat"], 0.0, 1.0) if "offbeat" in items else default_offbeat
    modulate = flag(items["modulate"]) if "modulate" in items else default_modulate
    return tonic, mode, strength, offbeat, modulate


def _layers(node: Node | None) -> tuple[Layer, ...]:
    if node is None:
        return DEFAULT_LAYERS
    if not isinstance(node.value, dict):
        raise node.error(
            f"expected a mapping of layers by name ({', '.join(LAYER_NAMES)}), got {describe(node.value)}"
        )
    layers = []
    used: dict[int, tuple[str, int]] = {}
    for name, child in node.value.items():
        if name not in LAYER_NAMES:
            raise child.error(
                f"unknown layer {describe(name)} (allowed: {', '.join(LAYER_NAMES)})", at_key=True
            )
        d = _DEFAULT_LAYER[name]
        items = mapping(child, ("channel", "program", "instrument", "gain_db", "enter_intensity"))
        channel = integer(items["channel"], 0, 15) if "channel" in items else d.channel
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
        program = integer(items["program"], 0, 127) if "program" in items else d.program
        instrument = d.instrument
        if "instrument" in items:
            instrument = choice(items["instrument"], INSTRUMENTS, "instrument")
        gain_db = number(items["gain_db"], -60.0, 6.0) if "gain_db" in items else d.gain_db
        enter = d.enter_intensity
        if "enter_intensity" in items:
            enter = number(items["enter_intensity"], 0.0, 1.0)
        layers.append(Layer(name, channel, program, instrument, gain_db, enter))
    if "melody" not in node.value:
        raise node.error(
            f"the melody layer is required (allowed layers: {', '.join(LAYER_NAMES)})", at_key=True
        )
    return tuple(layers)


def _states(node: Node | None, transition: Transition) -> dict[str, State]:
    if node is None:
        return dict(DEFAULT_STATES)
    states = {}
    for name, child in _names(node, "states", MAX_STATES).items():
        items = mapping(child, (*DIMENSIONS, "seek_per_s", "sync"), example="{valence: 0.5, arousal: -0.2}")
        emotion = Emotion(*(number(items[d], -1.0, 1.0) if d in items else 0.0 for d in DIMENSIONS))
        seek = _seek(items["seek_per_s"]) if "seek_per_s" in items else transition.seek_per_s
        sync = choice(items["sync"], SYNC_POINTS, "sync point") if "sync" in items else transition.sync
        states[name] = State(emotion, seek, sync)
    if not states:
        raise node.error("declare at least one state (or leave 'states' out for the defaults)", at_key=True)
    return states


def _stingers(node: Node | None) -> dict[str, Stinger]:
    if node is None:
        return dict(DEFAULT_STINGERS)
    stingers = {}
    for name, child in _names(node, "stingers", MAX_STINGERS).items():
        notes = []
        for item in sequence(child, "notes [onset, degree, duration, velocity]", 1, MAX_STINGER_NOTES):
            fields = sequence(item, "numbers: [onset 16ths, scale degree, duration 16ths, velocity]", 4, 4)
            onset, degree = integer(fields[0], 0, 64), integer(fields[1], -21, 21)
            duration = integer(fields[2], 1, 64)
            scale = number(fields[3], 0.0, 1.5, open_lo=True)
            notes.append((onset, degree, duration, scale))
        stingers[name] = Stinger(tuple(notes))
    return stingers


_PARAM_KEYS: Final = ("description", "range", "curve", "exponent", "steps", "default", "affects")


def _param(name: str, node: Node) -> Param:
    items = mapping(node, _PARAM_KEYS, ("range", "affects"))
    pair = sequence(items["range"], "numbers [lo, hi]", 2, 2)
    lo, hi = (number(p, -math.inf, math.inf, allowed="a finite number") for p in pair)
    if not (lo < hi and math.isfinite(hi - lo)):
        raise items["range"].error(f"[{lo:g}, {hi:g}] is not a range (allowed: [lo, hi] with lo < hi)")
    curve = choice(items["curve"], CURVES, "curve") if "curve" in items else "linear"
    exponent = DEFAULT_EXPONENT
    if "exponent" in items:
        if curve != "exponential":
            raise items["exponent"].error("exponent applies only to curve: exponential", at_key=True)
        exponent = number(items["exponent"], 0.0, MAX_EXPONENT, open_lo=True)
    steps: list[tuple[float, float]] = []
    if curve == "steps":
        if "steps" not in items:
            raise items["curve"].error("curve: steps needs 'steps: [[value, s], ...]'")
        for step in sequence(items["steps"], "steps [value, s]", 1, MAX_STEPS):
            x_node, s_node = sequence(step, "numbers [value, s]", 2, 2)
            x = number(x_node, lo, hi, allowed=f"a value in the range [{lo:g}, {hi:g}]")
            if steps and x <= steps[-1][0]:
                raise x_node.error(
                    f"{x:g} is not above the previous step {steps[-1][0]:g} (allowed: increasing values)"
                )
            steps.append((x, number(s_node, 0.0, 1.0)))
    elif "steps" in items:
        raise items["steps"].error("steps apply only to curve: steps", at_key=True)
    default = None
    if "default" in items and items["default"].value is not None:
        default = number(items["default"], lo, hi, allowed=f"a value in the range [{lo:g}, {hi:g}]")
    weights = mapping(items["affects"], DIMENSIONS, example="{valence: 0.5, tension: -0.3}")
    if not weights:
        raise items["affects"].error(f"name at least one of {', '.join(DIMENSIONS)}")
    v, a, t = (number(weights[d], -MAX_WEIGHT, MAX_WEIGHT) if d in weights else 0.0 for d in DIMENSIONS)
    description = free_text(items["description"]) if "description" in items else ""
    return Param(name, (lo, hi), curve, exponent, tuple(steps), (v, a, t), default, description)


_TOP_KEYS: Final = (
    "version", "name", "description", "base", "tempo", "key", "transition", "humanize", "composer",
    "layers", "states", "start_state", "stingers", "params",
)  # fmt: skip


def _profile(root: Node, default_name: str) -> Profile:
    items = mapping(root, _TOP_KEYS)
    if "version" in items:
        integer(items["version"], SCHEMA_VERSION, SCHEMA_VERSION)
    name = default_name
    if "name" in items:
        name = free_text(items["name"], MAX_NAME_CHARS)
        if not NAME_PATTERN.fullmatch(name):
            raise items["name"].error(f"bad name {name!r} (allowed: letters, digits, _ . -)")
    transition, phrase_bars = _transition(items.get("transition"))
    tempo_range, fixed = _tempo(items.get("tempo"))
    tonic, mode, strength, offbeat, modulate = _key(items.get("key"))
    humanize_ms = humanize_velocity = 0.0
    if "humanize" in items:
        h = mapping(items["humanize"], ("timing_ms", "velocity"))
        humanize_ms = number(h["timing_ms"], 0.0, MAX_HUMANIZE) if "timing_ms" in h else 0.0
        humanize_velocity = number(h["velocity"], 0.0, MAX_HUMANIZE) if "velocity" in h else 0.0
    temperature, top_p, steer = 1.0, 0.95, 0
    if "composer" in items:
        c = mapping(items["composer"], ("temperature", "top_p", "steer"))
        if "steer" in c:
            steer = integer(c["steer"], 0, MAX_STEER)
        if "temperature" in c:
            temperature = number(c["temperature"], 0.0, MAX_TEMPERATURE, open_lo=True)
        if "top_p" in c:
            top_p = number(c["top_p"], 0.0, 1.0, open_lo=True)
    layers = _layers(items.get("layers"))
    states = _states(items.get("states"), transition)
    stingers = _stingers(items.get("stingers"))
    if "start_state" in items:
        start = choice(items["start_state"], sorted(states), "start state")
    else:
        start = "explore" if "explore" in states else next(iter(states))
    params = (
        {n: _param(n, child) for n, child in _names(items["params"], "params", MAX_PARAMS).items()}
        if "params" in items
        else {}
    )
    base = _emotion(items["base"]) if "base" in items else Emotion()
    description = free_text(items["description"]) if "description" in items else ""
    try:
        config = ConductorConfig(
            states=states,
            layers=layers,
            stingers=stingers,
            tempo_range_bpm=tempo_range,
            fixed_tempo_bpm=fixed,
            phrase_bars=phrase_bars,
            key_strength=strength,
            offbeat_pull=offbeat,
            modulate=modulate,
            temperature=temperature,
            top_p=top_p,
            steer=steer,
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
    root = parse_yaml(text, source, _FORMAT)
    stem = Path(source).stem if source and not source.startswith("<") else "profile"
    default_name = stem if NAME_PATTERN.fullmatch(stem) and len(stem) <= MAX_NAME_CHARS else "profile"
    return _profile(root, default_name)


def load_profile(path: str | os.PathLike[str]) -> Profile:
    """Read a profile file (see the module docstring for the schema).

    Args:
        path: a YAML file, UTF-8.

    Raises:
        ProfileError: missing, not a regular file (a directory, FIFO or device), unreadable, too
            large, not UTF-8, not YAML, or not a valid profile; the message is
            ``PATH:LINE: where: what is wrong (allowed: ...)``.
    """
    p = Path(path)
    return parse_profile(read_yaml_file(p, _FORMAT), str(p))
