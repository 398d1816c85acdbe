"""Running a session: offline (as fast as possible, sample-exact) or live (real clock, threads).

A session is a :class:`engine.music.conductor.Conductor` writing into an
:class:`engine.realtime.event_queue.EventQueue`; performing it means keeping the conductor a lookahead
ahead of the playhead and handing due events to sinks (MIDI port, synth, recorders).

* :func:`render` runs a scripted scene on a virtual clock, block by block: the composer fills
  the lookahead, due events go to the synth with their exact frames, the synth renders the
  block. The result depends only on the seed and the script, not on the block size or speed.
* :class:`LivePerformance` runs on the real clock with two threads: a composing thread (drains
  the command inbox, keeps the lookahead full) and a clock thread (sleeps until the next event
  is due, sends it to the sinks). The audio callback, if any, only renders the synth. Every
  exit path sends NOTE_OFF for every sounding note and CC 123 on every channel.
"""

from __future__ import annotations

import gc
import math
import queue as queue_mod
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from engine.model.composer import Composer
from engine.music.conductor import BarInfo, Conductor, compose_ahead
from engine.music.config import STINGER_CHANNEL, ConductorConfig, check_sync
from engine.music.leitmotif import Theme
from engine.music.tempo_map import TempoMap
from engine.outputs.recorders import MidiRecorder
from engine.outputs.sinks import CallbackSink, EventSink, SynthSink
from engine.realtime.event_queue import BEAT, CONTROL, KIND_NAMES, DueEvents, EventQueue

OPS: Final = ("state", "emotion", "stinger", "leitmotif", "tempo")
#: Python's thread switch interval while a live performance runs (the default is 5 ms, which
#: would let the composing thread delay the clock thread by that much).
SWITCH_INTERVAL_S: Final = 0.0001


@dataclass(frozen=True)
class Cue:
    """One scripted input, given at a beat of the session.

    Attributes:
        beat: when the input arrives (the playhead's beat); it then lands at its sync point.
        op: "state", "emotion", "stinger", "leitmotif" or "tempo".
        name: the state, stinger or leitmotif name.
        valence, arousal, tension: for "emotion".
        tempo_bpm: for "tempo" (None: follow arousal again).
        sync: sync point (None: the op's default).
        seek_per_s: for "emotion" (None: jump).
    """

    beat: float
    op: str
    name: str | None = None
    valence: float = 0.0
    arousal: float = 0.0
    tension: float | None = None
    tempo_bpm: float | None = None
    sync: str | None = None
    seek_per_s: float | None = None

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"cue op must be one of {OPS}, got {self.op!r}")
        if not (math.isfinite(self.beat) and self.beat >= 0):
            raise ValueError(f"cue beat must be a finite number >= 0, got {self.beat!r}")
        if self.op in ("state", "stinger", "leitmotif") and not self.name:
            raise ValueError(f"a {self.op} cue needs a name")
        if self.sync is not None:
            check_sync(self.sync)


