"""The offline render: a scripted session on a virtual clock (as fast as possible, sample-exact).

A session is a :class:`engine.music.conductor.Conductor` writing into an
:class:`engine.realtime.event_queue.EventQueue`; performing it means keeping the conductor a lookahead
ahead of the playhead and handing due events to sinks (MIDI port, synth, recorders).

* :func:`render` runs a scripted scene on a virtual clock, block by block: the composer fills
  the lookahead, due events go to the synth with their exact frames, the synth renders the
  block. The result depends only on the seed and the script, not on the block size or speed.
* live, a session plays on the real clock on the session host (:mod:`engine.sessions.host`;
  one session on local devices: :class:`engine.sessions.live_rig.LiveRig`), which applies
  cues through the same op dispatcher (:mod:`engine.sessions.ops`) at the same beats, so a live
  run of a script plays the notes its render does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from engine.model.composer import Composer
from engine.music.conductor import BarInfo, Conductor, compose_ahead
from engine.music.config import STINGER_CHANNEL, ConductorConfig, Emotion
from engine.music.leitmotif import Theme
from engine.music.tempo_map import TempoMap
from engine.outputs.recorders import MidiRecorder
from engine.outputs.sinks import CallbackSink, EventSink, SynthSink
from engine.realtime.event_queue import DueEvents, EventQueue
from engine.realtime.kinds import BEAT, KIND_NAMES
from engine.sessions.ops import Cue, apply_due_cues, script_end_s


def track_names(config: ConductorConfig) -> dict[int, str]:
    """MIDI track name per channel: the layers, and the stingers."""
    names = {layer.channel: layer.name for layer in config.layers}
    names[STINGER_CHANNEL] = "stingers"
    return names


@dataclass
class Rendered:
    """The result of :func:`render`."""

    audio: np.ndarray | None
    sample_rate_hz: int
    recorder: MidiRecorder
    tempo_map: TempoMap
    bars: dict[int, BarInfo]
    duration_s: float
    landed: list[tuple[Cue, float]] = field(default_factory=list)


def render(
    composer: Composer,
    cues: Sequence[Cue],
    end_beat: float,
    *,
    seed: int,
    config: ConductorConfig | None = None,
    start_state: str | None = "explore",
    start_emotion: Emotion | None = None,
    themes: Sequence[Theme] = (),
    audio: bool = True,
    sample_rate_hz: int = 48_000,
    block_frames: int = 512,
    tail_s: float = 2.0,
    on_event: Callable[[float, int, int, int, int], None] | None = None,
    on_cue: Callable[[Cue, float], None] | None = None,
    on_bar: Callable[[BarInfo, float], None] | None = None,
) -> Rendered:
    """Perform a scripted scene on a virtual clock (as fast as the machine allows).

    Args:
        composer: the composer (needs a free stream).
        cues: inputs, each given when the playhead reaches its beat (in order of beat).
        end_beat: the music stops at this beat (every note is released), then ``tail_s`` of
            audio lets the voices ring out.
        seed: the session seed.
        config: the conductor's settings (its ``history_bars`` is ignored: everything is kept).
        start_state: the state the music starts in.
        start_emotion: the emotion it starts at (None: the start state's).
        themes: leitmotifs to register.
        audio: render audio with the built-in synth (else only the MIDI recording).
        sample_rate_hz: audio rate.
        block_frames: the block the virtual clock advances by (the output does not depend on it).
        tail_s: seconds rendered after the end.
        on_event: called with every event sent (time_s, kind, channel, a, b), e.g. a timeline.
        on_cue: called with each cue and the beat it lands on.
        on_bar: called with each bar's :class:`BarInfo` and time as it starts sounding.

    Raises:
        ValueError: a cue is invalid (nothing is left sounding).
    """
    cfg = config or ConductorConfig()
    events = EventQueue()
    # every bar and tempo change kept: the result lists them all, the MIDI file needs the whole map
    conductor = Conductor(composer, events, seed, replace(cfg, history_bars=None), state=start_state,
                            emotion=start_emotion)  # fmt: skip
    for theme in themes:
        conductor.register_leitmotif(theme)
    recorder = MidiRecorder(track_names(cfg))
    sinks: list[EventSink] = [recorder]
    frame = 0
    blocks: BlockRenderer | None = None
    if audio:
        from engine.synth.polysynth import Synth  # compiles numba code: only loaded when audio is wanted

        synth = Synth(sample_rate_hz)
        blocks = BlockRenderer(synth, block_frames)
        # an event due before the block being filled sounds at its start, as it would if the synth
        # rendered each block right after its events (its worker may be a few blocks behind)
        sinks.append(SynthSink(synth, lambda t: max(round(t * sample_rate_hz), frame)))
    if on_event is not None:
        sinks.append(CallbackSink(on_event, tuple(range(len(KIND_NAMES)))))
    if on_bar is not None:
        sinks.append(BarSink(conductor, on_bar))
    pending = sorted(cues, key=lambda c: c.beat)
    landed: list[tuple[Cue, float]] = []
    end_s: float | None = None
    t_end = 0.0

    def land(cue: Cue, beat: float) -> None:
        landed.append((cue, beat))
        if on_cue is not None:
            on_cue(cue, beat)
        compose_ahead(composer, [conductor], t_end)  # the changed music, up to the block's end

    conductor.start(0.0)
    try:
        while True:
            t_end = (frame + block_frames) / sample_rate_hz
            if end_s is None:
                compose_ahead(composer, [conductor], t_end)
                apply_due_cues(conductor, pending, t_end, land)
                end_at = script_end_s(conductor, end_beat)
                if end_at < t_end:
                    _send(events.pop_due(end_at), sinks)
                    _send(events.all_notes_off(end_at), sinks)
                    conductor.stop(end_at)
                    end_s = end_at
            if end_s is None:
                _send(events.pop_due(t_end), sinks)
            if blocks is not None:
                blocks.ready()
            frame += block_frames
            if end_s is not None and t_end >= end_s + tail_s:
                break
    finally:
        if not conductor.closed:
            conductor.stop(frame / sample_rate_hz)
        if blocks is not None:
            blocks.close()
    audio_out = blocks.audio() if blocks is not None else None
    duration_s = frame / sample_rate_hz
    return Rendered(audio_out, sample_rate_hz, recorder, conductor.tempo_map, conductor.bars, duration_s,
                    landed)  # fmt: skip


def _send(due: DueEvents, sinks: Sequence[EventSink]) -> None:
    for t, k, ch, a, b in due.rows():
        for sink in sinks:
            sink.send(t, k, ch, a, b)


class BlockRenderer:
    """Renders a synth's blocks on a worker thread while the caller composes the next ones.

    The synth's event ring is single-producer/single-consumer and its kernel releases the GIL, so
    the caller keeps pushing events (composing, which mostly waits in ONNX Runtime, also without
    the GIL) while the worker renders: an offline render uses two cores. The caller pushes block
    ``n``'s events, then calls :meth:`ready`; the worker renders block ``n`` only after that, and
    the caller is never more than ``max_lead`` blocks ahead (bounding what the ring holds).

    Args:
        synth: the :class:`engine.synth.polysynth.Synth` to render (only this thread calls process).
        block_frames: frames per block.
        max_lead: most blocks handed over and not yet rendered.
    """

    def __init__(self, synth: object, block_frames: int, max_lead: int = 8) -> None:
        self._synth = synth
        self._block_frames = block_frames
        self._max_lead = max_lead
        self._changed = threading.Condition()
        self._handed = 0  # blocks whose events are all pushed
        self._rendered = 0  # blocks rendered
        self._done = False
        self._error: BaseException | None = None
        self._chunks: list[np.ndarray] = []
        self._thread = threading.Thread(target=self._run, name="affetto-render-synth", daemon=True)
        self._thread.start()

    def ready(self) -> None:
        """The next block's events are all pushed: render it (waits while ``max_lead`` are pending).

        Raises:
            RuntimeError: the worker failed (its exception is the cause).
        """
        with self._changed:
            while self._handed - self._rendered >= self._max_lead and self._error is None:
                self._changed.wait()
            self._check()
            self._handed += 1
            self._changed.notify_all()

    def close(self) -> None:
        """Render what was handed over and stop the worker. Idempotent."""
        with self._changed:
            self._done = True
            self._changed.notify_all()
        self._thread.join()

    def audio(self) -> np.ndarray | None:
        """After :meth:`close`: the blocks rendered, ``(frames, 2)`` float32 (None: none).

        Raises:
            RuntimeError: the worker failed (its exception is the cause).
        """
        self._check()
        return np.concatenate(self._chunks) if self._chunks else None

    def _check(self) -> None:
        if self._error is not None:
            raise RuntimeError("the synth's render thread failed") from self._error

    def _run(self) -> None:
        try:
            while True:
                with self._changed:
                    while self._rendered == self._handed and not self._done:
                        self._changed.wait()
                    if self._rendered == self._handed:
                        return
                out = np.zeros((self._block_frames, 2), dtype=np.float32)
                self._synth.process(out)  # type: ignore[attr-defined]
                self._chunks.append(out)
                with self._changed:
                    self._rendered += 1
                    self._changed.notify_all()
        except BaseException as exc:  # raised in the caller at its next ready() or audio()
            with self._changed:
                self._error = exc
                self._changed.notify_all()


class BarSink:
    """Calls ``on_bar(info, time_s)`` when a bar's downbeat is sent."""

    def __init__(self, conductor: Conductor, on_bar: Callable[[BarInfo, float], None]) -> None:
        self.conductor = conductor
        self.on_bar = on_bar

    def send(self, time_s: float, kind: int, channel: int, a: int, b: int) -> None:
        if kind == BEAT and a == 0:
            info = self.conductor.bar_heard(b)
            if info is not None:
                self.on_bar(info, time_s)
