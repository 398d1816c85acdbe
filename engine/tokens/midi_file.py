"""Read and write Standard MIDI Files (mido), as raw notes in ticks.

Reading merges every non-drum track and channel (channel 10, index 9, is dropped), pairs
note-ons with note-offs first-in first-out per (channel, pitch), and keeps the time signatures
and the tempo map (:func:`bar_seconds` turns it into the length of each bar in seconds).
"""

from __future__ import annotations

import io
import os
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import mido
import numpy as np

from engine.input_files import InputFileError, read_input_file
from engine.outputs.gm import DRUM_CHANNEL

#: The tempo a file without set_tempo plays at (the Standard MIDI File default), in microseconds
#: per quarter note (120 BPM).
DEFAULT_TEMPO_US: Final = 500_000
#: The beat (quarter note) every note of a file must start before: 10,000 bars of 4/4, about
#: 5.5 hours at 120 BPM. What a file expands to (bars, tokens, features) grows with it, while a few
#: bytes of delta time can name billions of ticks.
MAX_BEATS: Final = 40_000
#: The largest MIDI file read (a long orchestral piece is well under a megabyte).
MAX_MIDI_BYTES: Final = 8 * 1024 * 1024


class MidiFileError(ValueError):
    """A MIDI file cannot be read, or holds nothing we can use (the message says which)."""


@dataclass(frozen=True)
class RawNote:
    """A note as read from a file, in ticks."""

    onset_tick: int
    end_tick: int
    pitch: int
    velocity: int


@dataclass
class ParsedMidi:
    """Notes and meter of one file. Ticks are absolute, ``ticks_per_beat`` per quarter note."""

    notes: list[RawNote]
    ticks_per_beat: int
    #: (tick, numerator, denominator), sorted by tick.
    time_signatures: list[tuple[int, int, int]] = field(default_factory=list)
    #: (tick, microseconds per quarter note), sorted by tick; empty: 120 BPM throughout.
    tempos: list[tuple[int, int]] = field(default_factory=list)


def read_midi(path: str | os.PathLike[str]) -> ParsedMidi:
    """Read the pitched notes of a MIDI file.

    Raises:
        MidiFileError: the file is missing, not a regular file (a directory, FIFO or device),
            larger than MAX_MIDI_BYTES, not a valid MIDI file, uses SMPTE timing, has a note
            starting at or after MAX_BEATS, or has no pitched notes.
    """
    path = Path(path)
    try:
        data = read_input_file(path, "MIDI file", MAX_MIDI_BYTES)
    except InputFileError as exc:
        raise MidiFileError(str(exc)) from exc
    try:
        midi = mido.MidiFile(file=io.BytesIO(data), clip=True)
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise MidiFileError(f"{path}: not a readable MIDI file ({str(exc) or type(exc).__name__})") from exc
    if midi.ticks_per_beat <= 0:
        raise MidiFileError(f"{path}: SMPTE timing (ticks_per_beat={midi.ticks_per_beat}) unsupported")
    end_of_onsets = MAX_BEATS * midi.ticks_per_beat
    notes: list[RawNote] = []
    time_signatures: list[tuple[int, int, int]] = []
    tempos: list[tuple[int, int]] = []
    end_tick = 0
    for track in midi.tracks:
        tick = 0
        open_notes: dict[tuple[int, int], deque[tuple[int, int]]] = defaultdict(deque)
        for msg in track:
            tick += msg.time
            if msg.type == "time_signature":
                time_signatures.append((tick, msg.numerator, msg.denominator))
            elif msg.type == "set_tempo":
                tempos.append((tick, msg.tempo))
            elif msg.type in ("note_on", "note_off"):
                if msg.channel == DRUM_CHANNEL:
                    continue
                key = (msg.channel, msg.note)
                if msg.type == "note_on" and msg.velocity > 0:
                    if tick >= end_of_onsets:
                        raise MidiFileError(
                            f"{path}: too long: a note starts at beat {tick // midi.ticks_per_beat} "
                            f"(allowed: notes starting before beat {MAX_BEATS}, 10000 bars of 4/4)"
                        )
                    open_notes[key].append((tick, msg.velocity))
                elif open_notes[key]:
                    onset, velocity = open_notes[key].popleft()
                    notes.append(RawNote(onset, tick, msg.note, velocity))
        end_tick = max(end_tick, tick)
        for (_, pitch), pending in open_notes.items():  # never released: end with the track
            notes.extend(RawNote(onset, tick, pitch, velocity) for onset, velocity in pending)
    if not notes:
        raise MidiFileError(f"{path}: no pitched notes (drum channel and empty tracks ignored)")
    notes.sort(key=lambda n: (n.onset_tick, -n.pitch))
    time_signatures.sort(key=lambda t: t[0])
    tempos.sort(key=lambda t: t[0])
    return ParsedMidi(notes, midi.ticks_per_beat, time_signatures, tempos)


