"""Tonal primers: one silent bar that sets a stream's key and mode before it starts.

The composer follows the key of its context far more strongly than it follows its valence
input (see models/README.md), so the engine chooses the mode from the valence — major for
positive, minor for negative — and primes the stream with a bar that states it: the tonic
triad over its root, then the scale's 1-2-3-5 rising. The bar is fed to the model, never
played.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from engine import vocab as V
from engine.codec import encode_notes

#: Semitones above the tonic of the triad's third, for each mode.
THIRD: Final = {"major": 4, "minor": 3}
#: How sharply valence picks the mode: P(major) = 0.5 + 0.5 * tanh(MODE_SLOPE * valence).
MODE_SLOPE: Final = 3.0


def choose_key(seed: int, valence: float) -> tuple[int, str]:
    """(tonic pitch class, mode) for a stream: tonic uniform, mode by :func:`mode_for_valence`.

    Drawn from its own generator (``default_rng([seed, 1])``), apart from the sampling's numbers.
    """
    rng = np.random.default_rng([seed, 1])
    return int(rng.integers(12)), mode_for_valence(valence, rng)


def mode_for_valence(valence: float, rng: np.random.Generator) -> str:
    """Major or minor, drawn with P(major) = 0.5 + 0.5 tanh(3 valence) (0.98 at valence 0.8)."""
    p_major = 0.5 + 0.5 * math.tanh(MODE_SLOPE * valence)
    return "major" if rng.random() < p_major else "minor"


def primer_velocity(arousal: float) -> int:
    """Loudness of the primer: the model carries its context's dynamics on (40 at -1 .. 80 at +1)."""
    return round(60 + 20 * arousal)


def primer_tokens(tonic_pc: int, mode: str, meter_beats: int, velocity: int = 60) -> np.ndarray:
    """Tokens of one bar (starting with its BAR token) stating ``tonic_pc`` ``mode``.

    Args:
        tonic_pc: pitch class of the tonic, 0 (C) .. 11 (B).
        mode: "major" or "minor".
        meter_beats: beats in the bar, one of BAR_BEATS.
        velocity: MIDI velocity of the primer's notes, 1..127.

    Raises:
        ValueError: an argument is out of range.
    """
    if not 0 <= tonic_pc <= 11:
        raise ValueError(f"tonic_pc must be in 0..11, got {tonic_pc}")
    if mode not in THIRD:
        raise ValueError(f"mode must be one of {sorted(THIRD)}, got {mode!r}")
    if meter_beats not in V.BAR_BEATS:
        raise ValueError(f"meter_beats must be one of {V.BAR_BEATS}, got {meter_beats}")
    root = 48 + tonic_pc  # C3..B3
    third = THIRD[mode]
    steps = meter_beats * V.STEPS_PER_BEAT
    gap = steps // 4
    whole = V.quantize_duration(steps)
    vel = V.quantize_velocity(velocity)
    chord = [V.Note(0, p, whole, vel) for p in (root - 12, root + 12, root + 12 + third, root + 19)]
    run = [V.Note(gap * k, root + 24 + d, gap, vel) for k, d in enumerate((0, 2, third, 7))]
    encoded = encode_notes([*chord, *run], [meter_beats], eos=False)
    return encoded.tokens[1:].astype(np.int64)  # without BOS
