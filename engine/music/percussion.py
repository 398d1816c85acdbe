"""Drum parts derived from the beat grid at high intensity (General MIDI drum map, channel 10).

The composer writes piano music; percussion is added by the conductor bar by bar: a backbeat
groove whose density grows with intensity, a crash on phrase starts, fills into a new phrase.
Deterministic: the pattern depends only on intensity, arousal, the bar index and the seed.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from engine.tokens import vocab as V

KICK: Final = 36
SNARE: Final = 38
CLOSED_HAT: Final = 42
OPEN_HAT: Final = 46
CRASH: Final = 49
LOW_TOM: Final = 45
MID_TOM: Final = 47
HIGH_TOM: Final = 50


def drum_velocity(arousal: float) -> int:
    """Base drum velocity for an arousal in [-1, 1] (70..112)."""
    return round(91 + 21 * max(-1.0, min(1.0, arousal)))


def bar_hits(
    intensity: float,
    arousal: float,
    bar_index: int,
    meter_beats: int,
    phrase_bars: int,
    seed: int,
    *,
    level: int,
) -> list[tuple[int, int, int]]:
    """The drum hits of one bar as (step on the sixteenth grid, GM drum note, velocity).

    Args:
        intensity: in [0, 1]; picks the hat density and kick pickups.
        arousal: in [-1, 1]; loudness.
        bar_index: the bar's index in the piece (phrase position, crash, fills).
        meter_beats: beats in the bar.
        phrase_bars: bars per phrase.
        seed: the session seed.
        level: 1 (backbeat), 2 (driving: sixteenth hats, kick pickups, fills).
    """
    rng = np.random.default_rng([seed & 0x7FFFFFFF, bar_index, 0xD2])
    base = drum_velocity(arousal)
    steps = meter_beats * V.STEPS_PER_BEAT
    hits: list[tuple[int, int, int]] = []
    phrase_pos = bar_index % phrase_bars
    for beat in range(meter_beats):
        step = beat * V.STEPS_PER_BEAT
        if beat % 2 == 0:
            hits.append((step, KICK, min(127, base + 8)))
        else:
            hits.append((step, SNARE, base))
    hat_every = 1 if level >= 2 and intensity >= 0.8 else 2
    for step in range(0, steps, hat_every):
        accent = 10 if step % V.STEPS_PER_BEAT == 0 else 0
        hits.append((step, CLOSED_HAT, max(30, base - 28 + accent)))
    if level >= 2:
        for _ in range(int(rng.integers(1, 3))):
            pickup = int(rng.choice([3, 6, 7, 10, 11, 14]))
            if pickup < steps:
                hits.append((pickup, KICK, max(40, base - 12)))
        if steps >= 8:
            hits.append((steps - 2, OPEN_HAT, max(40, base - 18)))
    if phrase_pos == 0 and level >= 2:
        hits.append((0, CRASH, min(127, base + 10)))
    if phrase_pos == phrase_bars - 1 and level >= 2 and steps >= 8:  # a fill into the next phrase
        hits = [h for h in hits if h[0] < steps - 4]
        for k, tom in enumerate((HIGH_TOM, MID_TOM, LOW_TOM, SNARE)):
            hits.append((steps - 4 + k, tom, min(127, base + 2 * k)))
    hits.sort()
    return hits