def bar_seconds(parsed: ParsedMidi, bar_beats: list[int]) -> np.ndarray:
    """How long each bar of a file lasts under its tempo map, in seconds.

    Args:
        parsed: the file, as :func:`read_midi` returns it.
        bar_beats: the bar layout in quarter-note beats from tick 0 (e.g. from
            :func:`engine.tokens.codec.quantize`).

    Returns:
        float64[len(bar_beats)], each > 0. Before the first set_tempo, and in a file without
        one, the tempo is 120 BPM.
    """
    tpb = float(parsed.ticks_per_beat)
    starts = [0.0] + [tick / tpb for tick, _ in parsed.tempos]
    spb = [DEFAULT_TEMPO_US / 1e6] + [max(us, 1) / 1e6 for _, us in parsed.tempos]
    start_beat = np.asarray(starts)
    sec_per_beat = np.asarray(spb)
    # Seconds at the start of each tempo segment (a later event at the same tick wins).
    at_start = np.concatenate([[0.0], np.cumsum(np.diff(start_beat) * sec_per_beat[:-1])])
    edges = np.concatenate([[0.0], np.cumsum(np.asarray(bar_beats, dtype=np.float64))])
    seg = np.searchsorted(start_beat, edges, side="right") - 1
    seconds = at_start[seg] + (edges - start_beat[seg]) * sec_per_beat[seg]
    out: np.ndarray = np.maximum(np.diff(seconds), 1e-6)
    return out


def write_midi(
    path: str | os.PathLike[str],
    tracks: list[tuple[str, int, list[tuple[float, float, int, int]]]],
    *,
    tempo_bpm: float,
    bar_beats: list[int] | None = None,
    ticks_per_beat: int = 480,
) -> None:
    """Write notes to a type-1 MIDI file.

    Args:
        path: output file.
        tracks: (name, channel 0..15, notes) per track; a note is
            (onset_beats, duration_beats, pitch, velocity), beats being quarter notes.
        tempo_bpm: tempo in quarter notes per minute, > 0.
        bar_beats: length of each bar in beats, for time-signature events (4/4 when None).
        ticks_per_beat: file resolution.

    Raises:
        ValueError: tempo or a channel is out of range.
    """
    if not tempo_bpm > 0:
        raise ValueError(f"tempo_bpm must be > 0, got {tempo_bpm}")
    midi = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    meta = mido.MidiTrack()
    meta.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo_bpm), time=0))
    last_tick = 0
    bar_tick = 0
    previous: int | None = None
    for beats in bar_beats or [4]:
        if beats != previous:
            meta.append(
                mido.MetaMessage("time_signature", numerator=beats, denominator=4, time=bar_tick - last_tick)
            )
            last_tick = bar_tick
            previous = beats
        bar_tick += beats * ticks_per_beat
    meta.append(mido.MetaMessage("end_of_track", time=bar_tick - last_tick))  # the last bar line
    midi.tracks.append(meta)
    for name, channel, notes in tracks:
        if not 0 <= channel <= 15:
            raise ValueError(f"channel must be in 0..15, got {channel}")
        events: list[tuple[int, int, int, int]] = []  # (tick, order, pitch, velocity)
        for onset, duration, pitch, velocity in notes:
            on = round(onset * ticks_per_beat)
            off = max(on + 1, round((onset + duration) * ticks_per_beat))
            events.append((on, 1, pitch, velocity))
            events.append((off, 0, pitch, 0))  # offs first at equal ticks
        events.sort()
        track = mido.MidiTrack()
        track.append(mido.MetaMessage("track_name", name=name, time=0))
        tick = 0
        for at, _, pitch, velocity in events:
            kind = "note_on" if velocity else "note_off"
            track.append(mido.Message(kind, channel=channel, note=pitch, velocity=velocity, time=at - tick))
            tick = at
        midi.tracks.append(track)
    midi.save(path)
