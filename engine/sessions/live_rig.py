"""One live session on local devices: the built-in synth on an audio device, a MIDI port.

``affetto play`` and ``demo`` run on the same engine as ``affetto serve``: a
:class:`engine.sessions.host.SessionHost` (its composing thread and its clock thread) with one
session, playing into local outputs (:class:`engine.outputs.host_outputs.HostOutputs`, in this
process). :class:`LiveRig` opens the outputs (failing early with a clear error), starts the
host before the audio stream (the hot loops loaded, the heap frozen), ties the synth's sample
clock to the session's clock, and closes everything on exit: every note released, CC 123 on
every MIDI channel, the audio stream stopped after the voices ring out.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from engine.model.composer import Composer
from engine.music.conductor import BarInfo, Conductor
from engine.music.config import ConductorConfig
from engine.music.leitmotif import Theme
from engine.outputs.host_outputs import HostOutputs
from engine.outputs.recorders import MidiRecorder
from engine.outputs.sinks import EventSink
from engine.server.protocol import ProtocolError, Request
from engine.sessions.host import SessionHost
from engine.sessions.ops import Cue
from engine.sessions.profile import Profile
from engine.sessions.render import track_names
from engine.sessions.session import Session, SessionScript


class LiveRig:
    """One session on a :class:`SessionHost` with local outputs (see the module docstring).

    Args:
        composer: the composer.
        seed: the session seed.
        audio: play through the built-in synth on ``device``.
        device: audio output device (name, index, None: default).
        hostapi: PortAudio host API ("jack", "alsa", ...; None: any).
        midi_port: also send live MIDI to this port (None: no MIDI).
        midi_api: the MIDI API ("alsa", "jack", ...; None: default).
        config: the conductor's settings.
        themes: leitmotifs to register.
        start_state: the state the music starts in.
        sample_rate_hz, block_frames: the audio stream's.
        sinks: more sinks (recorders, listeners), sent every MIDI event at its time (beats and bars:
            see :meth:`add_bar_listener`).
        on_error: called with each problem (a failing output, a bad cue), as a message.
        record_wav: record what the synth plays to this WAV file (needs ``audio``).
        record_mid: record the MIDI events to this file (a track per layer), written on stop (the
            session then keeps its whole history: ``config.history_bars`` is None).
        timing_samples: keep this many lateness samples (see :attr:`timing`).

    Raises:
        engine.outputs.audio_stream.AudioUnavailable: the audio device cannot be opened.
        engine.outputs.midi_port.MidiPortError: the MIDI port cannot be opened.
        ValueError: ``start_state`` is not a state of ``config``.
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
        start_state: str = "explore",
        sample_rate_hz: int = 48_000,
        block_frames: int = 256,
        sinks: Sequence[EventSink] = (),
        on_error: Callable[[str], None] | None = None,
        record_wav: str | os.PathLike[str] | None = None,
        record_mid: str | os.PathLike[str] | None = None,
        timing_samples: int = 0,
    ) -> None:
        cfg = config or ConductorConfig()
        if record_mid is not None:  # the file maps every recorded time through the whole tempo map
            cfg = replace(cfg, history_bars=None)
        profile = Profile("play", cfg, start_state=start_state)  # ValueError: a state it does not have
        self.seed = seed
        self.themes = tuple(themes)
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
        local: list[EventSink] = list(sinks)
        if record_mid is not None:
            self.recorder = MidiRecorder(track_names(cfg))
            local.append(self.recorder)
        self.host = SessionHost(
            composer, profile, idle_timeout_s=math.inf, outputs=self.outputs, sinks_for=lambda name: local,
            on_error=on_error, timing_samples=timing_samples,
        )  # fmt: skip
        self.script = SessionScript()
        self.session: Session | None = None
        self._stopped = False

    # ---------------------------------------------------------------------------- setup
    @property
    def config(self) -> ConductorConfig:
        return self.host.profile.config

    def add_bar_listener(self, on_bar: Callable[[BarInfo, float], None]) -> None:
        """Call ``on_bar(info, time_s)`` as each bar starts (call before :meth:`start`)."""
        self.script.on_bar = on_bar

    def play_script(
        self,
        cues: Sequence[Cue],
        end_beat: float | None = None,
        on_cue: Callable[[Cue, float], None] | None = None,
    ) -> None:
        """Give ``cues`` when the music reaches their beats (as the offline render does, so a live
        run plays the same notes), and end the music at ``end_beat`` (then :attr:`finished` is
        set). Call before :meth:`start`."""
        self.script.cues = sorted(cues, key=lambda c: c.beat)
        self.script.end_beat = end_beat
        self.script.on_cue = on_cue

    def start(self) -> None:
        """Start the host (hot loops loaded first), then the audio stream, then the session."""
        self.outputs.prepare()
        self.host.start()
        self.outputs.start()
        self.session = self.host.open("play", seed=self.seed, themes=self.themes, script=self.script)

    # ---------------------------------------------------------------------------- playing
    def cue(self, cue: Cue) -> None:
        """Send an input now (thread-safe, never blocks); it lands at its sync point.

        Raises:
            RuntimeError: not started, or the host's inbox is full (slow down).
            ValueError: the cue names a state or stinger the session does not have.
        """
        if self.session is None or self._stopped:
            raise RuntimeError("the session is not running")
        args = {k: v for k, v in cue.args.items() if v is not None}
        try:
            self.host.submit(self.session, Request(cue.op, args))
        except ProtocolError as exc:
            if exc.code == "busy":
                raise RuntimeError(exc.message) from None
            raise ValueError(exc.message) from None

    @property
    def finished(self) -> threading.Event:
        """Set when a script's end beat has passed (see :meth:`play_script`)."""
        return self.script.finished

    @property
    def conductor(self) -> Conductor | None:
        return self.session.conductor if self.session is not None else None

    @property
    def t0(self) -> float:
        """``time.perf_counter()`` at the session's beat 0."""
        return self.session.t0 if self.session is not None else math.inf

    @property
    def errors(self) -> list[str]:
        """Problems met so far (bad cues, failing outputs), latest last."""
        return list(self.host.errors)

    @property
    def timing(self) -> Any:
        """How late the clock thread sent the session's events (:class:`engine.realtime.clock.Lateness`)."""
        return self.host.timing

    @property
    def sounding(self) -> int:
        """Notes sounding now (0 after :meth:`stop`)."""
        s = self.session
        return s.events.sounding if s is not None and s.events is not None else 0

    # ---------------------------------------------------------------------------- ending
    def stop(self, tail_s: float = 0.0) -> None:
        """Stop the music (every note released), let the voices ring ``tail_s``, close the outputs."""
        if not self._stopped:
            self._stopped = True
            self.host.stop()
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
            c = self.conductor
            if self.recorder is not None and self.record_mid is not None and self.recorder.events and c:
                self.recorder.write(self.record_mid, c.tempo_map)
                self.recorder.events.clear()

    def __enter__(self) -> LiveRig:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
