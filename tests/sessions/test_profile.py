"""Game profiles: shipped examples load, curves have their shapes, the mapper stays in range,
and every bad profile is refused with the file, the line and what is wrong."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine.sessions.profile_file as profile_module
from engine.cli import main
from engine.music.config import DEFAULT_STINGERS, ConductorConfig, Emotion
from engine.sessions.profile import (
    CURVES,
    DEFAULT_PROFILE,
    Param,
    ParamMapper,
    Profile,
    Transition,
    curve_value,
    profile_summary,
)
from engine.sessions.profile_file import ProfileError, load_profile, parse_profile
from engine.sessions.yaml_source import MAX_MESSAGE_CHARS, Format, read_yaml_file

PROFILES_DIR = Path(__file__).resolve().parents[2] / "examples" / "profiles"
SHIPPED = sorted(PROFILES_DIR.glob("*.yaml"))


def _param(curve: str = "linear", **kwargs: object) -> Param:
    values: dict[str, object] = {"range": (0.0, 10.0), "affects": (1.0, 0.0, 0.0)}
    values.update(kwargs)
    return Param("p", curve=curve, **values)  # type: ignore[arg-type]


def _mapper(*params: Param, base: Emotion | None = None) -> ParamMapper:
    return ParamMapper(Profile("t", params={p.name: p for p in params}, base=base or Emotion()))


# ------------------------------------------------------------------------------ shipped profiles
def test_the_three_example_profiles_ship() -> None:
    assert {p.stem for p in SHIPPED} >= {"action", "horror", "cozy"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_profile_loads_into_a_valid_config(path: Path) -> None:
    profile = load_profile(path)
    config = profile.config
    assert isinstance(config, ConductorConfig)
    assert profile.name == path.stem and profile.source == str(path) and profile.description
    assert profile.start_state in config.states and profile.params
    assert config.layer("melody") is not None
    channels = [layer.channel for layer in config.layers]
    assert len(set(channels)) == len(channels)
    for param in profile.params.values():
        assert param.description and any(param.affects)
    mapper = ParamMapper(profile)
    for name, param in profile.params.items():  # every parameter moves the emotion somewhere
        lo, hi = param.range
        assert len({mapper.set(name, lo + (hi - lo) * i / 10) for i in range(11)}) > 1
    # a sound designer's comments do not break anything: the file round-trips through parse_profile
    assert parse_profile(path.read_text(encoding="utf-8"), str(path)) == profile


def test_action_profile() -> None:
    p = load_profile(PROFILES_DIR / "action.yaml")
    assert {"explore", "combat", "boss", "victory"} <= set(p.config.states)
    assert {"health", "enemies_near", "speed"} <= set(p.params)
    assert p.mode_policy == "auto" and p.key_tonic_pc == 4  # E
    mapper = ParamMapper(p)
    calm = mapper.emotion
    busy = mapper.set("enemies_near", 8)
    assert busy.arousal > calm.arousal and busy.tension > calm.tension
    hurt = mapper.set("health", 5)
    assert hurt.valence < busy.valence and hurt.tension >= busy.tension


def test_horror_profile() -> None:
    p = load_profile(PROFILES_DIR / "horror.yaml")
    assert {"stealth", "chase", "jumpscare"} <= set(p.config.states)
    assert {"sanity", "darkness", "monster_distance"} <= set(p.params)
    assert p.config.tempo_range_bpm[1] <= 100 and p.mode_policy == "minor"
    pads = [layer for layer in p.config.layers if layer.instrument == "pad"]
    assert len(pads) >= 2 and 88 <= p.config.layer("harmony").program <= 95  # type: ignore[union-attr]
    jump = p.config.states["jumpscare"]
    assert jump.sync == "immediate" and jump.seek_per_s is None
    mapper = ParamMapper(p)
    far = mapper.emotion
    near = mapper.set("monster_distance", 2)
    assert near.arousal > far.arousal and near.tension > far.tension


def test_cozy_profile_keeps_the_drums_out_of_everyday_life() -> None:
    p = load_profile(PROFILES_DIR / "cozy.yaml")
    assert {"time_of_day", "friends_nearby", "weather"} <= set(p.params)
    assert p.mode_policy == "major" and p.config.tempo_range_bpm[1] <= 110
    drums = p.config.layer("drums")
    assert drums is None or drums.enter_intensity >= 0.6
    if drums is not None:  # only the festival brings them in; no mix of parameters does
        mapper = ParamMapper(p)
        for hour in range(25):
            for friends in range(9):
                for weather in (0.0, 0.5, 1.0):
                    mapper.set("time_of_day", hour)
                    mapper.set("friends_nearby", friends)
                    assert mapper.set("weather", weather).intensity < drums.enter_intensity
        assert p.config.states["festival"].emotion.intensity >= drums.enter_intensity


def test_default_profile_is_the_conductor_default() -> None:
    assert DEFAULT_PROFILE.config == ConductorConfig()
    assert DEFAULT_PROFILE.params == {} and DEFAULT_PROFILE.base == Emotion()
    assert DEFAULT_PROFILE.start_state == "explore" and DEFAULT_PROFILE.mode_policy == "auto"
    empty = parse_profile("{}", "game.yaml")
    assert empty.config == ConductorConfig() and empty.params == {} and empty.name == "game"
    assert ParamMapper(DEFAULT_PROFILE).emotion == Emotion()
    assert profile_summary(DEFAULT_PROFILE)["states"] == sorted(ConductorConfig().states)


def test_the_module_docstring_example_is_a_valid_profile() -> None:
    doc = profile_module.__doc__ or ""
    block = doc.split("A complete example::\n", 1)[1].split("\nHow a parameter", 1)[0]
    p = parse_profile(block, "doc.yaml")
    assert p.name == "action" and set(p.params) == {"health", "enemies_near", "speed"}
    assert p.config.layer("drums") is not None and p.config.stingers.keys() == {"hit"}


def test_every_key_is_read() -> None:
    p = parse_profile(
        """
