"""A live performance wired to real outputs: the built-in synth on an audio device, a MIDI port.

:class:`LiveRig` opens the outputs (failing early with a clear error), starts the audio stream,
ties the synth's sample clock to the engine clock, and closes everything on exit: every note
released, CC 123 on every MIDI channel, the audio stream stopped after the voices ring out.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from engine.composer import Composer
from engine.conductor import BarInfo
from engine.conductor_config import ConductorConfig
from engine.event_sinks import EventSink, MidiPortSink, SynthSink
from engine.leitmotif import Theme
from engine.performance import BarSink, LivePerformance, track_names
from engine.recorders import MidiRecorder, WavTap

#: Audio events are scheduled this many blocks after their engine time, so an event composed
#: just in time still lands inside a block that has not been rendered yet.
AUDIO_DELAY_BLOCKS: Final = 2


class LiveRig:
    """Outputs plus a :class:`LivePerformance` (see the module docstring).

    Args:
        composer: the composer.
        seed: the session seed.
        audio: play through the built-in synth on ``device``.
        device: audio output device (name, index, None: default).
        hostapi: PortAudio host API ("jack", "alsa", ...; None: any).
        midi_port: also send live MIDI to this port (None: no MIDI).
        midi_api: the MIDI API ("alsa", "jack", ...; None: default).
        config, themes, start_state: for the performance.
        sample_rate_hz, block_frames: the audio stream's.
        sinks: more sinks (recorders, listeners).
        record_wav: record what the synth plays to this WAV file (needs ``audio``).
        record_mid: record the MIDI events to this file (a track per layer), written on stop.

    Raises:
        engine.audio_stream.AudioUnavailable: the audio device cannot be opened.
        engine.midi_port.MidiPortError: the MIDI port cannot be opened.
    """

    def __init__(
        self,
        composer: Composer,
        seed: int,
        *,
        audio: bool = True,
        device: str | int | None = None,
        hostapi: str | None = None,
        midi_port: str | None = None,
        midi_api: str | None = None,
        config: ConductorConfig | None = None,
        themes: Sequence[Theme] = (),
        start_state: str | None = "explore",
        sample_rate_hz: int = 48_000,
        block_frames: int = 256,
        sinks: Sequence[EventSink] = (),
        on_error: Callable[[BaseException], None] | None = None,
        record_wav: str | os.PathLike[str] | None = None,
        record_mid: str | os.PathLike[str] | None = None,
    ) -> None:
        self.sample_rate_hz = sample_rate_hz
        self.block_frames = block_frames
        self.synth: Any = None
        self.audio: Any = None
        self.port: Any = None
        self._frame_ref = 0
        self._wall_ref = 0.0
        self.tap: WavTap | None = None
        self.recorder: MidiRecorder | None = None
        self.record_mid = record_mid
        all_sinks: list[EventSink] = list(sinks)
        if record_mid is not None:
            self.recorder = MidiRecorder(track_names(config or ConductorConfig()))
            all_sinks.append(self.recorder)
        try:
            if midi_port is not None:
                from engine.midi_port import MidiPortOutput

                self.port = MidiPortOutput(midi_port, api=midi_api)
                all_sinks.append(MidiPortSink(self.port))
            if audio:
                from engine.audio_stream import AudioOutput
                from engine.synth import Synth

                self.synth = Synth(sample_rate_hz)
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
                all_sinks.append(SynthSink(self.synth, self._frame_of))
        except BaseException:
            self.close()
            raise
        self.performance = LivePerformance(
            composer, seed, all_sinks, config, start_state=start_state, themes=themes, on_error=on_error
        )

    def _frame_of(self, time_s: float) -> int:
        wall = self.performance.t0 + time_s
        delay = AUDIO_DELAY_BLOCKS * self.block_frames
        return self._frame_ref + round((wall - self._wall_ref) * self.sample_rate_hz) + delay

    def add_bar_listener(self, on_bar: Callable[[BarInfo, float], None]) -> None:
        """Call ``on_bar(info, time_s)`` as each bar starts (call before :meth:`start`)."""
        self.performance.sinks.append(BarSink(self.performance.conductor, on_bar))

    def start(self) -> None:
        """Start the audio stream, tie the synth clock to the engine clock, start the music."""
        self.performance.prepare()  # compiled code loaded before the audio callback runs
        if self.audio is not None:
            self.audio.start()
            self._frame_ref, self._wall_ref = self.synth.frame, time.perf_counter()
        self.performance.start()

    def stop(self, tail_s: float = 0.0) -> None:
        """Stop the music (every note released), let the voices ring ``tail_s``, close the outputs."""
        self.performance.stop()
        if self.audio is not None and tail_s > 0:
            time.sleep(tail_s)
        self.close()

    def close(self) -> None:
        """Close the audio stream and the MIDI port (the port even if the stream reports an error).

        Raises:
            engine.audio_stream.AudioRenderError: the synth failed while rendering.
        """
        try:
            if self.audio is not None:
                self.audio.close()
        finally:
            if self.port is not None:
                self.port.close()
            if self.tap is not None:
                self.tap.close()
            if self.recorder is not None and self.record_mid is not None and self.recorder.events:
                self.recorder.write(self.record_mid, self.performance.conductor.tempo_map)
                self.recorder.events.clear()

    def __enter__(self) -> LiveRig:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
