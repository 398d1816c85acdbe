"""Recorders: what a session played, written to a Standard MIDI File or a WAV file.

The MIDI recorder keeps the events it is sent (times on the engine clock) and writes a type-1
file: a tempo track from the session's tempo map, then one named track per channel (one per
layer), so a DAW opens it with every layer on its own track. The WAV writer takes float
blocks and writes 16-bit PCM.
"""

from __future__ import annotations

import os
import wave
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import mido
import numpy as np

from engine.scheduler import CONTROL, NOTE_OFF, NOTE_ON, PROGRAM
from engine.tempo_map import TempoMap

TICKS_PER_BEAT: Final = 480


class MidiRecorder:
    """Collects sent events; :meth:`write` makes a multi-track MIDI file of them.

    Args:
        track_names: a name per channel (e.g. the layer names); others are "channel N".
        max_events: most events kept (later ones are counted in ``dropped``), so a forgotten
            recorder cannot eat the memory.
    """

    def __init__(self, track_names: Mapping[int, str] | None = None, max_events: int = 2_000_000) -> None:
        self.track_names = dict(track_names or {})
        self.max_events = int(max_events)
        self.events: list[tuple[float, int, int, int, int]] = []
        self.dropped = 0

    def send(self, time_s: float, kind: int, channel: int, a: int, b: int) -> None:
        """Keep one event (see :mod:`engine.scheduler` for kinds)."""
        if kind not in (NOTE_ON, NOTE_OFF, CONTROL, PROGRAM):
            return
        if len(self.events) >= self.max_events:
            self.dropped += 1
            return
        self.events.append((float(time_s), int(kind), int(channel), int(a), int(b)))

    def write(self, path: str | os.PathLike[str], tempo_map: TempoMap) -> Path:
        """Write the events as a type-1 MIDI file; returns the path.

        Args:
            path: the .mid file to write (parent directories must exist).
            tempo_map: the session's tempo map (maps event times to beats, and is written).
        """
        out = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
        tempo_track = mido.MidiTrack()
        tempo_track.append(mido.MetaMessage("track_name", name="affetto", time=0))
        tempo_track.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
        last = 0
        for beat, _, bpm in tempo_map.segments:
            tick = round(beat * TICKS_PER_BEAT)
            tempo_track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=tick - last))
            last = tick
        out.tracks.append(tempo_track)
        by_channel: dict[int, list[tuple[int, int, int, int, int]]] = {}
        for order, (time_s, kind, ch, a, b) in enumerate(self.events):
            tick = max(0, round(tempo_map.beat(time_s) * TICKS_PER_BEAT))
            by_channel.setdefault(ch, []).append((tick, order, kind, a, b))
        for ch in sorted(by_channel):
            track = mido.MidiTrack()
            track.append(
                mido.MetaMessage("track_name", name=self.track_names.get(ch, f"channel {ch + 1}"), time=0)
            )
            last = 0
            for tick, _, kind, a, b in sorted(by_channel[ch]):
                msg = _message(kind, ch, a, b)
                track.append(msg.copy(time=tick - last))
                last = tick
            out.tracks.append(track)
        target = Path(path)
        out.save(str(target))
        return target


def _message(kind: int, channel: int, a: int, b: int) -> mido.Message:
    if kind == NOTE_ON:
        return mido.Message("note_on", channel=channel, note=a, velocity=b)
    if kind == NOTE_OFF:
        return mido.Message("note_off", channel=channel, note=a, velocity=0)
    if kind == CONTROL:
        return mido.Message("control_change", channel=channel, control=a, value=b)
    return mido.Message("program_change", channel=channel, program=a)


def write_wav(path: str | os.PathLike[str], audio: np.ndarray, sample_rate_hz: int) -> Path:
    """Write float audio (frames, channels) in [-1, 1] as 16-bit PCM; returns the path."""
    data = np.asarray(audio, dtype=np.float32)
    if data.ndim == 1:
        data = data[:, None]
    pcm = (np.clip(data, -1.0, 1.0) * 32767.0).round().astype("<i2")
    target = Path(path)
    with wave.open(str(target), "wb") as w:
        w.setnchannels(pcm.shape[1])
        w.setsampwidth(2)
        w.setframerate(int(sample_rate_hz))
        w.writeframes(pcm.tobytes())
    return target


def read_wav(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """A 16-bit PCM WAV file as float32 (frames, channels) and its sample rate."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM is supported, got {8 * w.getsampwidth()}-bit")
        frames = w.readframes(w.getnframes())
        data = np.frombuffer(frames, dtype="<i2").reshape(-1, w.getnchannels())
        return data.astype(np.float32) / 32767.0, w.getframerate()
