"""Leitmotifs: themes registered by name that recur transformed to the emotion of the moment.

A theme is a short melody (a MIDI file or a note list). When it is called, the conductor
transposes it to the key of the moment, maps it to the current mode (major ↔ minor by scale
degree: the third, sixth and seventh move a semitone), centres it in the melody register, sets
its loudness from the arousal, and feeds it to the composer as if the composer had written it:
the theme is heard, and the music after it grows out of it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from engine.music.keys import estimate_key
from engine.tokens import vocab as V
from engine.tokens.codec import encode_notes, fold_pitch, quantize
from engine.tokens.midi_file import read_midi

MAX_THEME_BARS: Final = 4
#: Semitone (above the tonic) → where it goes when a major theme is played in minor.
MAJOR_TO_MINOR: Final = {4: 3, 9: 8, 11: 10}
MINOR_TO_MAJOR: Final = {3: 4, 8: 9, 10: 11}
MELODY_CENTRE: Final = 72


@dataclass(frozen=True)
class Theme:
    """A registered theme: notes from step 0 (sixteenths), and the key they are in."""

    name: str
    notes: tuple[V.Note, ...]
    tonic_pc: int
    mode: str


def theme_from_notes(name: str, notes: Sequence[tuple[float, int, float, int]]) -> Theme:
    """A theme from (onset_beats, pitch, duration_beats, velocity) tuples.

    Raises:
        TypeError, ValueError: empty, a field out of range, or longer than MAX_THEME_BARS 4/4 bars.
    """
    if not isinstance(name, str) or not name or len(name) > 64:
        raise ValueError(f"a theme name must be a non-empty string of at most 64 characters, got {name!r}")
    quantized: dict[tuple[int, int], V.Note] = {}
    for item in notes:
        if len(item) != 4:
            raise ValueError(f"theme notes are (onset_beats, pitch, duration_beats, velocity), got {item!r}")
        onset, pitch, dur, vel = item
        if not (isinstance(pitch, int) and 0 <= pitch <= 127 and isinstance(vel, int) and 1 <= vel <= 127):
            raise ValueError(f"theme note pitch must be 0..127 and velocity 1..127, got {item!r}")
        if not (0 <= float(onset) < 4 * MAX_THEME_BARS and 0 < float(dur) <= 16):
            raise ValueError(
                f"theme note onsets must be in [0, {4 * MAX_THEME_BARS}) beats "
                f"and durations in (0, 16], got {item!r}"
            )
        step = round(float(onset) * V.STEPS_PER_BEAT)
        if step >= 4 * MAX_THEME_BARS * V.STEPS_PER_BEAT:
            continue
        duration = V.quantize_duration(max(1, round(float(dur) * V.STEPS_PER_BEAT)))
        note = V.Note(step, fold_pitch(pitch), duration, V.quantize_velocity(vel))
        quantized[(step, note.pitch)] = note
    if not quantized:
        raise ValueError(f"theme {name!r} has no notes")
    ordered = tuple(sorted(quantized.values(), key=lambda n: (n.onset_step, -n.pitch)))
    histogram = np.zeros(12)
    for n in ordered:
        histogram[n.pitch % 12] += n.duration_steps
    tonic, mode = estimate_key(histogram)
    return Theme(name, ordered, tonic, mode)


def theme_from_midi(name: str, path: str | os.PathLike[str]) -> Theme:
    """A theme from the first MAX_THEME_BARS 4/4 bars of a MIDI file's notes.

    Raises:
        engine.tokens.midi_file.MidiFileError: the file cannot be read or has no notes.
        ValueError: a bad name.
    """
    notes, _ = quantize(read_midi(path))
    first = notes[0].onset_step // 16 * 16  # from the first bar holding a note
    return theme_from_notes(
        name,
        [((n.onset_step - first) / V.STEPS_PER_BEAT, n.pitch, n.duration_steps / V.STEPS_PER_BEAT, n.velocity)
         for n in notes if n.onset_step - first < 16 * MAX_THEME_BARS],
    )  # fmt: skip


def transform(theme: Theme, tonic_pc: int, mode: str, velocity: int) -> list[V.Note]:
    """The theme in ``tonic_pc`` ``mode``, centred on the melody register, at about ``velocity``."""
    shift = (tonic_pc - theme.tonic_pc) % 12
    if shift > 6:
        shift -= 12
    table = MAJOR_TO_MINOR if (theme.mode, mode) == ("major", "minor") else (
        MINOR_TO_MAJOR if (theme.mode, mode) == ("minor", "major") else {}
    )  # fmt: skip
    pitches = []
    for n in theme.notes:
        degree = (n.pitch - theme.tonic_pc) % 12
        pitches.append(n.pitch + shift + table.get(degree, degree) - degree)
    centre = float(np.mean(pitches))
    octave = 12 * round((MELODY_CENTRE - centre) / 12)
    mean_vel = float(np.mean([n.velocity for n in theme.notes]))
    out: dict[tuple[int, int], V.Note] = {}
    for n, p in zip(theme.notes, pitches, strict=True):
        vel = V.quantize_velocity(max(1, min(127, round(n.velocity * velocity / mean_vel))))
        pitch = fold_pitch(p + octave)
        out[(n.onset_step, pitch)] = V.Note(n.onset_step, pitch, n.duration_steps, vel)
    return sorted(out.values(), key=lambda n: (n.onset_step, -n.pitch))


def theme_tokens(notes: Sequence[V.Note], meter_beats: int) -> np.ndarray:
    """Tokens of notes starting at step 0 laid out in whole bars of ``meter_beats``, from the BAR."""
    steps = meter_beats * V.STEPS_PER_BEAT
    bars = notes[-1].onset_step // steps + 1
    return encode_notes(list(notes), [meter_beats] * bars, eos=False).tokens[1:].astype(np.int64)
