"""Many live sessions on one shared composer: the engine behind ``affetto serve``.

Threads (see ARCHITECTURE): the transports' asyncio loop calls :meth:`SessionHost.submit`,
which validates a request against its session, answers at once and queues the work (never
waits); one **composing thread** applies queued requests in time slices and keeps every
session's lookahead full, stepping the sessions that need tokens (and those that soon will) in
one batched ONNX Runtime call; one **clock thread** sends each session's due events — notes to
the outputs it chose (the server's synth or MIDI port, or ``note`` events to its subscribers),
beat/bar/transition events to its subscribers (callbacks that must not block: the server hands
them to its loop). Only the clock thread sends to outputs: routing and releasing notes are tasks
handed to it.

``affetto serve`` plays its devices in an output process of their own
(:class:`engine.outputs.output_process.OutputProcess`): the clock thread then takes events ``lead_s``
early and hands them over at once (the output process sends them at their time, never waiting
for this process's GIL), while the local sinks and subscribers still get them at their time.
A change of the music lands after what was already handed over, so at most ``lead_s`` later.

A session starts playing when it is opened and expires after ``idle_timeout_s`` without a
request from any of its clients; expiring, stopping or closing always releases its notes.

``affetto play`` and ``demo`` run one session on this same host, with local devices and a
script of cues at beats (:class:`SessionScript`, applied by the composing thread at their beats
as the offline render does): one real-time loop for every live use of the engine.
"""

from __future__ import annotations

import functools
import heapq
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from engine.checks import DEFAULT_MAX_STEERED, check_int
from engine.model.composer import Composer
from engine.music.conductor import MIDI_CLOCK_PPQN, Conductor, compose_ahead
from engine.music.config import Emotion
from engine.music.keys import key_name
from engine.music.leitmotif import Theme, theme_from_notes
from engine.outputs.gm import EXPRESSION_CC, expression_for_level
from engine.outputs.host_outputs import HostOutputs
from engine.outputs.output_process import OutputProcess
from engine.outputs.sinks import EventSink
from engine.realtime.clock import (
    LATE_S,
    SPIN_S,
    Lateness,
    enter_realtime,
    wait_until,
)
from engine.realtime.event_queue import EventQueue
from engine.realtime.kinds import BEAT, CLOCK, CLOCK_CONTINUE, CONTROL, SONG_POSITION
from engine.server.protocol import PROTOCOL_VERSION, ProtocolError, Request
from engine.sessions.ops import MUSIC_OPS, Cue, apply_due_cues, apply_op, check_names, script_end_s
from engine.sessions.profile import DEFAULT_PROFILE, ParamMapper, Profile
from engine.sessions.session import (
    NOTES,
    ClockTask,
    Fade,
    NoteEvents,
    Session,
    SessionScript,
    Subscriber,
    forget,
)
from engine.story.live_text import StoryReader

DEFAULT_IDLE_TIMEOUT_S: Final = 60.0
PREROLL_S: Final = 0.1
#: the composing thread applies requests for at most this long before it tops up the music again
APPLY_SLICE_S: Final = 0.01
#: a session whose music runs short within this time is composed along with one that is short
#: now (bigger batches: fewer, cheaper model runs and less per-round work)
REFILL_S: Final = 0.1
#: a script's cue is applied this long before its beat sounds (at its beat's time)
SCRIPT_AHEAD_S: Final = 0.02
#: a volume fade moves in steps this far apart, queued this long before they sound
FADE_STEP_S: Final = 0.02
FADE_AHEAD_S: Final = 0.05
#: requests of one session waiting for the composing thread (more: ``rate_limited``), and of all
MAX_SESSION_PENDING: Final = 256
MAX_PENDING: Final = 65_536
#: the composing thread applies at most this many of one session's requests before the next
#: session's turn (round robin: one session's flood never delays another's changes)
TURN_REQUESTS: Final = 32
#: sessions a ``sessions`` event lists (by name; it counts the rest)
MAX_LISTED_SESSIONS: Final = 256
#: leitmotifs registered per session and in all
MAX_SESSION_THEMES: Final = 32
MAX_THEMES: Final = 4096
#: admission: composing is behind when a session's music runs out within this margin of its
#: clock (past the devices' ``lead_s``); new sessions are then refused (``busy``) for a while
HEADROOM_S: Final = 0.02
#: a steered bar still searched this close to its start (past REFILL_S ahead) is composed plainly
SEARCH_DEADLINE_S: Final = 0.1
BEHIND_HOLD_S: Final = 2.0
HEADROOM_CHECK_S: Final = 0.25
#: events waiting to be published at their time (transitions, volume) per session; more are dropped
MAX_NOTICES: Final = 512


