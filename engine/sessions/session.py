"""A session: one music stream, who listens to it and where it plays; the host's threads drive it.

:class:`Session` holds a session's state and its routing — the outputs it plays into, the
sinks that get its events at their time, its subscribers — and the clock thread's work on it
(:meth:`Session.route`, :meth:`Session.release_now`). The threads that compose and play every
session are :class:`engine.sessions.host.SessionHost`'s.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from engine.music.conductor import BarInfo, Conductor, channel_setup
from engine.music.config import STINGER_CHANNEL, ConductorConfig, Emotion
from engine.music.leitmotif import Theme
from engine.outputs.gm import EXPRESSION_CC, expression_for_level
from engine.outputs.sinks import EventSink
from engine.realtime.clock import Lateness
from engine.realtime.event_queue import EventQueue
from engine.realtime.kinds import BEAT, CLOCK, CLOCK_STOP, CONTROL, NOTE_OFF, NOTE_ON
from engine.server.protocol import Request
from engine.sessions.ops import Cue
from engine.sessions.profile import ParamMapper, Profile

Subscriber = Callable[[dict[str, Any]], None]
Row = tuple[float, int, int, int, int]  # (time_s, kind, channel, a, b)
Report = Callable[[str], None]  # reports a problem (see SessionHost.report)
#: the output every server has: a session's notes as ``note`` events to its own subscribers
NOTES: Final = "notes"


@dataclass
class SessionScript:
    """Cues given when a session's music reaches their beats, and where it ends.

    Attributes:
        cues: the cues (any order; applied in order of beat, each at its beat's time, so a live
            run plays the notes :func:`engine.sessions.render.render` renders).
        end_beat: the music stops at this beat (every note released), then ``finished`` is set;
            None: it plays on.
        on_cue: called with each cue and the beat it lands on (composing thread; must not block).
        on_bar: called with each bar's :class:`engine.music.conductor.BarInfo` and time as it
            starts sounding (clock thread; must not block).
    """

    cues: list[Cue] = field(default_factory=list)
    end_beat: float | None = None
    on_cue: Callable[[Cue, float], None] | None = None
    on_bar: Callable[[BarInfo, float], None] | None = None
    finished: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.cues = sorted(self.cues, key=lambda c: c.beat)


@dataclass(eq=False)  # identity: sessions are hashed by the clock thread
class Session:
    """One music stream and who listens to it. Fields are written by the host's threads only."""

    name: str
    seed: int
    profile: Profile
    mapper: ParamMapper
    base_sinks: tuple[EventSink, ...] = ()
    outputs: dict[str, EventSink] = field(default_factory=dict)  # server outputs it plays into (clock)
    device_sinks: tuple[EventSink, ...] = ()  # of ``outputs``: the devices (sent ``lead_s`` early)
    device_sends: tuple[Callable[[float, int, int, int, int, float], None], ...] = ()  # their send_queued
    local_sinks: tuple[EventSink, ...] = ()  # ``base_sinks`` and the ``notes`` output (sent on time)
    local: deque[tuple[float, int, int, int, int, float]] = field(default_factory=deque)  # taken early, for
    # the local sinks and beat events at their time: (time_s, kind, channel, a, b, queued_s)
    chosen_outputs: tuple[str, ...] = ()  # what its clients chose (the clock thread catches up)
    conductor: Conductor | None = None
    events: EventQueue | None = None
    t0: float = 0.0
    subscribers: tuple[Subscriber, ...] = ()
    last_active: float = field(default_factory=time.monotonic)
    default_sync: str = "immediate"
    themes: set[str] = field(default_factory=set)
    #: events to publish at their time: a heap of (time_s, seq, event) (composing thread pushes,
    #: clock thread pops)
    notices: list[tuple[float, int, dict[str, Any]]] = field(default_factory=list)
    #: its requests waiting for the composing thread (None: start or close it), in order; at most
    #: ``MAX_SESSION_PENDING`` (see :meth:`engine.sessions.host.SessionHost.submit`)
    inbox: deque[Request | None] = field(default_factory=deque)
    queued: bool = False  # in the host's round of sessions with requests waiting
    closing: bool = False  # its last client left or it expired: its slot is free (closed soon)
    timing: Lateness = field(default_factory=Lateness)  # how late its events went out
    script: SessionScript | None = None
    end_s: float = math.inf  # a script's end (session clock): the clock thread sends nothing after it
    start_themes: tuple[Theme, ...] = ()  # registered when it starts
    clients: int = 0
    connections: int = 0  # open WebSocket connections: a session with one never idles out
    clock_due: float = math.inf  # when the clock thread will next look at it (perf_counter)
    closed: bool = False
    story: Any = None  # its live story (engine.story.live_text.SessionStory), from its first ``text``
    #: what its requests so far ask for (loop thread; the composing thread catches up):
    #: "playing", "paused" or "stopped"
    transport: str = "playing"
    paused_s: float | None = None  # paused at this time of its clock (composing thread); None: running
    #: what the next ``start`` begins from (requests while stopped land here; a stop keeps the
    #: state and emotion it stopped in)
    start_state: str | None = None
    start_emotion: Emotion | None = None
    start_tempo_bpm: float | None = None  # a fixed tempo (None: follow arousal)
    level: float = 1.0  # the ``volume`` op's session level (linear, 0..1)
    layer_levels: dict[str, float] = field(default_factory=dict)  # per layer (absent: 1)
    fades: dict[int, Fade] = field(default_factory=dict)  # channel -> its volume moving (composing thread)
    stop_at_s: float | None = None  # a stop with a fade-out ends the music here (session clock)

    def now_s(self) -> float:
        """Seconds of music since its start (held while paused)."""
        paused = self.paused_s
        return paused if paused is not None else time.perf_counter() - self.t0

    @property
    def late_events(self) -> int:
        return self.timing.late

    @property
    def events_sent(self) -> int:
        return self.timing.events

    @property
    def config(self) -> ConductorConfig:
        return self.profile.config

    @property
    def live(self) -> bool:
        """Its music is on: playing or paused (a conductor that has not been stopped)."""
        return self.conductor is not None and not self.conductor.closed

    @property
    def playing(self) -> bool:
        return self.live and self.paused_s is None

    def start_point(self) -> tuple[str, Emotion]:
        """The state and emotion the next ``start`` begins from (what a stopped session reports)."""
        p = self.profile
        state = self.start_state or p.start_state
        states = self.config.states
        return state, self.start_emotion or (states[state].emotion if state in states else p.base)

    def channel_level(self, channel: int) -> float:
        """The volume a channel plays at (the session's level times its layer's; linear)."""
        layer = next((x.name for x in self.config.layers if x.channel == channel), None)
        return self.level * (self.layer_levels.get(layer, 1.0) if layer is not None else 1.0)

    def expression_now(self, now_s: float) -> list[tuple[int, int]]:
        """(channel, CC 11 value) of each channel whose volume is not full at ``now_s``."""
        fades = dict(self.fades)  # a copy: the composing thread replaces its entries
        levels = [(ch, expression_for_level(fade.level_at(now_s))) for ch, fade in fades.items()]
        return [(ch, value) for ch, value in levels if value != 127]

    @property
    def channels(self) -> tuple[int, ...]:
        """The MIDI channels it plays on: its layers' and the stingers'."""
        return (*dict.fromkeys(layer.channel for layer in self.config.layers), STINGER_CHANNEL)

    def release_now(
        self,
        events: EventQueue,
        t0: float,
        shared: Callable[[str], bool],
        report: Report,
        until_s: float | None = None,
        keep: bool = False,
    ) -> None:
        """Every sounding note of ``events`` (the session's queue, whose time 0 is ``t0``) off, at
        the end of what was already taken from it; CC 123 on every channel of its own sinks and of
        the outputs no other session plays into (``shared(name)``: another session plays into it)
        (clock thread). The local sinks first get what was taken for them but not yet sent,
        except its note-ons (their offs are in the release). With ``until_s`` the music ends
        there (a script's end): everything due until then is sent first, note-ons too, as the
        offline render ends it. With ``keep`` (a pause) the queued music stays, to go on from.
        A session sending MIDI clock sends Stop (0xFC) with the release."""
        local = self.local
        while local:
            t, k, ch, a, b, _ = local.popleft()
            if k != BEAT and (k != NOTE_ON or (until_s is not None and t <= until_s)):
                self.send_rows(self.local_sinks, [(t, k, ch, a, b)], report)
        if until_s is not None:  # what the clock thread has not sent yet (see SessionHost._run_task)
            due = [row for row in events.pop_due(until_s).rows() if row[1] != BEAT]
            self.send_rows((*self.device_sinks, *self.local_sinks), due, report)
            now = until_s  # the music ends there, as the offline render ends it
        else:
            wall = max(time.perf_counter(), t0 + events.sent_until_s)
            now = wall - self.t0  # in the session's present clock (a restart may have moved it)
        rows = (events.release_sounding(now) if keep else events.all_notes_off(now)).rows()
        if self.config.midi_clock:
            rows.append((now, CLOCK, 0, CLOCK_STOP, 0))
        panic = [(now, CONTROL, ch, 123, 0) for ch in range(16)]
        self.send_rows(self.base_sinks, rows + panic, report)
        for name, sink in self.outputs.items():
            self.send_rows((sink,), rows if shared(name) else rows + panic, report)

    def route(self, names: tuple[str, ...], open_sink: Callable[[str], EventSink], report: Report) -> None:
        """Play into the server outputs ``names`` from now (clock thread): its sounding notes end
        on the outputs it leaves; the outputs it joins (``open_sink(name)``) get its channel setup
        (at the start, the conductor's own, still queued; later, sent here ahead of what follows)."""
        if self.events is None:
            return
        now = self.now_s()
        leaving = [n for n in self.outputs if n not in names]
        if leaving:
            end = max(now, self.events.sent_until_s)  # after what the outputs were already sent
            offs = [(end, NOTE_OFF, ch, pitch, 0) for ch, pitch in self.events.sounding_notes()]
            for name in leaving:
                sink = self.outputs.pop(name)
                self.send_rows((sink,), offs, report)
                forget(sink)
        for name in [n for n in names if n not in self.outputs]:
            if name == NOTES:
                self.outputs[name] = NoteEvents(self, report)
                continue
            sink = open_sink(name)
            if self.events.sent_until_s > -math.inf:  # joining mid-stream: the setup it missed
                start = max(now, self.events.sent_until_s)  # before its next events, as early as those
                setup = [(start, k, ch, a, b) for k, ch, a, b in channel_setup(self.config)]
                setup += [
                    (start, CONTROL, ch, EXPRESSION_CC, value) for ch, value in self.expression_now(now)
                ]
                self.send_rows((sink,), setup, report)
            self.outputs[name] = sink
        self.device_sinks = tuple(sink for n, sink in self.outputs.items() if n != NOTES)
        self.device_sends = tuple(send_queued(sink) for sink in self.device_sinks)
        notes = (self.outputs[NOTES],) if NOTES in self.outputs else ()
        self.local_sinks = (*self.base_sinks, *notes)

    def hold(self, row: tuple[float, int, int, int, int, float]) -> None:
        """Hold ``row`` (taken early from the queue) in :attr:`local` for its time, in time order:
        what is composed after a later event was taken (another layer of the same bar) still goes
        out before it (clock thread)."""
        local = self.local
        if local and row[0] < local[-1][0]:
            bisect.insort(local, row, key=lambda held: held[0])
        else:
            local.append(row)

    def send_rows(self, sinks: tuple[EventSink, ...], rows: list[Row], report: Report) -> None:
        """Send ``rows`` to each of ``sinks``; a sink that fails is reported and skipped."""
        for sink in sinks:
            for t, k, ch, a, b in rows:
                try:
                    sink.send(t, k, ch, a, b)
                except Exception as err:  # a broken output must not stop the others
                    report(f"{self.name}: {err}")
                    break

    def publish(self, event: dict[str, Any], report: Report) -> None:
        """Give ``event`` to every subscriber (clock thread; a failing one is reported)."""
        for subscriber in self.subscribers:
            try:
                subscriber(event)
            except Exception as err:
                report(f"{self.name}: subscriber failed: {err}")


