"""A live performance wired to real outputs: the built-in synth on an audio device, a MIDI port.

:class:`LiveRig` opens the outputs (failing early with a clear error), starts the audio stream,
ties the synth's sample clock to the engine clock, and closes everything on exit: every note
released, CC 123 on every MIDI channel, the audio stream stopped after the voices ring out.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

from engine.model.composer import Composer
from engine.music.conductor import BarInfo
from engine.music.config import ConductorConfig
from engine.music.leitmotif import Theme
from engine.outputs.host_outputs import HostOutputs
from engine.outputs.recorders import MidiRecorder
from engine.outputs.sinks import EventSink
from engine.sessions.performance import BarSink, LivePerformance, track_names


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
        engine.outputs.audio_stream.AudioUnavailable: the audio device cannot be opened.
        engine.outputs.midi_port.MidiPortError: the MIDI port cannot be opened.
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
        self.outputs = HostOutputs(
            audio=audio, midi_port=midi_port, midi_api=midi_api, device=device, hostapi=hostapi,
            sample_rate_hz=sample_rate_hz, block_frames=block_frames, record_wav=record_wav,
        )  # fmt: skip
        self.synth, self.audio, self.port, self.tap = (
            self.outputs.synth,
            self.outputs.audio,
            self.outputs.port,
            self.outputs.tap,
        )
        self.recorder: MidiRecorder | None = None
        self.record_mid = record_mid
        all_sinks: list[EventSink] = list(sinks)
        if record_mid is not None:
            self.recorder = MidiRecorder(track_names(config or ConductorConfig()))
            all_sinks.append(self.recorder)
        all_sinks += [self.outputs.sink(name, lambda: self.performance.t0) for name in self.outputs.names]
        self.performance = LivePerformance(
            composer, seed, all_sinks, config, start_state=start_state, themes=themes, on_error=on_error
        )

    def add_bar_listener(self, on_bar: Callable[[BarInfo, float], None]) -> None:
        """Call ``on_bar(info, time_s)`` as each bar starts (call before :meth:`start`)."""
        self.performance.sinks.append(BarSink(self.performance.conductor, on_bar))

    def start(self) -> None:
        """Start the audio stream, tie the synth clock to the engine clock, start the music."""
        self.performance.prepare()  # compiled code loaded before the audio callback runs
        self.outputs.start()
        self.performance.start()

    def stop(self, tail_s: float = 0.0) -> None:
        """Stop the music (every note released), let the voices ring ``tail_s``, close the outputs."""
        self.performance.stop()
        if self.audio is not None and tail_s > 0:
            time.sleep(tail_s)
        self.close()

    def close(self) -> None:
        """Close the outputs and write the MIDI recording.

        Raises:
            engine.outputs.audio_stream.AudioRenderError: the synth failed while rendering.
        """
        try:
            self.outputs.close()
        finally:
            if self.recorder is not None and self.record_mid is not None and self.recorder.events:
                self.recorder.write(self.record_mid, self.performance.conductor.tempo_map)
                self.recorder.events.clear()

    def __enter__(self) -> LiveRig:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