def apply_cue(conductor: Conductor, now_s: float, cue: Cue) -> float:
    """Give ``cue`` to ``conductor`` at engine time ``now_s``; returns the beat it lands on.

    Raises:
        TypeError, ValueError: the cue's values are out of range or name nothing known.
    """
    if cue.op == "state":
        return conductor.set_state(now_s, str(cue.name), sync=cue.sync)
    if cue.op == "emotion":
        return conductor.set_emotion(
            now_s,
            cue.valence,
            cue.arousal,
            cue.tension,
            sync=cue.sync or "immediate",
            seek_per_s=cue.seek_per_s,
        )
    if cue.op == "stinger":
        return conductor.stinger(now_s, str(cue.name))
    if cue.op == "leitmotif":
        return conductor.leitmotif(now_s, str(cue.name), sync=cue.sync or "bar")
    return conductor.set_tempo(now_s, cue.tempo_bpm, sync=cue.sync or "bar")


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
        config: the conductor's settings.
        start_state: the state the music starts in.
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
    conductor = Conductor(composer, events, seed, cfg, state=start_state)
    for theme in themes:
        conductor.register_leitmotif(theme)
    recorder = MidiRecorder(track_names(cfg))
    sinks: list[EventSink] = [recorder]
    synth = None
    if audio:
        from engine.synth.polysynth import Synth  # compiles numba code: only loaded when audio is wanted

        synth = Synth(sample_rate_hz)
    if synth is not None:
        sinks.append(SynthSink(synth, lambda t: round(t * sample_rate_hz)))
    if on_event is not None:
        sinks.append(CallbackSink(on_event, tuple(range(len(KIND_NAMES)))))
    if on_bar is not None:
        sinks.append(BarSink(conductor, on_bar))
    pending = sorted(cues, key=lambda c: c.beat)
    landed: list[tuple[Cue, float]] = []
    block = np.zeros((block_frames, 2), dtype=np.float32)
    chunks: list[np.ndarray] = []
    frame = 0
    end_s: float | None = None
    conductor.start(0.0)
    try:
        while True:
            t_end = (frame + block_frames) / sample_rate_hz
            if end_s is None:
                compose_ahead(composer, [conductor], t_end)
                while pending and conductor.tempo_map.seconds(pending[0].beat) < t_end:
                    cue = pending.pop(0)
                    beat = apply_cue(conductor, conductor.tempo_map.seconds(cue.beat), cue)
                    landed.append((cue, beat))
                    if on_cue is not None:
                        on_cue(cue, beat)
                    compose_ahead(composer, [conductor], t_end)
                end_at = conductor.tempo_map.seconds(end_beat)
                if end_at < t_end:
                    _send(events.pop_due(end_at), sinks)
                    _send(events.all_notes_off(end_at), sinks)
                    conductor.stop(end_at)
                    end_s = end_at
            if end_s is None:
                _send(events.pop_due(t_end), sinks)
            if synth is not None:
                synth.process(block)
                chunks.append(block.copy())
            frame += block_frames
            if end_s is not None and t_end >= end_s + tail_s:
                break
    finally:
        if not conductor.closed:
            conductor.stop(frame / sample_rate_hz)
    audio_out = np.concatenate(chunks) if chunks else None
    duration_s = frame / sample_rate_hz
    return Rendered(audio_out, sample_rate_hz, recorder, conductor.tempo_map, conductor.bars, duration_s,
                    landed)  # fmt: skip


def _send(due: DueEvents, sinks: Sequence[EventSink]) -> None:
    for t, k, ch, a, b in due.rows():
        for sink in sinks:
            sink.send(t, k, ch, a, b)


class BarSink:
    """Calls ``on_bar(info, time_s)`` when a bar's downbeat is sent."""

    def __init__(self, conductor: Conductor, on_bar: Callable[[BarInfo, float], None]) -> None:
        self.conductor = conductor
        self.on_bar = on_bar

    def send(self, time_s: float, kind: int, channel: int, a: int, b: int) -> None:
        if kind == BEAT and a == 0:
            info = self.conductor.bars.get(b)
            if info is not None:
                self.on_bar(info, time_s)


# ------------------------------------------------------------------------------------ live
@dataclass
class TimingStats:
    """How late the clock thread sent events (seconds; negative: early), measured from the
    later of the event's time and the moment it was queued (events of an immediate change are
    queued after their time: "as soon as possible"; their delay is the control latency)."""

    errors_s: list[float] = field(default_factory=list)
    max_kept: int = 200_000

    def add(self, error_s: float) -> None:
        if len(self.errors_s) < self.max_kept:
            self.errors_s.append(error_s)


