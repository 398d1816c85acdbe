"""Recorders: what a session played, written to a Standard MIDI File or a WAV file.

The MIDI recorder keeps the events it is sent (times on the engine clock) and writes a type-1
file: a tempo track from the session's tempo map, then one named track per channel (one per
layer), so a DAW opens it with every layer on its own track. :func:`write_wav` writes float
audio as 16-bit PCM; :class:`WavTap` records a live stream to a WAV file.
"""

from __future__ import annotations

import os
import threading
import wave
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

import mido
import numpy as np

from engine.music.tempo_map import TempoMap
from engine.realtime.kinds import CONTROL, NOTE_OFF, NOTE_ON, PROGRAM

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
        """Keep one event (see :mod:`engine.realtime.event_queue` for kinds)."""
        if kind not in (NOTE_ON, NOTE_OFF, CONTROL, PROGRAM):
            return
        if len(self.events) >= self.max_events:
            self.dropped += 1
            return
        self.events.append((float(time_s), int(kind), int(channel), int(a), int(b)))

    def write(self, path: str | os.PathLike[str], tempo_map: TempoMap, meter_beats: int = 4) -> Path:
        """Write the events as a type-1 MIDI file; returns the path.

        Args:
            path: the .mid file to write (parent directories must exist).
            tempo_map: the session's tempo map (maps event times to beats, and is written).
            meter_beats: quarter-note beats per bar (the time signature written).
        """
        out = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
        tempo_track = mido.MidiTrack()
        tempo_track.append(mido.MetaMessage("track_name", name="affetto", time=0))
        tempo_track.append(mido.MetaMessage("time_signature", numerator=meter_beats, denominator=4, time=0))
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


class WavTap:
    """Records a live audio stream to a 16-bit WAV without touching the audio thread's budget.

    Wrap the stream's render function with :meth:`render`: after rendering it copies the block
    into a preallocated ring (no allocation, no lock); a writer thread drains the ring to the
    file every ``drain_s``. If the writer falls more than the ring behind, the oldest audio is
    overwritten and counted in ``overruns``.

    Args:
        path: the .wav file to write.
        render: the real render function (e.g. ``synth.process``).
        sample_rate_hz: the stream's rate.
        channels: the stream's channels.
        ring_s: seconds the ring holds.
        drain_s: how often the writer wakes.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        render: Callable[[np.ndarray], None],
        sample_rate_hz: int,
        channels: int = 2,
        ring_s: float = 4.0,
        drain_s: float = 0.1,
    ) -> None:
        self.path = Path(path)
        self._render = render
        self._ring = np.zeros((max(1024, round(ring_s * sample_rate_hz)), channels), dtype=np.float32)
        self._written = 0  # frames the audio thread has put in (monotonic)
        self._drained = 0  # frames the writer has taken out
        self.overruns = 0
        self._drain_s = drain_s
        self._wav = wave.open(str(self.path), "wb")  # noqa: SIM115 - open until close()
        self._wav.setnchannels(channels)
        self._wav.setsampwidth(2)
        self._wav.setframerate(int(sample_rate_hz))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._writer, name="affetto-wav", daemon=True)
        self._thread.start()

    def render(self, out: np.ndarray) -> None:
        """Render into ``out`` and keep a copy (audio thread)."""
        self._render(out)
        n, size = out.shape[0], self._ring.shape[0]
        start = self._written % size
        first = min(n, size - start)
        self._ring[start : start + first] = out[:first]
        if first < n:
            self._ring[: n - first] = out[first:]
        self._written += n

    def _drain(self) -> None:
        written, size = self._written, self._ring.shape[0]
        if written - self._drained > size:
            self.overruns += written - self._drained - size
            self._drained = written - size
        while self._drained < written:
            start = self._drained % size
            end = min(size, start + (written - self._drained))
            block = self._ring[start:end]
            pcm = (np.clip(block, -1.0, 1.0) * 32767.0).round().astype("<i2")
            self._wav.writeframes(pcm.tobytes())
            self._drained += end - start

    def _writer(self) -> None:
        while not self._stop.wait(self._drain_s):
            self._drain()

    def close(self) -> Path:
        """Write what is left and close the file; returns its path."""
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join()
            self._drain()
            self._wav.close()
        return self.path