class SessionHost:
    """Hosts sessions (see the module docstring).

    Args:
        composer: the shared composer (its ``max_streams`` bounds the sessions).
        profile: the game profile every new session starts from (states, layers, parameters).
        idle_timeout_s: a session without requests for this long expires.
        late_threshold_s: an event sent this much after its time counts as late (see stats).
        sinks_for: makes extra sinks of a new session (recorders, listeners); default none.
        outputs: the server's devices (audio, MIDI) sessions choose from, besides ``notes``: in
            this process (:class:`engine.outputs.host_outputs.HostOutputs`) or in a process of their own
            (:class:`engine.outputs.output_process.OutputProcess`, which takes events ``lead_s`` early).
        default_outputs: what a new session plays into (default: every device of ``outputs``).
        on_error: called with each problem the host reports (a failing output or subscriber, the
            output process gone), from the thread that met it; it must not block. The latest
            1000 are also kept in :attr:`errors`.
        timing_samples: keep this many lateness samples in :attr:`timing` (for percentiles).
        text_model_dir: the text emotion model the ``text`` op reads with (None: the shipped one).
        max_steered: the steering budget: at most this many sessions at once are steered (their
            profile's ``composer.steer`` > 1, each costing the CPU of many plain sessions);
            those started beyond it play unsteered, and say so (``steer`` 0 in their status).

    Raises:
        ValueError: ``default_outputs`` names an output this host does not have.
    """

    def __init__(
        self,
        composer: Composer,
        profile: Profile | None = None,
        *,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
        late_threshold_s: float = LATE_S,
        sinks_for: Callable[[str], list[EventSink]] | None = None,
        outputs: HostOutputs | OutputProcess | None = None,
        default_outputs: tuple[str, ...] | None = None,
        on_error: Callable[[str], None] | None = None,
        timing_samples: int = 0,
        text_model_dir: str | None = None,
        max_steered: int = DEFAULT_MAX_STEERED,
    ) -> None:
        self.composer = composer
        self.max_steered = min(check_int("max_steered", max_steered, 0, 1 << 20), composer.max_streams)
        self.on_error = on_error
        self._outputs_lost = False
        self.profile = profile or DEFAULT_PROFILE
        self.idle_timeout_s = float(idle_timeout_s)
        self.late_threshold_s = float(late_threshold_s)
        self.sinks_for = sinks_for or (lambda name: [])
        self.outputs = outputs
        #: events are taken this long before their time; the devices get them then, the local
        #: sinks and subscribers at their time (see :meth:`_send_due`)
        self.lead_s = 0.0 if outputs is None else float(outputs.lead_s)
        names = self.output_names
        devices = tuple(n for n in names if n != NOTES)
        self.default_outputs = devices if default_outputs is None else tuple(default_outputs)
        unknown = sorted(set(self.default_outputs) - set(names))
        if unknown:
            raise ValueError(f"default outputs {unknown} are not among this server's outputs {list(names)}")
        self._tasks: deque[ClockTask] = deque()  # for the clock thread
        self.sessions: dict[str, Session] = {}
        #: sessions with requests waiting, in turn (see :meth:`_apply_batch`), and those to close
        #: first (their composer streams free before any new session starts)
        self._ready: deque[Session] = deque()
        self._closing: deque[Session] = deque()
        self._pending = 0  # requests waiting, over all sessions
        self._post_lock = threading.Lock()  # guards the above (loop thread vs composing thread)
        self._work = threading.Event()  # set when something is posted: wakes the composing thread
        self._notice_seq = 0
        #: composing fell behind recently: new sessions are refused until then (monotonic s)
        self.behind_until = -math.inf
        self._was_short = False
        self._wake = threading.Condition()
        self._running = False
        self._threads: list[threading.Thread] = []
        self.errors: list[str] = []
        self.requests_applied = 0
        #: how late the clock thread sent events, over all sessions
        self.timing = Lateness(self.late_threshold_s, keep=timing_samples)
        self._scripted: list[Session] = []  # sessions playing a script (composing thread)
        self._fading: set[Session] = set()  # sessions with volume fades or a fading stop (composing thread)
        self._dirty: set[Session] = set()
        self._table_lock = threading.Lock()  # guards ``sessions`` (loop thread vs composing thread)
        #: reads the ``text`` op's lines on a thread of its own (the model loads with the first line)
        self.story = StoryReader(self._post, self.report, text_model_dir)

    @property
    def output_names(self) -> tuple[str, ...]:
        """What a session can play into: ``notes`` (note events to its subscribers) and the
        server's devices (see :class:`engine.outputs.host_outputs.HostOutputs`)."""
        return (NOTES, *(self.outputs.names if self.outputs is not None else ()))

    # ------------------------------------------------------------------------------ control
    def start(self) -> None:
        """Load the hot loops, then start the composing and clock threads (before any audio stream
        starts: see :meth:`_warm_up`)."""
        self._warm_up()
        enter_realtime()
        self._running = True
        self._threads = [
            threading.Thread(target=self._compose_loop, name="affetto-host-compose", daemon=True),
            threading.Thread(target=self._clock_loop, name="affetto-host-clock", daemon=True),
        ]
        for th in self._threads:
            th.start()

    def _warm_up(self) -> None:
        """Play a throwaway session offline: numba loads compiled code from its cache on first use,
        holding the GIL for milliseconds, which would make an audio callback miss its deadline if
        the first real session did it while the server's synth plays."""
        if len(self.composer.open_streams) >= self.composer.max_streams:
            return
        events = EventQueue(capacity=512)
        events.warm_up()
        p = self.profile
        conductor = Conductor(self.composer, events, 0, p.config, state=p.start_state)
        conductor.start(0.0)
        compose_ahead(self.composer, [conductor], 0.0)
        events.pop_due(math.inf)
        conductor.stop(0.0)
        events.all_notes_off(0.0)

    def stop(self) -> None:
        """Stop the threads and release every session's notes."""
        self._running = False
        self.story.stop()
        with self._wake:
            self._wake.notify_all()
        for th in self._threads:
            th.join(timeout=5.0)
        self._threads = []
        while self._tasks:  # what the clock thread had not done yet
            self._run_task(self._tasks.popleft())
        for session in list(self.sessions.values()):
            self._close(session)

    # ----------------------------------------------------------------------- loop thread API
    def open(
        self,
        name: str | None = None,
        *,
        seed: int | None = None,
        themes: tuple[Theme, ...] = (),
        script: SessionScript | None = None,
        _freeing: bool = False,
    ) -> Session:
        """Join the session called ``name`` (created, and playing, if new; a fresh one if None).

        Each ``open`` counts one client; :meth:`leave` uncounts it and closes the session
        when its last client has left.

        Args:
            name: the session's name (None: a fresh one).
            seed: a new session's seed (None: drawn at random).
            themes: leitmotifs a new session starts with.
            script: cues a new session plays at their beats, and its end (see :class:`SessionScript`).

        Raises:
            ProtocolError: busy (no free composer stream).
        """
        with self._table_lock:
            known = self.sessions.get(name) if name is not None else None
            if known is not None and not known.closed and not known.closing:
                known.clients += 1
                known.last_active = time.monotonic()
                return known
            if not _freeing and self._slots_used() >= self.composer.max_streams:
                raise ProtocolError("busy", f"all {self.composer.max_streams} session slots are in use")
            if not _freeing and time.monotonic() < self.behind_until:
                raise ProtocolError(
                    "busy", "the server is at capacity: its sessions' music is composed just in time"
                )
            name = name or f"s-{secrets.token_hex(4)}"
            p = self.profile
            base = tuple(self.sinks_for(name))
            seed = secrets.randbelow(2**31) if seed is None else seed
            session = Session(
                name, seed, p, ParamMapper(p), base_sinks=base, local_sinks=base,
                chosen_outputs=self.default_outputs, themes={theme.name for theme in themes},
                timing=Lateness(self.late_threshold_s), script=script, start_themes=tuple(themes), clients=1,
            )  # fmt: skip
            self.sessions[name] = session
        self._post(session, None)  # the composing thread starts it
        return session

    def _slots_used(self) -> int:
        """Sessions holding a slot (not closing); call under ``_table_lock``."""
        return sum(1 for s in self.sessions.values() if not (s.closed or s.closing))

    def switch(self, session: Session, name: str) -> Session:
        """Move one client of ``session`` to the session called ``name`` (joined, or created
        playing), leaving ``session`` (closed if that was its last client). A client alone in its
        session may switch to a new one when every slot is in use: its own slot is the one freed.

        Raises:
            ProtocolError: busy (no free slot, and the client's own is not freed).
        """
        if name == session.name and not session.closed and not session.closing:
            return session
        with self._table_lock:
            known = self.sessions.get(name)
            joining = known is not None and not known.closed and not known.closing
            frees = session.clients <= 1 and not session.closed and not session.closing
            if not joining and not frees and self._slots_used() >= self.composer.max_streams:
                raise ProtocolError("busy", f"all {self.composer.max_streams} session slots are in use")
            last = self._drop_client(session)
        if last:
            self.close(session)  # before the new session starts: its composer stream is free first
        return self.open(name, _freeing=frees)  # one in for one out: no slot or admission check

    def subscribe(self, session: Session, subscriber: Subscriber) -> None:
        """Give ``subscriber`` the session's events from now (on the clock thread, in order with
        the unsubscribes: a subscriber moving between sessions hears the old one end first)."""
        self._clock_task(ClockTask(session, "subscribe", subscriber=subscriber))

    def unsubscribe(self, session: Session, subscriber: Subscriber) -> None:
        """Stop giving ``subscriber`` the session's events; with the ``notes`` output it first
        gets the note-off of every note it heard start (no note hangs in its synth)."""
        self._clock_task(ClockTask(session, "unsubscribe", subscriber=subscriber))

    def submit(
        self, session: Session, request: Request, reply: Callable[[dict[str, Any]], None] | None = None
    ) -> dict[str, Any]:
        """Check ``request`` against ``session`` and queue it; returns the reply event.

        ``reply`` (thread-safe, non-blocking) gets the answers that come later: the ``text``
        event of a line of story text (:mod:`engine.story.live_text`).

        Raises:
            ProtocolError: bad_argument (an unknown state, stinger, leitmotif or parameter),
                unsupported (``text`` without a text emotion model), rate_limited and busy (see
                :meth:`_post`, :class:`engine.story.live_text.StoryReader`).
        """
        session.last_active = time.monotonic()
        op, args, rid = request.op, request.args, request.request_id
        try:
            check_names(session.config, op, args, session.themes)
            if op == "leitmotif" and "notes" in args:
                theme_from_notes(args["name"], args["notes"])
        except ValueError as exc:
            raise ProtocolError("bad_argument", str(exc), op, rid) from None
        if op == "leitmotif" and "notes" in args and args["name"] not in session.themes:
            self._check_theme_room(session, op, rid)
            session.themes.add(args["name"])
        if op == "param" and args["name"] not in session.profile.params:
            known = sorted(session.profile.params) or "none declared in this profile"
            raise ProtocolError(
                "bad_argument", f"unknown parameter {args['name']!r}; parameters: {known}", op, rid
            )
        if op == "output":
            available = self.output_names
            unknown = [n for n in args["outputs"] if n not in available]
            if unknown:
                message = f"unknown output(s) {unknown}; this server has: {list(available)}"
                raise ProtocolError("bad_argument", message, op, rid)
            session.chosen_outputs = tuple(dict.fromkeys(args["outputs"]))
            self._post(session, request)
            return {"event": "ok", "op": op, **({"id": rid} if rid is not None else {})}
        if op == "text":
            self.story.submit(session, args["text"], rid, reply)
            return {"event": "ok", "op": op, **({"id": rid} if rid is not None else {})}
        if op == "status":
            return self.status(session, rid)
        if op == "volume" and args.get("layer") is not None:
            names = [layer.name for layer in session.config.layers]
            if args["layer"] not in names:
                raise ProtocolError(
                    "bad_argument", f"unknown layer {args['layer']!r}; layers: {names}", op, rid
                )
        if op == "transport":
            self._transport_request(session, args["action"], op, rid)
        elif (
            op == "stinger" or (op == "leitmotif" and "notes" not in args)
        ) and session.transport == "stopped":
            message = f"the session is stopped: a {op} needs its music playing (transport start)"
            raise ProtocolError("not_playing", message, op, rid)
        if op in MUSIC_OPS or op in ("transport", "param", "volume"):
            self._post(session, request)
        return {"event": "ok", "op": op, **({"id": rid} if rid is not None else {})}

    def _check_theme_room(self, session: Session, op: str, rid: Any) -> None:
        """A new leitmotif fits: at most ``MAX_SESSION_THEMES`` per session and
        ``MAX_THEMES`` registered in all (replacing one by name is always allowed).

        Raises:
            ProtocolError: busy (the limit is reached).
        """
        if len(session.themes) >= MAX_SESSION_THEMES:
            message = f"a session registers at most {MAX_SESSION_THEMES} leitmotifs (replace one by its name)"
            raise ProtocolError("busy", message, op, rid)
        with self._table_lock:
            registered = sum(len(s.themes) for s in self.sessions.values() if not s.closed)
        if registered >= MAX_THEMES:
            raise ProtocolError("busy", f"the server holds {MAX_THEMES} leitmotifs, its limit", op, rid)

    @staticmethod
    def _transport_request(session: Session, action: str, op: str, rid: Any) -> None:
        """Follow what the transport requests ask for, in their order (loop thread), so the ops
        that need music can be refused at once; the composing thread applies them."""
        if action in ("pause", "resume") and session.transport == "stopped":
            message = f"the session is stopped: nothing to {action} (transport start plays it from bar 0)"
            raise ProtocolError("not_playing", message, op, rid)
        if action == "stop":
            session.transport = "stopped"
        elif action == "pause":
            session.transport = "paused"
        elif action in ("start", "resume"):
            session.transport = "playing"

    def hello(self, session: Session, rid: Any = None) -> dict[str, Any]:
        """The ``hello`` event: the session, the protocol version, what its profile offers."""
        cfg = session.config
        out: dict[str, Any] = {"event": "hello", "session": session.name, "version": PROTOCOL_VERSION}
        out.update(
            states=sorted(cfg.states), stingers=sorted(cfg.stingers), params=sorted(session.profile.params)
        )
        out.update(
            available_outputs=list(self.output_names), layer_names=[layer.name for layer in cfg.layers]
        )
        params = session.profile.params
        out.update(profile=session.profile.name, leitmotifs=sorted(session.themes))
        out["param_ranges"] = {name: list(params[name].range) for name in sorted(params)}
        out["sync"] = session.profile.transition.sync  # the profile's transition sync point
        if rid is not None:
            out["id"] = rid
        return out

    def listing(self, rid: Any = None) -> dict[str, Any]:
        """The ``sessions`` event: the sessions open on the server (at most
        ``MAX_LISTED_SESSIONS``, by name; ``more`` counts the rest), for a control surface to
        choose one to join."""
        with self._table_lock:
            live = sorted(
                (s for s in self.sessions.values() if not (s.closed or s.closing)), key=lambda s: s.name
            )
        shown = live[:MAX_LISTED_SESSIONS]
        out: dict[str, Any] = {"event": "sessions", "names": [s.name for s in shown]}
        out["profiles"] = [s.profile.name for s in shown]
        out["sessions"] = [
            {"name": s.name, "profile": s.profile.name, "transport": s.transport, "clients": s.clients}
            for s in shown
        ]
        out["more"] = len(live) - len(shown)
        if rid is not None:
            out["id"] = rid
        return out

    def status(self, session: Session, rid: Any = None) -> dict[str, Any]:
        """The session's state as a status event (read without locks: a recent snapshot)."""
        c = session.conductor
        cfg = session.config
        out: dict[str, Any] = {"event": "status", "session": session.name}
        # the transport as the requests so far have set it (the composing thread catches up)
        out.update(playing=session.transport == "playing", paused=session.transport == "paused")
        out["profile"] = session.profile.name
        out["steer"] = c.steer if c is not None and not c.closed else 0
        out["outputs"] = list(session.chosen_outputs)
        out["params"] = sorted(session.profile.params)
        # each parameter's value: what the game sent, else the profile's default (absent: neither)
        defaults = {n: p.default for n, p in session.profile.params.items() if p.default is not None}
        out["param_values"] = {**defaults, **session.mapper.values}
        out.update(
            states=sorted(cfg.states), stingers=sorted(cfg.stingers), leitmotifs=sorted(session.themes)
        )
        out.update(
            level=session.level,
            layer_levels={x.name: session.layer_levels.get(x.name, 1.0) for x in cfg.layers},
        )
        if c is not None and not c.closed:
            e = c.target
            head = max(0.0, c.playhead_beat(session.now_s()))
            bar = c.bar_at(head)  # the bar at the playhead (the composer is a little ahead)
            now = c.emotion  # what the music is composed at now (``valence``...: where it is going)
            out.update(
                state=c.state, valence=e.valence, arousal=e.arousal, tension=e.tension,
                current_valence=now.valence, current_arousal=now.arousal, current_tension=now.tension,
                tempo_bpm=c.tempo_map.tempo_at(head), bar=bar, key=key_name(c.key_at(head)),
                layers=list(c.heard(bar)),
            )  # fmt: skip
        else:  # not started yet, or stopped: what ``start`` begins from
            state, e = session.start_point()
            out.update(state=state, valence=e.valence, arousal=e.arousal, tension=e.tension)
            out.update(current_valence=e.valence, current_arousal=e.arousal, current_tension=e.tension)
            tempo = session.start_tempo_bpm or cfg.tempo_for(e)
            out.update(tempo_bpm=tempo, bar=0, key="", layers=[])
        if rid is not None:
            out["id"] = rid
        return out

    def leave(self, session: Session) -> None:
        """One client leaves ``session``; the last one closes it (see :meth:`close`)."""
        with self._table_lock:
            last = self._drop_client(session)
        if last:
            self.close(session)

    @staticmethod
    def _drop_client(session: Session) -> bool:
        """Uncount one client of ``session``; True if it was the last (the session is closing,
        its slot free); call under ``_table_lock``."""
        session.clients -= 1
        last = session.clients <= 0
        if last:
            session.closing = True
        return last

    def close(self, session: Session) -> None:
        """Close a session from any thread (its notes are released by the composing thread); its
        slot is free at once."""
        session.last_active = -math.inf
        session.closing = True
        with self._post_lock:
            self._closing.append(session)
        self._work.set()

    @property
    def stats(self) -> dict[str, int]:
        live = [s for s in self.sessions.values() if not s.closed]
        return {
            "sessions": len(live),
            "events_sent": sum(s.events_sent for s in self.sessions.values()),
            "late_events": sum(s.late_events for s in self.sessions.values()),
        }

    def _post(self, session: Session, request: Request | None) -> None:
        """Queue ``request`` (None: start the session) for the composing thread, in the session's
        own inbox (see :meth:`_apply_batch`).

        Raises:
            ProtocolError: rate_limited (the session has ``MAX_SESSION_PENDING`` requests
                waiting), busy (the server has ``MAX_PENDING``).
        """
        with self._post_lock:
            if request is not None:
                if len(session.inbox) >= MAX_SESSION_PENDING:
                    raise ProtocolError(
                        "rate_limited",
                        f"{MAX_SESSION_PENDING} requests of this session are waiting; slow down",
                        request.op, request.request_id,
                    )  # fmt: skip
                if self._pending >= MAX_PENDING:
                    raise ProtocolError(
                        "busy", "the server is overloaded; slow down", request.op, request.request_id
                    )
            session.inbox.append(request)
            self._pending += 1
            if not session.queued:
                session.queued = True
                self._ready.append(session)
        self._work.set()

    # ---------------------------------------------------------------------- composing thread
    def _start_session(self, session: Session) -> None:
        """Start (or start again) the session's music from bar 0, from what its requests asked
        for while stopped (state, emotion, tempo, leitmotifs, volume)."""
        events = EventQueue(capacity=512, clock=session.now_s)
        p = session.profile
        state, emotion = session.start_point()
        c = Conductor(self.composer, events, session.seed, p.config, state=state, emotion=emotion)
        if c.steer > 1 and self._steered() >= self.max_steered:
            c.steer = 0
            self.report(
                f"{session.name}: plays unsteered: {self.max_steered} sessions are steered already "
                "(this server's steering budget)"
            )
        for theme in session.start_themes:
            c.register_leitmotif(theme)
        if session.script is not None and session not in self._scripted:
            self._scripted.append(session)
        session.paused_s, session.stop_at_s = None, None
        session.t0 = time.perf_counter() + PREROLL_S
        c.start(0.0)
        if session.start_tempo_bpm is not None:
            c.set_tempo(0.0, session.start_tempo_bpm)  # from bar 0: nothing of it can be sent yet
        # the clock thread sees the new music from here (had it seen the queue before the tempo,
        # a slow moment here could let it send past 0, and the tempo would land on bar 1)
        session.conductor = c
        session.events = events
        if session.fades or session.level != 1.0 or session.layer_levels:  # the outputs may hold another
            self._move_levels(session, 0.0, 0.0)
        self._clock_task(ClockTask(session, "route", session.chosen_outputs))

    def _steered(self) -> int:
        """Sessions steered now (composing thread)."""
        return sum(
            1 for s in list(self.sessions.values())
            if s.conductor is not None and not s.conductor.closed and s.conductor.steer > 1
        )  # fmt: skip

    def _stop(self, session: Session) -> None:
        """End the music (every note released); ``start`` begins again from the state and emotion
        it stopped in."""
        c = session.conductor
        if c is None or c.closed:
            return
        session.start_state, session.start_emotion = c.state or None, c.target
        self._release(session)
        c.stop(session.now_s())
        session.paused_s, session.stop_at_s = None, None
        self._fading.discard(session)

    def _pause(self, session: Session) -> None:
        """Hold the music where it is: its clock stops, its sounding notes end, the music composed
        ahead stays for :meth:`_resume`."""
        if session.paused_s is not None:
            return
        session.paused_s = session.now_s()  # first: the clock thread sends nothing more
        self._release(session, keep=True)
        self._wake_clock([session])

    def _resume(self, session: Session) -> None:
        """Go on from where the music was paused (after a short pre-roll, as a start has)."""
        paused, c = session.paused_s, session.conductor
        if paused is None or c is None or session.events is None:
            return
        if c.config.midi_clock:  # a DAW following the clock goes on from the sixteenth it reached
            ticks = math.ceil(max(0.0, c.playhead_beat(paused)) * MIDI_CLOCK_PPQN - 1e-6)  # those it got
            sixteenth = min(16383, ticks // (MIDI_CLOCK_PPQN // 4))
            session.events.push(paused, CLOCK, 0, SONG_POSITION, sixteenth, cuttable=False)
            session.events.push(paused, CLOCK, 0, CLOCK_CONTINUE, cuttable=False)
        session.t0 = time.perf_counter() + PREROLL_S - paused
        session.paused_s = None
        self._wake_clock([session])

    def _apply(self, session: Session, request: Request) -> None:
        c = session.conductor
        op, args = request.op, request.args
        now = session.now_s()
        if op == "transport":
            self._transport(session, args["action"], args["value"])
            return
        if op == "output":
            self._clock_task(ClockTask(session, "route", session.chosen_outputs))
            return
        if op == "volume":
            self._volume(session, args)
            return
        if op == "leitmotif" and "notes" in args:  # registration (kept for the next start too)
            theme = theme_from_notes(args["name"], args["notes"])
            session.start_themes = (*(t for t in session.start_themes if t.name != theme.name), theme)
            if c is not None and not c.closed:
                c.register_leitmotif(theme)
            return
        if c is None or c.closed:
            self._while_stopped(session, op, args)
            return
        if op == "param":  # the profile maps the parameter to an emotion, landing as its transition says
            target = session.mapper.set(args["name"], args["value"])
            t = session.profile.transition
            op = "emotion"
            args = {"valence": target.valence, "arousal": target.arousal, "tension": target.tension}
            args.update(sync=t.sync, seek_per_s=t.seek_per_s)
        elif op == "state":  # the state's emotion, as the game's parameters push it
            args = {**args, "emotion": session.mapper.rebase(session.config.states[args["name"]].emotion)}
        landed = apply_op(c, now, op, args, default_sync=session.default_sync)
        event = {"event": "transition", "op": request.op, "beat": landed}
        self._notice(session, c.tempo_map.seconds(landed), event)

    def _while_stopped(self, session: Session, op: str, args: dict[str, Any]) -> None:
        """A change while stopped is where the next ``start`` begins (stingers and leitmotifs
        have nothing to play in: :meth:`submit` refuses them)."""
        cfg = session.config
        _, base = session.start_point()
        if op == "state":
            session.start_state = args["name"]
            session.start_emotion = session.mapper.rebase(cfg.states[args["name"]].emotion)
        elif op == "emotion":
            tension = args.get("tension")
            session.start_emotion = Emotion(
                args["valence"], args["arousal"], base.tension if tension is None else tension
            )
        elif op == "param":
            session.start_emotion = session.mapper.set(args["name"], args["value"])

    def _transport(self, session: Session, action: str, value: Any) -> None:
        c = session.conductor
        live = c is not None and not c.closed
        now = session.now_s()
        if action == "stop":
            if live and value and session.paused_s is None:  # fade out, then stop
                session.stop_at_s = now + float(value)
                self._move_levels(session, now, float(value), silence=True)
            else:
                self._stop(session)
        elif action == "start":
            if session.stop_at_s is not None:  # a fading stop called off: back to its level
                session.stop_at_s = None
                self._move_levels(session, now, 0.0)
            if not live:
                self._start_session(session)
            else:
                self._resume(session)
        elif action == "pause" and live:
            self._pause(session)
        elif action == "resume" and live:
            self._resume(session)
        elif action == "tempo":
            session.start_tempo_bpm = None if value == 0 else value
            if live:
                apply_op(c, now, "tempo", {"tempo_bpm": session.start_tempo_bpm})  # type: ignore[arg-type]
        elif action == "seed":
            session.seed = int(value)
        elif action == "sync":
            session.default_sync = str(value)

    # ------------------------------------------------------------------------------ volume
    def _volume(self, session: Session, args: dict[str, Any]) -> None:
        """The ``volume`` op: the session's (or a layer's) level, moving there over ``fade_s``."""
        layer, level, fade_s = args.get("layer"), float(args["level"]), float(args.get("fade_s", 0.0))
        if layer is None:
            session.level = level
        else:
            session.layer_levels[layer] = level
        if not session.live:
            return  # the next start plays at these levels
        now = session.now_s()
        if session.stop_at_s is None:  # a fading stop goes on to silence
            self._move_levels(session, now, fade_s)
        event = {"event": "volume", "layer": layer, "level": level, "fade_s": fade_s, "time_s": round(now, 6)}
        self._notice(session, now, event)

    def _move_levels(self, session: Session, now_s: float, fade_s: float, *, silence: bool = False) -> None:
        """Move every channel of the session from its level now to its level (or to silence)
        over ``fade_s`` seconds of its clock: steps of CC 11 (see :meth:`_step_fades`)."""
        for ch in session.channels:
            old = session.fades.get(ch)
            start = old.level_at(now_s) if old is not None else 1.0
            end = 0.0 if silence else session.channel_level(ch)
            session.fades[ch] = Fade(now_s, now_s + fade_s, start, end, now_s)
        self._fading.add(session)
        self._step_fades(session)

    def _step_fades(self, session: Session) -> bool:
        """Queue the volume steps of the session's fades due soon, and its fading stop when its
        time comes (composing thread); False once nothing is left to do."""
        events, now = session.events, session.now_s()
        if events is None or not session.live:
            return False
        horizon = now + FADE_AHEAD_S
        moving = False
        for ch, fade in session.fades.items():
            while fade.next_s <= min(fade.end_s, horizon):
                t = fade.next_s
                level = expression_for_level(fade.level_at(t))
                events.push(t, CONTROL, ch, EXPRESSION_CC, level, cuttable=False)
                fade.next_s = math.inf if t >= fade.end_s else min(t + FADE_STEP_S, fade.end_s)
            moving = moving or fade.next_s < math.inf
        if session.stop_at_s is not None and now >= session.stop_at_s:
            self._stop(session)
            return False
        return moving or session.stop_at_s is not None

    def _notice(self, session: Session, time_s: float, event: dict[str, Any]) -> None:
        """Publish ``event`` at ``time_s`` of the session's clock (a full heap drops it: the
        session is flooding the server with changes)."""
        if len(session.notices) >= MAX_NOTICES:
            return
        self._notice_seq += 1
        heapq.heappush(session.notices, (time_s, self._notice_seq, {**event, "session": session.name}))

    def _release(self, session: Session, until_s: float | None = None, *, keep: bool = False) -> None:
        """Every sounding note of the session's current queue off (see
        :meth:`Session.release_now`), on the clock thread (the queue is taken now: a restart may
        replace it before then)."""
        if session.events is not None:
            self._clock_task(ClockTask(session, "release", (), session.events, session.t0, until_s, keep))

    def _clock_task(self, task: ClockTask) -> None:
        """Have the clock thread (the only thread that sends to outputs) release or route a
        session; done here and now when the clock thread is not running."""
        if not self._threads:
            self._run_task(task)
            return
        with self._wake:
            self._tasks.append(task)
            self._wake.notify_all()

    def _run_task(self, task: ClockTask) -> None:
        session, subscriber = task.session, task.subscriber
        if task.what == "subscribe" and subscriber is not None:
            if subscriber not in session.subscribers:
                session.subscribers = (*session.subscribers, subscriber)
        elif task.what == "unsubscribe" and subscriber is not None:
            if subscriber in session.subscribers:
                session.subscribers = tuple(s for s in session.subscribers if s != subscriber)
                notes = session.outputs.get(NOTES)
                if isinstance(notes, NoteEvents):
                    notes.farewell(subscriber, session.now_s())
        elif task.what == "release" and task.events is not None:
            session = task.session
            if task.until_s is not None and session.events is task.events and not session.closed:
                self._send_due(session)  # everything up to the end, beats too, at once
            shared = functools.partial(self._shared, session)
            session.release_now(task.events, task.t0, shared, self.report, task.until_s, task.keep)
            if session.closed:
                for sink in session.device_sinks:
                    forget(sink)
        elif not task.session.closed:
            self._route(task.session, task.outputs)

    def _shared(self, session: Session, name: str) -> bool:
        others = [s for s in list(self.sessions.values()) if s is not session and not s.closed]
        return any(name in s.outputs for s in others)

    def _route(self, session: Session, names: tuple[str, ...]) -> None:
        def open_sink(name: str) -> EventSink:
            assert self.outputs is not None  # names were checked against output_names
            return self.outputs.sink(name, lambda: session.t0)

        session.route(names, open_sink, self.report)

    def _close(self, session: Session) -> None:
        if session.closed:
            return
        session.closed = True
        self._release(session)
        if session.conductor is not None and not session.conductor.closed:
            session.conductor.stop(session.now_s())
        if session.script is not None:
            session.script.finished.set()  # closed before its end: nobody waits for it in vain
        with self._table_lock:
            if self.sessions.get(session.name) is session:
                del self.sessions[session.name]

    def _compose_loop(self) -> None:
        """Apply requests for at most ``APPLY_SLICE_S`` at a time, then always top up the music,
        so neither a flood of requests (or of new sessions) nor composing starves the other."""
        last_sweep = last_headroom = time.monotonic()
        while self._running:
            if not self._has_requests():
                self._work.wait(timeout=0.005)
            self._work.clear()
            try:
                if self._scripted:
                    self._play_scripts()
                for session in list(self._fading):
                    if session.closed or not self._step_fades(session):
                        self._fading.discard(session)
                self._apply_batch(time.perf_counter() + APPLY_SLICE_S)
                self._compose_round()
                if time.monotonic() - last_headroom > HEADROOM_CHECK_S:
                    last_headroom = time.monotonic()
                    self._check_headroom()
                if time.monotonic() - last_sweep > 1.0:
                    last_sweep = time.monotonic()
                    self._check_outputs()
                    self._expire()
            except Exception as err:  # keep serving the other sessions; report
                self.report(f"composing: {type(err).__name__}: {err}")

    def _has_requests(self) -> bool:
        return bool(self._ready or self._closing)

    def _apply_batch(self, until: float) -> None:
        """Apply queued requests until ``until`` (perf_counter; one session's turn at least):
        closes first, then the sessions with requests waiting in turn, at most ``TURN_REQUESTS``
        of one session per turn (a session flooding the server waits for its own requests; the
        others' go on at once).

        Within a turn, an emotion superseded by a later emotion or parameter of the same session,
        or a state by a later state at the same sync, is not applied to the conductor (it would
        be replaced at once): a flood of updates costs one change per turn.
        """
        touched: list[Session] = []
        while True:  # one turn at least, then as many as fit before ``until``
            if touched and time.perf_counter() > until:
                break
            with self._post_lock:
                closing = list(self._closing)
                self._closing.clear()
                if not closing:
                    if not self._ready:
                        break
                    session = self._ready.popleft()
                    turn = [session.inbox.popleft() for _ in range(min(TURN_REQUESTS, len(session.inbox)))]
                    self._pending -= len(turn)
                    if session.inbox:
                        self._ready.append(session)  # its next turn after the others'
                    else:
                        session.queued = False
            if closing:
                for gone in closing:
                    self._close(gone)
                continue
            if session.closed or session.closing:
                continue
            touched.append(session)
            for request, superseded in zip(turn, _superseded(session, turn), strict=True):
                self._apply_one(session, request, superseded=superseded)
        if touched:
            self._wake_clock(touched)

    def _apply_one(self, session: Session, request: Request | None, *, superseded: bool) -> None:
        if session.conductor is None:
            self._start_session(session)
        if request is None:
            return
        self.requests_applied += 1
        if superseded:
            if request.op == "param":  # the mapper still moves (a later request reads it)
                session.mapper.set(request.args["name"], request.args["value"])
            return
        try:
            self._apply(session, request)
        except (TypeError, ValueError) as err:  # a value no check caught: this request only
            self.report(f"{session.name}: {request.op}: {err}")

    def _play_scripts(self) -> None:
        """Apply the scripted cues that are about due, each at its beat's time; end the music of a
        script at its end beat (its notes released, then ``finished`` set)."""
        for session in list(self._scripted):
            script, c = session.script, session.conductor
            if script is None or c is None or c.closed or session.closed:
                self._scripted.remove(session)
                if script is not None:
                    script.finished.set()  # stopped or closed before its end
                continue
            if self._play_script(session, script, c):
                self._scripted.remove(session)

    def _play_script(self, session: Session, script: SessionScript, c: Conductor) -> bool:
        """One session's due cues and its end (see :meth:`_play_scripts`); True once it has ended."""
        now = session.now_s()
        landed: list[Cue] = []

        def land(cue: Cue, beat: float) -> None:
            landed.append(cue)
            if script.on_cue is not None:
                script.on_cue(cue, beat)

        def refused(cue: Cue, err: Exception) -> None:
            self.report(f"{session.name}: cue at beat {cue.beat:g}: {err}")

        apply_due_cues(c, script.cues, now + SCRIPT_AHEAD_S, land, refused)
        end_s = script_end_s(c, script.end_beat) if script.end_beat is not None else math.inf
        session.end_s = end_s  # the clock thread sends nothing after it (tempo cues move it)
        if landed:
            self._wake_clock([session])
        if now < end_s:
            return False
        self._release(
            session, until_s=end_s
        )  # what is due until the end goes out first, as the render ends it
        c.stop(end_s)
        script.finished.set()
        return True

    def _compose_round(self) -> None:
        """Batched steps while any session's lookahead is short. Once one is, every session that
        would be short within ``REFILL_S`` is stepped with it (and filled that much further), so
        the sessions fall into a few large batches instead of many small ones."""
        started = time.perf_counter()
        while self._running:
            live = [s for s in list(self.sessions.values()) if s.live]
            heads = [s.now_s() for s in live]
            conductors = [s.conductor for s in live]
            if not any(c.needs_tokens(h) for c, h in zip(conductors, heads, strict=True)):  # type: ignore[union-attr]
                return
            pick = [i for i, c in enumerate(conductors) if c.needs_tokens(heads[i] + REFILL_S)]  # type: ignore[union-attr]
            compose_ahead(
                self.composer, [conductors[i] for i in pick], [heads[i] + REFILL_S for i in pick],  # type: ignore[misc]
                max_tokens=len(pick), search_deadline_s=SEARCH_DEADLINE_S,
            )  # fmt: skip
            self._wake_clock([live[i] for i in pick])
            if self._has_requests() and time.perf_counter() - started > APPLY_SLICE_S:
                return

    def _check_headroom(self) -> float:
        """How far ahead of its clock the least composed playing session is (s; inf: none);
        below ``lead_s + HEADROOM_S`` at two checks in a row, composing is behind and new
        sessions are refused for ``BEHIND_HOLD_S`` (composing thread)."""
        least = math.inf
        for s in list(self.sessions.values()):
            c = s.conductor
            if not s.playing or c is None or s.script is not None:
                continue
            frontier = c.frontier_beat
            ahead = (c.tempo_map.seconds(frontier) if frontier >= 0 else 0.0) - s.now_s()
            least = min(least, ahead)
        short = least < self.lead_s + HEADROOM_S
        if short and self._was_short:  # twice in a row: not one stall of the machine
            self.behind_until = time.monotonic() + BEHIND_HOLD_S
        self._was_short = short
        return least

    def _expire(self) -> None:
        limit = time.monotonic() - self.idle_timeout_s
        for session in list(self.sessions.values()):
            if session.last_active < limit and session.connections == 0:
                session.closing = True
                self._close(session)

    def _wake_clock(self, touched: list[Session]) -> None:
        """Tell the clock thread these sessions may have new, earlier events. When the clock thread
        sends events at their time itself (devices in this process, ``lead_s`` 0: ``affetto
        play``/``demo``) and one is due now (composed after its time: an immediate change), hand
        it the GIL at once; the output process has ``lead_s`` of slack and needs no such haste."""
        with self._wake:
            self._dirty.update(touched)
            self._wake.notify_all()
        if self.lead_s == 0.0 and any(
            s.events is not None and s.events.next_time_s - s.now_s() < SPIN_S for s in touched
        ):
            time.sleep(0)

    def _check_outputs(self) -> None:
        """Report once that the output process has gone (the sessions then play into nothing)."""
        if self.outputs is not None and not self._outputs_lost and not self.outputs.alive:
            self._outputs_lost = True
            self.report(
                f"the output process stopped (exit code {self.outputs.exit_code}): "
                f"{', '.join(self.outputs.names)} no longer play"
            )

    def report(self, message: str) -> None:
        """Record a problem (kept: the latest 1000 in :attr:`errors`) and pass it to ``on_error``;
        from any thread, never blocks."""
        if len(self.errors) >= 1000:
            del self.errors[0]
        self.errors.append(message)
        if self.on_error is not None:
            self.on_error(message)

    # --------------------------------------------------------------------------- clock thread
    def _clock_loop(self) -> None:
        """Send due events: a heap of each session's next due time (absolute, perf_counter),
        refreshed for the sessions the composing thread touched, so a wake-up costs
        O(touched + due) whatever the number of sessions."""
        heap: list[tuple[float, int, Session]] = []
        seq = 0
        while self._running:
            seq = self._clock_turn(heap, seq)  # its locals go with it: a closed session is let go
            wait_until(heap[0][0] if heap else math.inf, self._wake, self._has_work)

    def _clock_turn(self, heap: list[tuple[float, int, Session]], seq: int) -> int:
        """One wake-up of the clock thread: its tasks, the touched sessions rescheduled, what is
        due sent; returns the heap's next sequence number."""
        with self._wake:
            dirty, self._dirty = self._dirty, set()
            tasks = list(self._tasks)
            self._tasks.clear()
        for task in tasks:
            self._run_task(task)
        for s in dirty:
            due = self._next_due(s)
            if due < s.clock_due:
                s.clock_due = due
                seq += 1
                heapq.heappush(heap, (due, seq, s))
        now = time.perf_counter()
        while heap and heap[0][0] <= now:
            due, _, s = heapq.heappop(heap)
            if due != s.clock_due or s.closed:
                continue  # stale: the session was rescheduled or closed
            if s.paused_s is not None:
                s.clock_due = math.inf  # its resume wakes the clock again
                continue
            self._send_due(s)
            s.clock_due = self._next_due(s)
            if s.clock_due < math.inf:
                seq += 1
                heapq.heappush(heap, (s.clock_due, seq, s))
        return seq

    def _has_work(self) -> bool:
        """Sessions touched or tasks queued for the clock thread (read under ``_wake``)."""
        return bool(self._dirty or self._tasks)

    def _next_due(self, s: Session) -> float:
        if s.events is None or s.closed or s.paused_s is not None:
            return math.inf
        local = s.local[0][0] if s.local else math.inf
        notice = s.notices[0][0] if s.notices else math.inf
        queued = s.events.next_time_s
        queued = queued - self.lead_s if queued <= s.end_s else math.inf  # nothing after a script's end
        return s.t0 + min(queued, local, notice)

    def _send_due(self, session: Session) -> None:
        """Take the session's events due within ``lead_s``: the device sinks get them now (they
        schedule them: see :class:`engine.outputs.output_process.OutputProcess`), the local sinks and the
        subscribers (beats) at their time, and each event counts once, when it was last handed on."""
        assert session.events is not None
        now = session.now_s()
        due = session.events.pop_due(min(now + self.lead_s, session.end_s))
        devices, local = () if self._outputs_lost else session.device_sends, session.local_sinks
        for (t, k, ch, a, b), q in zip(due.rows(), due.queued_s.tolist(), strict=True):
            if k == BEAT:
                if session.subscribers or session.script is not None:
                    session.hold((t, k, ch, a, b, q))
                else:
                    self._count(session, t, q, now)
                continue
            for send in devices:
                try:
                    send(t, k, ch, a, b, q)
                except Exception as err:
                    self.report(f"{session.name}: {err}")
            if local:
                session.hold((t, k, ch, a, b, q))
            else:
                self._count(session, t, q, now)
        pending, conductor = session.local, session.conductor
        while pending and pending[0][0] <= now:
            t, k, ch, a, b, q = pending.popleft()
            self._count(session, t, q, now)
            if k == BEAT:
                self._beat(session, conductor, t, a, b)
                continue
            for sink in local:
                try:
                    sink.send(t, k, ch, a, b)
                except Exception as err:
                    self.report(f"{session.name}: {err}")
        while session.notices and session.notices[0][0] <= now:
            _, _, event = heapq.heappop(session.notices)
            session.publish(event, self.report)

    def _count(self, session: Session, due_s: float, queued_s: float, now_s: float) -> None:
        session.timing.add(due_s, queued_s, now_s)
        self.timing.add(due_s, queued_s, now_s)

    def _beat(
        self, session: Session, conductor: Conductor | None, time_s: float, beat: int, bar: int
    ) -> None:
        if conductor is None:
            return
        on_bar = session.script.on_bar if session.script is not None else None
        heard = conductor.bar_heard(bar) if beat == 0 else None
        if on_bar is not None and heard is not None:
            try:
                on_bar(heard, time_s)
            except Exception as err:
                self.report(f"{session.name}: bar listener failed: {err}")
        if not session.subscribers:
            return
        tempo = conductor.tempo_map.tempo_at(conductor.tempo_map.beat(time_s))
        session.publish(
            {"event": "beat", "session": session.name, "bar": bar, "beat": beat, "tempo_bpm": tempo,
             "time_s": round(time_s, 6), "downbeat": beat == 0},
            self.report,
        )  # fmt: skip
        info = heard
        if info is not None:
            e = info.emotion
            bar_event = {"event": "bar", "session": session.name, "bar": bar, "state": info.state}
            bar_event.update(
                valence=e.valence, arousal=e.arousal, tension=e.tension, tempo_bpm=info.tempo_bpm
            )
            bar_event.update(key=key_name(info.key), layers=list(info.layers), time_s=round(time_s, 6))
            session.publish(bar_event, self.report)


def _superseded(session: Session, turn: list[Request | None]) -> list[bool]:
    """Which requests of a turn a later one of the same turn replaces before it could be heard:
    an emotion by a later emotion or parameter, a state by a later state at the same sync."""
    out = [False] * len(turn)
    last_emotion: int | None = None
    last_state: dict[str, int] = {}
    for i in range(len(turn) - 1, -1, -1):
        request = turn[i]
        if request is None:
            continue
        op = request.op
        if op in ("emotion", "param"):  # a parameter moves the emotion (its mapper still moves)
            out[i] = last_emotion is not None
            last_emotion = i if last_emotion is None else last_emotion
        elif op == "state":
            state = session.config.states.get(request.args["name"])
            key = request.args.get("sync") or (state.sync if state is not None else "")
            out[i] = key in last_state
            last_state.setdefault(key, i)
    return out
