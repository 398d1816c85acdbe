"""The outputs a server plays into, opened once at startup, that each session chooses from.

``affetto serve --audio`` opens the built-in synth on an audio device, ``--midi-port NAME`` an
existing MIDI output and ``--virtual-port NAME`` a new virtual one. Sessions pick among them by
name (``"audio"``, ``"midi"``) with the ``output`` op; a client can never open a device itself
(the server's owner decides what exists), and no port is opened while the music plays (opening an
rtmidi port can hold the GIL for a second under JACK).

Every session gets its own sink on a shared output: MIDI bytes go to the one port; synth events
are stamped with the synth frame of the session's own clock, so sessions started at different
times all land sample-accurately in one mix, and each session plays on its own block of 16 synth
channels (no session's note-off, program or volume reaches another's notes; a MIDI port has
only 16 channels, so sessions sharing one share them). Sinks are called from the clock thread only (the
synth's event ring has a single producer).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, Final

import numpy as np

from engine.outputs.recorders import WavTap
from engine.outputs.sinks import EventSink, MidiPortSink, SynthSink

AUDIO: Final = "audio"
MIDI: Final = "midi"
#: Audio events are scheduled this many blocks after their engine time, so an event composed
#: just in time still lands inside a block that has not been rendered yet.
AUDIO_DELAY_BLOCKS: Final = 2
#: blocks of 16 synth channels: each session on the synth gets one (the least used), so one
#: session's note-offs, programs and volumes never touch another's notes
SYNTH_CHANNEL_BLOCKS: Final = 16


class HostOutputs:
    """The server's outputs (see the module docstring).

    Args:
        audio: open the built-in synth on ``device``.
        midi_port: open this MIDI output (None: none), as ``midi_virtual`` says.
        midi_virtual: True creates a virtual port called ``midi_port``; False opens the existing
            port it names (exact, else a unique case-insensitive part; none matching is an error
            listing the ports); None opens an existing port if one matches, else creates a virtual
            one (for callers that pass no flag).
        midi_api: the MIDI API ("alsa", "jack", ...; None: default).
        device: audio output device (name, index, None: default).
        hostapi: PortAudio host API ("jack", "alsa", ...; None: any).
        sample_rate_hz, block_frames: the audio stream's.
        record_wav: record what the synth plays to this WAV file (needs ``audio``).

    Raises:
        engine.outputs.audio_stream.AudioUnavailable: the audio device cannot be opened.
        engine.outputs.midi_port.MidiPortError: the MIDI port cannot be opened.
    """

    #: sinks get each event at its time (see :class:`engine.outputs.output_process.OutputProcess`)
    lead_s: Final = 0.0

    def __init__(
        self,
        *,
        audio: bool = False,
        midi_port: str | None = None,
        midi_virtual: bool | None = None,
        midi_api: str | None = None,
        device: str | int | None = None,
        hostapi: str | None = None,
        sample_rate_hz: int = 48_000,
        block_frames: int = 256,
        record_wav: str | os.PathLike[str] | None = None,
    ) -> None:
        self.sample_rate_hz = sample_rate_hz
        self.block_frames = block_frames
        self.synth: Any = None
        self.audio: Any = None
        self.port: Any = None
        self.tap: WavTap | None = None
        self._frame_ref = 0
        self._wall_ref = 0.0
        self._block_users = [0] * SYNTH_CHANNEL_BLOCKS
        try:
            if midi_port is not None:
                from engine.outputs.midi_port import MidiPortOutput

                self.port = MidiPortOutput(midi_port, virtual=midi_virtual, api=midi_api)
            if audio:
                from engine.outputs.audio_stream import AudioOutput
                from engine.synth.polysynth import Synth

                self.synth = Synth(sample_rate_hz, channels=16 * SYNTH_CHANNEL_BLOCKS)
                render = self.synth.process
                if record_wav is not None:
                    self.tap = WavTap(record_wav, render, sample_rate_hz)
                    render = self.tap.render
                self.audio = AudioOutput(
                    render,
                    sample_rate_hz=sample_rate_hz,
                    block_frames=block_frames,
                    device=device,
                    hostapi=hostapi,
                )
        except BaseException:
            self.close()
            raise

    @property
    def names(self) -> tuple[str, ...]:
        """The outputs sessions can choose, in a fixed order."""
        return tuple(n for n, on in ((AUDIO, self.audio is not None), (MIDI, self.port is not None)) if on)

    #: in this process: there while this process is (see :class:`engine.outputs.output_process.OutputProcess`)
    alive: Final = True
    exit_code: Final = None

    @property
    def midi_port_name(self) -> str | None:
        """The MIDI port's name as other programs see it (None: no port)."""
        return self.port.name if self.port is not None else None

    def prepare(self) -> None:
        """Load the synth's compiled code (rendering and the event ring) before the stream runs:
        numba holds the GIL for milliseconds doing that, which the audio callback would wait for
        (an xrun). Call before :meth:`start`; the synth is reset afterwards."""
        synth = self.synth
        if synth is None:
            return
        synth.set_channel(0, "piano", 0.0)
        synth.note_on(0, 0, 60, 1)
        synth.note_off(32, 0, 60)
        synth.all_notes_off(48)
        synth.process(np.zeros((64, 2), dtype=np.float32))
        synth.reset()

    def start(self) -> None:
        """Start the audio stream and tie the synth's sample clock to the engine clock."""
        if self.audio is not None:
            self.audio.start()
            self._frame_ref, self._wall_ref = self.synth.frame, time.perf_counter()

    def sink(self, name: str, origin_s: Callable[[], float]) -> EventSink:
        """A session's sink on output ``name``.

        Args:
            name: one of :attr:`names`.
            origin_s: the session's clock origin (``time.perf_counter()`` of its time 0).

        Raises:
            ValueError: ``name`` is not one of this server's outputs.
        """
        if name == MIDI and self.port is not None:
            return MidiPortSink(self.port)
        if name == AUDIO and self.synth is not None:
            delay = AUDIO_DELAY_BLOCKS * self.block_frames

            def frame_of(time_s: float) -> int:
                wall = origin_s() + time_s
                return self._frame_ref + round((wall - self._wall_ref) * self.sample_rate_hz) + delay

            block = min(range(SYNTH_CHANNEL_BLOCKS), key=self._block_users.__getitem__)
            self._block_users[block] += 1

            def free() -> None:
                self._block_users[block] -= 1

            return SynthSink(self.synth, frame_of, channel_offset=16 * block, on_forget=free)
        raise ValueError(f"unknown output {name!r}; this server has: {list(self.names) or 'none'}")

    def close(self) -> None:
        """Close the audio stream, the MIDI port and the recording (the rest even if the stream
        reports an error).

        Raises:
            engine.outputs.audio_stream.AudioRenderError: the synth failed while rendering.
        """
        try:
            if self.audio is not None:
                self.audio.close()
        finally:
            if self.port is not None:
                self.port.close()
            if self.tap is not None:
                self.tap.close()
