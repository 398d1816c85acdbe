"""The event vocabulary shared by training and the runtime (bar-relative, REMI-like).

A piece is a token sequence::

    BOS  BAR_4  POS_0 PITCH_67 DUR_4 VEL_9  PITCH_60 DUR_8 VEL_7  POS_8 PITCH_64 ...  BAR_4 ...  EOS

* ``BAR_n`` opens a bar of ``n`` quarter-note beats (n in 2, 3, 4). Bars are contiguous: each
  bar starts where the previous one ends, so the runtime always knows where bars and beats are.
* ``POS_p`` is the onset inside the bar on a sixteenth-note grid (``p < 4 * n``), strictly
  increasing within a bar.
* Each note is ``PITCH DUR VEL``. Notes sharing an onset are listed from the highest pitch
  down (strictly decreasing), so a position never holds the same pitch twice.
* Tempo is not in the vocabulary: the engine sets it.

The grammar is enforced by :mod:`engine.tokens.grammar`; every sequence it accepts decodes to valid
notes. All tables live here, in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

VOCAB_VERSION: Final = "remi16-v1"

STEPS_PER_BEAT: Final = 4  # sixteenth-note grid
BAR_BEATS: Final = (2, 3, 4)  # supported bar lengths in quarter-note beats
MAX_BAR_STEPS: Final = max(BAR_BEATS) * STEPS_PER_BEAT
PITCH_MIN: Final = 21  # A0, lowest piano key
PITCH_MAX: Final = 108  # C8, highest piano key
#: Note durations in sixteenth steps; a note's duration is rounded to the nearest entry.
DURATION_STEPS: Final = (*range(1, 17), 20, 24, 28, 32, 40, 48, 64)
VELOCITY_BINS: Final = 16
#: The MIDI velocity each velocity bin decodes to (bin centres of 8-wide bins).
BIN_VELOCITIES: Final = tuple(min(127, 8 * b + 4) for b in range(VELOCITY_BINS))

PAD: Final = 0
BOS: Final = 1
EOS: Final = 2
BAR_OFFSET: Final = 3
POS_OFFSET: Final = BAR_OFFSET + len(BAR_BEATS)
PITCH_OFFSET: Final = POS_OFFSET + MAX_BAR_STEPS
DUR_OFFSET: Final = PITCH_OFFSET + (PITCH_MAX - PITCH_MIN + 1)
VEL_OFFSET: Final = DUR_OFFSET + len(DURATION_STEPS)
VOCAB_SIZE: Final = VEL_OFFSET + VELOCITY_BINS


@dataclass(frozen=True, order=True)
class Note:
    """One note on the sixteenth grid.

    Attributes:
        onset_step: onset in sixteenth steps from the start of the piece (>= 0).
        pitch: MIDI pitch, PITCH_MIN..PITCH_MAX.
        duration_steps: duration in sixteenth steps, one of DURATION_STEPS.
        velocity: MIDI velocity 1..127.
    """

    onset_step: int
    pitch: int
    duration_steps: int
    velocity: int


def bar_token(beats: int) -> int:
    """Token opening a bar of ``beats`` quarter-note beats.

    Raises:
        ValueError: ``beats`` is not one of BAR_BEATS.
    """
    if beats not in BAR_BEATS:
        raise ValueError(f"bar length must be one of {BAR_BEATS} beats, got {beats}")
    return BAR_OFFSET + BAR_BEATS.index(beats)


def pos_token(step: int) -> int:
    if not 0 <= step < MAX_BAR_STEPS:
        raise ValueError(f"position must be in 0..{MAX_BAR_STEPS - 1}, got {step}")
    return POS_OFFSET + step


def pitch_token(pitch: int) -> int:
    if not PITCH_MIN <= pitch <= PITCH_MAX:
        raise ValueError(f"pitch must be in {PITCH_MIN}..{PITCH_MAX}, got {pitch}")
    return PITCH_OFFSET + pitch - PITCH_MIN


def duration_token(duration_steps: int) -> int:
    """Token of the nearest table duration (ties go to the shorter one)."""
    if duration_steps < 1:
        raise ValueError(f"duration must be >= 1 step, got {duration_steps}")
    return DUR_OFFSET + nearest_duration_index(duration_steps)


def velocity_token(velocity: int) -> int:
    if not 1 <= velocity <= 127:
        raise ValueError(f"velocity must be in 1..127, got {velocity}")
    return VEL_OFFSET + min(VELOCITY_BINS - 1, velocity // 8)


def nearest_duration_index(duration_steps: int) -> int:
    table = _DURATIONS
    return int(np.argmin(np.abs(table - duration_steps)))


def quantize_duration(duration_steps: int) -> int:
    return DURATION_STEPS[nearest_duration_index(max(1, duration_steps))]


def quantize_velocity(velocity: int) -> int:
    return BIN_VELOCITIES[velocity_token(velocity) - VEL_OFFSET]


_DURATIONS = np.asarray(DURATION_STEPS)


def _ranges() -> dict[str, range]:
    return {
        "bar": range(BAR_OFFSET, POS_OFFSET),
        "pos": range(POS_OFFSET, PITCH_OFFSET),
        "pitch": range(PITCH_OFFSET, DUR_OFFSET),
        "dur": range(DUR_OFFSET, VEL_OFFSET),
        "vel": range(VEL_OFFSET, VOCAB_SIZE),
    }


TOKEN_RANGES: Final = _ranges()


def token_name(token: int) -> str:
    """Human-readable name of a token, e.g. ``PITCH_60`` (for logs and errors)."""
    if token == PAD:
        return "PAD"
    if token == BOS:
        return "BOS"
    if token == EOS:
        return "EOS"
    if token in TOKEN_RANGES["bar"]:
        return f"BAR_{BAR_BEATS[token - BAR_OFFSET]}"
    if token in TOKEN_RANGES["pos"]:
        return f"POS_{token - POS_OFFSET}"
    if token in TOKEN_RANGES["pitch"]:
        return f"PITCH_{token - PITCH_OFFSET + PITCH_MIN}"
    if token in TOKEN_RANGES["dur"]:
        return f"DUR_{DURATION_STEPS[token - DUR_OFFSET]}"
    if token in TOKEN_RANGES["vel"]:
        return f"VEL_{BIN_VELOCITIES[token - VEL_OFFSET]}"
    raise ValueError(f"token must be in 0..{VOCAB_SIZE - 1}, got {token}")


def pitch_span(tokens: np.ndarray) -> tuple[int, int] | None:
    """Lowest and highest MIDI pitch in ``tokens``, or None when it holds no note."""
    pitches = tokens[(tokens >= PITCH_OFFSET) & (tokens < DUR_OFFSET)]
    if pitches.size == 0:
        return None
    return int(pitches.min()) - PITCH_OFFSET + PITCH_MIN, int(pitches.max()) - PITCH_OFFSET + PITCH_MIN


def transpose_tokens(tokens: np.ndarray, semitones: int) -> np.ndarray:
    """Shift every pitch token by ``semitones`` (data augmentation on a valid sequence).

    A uniform shift keeps the pitch order inside each position, so a valid sequence stays valid.

    Raises:
        ValueError: a shifted pitch would leave PITCH_MIN..PITCH_MAX.
    """
    span = pitch_span(tokens)
    if span is not None and not (span[0] + semitones >= PITCH_MIN and span[1] + semitones <= PITCH_MAX):
        raise ValueError(
            f"transposing pitches {span[0]}..{span[1]} by {semitones} leaves {PITCH_MIN}..{PITCH_MAX}"
        )
    out = tokens.copy()
    out[(tokens >= PITCH_OFFSET) & (tokens < DUR_OFFSET)] += semitones
    return out
