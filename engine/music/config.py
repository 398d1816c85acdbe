"""The conductor's tables and settings: states, layers, stingers, sync points, tempo range.

Everything a profile may change lives here as validated, frozen dataclasses, with the defaults
the demo uses. Emotion coordinates are (valence, arousal, tension), each in [-1, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

from engine.checks import check_choice, check_real, check_steer, check_unit
from engine.music.keys import MODE_POLICIES
from engine.music.tempo_map import DEFAULT_TEMPO_RANGE_BPM, check_tempo, tempo_for_emotion
from engine.outputs.gm import INSTRUMENTS, volume_for_gain_db

SYNC_POINTS: Final = ("immediate", "beat", "bar", "phrase")
MAX_SEEK_PER_S: Final = 100.0
#: bars of history a live conductor keeps behind the newest bar it composed (their BarInfo, the
#: notes :meth:`engine.music.conductor.Conductor.heard` reads, the tempo changes): its readers look
#: back a bar and a lookahead (the bar at the playhead), so this covers seconds of lateness even
#: at the fastest tempo, and a session's memory stays flat however long it plays
HISTORY_BARS: Final = 32
MIN_HISTORY_BARS: Final = 4


def check_sync(sync: object) -> str:
    """``sync`` if it is one of SYNC_POINTS.

    Raises:
        TypeError, ValueError: anything else.
    """
    return check_choice("sync", sync, SYNC_POINTS)


def check_seek(seek_per_s: object) -> float | None:
    """A seek speed in emotion units per second, in (0, MAX_SEEK_PER_S]; None: jump at once.

    Raises:
        TypeError, ValueError: anything else.
    """
    if seek_per_s is None:
        return None
    return check_real("seek_per_s", seek_per_s, 0.0, MAX_SEEK_PER_S, low_open=True)


@dataclass(frozen=True)
class Emotion:
    """A point in emotion space; each coordinate in [-1, 1]."""

    valence: float = 0.0
    arousal: float = 0.0
    tension: float = 0.0

    def __post_init__(self) -> None:
        for name in ("valence", "arousal", "tension"):
            object.__setattr__(self, name, check_unit(name, getattr(self, name)))

    @property
    def intensity(self) -> float:
        """How much is going on, in [0, 1]: mostly arousal, partly tension."""
        return min(1.0, max(0.0, 0.7 * (self.arousal + 1.0) / 2.0 + 0.3 * (self.tension + 1.0) / 2.0))

    def approach(self, target: Emotion, max_step: float) -> Emotion:
        """One step of at most ``max_step`` per coordinate toward ``target`` (inf: jump)."""

        def move(a: float, b: float) -> float:
            return b if abs(b - a) <= max_step else a + math.copysign(max_step, b - a)

        return Emotion(
            move(self.valence, target.valence),
            move(self.arousal, target.arousal),
            move(self.tension, target.tension),
        )


@dataclass(frozen=True)
class State:
    """A named game state: where the music goes, how fast, and at which sync point by default."""

    emotion: Emotion
    seek_per_s: float | None = 0.5
    sync: str = "bar"

    def __post_init__(self) -> None:
        check_seek(self.seek_per_s)
        check_sync(self.sync)


DEFAULT_STATES: Final = {
    "explore": State(Emotion(0.5, -0.2, -0.2), 0.4, "bar"),
    "calm": State(Emotion(0.6, -0.7, -0.6), 0.3, "bar"),
    "stealth": State(Emotion(-0.3, -0.6, 0.5), 0.5, "bar"),
    "mystery": State(Emotion(-0.2, -0.3, 0.3), 0.4, "bar"),
    "danger": State(Emotion(-0.5, 0.3, 0.7), 1.0, "beat"),
    "combat": State(Emotion(-0.4, 0.9, 0.9), 2.0, "bar"),
    "victory": State(Emotion(0.9, 0.6, -0.4), None, "bar"),
    "sorrow": State(Emotion(-0.8, -0.7, 0.0), 0.3, "phrase"),
}


@dataclass(frozen=True)
class Layer:
    """One layer of the texture, on its own MIDI channel.

    Attributes:
        name: "melody", "harmony", "bass" or "drums".
        channel: MIDI channel 0..15 (drums conventionally 9).
        program: General MIDI program 0..127 sent at start (ignored on channel 9).
        instrument: the built-in synth's voice for it (one of engine.outputs.gm.INSTRUMENTS);
            None: the program's General MIDI voice (engine.outputs.gm.voice_for_program). MIDI
            ports get only the program.
        gain_db: channel gain (sent as CC 7), in [-60, 6].
        enter_intensity: the layer plays while intensity >= this (0: always); it leaves below
            ``enter_intensity - 0.05`` (hysteresis), at bar lines.
    """

    name: str
    channel: int
    program: int
    instrument: str | None = None
    gain_db: float = 0.0
    enter_intensity: float = 0.0

    def __post_init__(self) -> None:
        if self.name not in LAYER_NAMES:
            raise ValueError(f"layer name must be one of {LAYER_NAMES}, got {self.name!r}")
        if not 0 <= self.channel <= 15:
            raise ValueError(f"layer channel must be in 0..15, got {self.channel!r}")
        if not 0 <= self.program <= 127:
            raise ValueError(f"layer program must be in 0..127, got {self.program!r}")
        if self.instrument is not None and self.instrument not in INSTRUMENTS:
            raise ValueError(
                f"layer instrument must be one of {INSTRUMENTS} or None, got {self.instrument!r}"
            )
        if not (math.isfinite(self.gain_db) and -60.0 <= self.gain_db <= 6.0):
            raise ValueError(f"layer gain_db must be in [-60, 6], got {self.gain_db!r}")
        if not 0.0 <= self.enter_intensity <= 1.0:
            raise ValueError(f"layer enter_intensity must be in [0, 1], got {self.enter_intensity!r}")

    @property
    def volume_cc(self) -> int:
        """The CC 7 value of ``gain_db`` (see :func:`engine.outputs.gm.volume_for_gain_db`)."""
        return volume_for_gain_db(self.gain_db)


LAYER_NAMES: Final = ("melody", "harmony", "bass", "drums")
DEFAULT_LAYERS: Final = (
    Layer("melody", 0, 0, None, 0.0, 0.0),  # Acoustic Grand Piano
    Layer("harmony", 1, 89, None, -6.0, 0.0),  # Pad 2 (warm)
    Layer("bass", 2, 33, None, -3.0, 0.3),  # Electric Bass (finger)
    Layer("drums", 9, 0, None, -4.0, 0.62),  # channel 10: the kit
)
#: Channel and voice of stingers (one-shots over the texture).
STINGER_CHANNEL: Final = 3
STINGER_PROGRAM: Final = 46  # orchestral harp (the synth plays it as a pluck)


@dataclass(frozen=True)
class Stinger:
    """A short phrase in scale degrees, played in the key and mode of the moment.

    ``notes`` are (onset in sixteenths, scale degree (0 = tonic, 7 = octave up, may be
    negative), duration in sixteenths, velocity scale in (0, 1.5]).
    """

    notes: tuple[tuple[int, int, int, float], ...]

    def __post_init__(self) -> None:
        if not self.notes:
            raise ValueError("a stinger needs at least one note")
        for onset, degree, dur, scale in self.notes:
            if not (0 <= onset <= 64 and -21 <= degree <= 21 and 1 <= dur <= 64 and 0 < scale <= 1.5):
                raise ValueError(
                    "stinger notes are (onset 0..64, degree -21..21, duration 1..64, "
                    "velocity scale (0, 1.5]), "
                    f"got {(onset, degree, dur, scale)}"
                )


DEFAULT_STINGERS: Final = {
    "hit": Stinger(((0, -7, 8, 1.0), (0, 0, 8, 0.9), (0, 2, 8, 0.8), (0, 4, 8, 0.8), (0, 7, 8, 1.0))),
    "rise": Stinger(((0, 0, 2, 0.7), (1, 2, 2, 0.8), (2, 4, 2, 0.9), (3, 7, 6, 1.0))),
    "fall": Stinger(((0, 7, 2, 1.0), (1, 4, 2, 0.9), (2, 2, 2, 0.8), (3, 0, 6, 0.7))),
    "fanfare": Stinger(((0, 4, 1, 0.9), (1, 4, 1, 0.8), (2, 4, 1, 0.8), (3, 7, 8, 1.1), (3, 0, 8, 0.8))),
    "reveal": Stinger(((0, 0, 12, 0.8), (2, 4, 10, 0.8), (4, 9, 8, 0.9), (6, 11, 6, 1.0))),
}


@dataclass(frozen=True)
class ConductorConfig:
    """Settings of one session's conductor.

    Attributes:
        states: named states (presets).
        layers: the texture's layers (melody required).
        stingers: named stingers.
        tempo_range_bpm: (slowest, fastest): tempo follows arousal inside it.
        fixed_tempo_bpm: a fixed tempo instead (None: follow arousal).
        phrase_bars: bars per phrase (the "phrase" sync point).
        lookahead_beats: how far ahead of the playhead music is composed, in (0, 4] beats.
        key_strength: pull toward the key of the moment (nats; see engine.model.tonal_primer),
            where the emotion is dark or neutral; it eases as valence brightens (none left at +1),
            but the parallel mode's pitch classes keep all of it.
        offbeat_pull: the share of that pull on notes starting between beats in bright music,
            in [0, 1]; it falls by up to half as the emotion darkens toward -V+A (danger wants
            chromatic colour: passing and neighbour tones leave the key, the degrees that say the
            mode keep the full pull; see Conductor._offbeat_pull).
        modulate: each form group's contrasting phrase moves to a related key and the return
            comes home (engine.music.form.in_contrast, engine.music.keys.CONTRAST_KEYS); False:
            every bar in the home key.
        articulation: notes sound as long as the emotion wants (legato in driving music, shorter
            in calm; engine.music.articulation), not as written (False: as written).
        temperature, top_p: the composer's sampling.
        steer: live emotion steering, candidates per bar in 0..MAX_STEER (0, 1: off): each bar
            the conductor composes is chosen among this many by the emotion recognizer and the
            composer's own likelihood (:meth:`engine.model.composer.Composer.start_search`); a
            change that cuts into a bar continues it plainly. A steered session costs the CPU of
            many plain ones (``affetto bench server`` measures how many this machine holds).
        humanize_ms: timing jitter (standard deviation, ms; 0: off).
        humanize_velocity: velocity jitter (standard deviation; 0: off).
        midi_clock: send MIDI clock (24 ppqn) with the notes.
        key_tonic_pc: the tonic to play in, 0 (C) .. 11 (B); None: drawn from the seed.
        mode_policy: "auto" (the mode follows valence), "major" or "minor" (always).
        history_bars: bars of history kept behind the newest (see HISTORY_BARS; at least
            MIN_HISTORY_BARS); None keeps all of it: the offline render (its report lists every
            bar, its MIDI file needs the whole tempo map) and a live recording of a whole session.
    """

    states: dict[str, State] = field(default_factory=lambda: dict(DEFAULT_STATES))
    layers: tuple[Layer, ...] = DEFAULT_LAYERS
    stingers: dict[str, Stinger] = field(default_factory=lambda: dict(DEFAULT_STINGERS))
    tempo_range_bpm: tuple[float, float] = DEFAULT_TEMPO_RANGE_BPM
    fixed_tempo_bpm: float | None = None
    phrase_bars: int = 4
    lookahead_beats: float = 1.0
    key_strength: float = 1.5
    offbeat_pull: float = 1.0
    modulate: bool = True
    articulation: bool = True
    temperature: float = 1.0
    top_p: float = 0.95
    steer: int = 0
    humanize_ms: float = 0.0
    humanize_velocity: float = 0.0
    midi_clock: bool = False
    key_tonic_pc: int | None = None
    mode_policy: str = "auto"
    history_bars: int | None = HISTORY_BARS

    def __post_init__(self) -> None:
        if self.history_bars is not None and (
            isinstance(self.history_bars, bool)
            or not isinstance(self.history_bars, int)
            or self.history_bars < MIN_HISTORY_BARS
        ):
            raise ValueError(
                f"history_bars must be an int >= {MIN_HISTORY_BARS} or None, got {self.history_bars!r}"
            )
        if self.key_tonic_pc is not None and not 0 <= self.key_tonic_pc <= 11:
            raise ValueError(f"key_tonic_pc must be in 0..11 or None, got {self.key_tonic_pc!r}")
        if self.mode_policy not in MODE_POLICIES:
            raise ValueError(f"mode_policy must be one of {MODE_POLICIES}, got {self.mode_policy!r}")
        lo, hi = (check_tempo(t) for t in self.tempo_range_bpm)
        if lo > hi:
            raise ValueError(f"tempo_range_bpm must be (slowest, fastest), got {self.tempo_range_bpm}")
        if self.fixed_tempo_bpm is not None:
            check_tempo(self.fixed_tempo_bpm)
        if not 1 <= self.phrase_bars <= 64:
            raise ValueError(f"phrase_bars must be in 1..64, got {self.phrase_bars!r}")
        if not 0.0 < self.lookahead_beats <= 4.0:
            raise ValueError(
                f"lookahead_beats must be in (0, 4] (at most one bar), got {self.lookahead_beats!r}"
            )
        if not 0.0 <= self.offbeat_pull <= 1.0:
            raise ValueError(f"offbeat_pull must be in [0, 1], got {self.offbeat_pull!r}")
        check_steer(self.steer)
        if not 0.0 <= self.humanize_ms <= 30.0:
            raise ValueError(f"humanize_ms must be in [0, 30], got {self.humanize_ms!r}")
        if not 0.0 <= self.humanize_velocity <= 30.0:
            raise ValueError(f"humanize_velocity must be in [0, 30], got {self.humanize_velocity!r}")
        names = [layer.name for layer in self.layers]
        if "melody" not in names or len(set(names)) != len(names):
            raise ValueError(f"layers must include melody and name each layer once, got {names}")
        channels = [layer.channel for layer in self.layers] + [STINGER_CHANNEL]
        if len(set(channels)) != len(channels):
            raise ValueError(
                f"each layer needs its own channel (stingers use {STINGER_CHANNEL}), got {channels}"
            )

    def tempo_for(self, emotion: Emotion) -> float:
        """The tempo for ``emotion``: fixed, or arousal (and a little tension) mapped into the range."""
        if self.fixed_tempo_bpm is not None:
            return float(self.fixed_tempo_bpm)
        return tempo_for_emotion(emotion.arousal, emotion.tension, self.tempo_range_bpm)

    def layer(self, name: str) -> Layer | None:
        return next((layer for layer in self.layers if layer.name == name), None)