class LivePerformance:
    """One live session on the real clock (see the module docstring).

    Commands (:meth:`cue`) may come from any thread; they are queued to the composing thread
    and answered there. Errors in a command are reported to ``on_error`` (the music goes on).

    Args:
        composer: the composer (driven only by this performance's composing thread).
        seed: the session seed.
        sinks: where due events go (MIDI port sink, synth sink, recorder, ...).
        config: the conductor's settings.
        start_state: the state the music starts in.
        themes: leitmotifs to register.
        preroll_s: time between :meth:`start` and beat 0 (the first bar is composed in it).
        on_error: called with exceptions raised by bad commands or failing sinks.
        spin_s: the clock thread polls (yielding the GIL) for the last ``spin_s`` before an event
            instead of sleeping: a sleeping thread wakes up to a few ms late under load.
    """

    def __init__(
        self,
        composer: Composer,
        seed: int,
        sinks: Sequence[EventSink],
        config: ConductorConfig | None = None,
        *,
        start_state: str | None = "explore",
        themes: Sequence[Theme] = (),
        preroll_s: float = 0.15,
        on_error: Callable[[BaseException], None] | None = None,
        spin_s: float = 0.002,
    ) -> None:
        self.composer = composer
        self.config = config or ConductorConfig()
        self.events = EventQueue(clock=self._queued_at)
        self.conductor = Conductor(composer, self.events, seed, self.config, state=start_state)
        for theme in themes:
            self.conductor.register_leitmotif(theme)
        self.sinks = list(sinks)
        self.preroll_s = float(preroll_s)
        self.on_error = on_error
        self.spin_s = float(spin_s)
        self.timing = TimingStats()
        self.t0 = time.perf_counter()
        self._wake = threading.Condition()  # wakes the clock thread when earlier events arrive
        self._inbox: queue_mod.Queue[tuple[Cue, float, Callable[[float], None] | None]] = queue_mod.Queue(
            maxsize=1024
        )
        self._running = False
        self._prepared = False
        self._started = False
        self._threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []
        self._script: list[Cue] = []
        self._end_beat: float | None = None
        self._on_cue: Callable[[Cue, float], None] | None = None
        self.finished = threading.Event()

    # ---------------------------------------------------------------------------- control
    def _queued_at(self) -> float:
        """The engine time for the queue's bookkeeping; before the clock starts, "long ago"."""
        return self.now_s() if self._started else -1e9

    def now_s(self) -> float:
        """The engine clock: seconds since beat 0 (negative during the preroll)."""
        return time.perf_counter() - self.t0

    def prepare(self) -> None:
        """Load every compiled hot loop and compose the first lookahead (idempotent).

        Call it before an audio stream starts: numba loads compiled code from its cache on first
        use, holding the GIL for milliseconds, which would make the audio callback miss its
        deadline; likewise a full garbage collection, done (and the heap frozen) here.
        :meth:`start` calls it if it has not run.
        """
        if self._prepared:
            return
        self.events.warm_up()
        self.conductor.start(0.0)
        compose_ahead(self.composer, [self.conductor], 0.0)
        gc.collect()
        gc.freeze()  # a full collection of the start-up heap holds the GIL for ~10 ms: never again
        self._prepared = True

    def start(self) -> None:
        """Prepare, then start the clock (beat 0 after ``preroll_s``) and the two threads."""
        if sys.getswitchinterval() > SWITCH_INTERVAL_S:
            sys.setswitchinterval(SWITCH_INTERVAL_S)  # the clock thread must get the GIL in time
        self.prepare()
        self.finished.clear()
        self.t0 = time.perf_counter() + self.preroll_s
        self._started = True
        self._running = True
        self._threads = [
            threading.Thread(target=self._compose_loop, name="affetto-compose", daemon=True),
            threading.Thread(target=self._clock_loop, name="affetto-clock", daemon=True),
        ]
        for th in self._threads:
            th.start()

    def play_script(
        self,
        cues: Sequence[Cue],
        end_beat: float | None = None,
        on_cue: Callable[[Cue, float], None] | None = None,
    ) -> None:
        """Give ``cues`` when the music reaches their beats (as :func:`render` does, so a live run
        plays the same notes), and end the music at ``end_beat`` (then :attr:`finished` is set).
        Call before :meth:`start`."""
        self._script = sorted(cues, key=lambda c: c.beat)
        self._end_beat = end_beat
        self._on_cue = on_cue

    def cue(self, cue: Cue, on_landed: Callable[[float], None] | None = None) -> None:
        """Queue an input now (thread-safe, never blocks); ``on_landed(beat)`` when applied.

        Raises:
            RuntimeError: the inbox is full (1024 pending commands) or the performance is stopped.
        """
        if not self._running:
            raise RuntimeError("the performance is not running")
        try:
            self._inbox.put_nowait((cue, self.now_s(), on_landed))
        except queue_mod.Full:
            raise RuntimeError("too many pending commands (1024); slow down") from None
        self._notify()

    def _notify(self) -> None:
        with self._wake:
            self._wake.notify_all()
        time.sleep(0)  # hand the GIL over now: the clock thread may have an event due

    def stop(self) -> None:
        """Stop the threads; every sounding note gets its NOTE_OFF and every channel CC 123."""
        if not self._running and not self._threads:
            return
        self._running = False
        self._notify()
        for th in self._threads:
            th.join(timeout=5.0)
        self._threads = []
        now = self.now_s()
        for t, k, ch, a, b in self.events.all_notes_off(now).rows():
            self._deliver(t, k, ch, a, b)
        for ch in range(16):
            self._deliver(now, CONTROL, ch, 123, 0)
        self.conductor.stop(now)

    @property
    def sounding(self) -> int:
        return self.events.sounding

    def __enter__(self) -> LivePerformance:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------------------- threads
    def _compose_loop(self) -> None:
        conductor, composer = self.conductor, self.composer
        while self._running:
            if self._script_due():
                continue
            try:
                cue, at_s, on_landed = self._inbox.get(timeout=0.01)
            except queue_mod.Empty:
                cue = None
            if cue is not None:
                try:
                    beat = apply_cue(conductor, max(at_s, 0.0), cue)
                    self._notify()
                    if on_landed is not None:
                        on_landed(beat)
                except (TypeError, ValueError) as err:
                    self._report(err)
            try:
                while self._running and conductor.needs_tokens(self.now_s()):
                    compose_ahead(composer, [conductor], self.now_s(), max_tokens=1)
                    self._notify()
                    if not self._inbox.empty():
                        break
            except Exception as err:  # a failing model must not leave notes hanging: report and stop
                self._report(err)
                self._running = False

    def _script_due(self) -> bool:
        """Apply scripted cues that are about due, end the music at the end beat; True if it ended."""
        conductor, now = self.conductor, self.now_s()
        while self._script and conductor.tempo_map.seconds(self._script[0].beat) <= now + 0.02:
            cue = self._script.pop(0)
            try:
                beat = apply_cue(conductor, conductor.tempo_map.seconds(cue.beat), cue)
                self._notify()
                if self._on_cue is not None:
                    self._on_cue(cue, beat)
            except (TypeError, ValueError) as err:
                self._report(err)
        if self._end_beat is None:
            return False
        end_s = conductor.tempo_map.seconds(self._end_beat)
        if now < end_s:
            return False
        self._running = False  # the clock thread stops too; stop() then releases every note
        self.finished.set()
        self._notify()
        return True

    def _clock_loop(self) -> None:
        events, wake = self.events, self._wake
        while self._running:
            with wake:  # an event queued after this check notifies only once we wait
                wait = events.next_time_s - self.now_s()
                if wait > self.spin_s:
                    wake.wait(min(wait - self.spin_s, 0.05))
                    continue
            while self.now_s() < events.next_time_s and self._running:  # the last fraction of a ms
                time.sleep(0)  # poll, letting the composing thread run in between
            due = events.pop_due(self.now_s())
            rows, queued = due.rows(), due.queued_s.tolist()
            for (t, k, ch, a, b), q in zip(rows, queued, strict=True):
                self.timing.add(self.now_s() - max(t, q))  # queued late (an immediate change): from then
                self._deliver(t, k, ch, a, b)

    def _deliver(self, t: float, k: int, ch: int, a: int, b: int) -> None:
        for sink in self.sinks:
            try:
                sink.send(t, k, ch, a, b)
            except Exception as err:  # one broken output must not stop the others
                self._report(err)

    def _report(self, err: BaseException) -> None:
        if len(self.errors) < 100:
            self.errors.append(err)
        if self.on_error is not None:
            self.on_error(err)
