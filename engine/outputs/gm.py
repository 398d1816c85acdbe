"""General MIDI, in one place: program → built-in synth voice, the drum channel, the CC 7/11 gain
law and the MIDI bytes of an event row.

Every path that turns MIDI into sound reads this table — the live synth sink, the server's
output process, the offline render of a session and :func:`engine.synth.polysynth.render_midi`
— so a program sounds the same live and offline.

A layer may name its voice instead (``Layer.instrument`` in a profile): the conductor's
program change then carries it in the row's ``b`` field (:func:`voice_code`), which MIDI
ignores and the synth sinks honour.
"""

from __future__ import annotations

import math
from typing import Final

from engine.checks import check_choice, check_int
from engine.realtime.kinds import (
    CLOCK,
    CLOCK_CONTINUE,
    CLOCK_START,
    CLOCK_STOP,
    CONTROL,
    NOTE_OFF,
    NOTE_ON,
    PROGRAM,
    SONG_POSITION,
)

#: the built-in synth's voices (indices are the synth kernel's instrument numbers)
INSTRUMENTS: Final[tuple[str, ...]] = ("piano", "pad", "bass", "pluck", "drums")
#: General MIDI's percussion channel (channel 10, zero-based 9)
DRUM_CHANNEL: Final = 9
#: the CC 7 value that is 0 dB (General MIDI's default channel volume)
UNITY_VOLUME: Final = 100
#: the gain of CC 7 or CC 11 at 0 (silent) and the loudest gain the law gives
MIN_GAIN_DB: Final = -120.0
MAX_GAIN_DB: Final = 24.0


def _family(program: int) -> str:
    if 32 <= program <= 39:
        return "bass"  # acoustic, electric, fretless, slap and synth basses
    if 24 <= program <= 31 or program in (45, 46) or 104 <= program <= 108:
        return "pluck"  # guitars; pizzicato strings, harp; sitar, banjo, shamisen, koto, kalimba
    if program <= 15 or program in (47, 55) or 112 <= program <= 119:
        return "piano"  # pianos, chromatic percussion, timpani, orchestra hit, percussive
    return "pad"  # sustained: organs, strings, ensembles, choirs, brass, reeds, pipes, synths, effects


#: the voice of each General MIDI program (0..127) on a melodic channel
GM_VOICES: Final[tuple[str, ...]] = tuple(_family(p) for p in range(128))


def voice_for_program(program: int, channel: int) -> str:
    """The synth voice for General MIDI ``program`` (0..127) on ``channel`` (0..15; 9: drums).

    Pianos, chromatic percussion, timpani, the orchestra hit and the percussive programs
    (112-119) play ``piano``; guitars, pizzicato, harp and plucked ethnic instruments ``pluck``;
    basses (32-39) ``bass``; everything sustained — organs, strings, ensembles, choirs, brass,
    reeds, pipes, synth leads, pads and effects — ``pad``; channel 9 ``drums`` whatever the
    program.

    Raises:
        TypeError / ValueError: ``program`` or ``channel`` outside 0..127 / 0..15.
    """
    program = check_int("program", program, 0, 127)
    channel = check_int("channel", channel, 0, 15)
    return "drums" if channel == DRUM_CHANNEL else GM_VOICES[program]


def voice_code(instrument: str | None) -> int:
    """The ``b`` field of a PROGRAM row: 0 = the program's General MIDI voice, else 1 + the
    index of ``instrument`` in :data:`INSTRUMENTS`.

    Raises:
        TypeError / ValueError: ``instrument`` is not None or one of :data:`INSTRUMENTS`.
    """
    if instrument is None:
        return 0
    return 1 + INSTRUMENTS.index(check_choice("instrument", instrument, INSTRUMENTS))


def program_voice(program: int, channel: int, code: int) -> str:
    """The voice a PROGRAM row ``(program, code)`` selects on ``channel`` (see :func:`voice_code`)."""
    if 1 <= code <= len(INSTRUMENTS):
        return INSTRUMENTS[code - 1]
    return voice_for_program(program, channel)


def gain_db(volume: int, expression: int = 127) -> float:
    """The channel gain of CC 7 ``volume`` and CC 11 ``expression`` (0..127), in dB.

    General MIDI's 40·log10 law for each, with volume 100 and expression 127 at 0 dB; either at
    0 is silent (:data:`MIN_GAIN_DB`). Clipped to [MIN_GAIN_DB, MAX_GAIN_DB].
    """
    if volume <= 0 or expression <= 0:
        return MIN_GAIN_DB
    db = 40.0 * math.log10(volume / UNITY_VOLUME) + 40.0 * math.log10(expression / 127.0)
    return min(MAX_GAIN_DB, max(MIN_GAIN_DB, db))


def volume_for_gain_db(db: float) -> int:
    """The CC 7 value whose gain (:func:`gain_db`) is closest to ``db`` (0 dB = 100)."""
    return max(0, min(127, round(UNITY_VOLUME * 10 ** (db / 40.0))))


def midi_bytes(kind: int, channel: int, a: int, b: int) -> bytes | None:
    """The MIDI message of an event row (None for kinds that are not MIDI, such as beats)."""
    if kind == NOTE_ON:
        return bytes((0x90 | channel, a, b))
    if kind == NOTE_OFF:
        return bytes((0x80 | channel, a, 0))
    if kind == CONTROL:
        return bytes((0xB0 | channel, a, b))
    if kind == PROGRAM:
        return bytes((0xC0 | channel, a))
    if kind == CLOCK:
        if a == SONG_POSITION:
            return bytes((SONG_POSITION, b & 0x7F, (b >> 7) & 0x7F))
        return bytes((a,)) if a in (CLOCK_START, CLOCK_CONTINUE, CLOCK_STOP) else b"\xf8"
    return None


#: the controller a session's volume (``volume`` op, fades) is sent on: CC 11, expression
EXPRESSION_CC: Final = 11


def expression_for_level(level: float) -> int:
    """The CC 11 value whose gain (:func:`gain_db`) is the linear ``level`` in [0, 1] (1: 127)."""
    return max(0, min(127, round(127.0 * math.sqrt(max(0.0, min(1.0, level))))))
