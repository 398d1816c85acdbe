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

from engine.music.keys import PULL_PROFILES, check_key
from engine.tokens import vocab as V
from engine.tokens.codec import encode_notes

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


#: Scale degrees (semitones above the tonic) of the primer's rising run; minor is harmonic.
RUN_DEGREES: Final = {"major": (0, 2, 4, 5, 7, 9, 11, 12), "minor": (0, 2, 3, 5, 7, 8, 11, 12)}


def primer_notes_per_beat(arousal: float) -> int:
    """Density of the primer's run: the model carries its context's density on too.

    0 (the chord alone) below arousal -1/3, 1 up to +1/3, 2 above.
    """
    return 0 if arousal < -1 / 3 else 1 if arousal <= 1 / 3 else 2


def primer_velocity(arousal: float) -> int:
    """Loudness of the primer: the model carries its context's dynamics on (40 at -1 .. 80 at +1)."""
    return round(60 + 20 * arousal)


def primer_tokens(
    tonic_pc: int, mode: str, meter_beats: int, velocity: int = 60, notes_per_beat: int = 1
) -> np.ndarray:
    """Tokens of one bar (starting with its BAR token) stating ``tonic_pc`` ``mode``.

    The tonic triad over its root for the whole bar, and (unless ``notes_per_beat`` is 0) the
    scale rising from the tonic an octave above, ``notes_per_beat`` notes per beat.

    Args:
        tonic_pc: pitch class of the tonic, 0 (C) .. 11 (B).
        mode: "major" or "minor".
        meter_beats: beats in the bar, one of BAR_BEATS.
        velocity: MIDI velocity of the primer's notes, 1..127.
        notes_per_beat: 0, 1 or 2.

    Raises:
        ValueError: an argument is out of range.
    """
    check_key(tonic_pc, mode)
    if meter_beats not in V.BAR_BEATS:
        raise ValueError(f"meter_beats must be one of {V.BAR_BEATS}, got {meter_beats}")
    if notes_per_beat not in (0, 1, 2):
        raise ValueError(f"notes_per_beat must be 0, 1 or 2, got {notes_per_beat}")
    root = 48 + tonic_pc  # C3..B3
    third = THIRD[mode]
    steps = meter_beats * V.STEPS_PER_BEAT
    whole = V.quantize_duration(steps)
    vel = V.quantize_velocity(velocity)
    chord = [V.Note(0, p, whole, vel) for p in (root - 12, root + 12, root + 12 + third, root + 19)]
    count = meter_beats * notes_per_beat
    gap = steps // max(count, 1)
    run = [V.Note(gap * k, root + 24 + d, gap, vel) for k, d in enumerate(RUN_DEGREES[mode][:count])]
    encoded = encode_notes([*chord, *run], [meter_beats], eos=False)
    return encoded.tokens[1:].astype(np.int64)  # without BOS


#: Pitch classes above the tonic that would say the parallel mode: colour (an eased pull, a
#: note between beats) may be chromatic, but not one of these (major: the minor third and
#: sixth; minor: the major third).
MODE_GUARD: Final = {"major": (3, 8), "minor": (4,)}


def key_bias(tonic_pc: int, mode: str, strength: float, mode_guard: float = 0.0) -> np.ndarray:
    """float32[VOCAB_SIZE] logit bias toward a key's tonal hierarchy.

    Each pitch gets ``strength * log(profile[pc] / profile[tonic])`` from the pull profile of
    ``mode`` (:data:`engine.music.keys.PULL_PROFILES`): the tonic about 0, the other scale
    degrees a little less, chromatic notes least (about ``-strength`` nats). The pitch classes
    that would say the parallel mode (:data:`MODE_GUARD`) are pulled by ``mode_guard`` where it
    is the stronger, so an eased pull lets in colour but keeps the mode.
    A soft pull: nothing is forbidden.

    Raises:
        ValueError: an argument is out of range.
    """
    check_key(tonic_pc, mode)
    for name, value in (("strength", strength), ("mode_guard", mode_guard)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    profile = np.asarray(PULL_PROFILES[mode])
    ratio = np.log(profile / profile[0])
    per_pc = strength * ratio
    guarded = list(MODE_GUARD[mode])
    per_pc[guarded] = max(strength, mode_guard) * ratio[guarded]
    bias = np.zeros(V.VOCAB_SIZE, dtype=np.float32)
    pitches = np.arange(V.PITCH_MIN, V.PITCH_MAX + 1)
    bias[V.PITCH_OFFSET : V.DUR_OFFSET] = per_pc[(pitches - tonic_pc) % 12]
    return bias


def offbeat_bias(
    tonic_pc: int, mode: str, strength: float, pull: float, mode_guard: float = 0.0
) -> np.ndarray:
    """float32[VOCAB_SIZE] logit bias for notes starting between beats (passing, neighbour tones).

    ``pull`` (in [0, 1]) of :func:`key_bias`, and its full penalty (with ``mode_guard``) on the
    pitch classes of ``MODE_GUARD``, so chromatic colour never blurs the mode.

    Raises:
        ValueError: an argument is out of range.
    """
    if not (math.isfinite(pull) and 0.0 <= pull <= 1.0):
        raise ValueError(f"pull must be in [0, 1], got {pull}")
    full = key_bias(tonic_pc, mode, strength, mode_guard)
    bias = (pull * full).astype(np.float32)
    pitches = np.arange(V.PITCH_MIN, V.PITCH_MAX + 1)
    guarded = np.isin((pitches - tonic_pc) % 12, MODE_GUARD[mode])
    tokens = V.PITCH_OFFSET + np.flatnonzero(guarded)
    bias[tokens] = full[tokens]
    return bias