@dataclass
class Fade:
    """One channel's volume moving linearly from ``start_level`` to ``end_level`` over
    [``start_s``, ``end_s``] (session clock); ``next_s``: the next step to send."""

    start_s: float
    end_s: float
    start_level: float
    end_level: float
    next_s: float

    def level_at(self, time_s: float) -> float:
        if time_s >= self.end_s or self.end_s <= self.start_s:
            return self.end_level
        x = max(0.0, (time_s - self.start_s) / (self.end_s - self.start_s))
        return self.start_level + (self.end_level - self.start_level) * x


@dataclass(frozen=True)
class ClockTask:
    """Work for the clock thread: ``release`` the notes of ``events``, ``route`` the session into
    ``outputs``, ``subscribe`` or ``unsubscribe`` a subscriber (done in order)."""

    session: Session
    what: str
    outputs: tuple[str, ...] = ()
    events: EventQueue | None = None
    t0: float = 0.0  # the clock origin of ``events`` (a restart gives the session a new one)
    until_s: float | None = None  # release: the music ends here (see Session.release_now)
    keep: bool = False  # release (a pause): the queued music stays for its resume
    subscriber: Subscriber | None = None  # subscribe / unsubscribe: who


class NoteEvents:
    """The ``notes`` output: each note-on and note-off of a session as a ``note`` event to its
    subscribers (velocity 0: off), for a game that plays the music with its own synth."""

    def __init__(self, session: Session, report: Report) -> None:
        self.session = session
        self.report = report
        self._layer = {layer.channel: layer.name for layer in session.config.layers}
        self.sounding: set[tuple[int, int]] = set()  # (channel, pitch) its subscribers heard start

    def send(self, time_s: float, kind: int, channel: int, a: int, b: int) -> None:
        if kind not in (NOTE_ON, NOTE_OFF):
            return
        velocity = b if kind == NOTE_ON else 0
        (self.sounding.add if velocity else self.sounding.discard)((channel, a))
        self.session.publish(self._event(time_s, channel, a, velocity), self.report)

    def farewell(self, subscriber: Subscriber, time_s: float) -> None:
        """A subscriber leaves: the note-off of every note it heard start and not end."""
        for channel, pitch in sorted(self.sounding):
            try:
                subscriber(self._event(time_s, channel, pitch, 0))
            except Exception as err:  # a failing subscriber must not stop the clock thread
                self.report(f"{self.session.name}: subscriber: {err}")
                return

    def _event(self, time_s: float, channel: int, pitch: int, velocity: int) -> dict[str, Any]:
        return {"event": "note", "session": self.session.name, "channel": channel, "pitch": pitch,
                "velocity": velocity, "layer": self._layer.get(channel, "stinger"),
                "time_s": round(time_s, 6)}  # fmt: skip


def send_queued(sink: EventSink) -> Callable[[float, int, int, int, int, float], None]:
    """The sink's ``send_queued(time_s, kind, channel, a, b, queued_s)`` (its ``send`` if it has
    none: only the output process tells events composed late apart)."""
    send_queued: Callable[[float, int, int, int, int, float], None] | None = getattr(
        sink, "send_queued", None
    )
    if send_queued is not None:
        return send_queued
    send = sink.send
    return lambda t, k, ch, a, b, q: send(t, k, ch, a, b)


def forget(sink: EventSink) -> None:
    """Let a sink free what it holds for a session that no longer plays into it."""
    forget = getattr(sink, "forget", None)
    if forget is not None:
        forget()
