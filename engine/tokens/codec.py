"""Notes ↔ tokens: quantize a parsed MIDI file to the grid, encode it, decode token streams.

``decode_tokens(encode_notes(notes, bars)) == (notes, bars)`` for quantized notes; quantizing
moves onsets by at most half a sixteenth step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from engine.tokens import grammar
from engine.tokens import vocab as V
from engine.tokens.midi_file import ParsedMidi, read_midi, write_midi


@dataclass(frozen=True)
class Encoded:
    """A tokenized piece.

    Attributes:
        tokens: int16[T] token ids, BOS ... EOS.
        bar_index: int32[T], the bar each token belongs to (BOS: 0, EOS: last bar).
        bar_beats: beats of each bar.
    """

    tokens: np.ndarray
    bar_index: np.ndarray
    bar_beats: list[int]


def bar_layout(time_signatures: list[tuple[int, int, int]], ticks_per_beat: int, end_step: int) -> list[int]:
    """Length in beats of each bar from step 0 until ``end_step`` is covered.

    Time signatures of 2, 3 or 4 quarter-note beats (2/4, 3/4, 4/4, 2/2, 6/8) are followed; a
    change takes effect at the first bar line at or after it. A file using any other meter
    (5/4, 7/8, 12/8, the placeholder 1/4, ...) is laid out in 4/4 throughout.
    """
    changes: list[tuple[int, int]] = []  # (step, beats)
    for tick, numerator, denominator in time_signatures:
        steps = numerator * V.STEPS_PER_BEAT * 4 // denominator
        if steps % V.STEPS_PER_BEAT or steps // V.STEPS_PER_BEAT not in V.BAR_BEATS:
            changes = []
            break
        changes.append((round(tick * V.STEPS_PER_BEAT / ticks_per_beat), steps // V.STEPS_PER_BEAT))
    beats = changes[0][1] if changes and changes[0][0] == 0 else 4
    pending = [c for c in changes if c[0] > 0]
    bars: list[int] = []
    step = 0
    while step <= end_step or not bars:
        while pending and pending[0][0] <= step:
            beats = pending.pop(0)[1]
        bars.append(beats)
        step += beats * V.STEPS_PER_BEAT
    return bars


def fold_pitch(pitch: int) -> int:
    """Move a pitch by octaves into the piano range PITCH_MIN..PITCH_MAX."""
    while pitch < V.PITCH_MIN:
        pitch += 12
    while pitch > V.PITCH_MAX:
        pitch -= 12
    return pitch


def quantize(parsed: ParsedMidi) -> tuple[list[V.Note], list[int]]:
    """Snap a parsed file to the sixteenth grid; returns sorted notes and the bar layout.

    Onsets round to the nearest step, durations to the nearest table entry (at least one step),
    pitches fold into the piano range, velocities to their bin. Of notes sharing onset and
    pitch, the longest (then loudest) is kept.
    """
    scale = V.STEPS_PER_BEAT / parsed.ticks_per_beat
    best: dict[tuple[int, int], V.Note] = {}
    for raw in parsed.notes:
        onset = round(raw.onset_tick * scale)
        duration = V.quantize_duration(round(raw.end_tick * scale) - onset)
        note = V.Note(onset, fold_pitch(raw.pitch), duration, V.quantize_velocity(raw.velocity))
        key = (onset, note.pitch)
        kept = best.get(key)
        if kept is None or (note.duration_steps, note.velocity) > (kept.duration_steps, kept.velocity):
            best[key] = note
    notes = sorted(best.values(), key=lambda n: (n.onset_step, -n.pitch))
    return notes, bar_layout(parsed.time_signatures, parsed.ticks_per_beat, notes[-1].onset_step)


def encode_notes(notes: list[V.Note], bar_beats: list[int], *, eos: bool = True) -> Encoded:
    """Tokenize quantized notes laid out in bars (see :func:`quantize`).

    Raises:
        ValueError: a note is off the grid or after the last bar, or is not quantized.
    """
    ordered = sorted(notes, key=lambda n: (n.onset_step, -n.pitch))
    tokens: list[int] = [V.BOS]
    bars: list[int] = [0]
    i = 0
    bar_start = 0
    for b, beats in enumerate(bar_beats):
        bar_end = bar_start + beats * V.STEPS_PER_BEAT
        tokens.append(V.bar_token(beats))
        bars.append(b)
        last_pos = -1
        while i < len(ordered) and ordered[i].onset_step < bar_end:
            note = ordered[i]
            if note.onset_step < bar_start:
                raise ValueError(f"note {note} is before bar {b} or duplicated")
            pos = note.onset_step - bar_start
            if pos != last_pos:
                tokens.append(V.pos_token(pos))
                bars.append(b)
                last_pos = pos
            if V.quantize_duration(note.duration_steps) != note.duration_steps:
                raise ValueError(f"note {note} has a duration not in DURATION_STEPS")
            tokens += [
                V.pitch_token(note.pitch),
                V.duration_token(note.duration_steps),
                V.velocity_token(note.velocity),
            ]
            bars += [b, b, b]
            i += 1
        bar_start = bar_end
    if i < len(ordered):
        raise ValueError(f"note {ordered[i]} starts after the last bar (step {bar_start})")
    if eos:
        tokens.append(V.EOS)
        bars.append(max(len(bar_beats) - 1, 0))
    return Encoded(np.asarray(tokens, dtype=np.int16), np.asarray(bars, dtype=np.int32), list(bar_beats))


def encode_file(path: str | os.PathLike[str]) -> Encoded:
    """Read, quantize and tokenize a MIDI file.

    Raises:
        engine.tokens.midi_file.MidiFileError: the file is unreadable or has no pitched notes.
    """
    notes, bars = quantize(read_midi(path))
    return encode_notes(notes, bars)


def decode_tokens(tokens: np.ndarray | list[int]) -> tuple[list[V.Note], list[int]]:
    """Turn a token sequence (starting at BOS or at a bar) into notes and bar lengths.

    A sequence may stop anywhere (streams are decoded as they grow); a note whose velocity has
    not arrived yet is left out.

    Raises:
        grammar.GrammarError: a token is not allowed where it stands (index and names given).
    """
    seq = np.asarray(tokens, dtype=np.int64)
    state = grammar.new_states(1, after_bos=bool(seq.size) and int(seq[0]) != V.BOS)[0]
    notes: list[V.Note] = []
    bar_beats: list[int] = []
    bar_start = 0
    onset = pitch = duration = 0
    for i, token in enumerate(seq.tolist()):
        if not grammar.advance(state, token):
            context = " ".join(
                V.token_name(t) if 0 <= t < V.VOCAB_SIZE else str(t)
                for t in seq[max(0, i - 4) : i + 1].tolist()
            )
            raise grammar.GrammarError(f"token {i} not allowed here: ... {context}")
        if V.BAR_OFFSET <= token < V.POS_OFFSET:
            if bar_beats:
                bar_start += bar_beats[-1] * V.STEPS_PER_BEAT
            bar_beats.append(V.BAR_BEATS[token - V.BAR_OFFSET])
        elif V.POS_OFFSET <= token < V.PITCH_OFFSET:
            onset = bar_start + token - V.POS_OFFSET
        elif V.PITCH_OFFSET <= token < V.DUR_OFFSET:
            pitch = token - V.PITCH_OFFSET + V.PITCH_MIN
        elif V.DUR_OFFSET <= token < V.VEL_OFFSET:
            duration = V.DURATION_STEPS[token - V.DUR_OFFSET]
        elif V.VEL_OFFSET <= token < V.VOCAB_SIZE:
            notes.append(V.Note(onset, pitch, duration, V.BIN_VELOCITIES[token - V.VEL_OFFSET]))
    return notes, bar_beats


def write_notes_midi(
    path: str | os.PathLike[str],
    notes: list[V.Note],
    bar_beats: list[int],
    *,
    tempo_bpm: float,
    program_name: str = "piano",
) -> None:
    """Write decoded notes as a one-track MIDI file at ``tempo_bpm``."""
    spb = V.STEPS_PER_BEAT
    rows = [(n.onset_step / spb, n.duration_steps / spb, n.pitch, n.velocity) for n in notes]
    write_midi(path, [(program_name, 0, rows)], tempo_bpm=tempo_bpm, bar_beats=bar_beats)