version: 1
name: full
description: every key
base: {valence: 0.1, arousal: 0.2, tension: 0.3}
tempo: {range_bpm: [60, 120], fixed_bpm: 90}
key: {tonic: Bb, mode: minor, strength: 3, offbeat: 0.4, modulate: false}
transition: {sync: beat, seek_per_s: null, phrase_bars: 8}
humanize: {timing_ms: 5, velocity: 7}
composer: {temperature: 0.9, top_p: 0.8, steer: 6}
layers:
  melody: {channel: 4, program: 73, instrument: pluck, gain_db: -3, enter_intensity: 0.1}
  bass: {}
states:
  a: {valence: 0.5}
  b: {arousal: -0.5, seek_per_s: 2, sync: phrase}
start_state: b
stingers:
  ping: [[0, 0, 4, 1]]
params:
  p: {range: [-5, 5], curve: linear, default: 0, affects: {tension: 1}}
""",
        "full.yaml",
    )
    c = p.config
    assert (p.name, p.description, p.base) == ("full", "every key", Emotion(0.1, 0.2, 0.3))
    assert c.tempo_range_bpm == (60.0, 120.0) and c.fixed_tempo_bpm == 90.0
    assert (p.key_tonic_pc, p.mode_policy, c.key_strength, c.offbeat_pull) == (10, "minor", 3.0, 0.4)
    assert c.modulate is False
    assert p.transition == Transition("beat", None) and c.phrase_bars == 8
    assert (c.humanize_ms, c.humanize_velocity, c.temperature, c.top_p, c.steer) == (5.0, 7.0, 0.9, 0.8, 6)
    melody, bass = c.layers
    assert (melody.channel, melody.program, melody.instrument, melody.gain_db) == (4, 73, "pluck", -3.0)
    # defaults for the layer; no instrument: the program's General MIDI voice (33: a bass)
    assert (bass.channel, bass.program, bass.instrument) == (2, 33, None)
    assert c.states["a"].seek_per_s is None and c.states["a"].sync == "beat"  # from transition
    assert c.states["b"].seek_per_s == 2.0 and c.states["b"].sync == "phrase"
    assert p.start_state == "b" and set(c.stingers) == {"ping"}
    assert p.params["p"].range == (-5.0, 5.0) and p.params["p"].affects == (0.0, 0.0, 1.0)
    assert ParamMapper(p).emotion == Emotion(0.1, 0.2, 0.8)  # default 0 is halfway: 0.3 + 0.5


@pytest.mark.parametrize(
    ("tonic", "pc"),
    [
        ("C", 0),
        ("C#", 1),
        ("Db", 1),
        ("d", 2),
        ("Eb", 3),
        ("F♯", 6),
        ("B", 11),
        ("Cb", 11),
        (7, 7),
        ("auto", None),
    ],
)
def test_tonics(tonic: object, pc: int | None) -> None:
    text = f"key: {{tonic: {tonic if not isinstance(tonic, str) else repr(tonic)}}}"
    assert parse_profile(text).key_tonic_pc == pc


def test_numbers_with_plain_exponents_are_numbers() -> None:
    p = parse_profile("base: {valence: 1e-1, arousal: -2.5E-1, tension: 5.0e-1}\nname: e5")
    assert p.base == Emotion(0.1, -0.25, 0.5) and p.name == "e5"


def test_stingers_and_states_defaults() -> None:
    assert parse_profile("{}").config.stingers == DEFAULT_STINGERS
    assert parse_profile("stingers: {}").config.stingers == {}
    assert parse_profile("params:\n").params == {}  # a section with everything commented out
    assert parse_profile("states: {x: {}}").start_state == "x"  # no explore: the first state


# ------------------------------------------------------------------------------ curves
def test_linear_curve() -> None:
    p = _param("linear")
    assert [p.shape(v) for v in (0, 2.5, 5, 10)] == [0.0, 0.25, 0.5, 1.0]


def test_smoothstep_curve() -> None:
    p = _param("smoothstep")
    assert p.shape(0) == 0.0 and p.shape(10) == 1.0 and p.shape(5) == pytest.approx(0.5)
    assert p.shape(0.1) < 0.01 and p.shape(9.9) > 0.99  # flat at both ends
    assert p.shape(2.5) == pytest.approx(0.15625)  # 3x² - 2x³ at 0.25


@pytest.mark.parametrize("exponent", [0.25, 0.5, 1.0, 2.0, 3.0, 10.0])
def test_exponential_curve(exponent: float) -> None:
    p = _param("exponential", exponent=exponent)
    assert p.shape(0) == 0.0 and p.shape(10) == 1.0
    for x in (0.1, 0.3, 0.5, 0.9):
        assert p.shape(10 * x) == pytest.approx(x**exponent)
    assert (p.shape(5) < 0.5) == (exponent > 1.0)  # > 1 reacts late, < 1 early


def test_steps_curve_uses_thresholds_in_game_units() -> None:
    p = _param("steps", range=(0.0, 100.0), steps=((10.0, 0.2), (50.0, 0.6), (90.0, 1.0)))
    assert p.shape(0) == 0.0 and p.shape(9.99) == 0.0  # below the first threshold
    assert p.shape(10) == 0.2 and p.shape(49.9) == 0.2
    assert p.shape(50) == 0.6 and p.shape(89) == 0.6
    assert p.shape(90) == 1.0 and p.shape(100) == 1.0 and p.shape(1e9) == 1.0
    down = _param("steps", range=(0.0, 50.0), steps=((0.0, 1.0), (5.0, 0.7), (30.0, 0.0)))
    assert [down.shape(v) for v in (-1, 0, 4, 5, 29, 30, 50)] == [1.0, 1.0, 1.0, 0.7, 0.7, 0.0, 0.0]


@given(a=st.floats(-20, 30), b=st.floats(-20, 30), exponent=st.floats(0.01, 100))
def test_continuous_curves_are_monotonic_and_in_unit_range(a: float, b: float, exponent: float) -> None:
    lo, hi = min(a, b), max(a, b)
    for curve in ("linear", "smoothstep", "exponential"):
        p = _param(curve, exponent=exponent)
        s_lo, s_hi = p.shape(lo), p.shape(hi)
        assert 0.0 <= s_lo <= s_hi <= 1.0


def test_curve_value_refuses_nan_and_steps() -> None:
    with pytest.raises(ValueError):
        curve_value("linear", math.nan)
    with pytest.raises(ValueError):
        curve_value("steps", 0.5)
    assert set(CURVES) == {"linear", "smoothstep", "exponential", "steps"}


# ------------------------------------------------------------------------------ the mapper
def test_weights_add_and_clip() -> None:
    a = Param("a", (0.0, 1.0), affects=(2.0, -2.0, 0.5))
    b = Param("b", (0.0, 1.0), affects=(0.3, 0.0, -0.25))
    m = _mapper(a, b, base=Emotion(0.1, 0.2, 0.0))
    assert m.emotion == Emotion(0.1, 0.2, 0.0)  # nothing set: the base
    e = m.set("a", 0.25)
    assert (e.valence, e.arousal, e.tension) == pytest.approx((0.6, -0.3, 0.125))
    e = m.set("b", 1.0)
    assert (e.valence, e.arousal, e.tension) == pytest.approx((0.9, -0.3, -0.125))
    e = m.set("a", 1.0)
    assert (e.valence, e.arousal, e.tension) == pytest.approx((1.0, -1.0, 0.25))  # clipped
    assert m.values == {"a": 1.0, "b": 1.0}
    assert m.reset() == Emotion(0.1, 0.2, 0.0) and m.values == {}
    assert m.rebase(Emotion(-0.5, 0.0, 0.0)) == Emotion(-0.5, 0.0, 0.0)
    assert m.set("b", 0.5).valence == pytest.approx(-0.35)


def test_values_outside_the_range_are_clamped() -> None:
    for curve in ("linear", "smoothstep", "exponential"):
        m = _mapper(_param(curve, range=(-3.0, 7.0)))
        assert m.set("p", -1e300) == m.set("p", -3) == m.set("p", -3.5)
        assert m.set("p", 1e300) == m.set("p", 7) == m.set("p", 8)
        assert m.set("p", 7).valence == 1.0 and m.set("p", -3).valence == 0.0


def test_defaults_contribute_until_the_game_sends_a_value() -> None:
    p = Param("p", (0.0, 10.0), affects=(0.0, 1.0, 0.0), default=5.0)
    m = _mapper(p)
    assert m.emotion.arousal == 0.5
    assert m.set("p", 0).arousal == 0.0 and m.reset().arousal == 0.5


def test_the_mapper_refuses_unknown_names_and_non_finite_values() -> None:
    m = _mapper(Param("health", (0.0, 1.0), affects=(1.0, 0.0, 0.0)))
    with pytest.raises(ValueError, match=r"unknown parameter 'mana' \(allowed: health\)"):
        m.set("mana", 1.0)
    for bad in (math.nan, math.inf, -math.inf, True, "1", None, 10**400):
        with pytest.raises(ValueError, match="finite number"):
            m.set("health", bad)  # type: ignore[arg-type]
    assert m.values == {} and m.emotion == Emotion()
    with pytest.raises(ValueError, match="declares no parameters"):
        ParamMapper(DEFAULT_PROFILE).set("health", 1.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"range": (1.0, 1.0)},
        {"range": (0.0, math.nan)},
        {"range": (-1e308, 1e308)},  # the width overflows
        {"curve": "cubic"},
        {"curve": "exponential", "exponent": 0.0},
        {"curve": "steps"},
        {"steps": ((1.0, 0.5),)},
        {"curve": "steps", "steps": ((5.0, 0.5), (5.0, 0.6))},
        {"curve": "steps", "steps": ((5.0, 1.5),)},
        {"affects": (3.0, 0.0, 0.0)},
        {"affects": (math.nan, 0.0, 0.0)},
        {"default": 11.0},
    ],
)
def test_params_built_in_code_are_validated_too(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        _param(**kwargs)  # type: ignore[arg-type]


_STRESS = Profile(
    "stress",
    params={
        p.name: p
        for p in (
            Param("a", (0.0, 1.0), "linear", affects=(2.0, 2.0, 2.0)),
            Param("b", (-1e300, 1e300), "smoothstep", affects=(-2.0, 2.0, -2.0)),
            Param("c", (0.0, 1e-300), "exponential", exponent=0.01, affects=(2.0, -2.0, 2.0)),
            Param("d", (-5.0, 5.0), "steps", steps=((-5.0, 1.0), (0.0, 0.0)), affects=(-2.0, -2.0, 2.0)),
            Param("e", (0.0, 100.0), "exponential", exponent=100.0, affects=(2.0, 2.0, -2.0), default=50.0),
        )
    },
    base=Emotion(1.0, -1.0, 0.5),
)
_MAPPERS = {"stress": _STRESS, **{p.stem: load_profile(p) for p in SHIPPED}}


@settings(max_examples=300, deadline=None)
@given(
    which=st.sampled_from(sorted(_MAPPERS)),
    moves=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", "d", "e", "health", "sanity", "weather", "speed", "nope", ""]),
            st.one_of(
                st.floats(allow_nan=True, allow_infinity=True),
                st.integers(-(10**400), 10**400),
                st.booleans(),
                st.text(max_size=3),
                st.none(),
            ),
        ),
        max_size=12,
    ),
)
def test_the_mapper_stays_in_range_and_only_raises_value_error(
    which: str, moves: list[tuple[str, object]]
) -> None:
    mapper = ParamMapper(_MAPPERS[which])
    for name, value in moves:
        try:
            e = mapper.set(name, value)  # type: ignore[arg-type]
        except ValueError:
            continue
        assert isinstance(value, int | float) and not isinstance(value, bool)
        for x in (e.valence, e.arousal, e.tension):
            assert math.isfinite(x) and -1.0 <= x <= 1.0
    assert mapper.emotion == mapper.rebase(mapper.base)


@given(value=st.floats())
def test_set_never_raises_anything_but_value_error_for_a_float(value: float) -> None:
    for profile in _MAPPERS.values():
        mapper = ParamMapper(profile)
        for name in profile.params:
            try:
                e = mapper.set(name, value)
            except ValueError:
                assert not math.isfinite(value)
                continue
            assert all(-1.0 <= x <= 1.0 for x in (e.valence, e.arousal, e.tension))


# ------------------------------------------------------------------------------ bad profiles
# Each case is a profile with its mistake on the line marked "#<" (the expected line), and a
# piece of the expected message.
BAD = {
    "unknown top-level key": (
        "tempo: {range_bpm: [60, 120]}\ncolour: red  #<",
        "unknown key 'colour' (allowed: ",
    ),
    "unknown param key": (
        "params:\n  h:\n    range: [0, 1]\n    curv: linear  #<\n    affects: {valence: 1}",
        "params.h.curv: unknown key 'curv' (allowed: description, range, curve,",
    ),
    "unknown layer key": (
        "layers:\n  melody:\n    chanel: 2  #<",
        "chanel: unknown key 'chanel' (allowed: channel, program",
    ),
    "wrong type: list expected": ("tempo:\n  range_bpm: fast  #<", "tempo.range_bpm: expected a list"),
    "wrong type: number expected": (
        "base: {valence: high}  #<",
        "base.valence: expected a number, got 'high'",
    ),
    "wrong type: bool for a number": ("transition:\n  seek_per_s: yes  #<", "expected a number, got True"),
    "wrong type: mapping expected": ("params:\n  h: 3  #<", "params.h: expected a mapping"),
    "wrong type: float channel": (
        "layers:\n  melody: {channel: 1.5}  #<",
        "expected a whole number, got 1.5",
    ),
    "quoted number": ("base:\n  arousal: '0.5'  #<", "got '0.5' (write numbers without quotes)"),
    "out of range: emotion": (
        "base:\n  valence: 0.5\n  arousal: 1.5  #<",
        "1.5 is out of range (allowed: a number in [-1, 1])",
    ),
    "out of range: program": (
        "layers:\n  melody: {channel: 0, program: 128}  #<",
        "layers.melody.program: 128 is out of range (allowed: 0..127)",
    ),
    "out of range: weight": (
        "params:\n  h:\n    range: [0, 1]\n    affects:\n      tension: 2.5  #<",
        "params.h.affects.tension: 2.5 is out of range (allowed: a number in [-2, 2])",
    ),
    "out of range: tempo": (
        "tempo:\n  range_bpm:\n    - 60\n    - 500  #<",
        "500 is out of range (allowed: a number in [20, 400])",
    ),
    "out of range: seek": ("states:\n  a: {seek_per_s: 0}  #<", "(allowed: a number in (0, 100] or null)"),
    "out of range: exponent": (
        "params:\n  h: {range: [0, 1], curve: exponential, exponent: -1, affects: {valence: 1}}  #<",
        "exponent: -1 is out of range (allowed: a number in (0, 100])",
    ),
    "out of range: default": (
        "params:\n  h:\n    range: [0, 10]\n    default: 11  #<\n    affects: {valence: 1}",
        "params.h.default: 11 is out of range (allowed: a value in the range [0, 10])",
    ),
    "bad curve name": (
        "params:\n  h:\n    range: [0, 1]\n    curve: cubic  #<\n    affects: {valence: 1}",
        "params.h.curve: unknown curve 'cubic' (allowed: linear, smoothstep, exponential, steps)",
    ),
    "duplicate channel": (
        "layers:\n  melody: {channel: 1}\n  harmony: {channel: 2}\n  bass:\n    channel: 1  #<",
        "channel 1 is already used by layer 'melody' (line 2)",
    ),
    "duplicate channel from a default": (
        "layers:\n  melody: {channel: 2}\n  bass: {}  #<",
        "channel 2 is already used",
    ),
    "stinger channel": ("layers:\n  melody: {channel: 3}  #<", "channel 3 is reserved for stingers"),
    "python tag": (
        "params: !!python/object/apply:os.system ['echo hi']  #<",
        "!!python/object/apply:os.system is not allowed",
    ),
    "python tag in a scalar": ("name: !!python/name:os.system  #<", "is not allowed"),
    "custom tag": ("base:\n  valence: !cool 0.5  #<", "YAML tag !cool is not allowed"),
    "set tag": ("states: !!set {a, b}  #<", "!!set is not allowed"),
    "date value": ("description: 2024-01-01  #<", "!!timestamp is not allowed"),
    "anchor": ("base: &b {valence: 0.5}  #<\nstates: {x: *b}", "anchors (&name) are not allowed"),
    "alias": ("stingers:\n  a: [[0, 0, 4, 1]]\n  b: *a  #<", "not valid YAML"),
    "NaN in a range": (
        "params:\n  h:\n    range: [0, .nan]  #<\n    affects: {valence: 1}",
        "params.h.range[1]: nan is not a finite number",
    ),
    "infinite weight": (
        "params:\n  h:\n    range: [0, 1]\n    affects: {valence: .inf}  #<",
        "inf is not a finite number",
    ),
    "NaN in an emotion": (
        "states:\n  a:\n    tension: .NaN  #<",
        "states.a.tension: nan is not a finite number",
    ),
    "lo == hi": (
        "params:\n  h:\n    range: [5, 5]  #<\n    affects: {valence: 1}",
        "[5, 5] is not a range (allowed: [lo, hi] with lo < hi)",
    ),
    "lo > hi": ("params:\n  h:\n    range: [10, 0]  #<\n    affects: {valence: 1}", "[10, 0] is not a range"),
    "range too wide": (
        "params:\n  h:\n    range: [-1.0e308, 1.0e308]  #<\n    affects: {valence: 1}",
        "is not a range",
    ),
    "range of one": (
        "params:\n  h:\n    range: [5]  #<\n    affects: {valence: 1}",
        "expected 2..2 numbers [lo, hi], got 1",
    ),
    "missing range": (
        "params:\n  h:  #<\n    affects: {valence: 1}",
        "params.h: missing required key 'range'",
    ),
    "missing affects": ("params:\n  h:  #<\n    range: [0, 1]", "params.h: missing required key 'affects'"),
    "empty affects": (
        "params:\n  h:\n    range: [0, 1]\n    affects: {}  #<",
        "name at least one of valence, arousal, tension",
    ),
    "steps without steps": (
        "params:\n  h:\n    range: [0, 1]\n    curve: steps  #<\n    affects: {valence: 1}",
        "curve: steps needs 'steps: [[value, s], ...]'",
    ),
    "steps with another curve": (
        "params:\n  h:\n    range: [0, 1]\n    steps: [[0, 1]]  #<\n    affects: {valence: 1}",
        "steps apply only to curve: steps",
    ),
    "exponent with another curve": (
        "params:\n  h:\n    range: [0, 1]\n    curve: smoothstep\n"
        "    exponent: 2  #<\n    affects: {valence: 1}",
        "exponent applies only to curve: exponential",
    ),
    "steps not increasing": (
        "params:\n  h:\n    range: [0, 10]\n    curve: steps\n"
        "    steps:\n      - [5, 0.5]\n      - [5, 0.7]  #<\n    affects: {valence: 1}",
        "params.h.steps[1][0]: 5 is not above the previous step 5",
    ),
    "step outside the range": (
        "params:\n  h:\n    range: [0, 10]\n    curve: steps\n"
        "    steps: [[20, 0.5]]  #<\n    affects: {valence: 1}",
        "20 is out of range (allowed: a value in the range [0, 10])",
    ),
    "step level above 1": (
        "params:\n  h:\n    range: [0, 10]\n    curve: steps\n"
        "    steps:\n      - [2, 1.5]  #<\n    affects: {valence: 1}",
        "params.h.steps[0][1]: 1.5 is out of range (allowed: a number in [0, 1])",
    ),
    "duplicate key": ("name: a\ndescription: x\nname: b  #<", "duplicate key 'name' (first at line 1)"),
    "duplicate param": (
        "params:\n  h: {range: [0, 1], affects: {valence: 1}}\n"
        "  h: {range: [0, 1], affects: {valence: 1}}  #<",
        "duplicate key 'h'",
    ),
    "bad sync": (
        "transition:\n  sync: later  #<",
        "unknown sync point 'later' (allowed: immediate, beat, bar, phrase)",
    ),
    "bad state sync": ("states:\n  a: {sync: soon}  #<", "states.a.sync: unknown sync point 'soon'"),
    "tempo range backwards": ("tempo:\n  range_bpm: [140, 60]  #<", "is not [slowest, fastest]"),
    "melody missing": ("layers:  #<\n  bass: {channel: 2}", "the melody layer is required"),
    "unknown layer": (
        "layers:\n  melody: {}\n  vocals: {}  #<",
        "unknown layer 'vocals' (allowed: melody, harmony, bass, drums)",
    ),
    "bad instrument": (
        "layers:\n  melody: {instrument: kazoo}  #<",
        "unknown instrument 'kazoo' (allowed: piano, pad,",
    ),
    "bad state name": ("states:\n  big boss: {}  #<", "bad name 'big boss'"),
    "no states": ("states: {}  #<", "declare at least one state"),
    "unknown start state": ("states: {a: {}}\nstart_state: b  #<", "unknown start state 'b' (allowed: a)"),
    "start state missing from the defaults": (
        "start_state: boss  #<",
        "unknown start state 'boss' (allowed: calm,",
    ),
    "bad version": ("version: 2  #<", "version: 2 is out of range (allowed: 1..1)"),
    "bad tonic": ("key:\n  tonic: H  #<", "unknown tonic 'H' (allowed: C, C#"),
    "bad mode": ("key:\n  mode: dorian  #<", "unknown mode 'dorian' (allowed: auto, major, minor)"),
    "key strength": (
        "key:\n  strength: 9  #<",
        "key.strength: 9 is out of range (allowed: a number in [0, 8])",
    ),
    "key offbeat": (
        "key:\n  offbeat: 1.5  #<",
        "key.offbeat: 1.5 is out of range (allowed: a number in [0, 1])",
    ),
    "key modulate": ("key:\n  modulate: 1  #<", "key.modulate: expected true or false, got 1"),
    "bad stinger note": (
        "stingers:\n  hit:\n    - [0, 30, 4, 1.0]  #<",
        "stingers.hit[0][1]: 30 is out of range (allowed: -21..21)",
    ),
    "short stinger note": ("stingers:\n  hit: [[0, 0, 4]]  #<", "expected 4..4 numbers"),
    "empty stinger": ("stingers:\n  hit: []  #<", "expected 1..64 notes"),
    "humanize": (
        "humanize: {timing_ms: 31}  #<",
        "humanize.timing_ms: 31 is out of range (allowed: a number in [0, 30])",
    ),
    "top_p": ("composer: {top_p: 0}  #<", "composer.top_p: 0 is out of range (allowed: a number in (0, 1])"),
    "steer": ("composer: {steer: 33}  #<", "composer.steer: 33 is out of range"),
    "complex key": ("params:\n  ? [a, b]  #<\n  : 1", "mapping keys must be plain names"),
    "not a mapping": ("- 1  #<\n- 2", "expected a mapping with keys version, name,"),
    "empty file": ("# nothing here  #<", "the profile is empty"),
    "broken YAML": ("params: [  #<", "not valid YAML"),
    "tab indentation": ("params:\n\th: 1  #<", "not valid YAML"),
    "two documents": ("name: a\n---  #<\nname: b", "expected a single document"),
}


@pytest.mark.parametrize(("text", "message"), BAD.values(), ids=BAD.keys())
def test_bad_profiles_name_the_file_the_line_and_the_problem(tmp_path: Path, text: str, message: str) -> None:
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "#<" in row)
    path = tmp_path / "game.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert str(info.value).startswith(f"{path}:{line}: "), str(info.value)
    assert message in str(info.value)
    with pytest.raises(ProfileError, match=re.escape(f"<string>:{line}: ")):
        parse_profile(text)


def test_errors_mention_what_is_allowed_for_choices_and_ranges() -> None:
    for key, (_, message) in BAD.items():
        if any(word in key for word in ("out of range", "bad curve", "unknown", "bad sync", "bad mode")):
            assert "(allowed: " in message, key


def test_unreadable_files_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ProfileError, match=re.escape(f"{missing}: cannot read")):
        load_profile(missing)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ProfileError, match=re.escape(f"{latin}: not UTF-8")):
        load_profile(latin)
    with pytest.raises(ProfileError, match="too large"):
        parse_profile("#" * (profile_module.MAX_PROFILE_CHARS + 1))
    with pytest.raises(ProfileError, match=r"nested too deeply|not valid YAML"):
        parse_profile("a: " + "[" * 20_000)


@pytest.mark.parametrize(
    ("data", "where", "shown"),
    [
        (b"name: a\x00b\n", "1:8", "'\\x00' (U+0000)"),
        (b"version: 1\nstates:\n  calm: {valence: 0.5\x07}\n", "3:22", "'\\x07' (U+0007)"),
        (b'description: "tab\tis fine, \x1b is not"\n', "1:28", "'\\x1b' (U+001B)"),
    ],
    ids=["NUL", "BEL", "ESC"],
)
def test_control_characters_are_one_line_with_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes, where: str, shown: str
) -> None:
    """They gave a traceback (PyYAML's ReaderError, from ``serve --profile`` too)."""
    path = tmp_path / "game.yaml"
    path.write_bytes(data)
    expected = (
        f"{path}:{where}: control character {shown} is not allowed "
        "(allowed: printable text, tabs and line breaks)"
    )
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert str(info.value) == expected
    with pytest.raises(ProfileError, match=re.escape(f"<string>:{where}: control character {shown}")):
        parse_profile(data.decode())
    assert main(["serve", "--profile", str(path)]) == 1
    assert capsys.readouterr().err == f"affetto serve: error: {expected}\n"


def test_profiles_that_are_not_regular_files_are_refused_without_opening_them(
    tmp_path: Path, special_files: list[tuple[Path, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    """A directory, a FIFO (opening it blocks) or a device: /dev/zero passed the size check (its
    size reads 0) and was read until memory ran out."""
    for path, kind in special_files:
        why = f"{kind}, not a profile"
        with pytest.raises(ProfileError) as info:
            load_profile(path)
        assert str(info.value) == f"{path} {why}"
        assert main(["serve", "--profile", str(path)]) == 1
        assert capsys.readouterr().err == f"affetto serve: error: {path} {why}\n"


def test_reading_stops_past_the_limit_whatever_stat_says() -> None:
    """/proc files are regular files whose size reads 0: at most the limit + 1 bytes are read."""
    maps = Path("/proc/self/maps")
    if not maps.is_file() or maps.stat().st_size != 0:
        pytest.skip("needs Linux's /proc (a regular file whose size reads 0)")
    tiny = Format("profile", ProfileError, 16, "a mapping of profile settings")
    with pytest.raises(ProfileError) as info:
        read_yaml_file(maps, tiny)
    assert str(info.value) == f"{maps}: too large (allowed: at most 16 characters)"


#: what YAML is made of, and what it must not hold
_YAML_ALPHABET = [*"ab01 .-+:_,[]{}&*!|>'\"#%@`?~=\n\t\r", "\x00", "\x07", "\x1b", "\x7f", "\x85", "\x9b"]


@settings(max_examples=300, deadline=None)
@given(
    text=st.one_of(
        st.text(max_size=200),
        st.text(st.sampled_from([*_YAML_ALPHABET, "\ufeff", "\ud800", "\uffff", "é"]), max_size=200),
        st.builds(
            lambda key, value: f"{key}: {value}\n",
            st.sampled_from(["version", "name", "tempo", "states", "params", "x" * 500]),
            st.one_of(st.integers(-(10**120), 10**120).map(str), st.text(st.sampled_from(_YAML_ALPHABET))),
        ),
    )
)
def test_any_text_is_a_profile_or_one_short_profile_error(text: str) -> None:
    try:
        parse_profile(text)
    except ProfileError as exc:
        message = str(exc)
        assert message.startswith("<string>:") and "\n" not in message, message
        assert len(message) <= MAX_MESSAGE_CHARS, message


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200))
def test_any_bytes_are_a_profile_or_one_short_profile_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(data)
    try:
        load_profile(path)
    except ProfileError as exc:
        message = str(exc)
        assert message.startswith(f"{path}") and "\n" not in message, message
        assert len(message) <= len(str(path)) + MAX_MESSAGE_CHARS, message


def test_the_profile_is_frozen() -> None:
    p = parse_profile("{}")
    with pytest.raises(AttributeError):
        p.name = "other"  # type: ignore[misc]
