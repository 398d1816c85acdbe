"""One session's conductor: game signals in, timed notes out, a little ahead of the playhead.

The conductor owns one composer stream and turns its tokens into events on the session's
:class:`engine.realtime.event_queue.EventQueue`, at most ``lookahead_beats`` ahead of the playhead:

* **emotion** (valence, arousal, tension) moves toward its target at a seek speed (units per
  second) or jumps, evaluated at every onset; the composer is conditioned on it, tempo follows
  arousal (set at bar lines), the mode follows valence (a key pull that switches to the parallel
  mode when valence changes sign, with hysteresis);
* **transitions** (emotion, state, leitmotif) land at a sync point: immediate, next beat, next
  bar or next phrase. If music past that point is already composed, it is cut (the composer
  returns to its state before the first onset at or after the point, see
  :meth:`engine.model.composer.Composer.snapshot`) and composed again with a note on the sync point;
  in immediate mode that first note sounds at once, and sounding notes are released;
* **layers**: each note is melody (the top of its chord, from middle C up), bass (below
  ``BASS_BELOW``) or harmony, each on its own channel. The bass is a part of its own: on each
  strong beat (beats 1 and 3 in 4/4, the downbeat otherwise) whose chord has no note in its
  register it plays the chord's lowest note, an octave or two down, to the next strong beat
  (a pianist's left hand), so it sounds whenever its layer is on. Layers enter and leave with
  intensity at phrase boundaries (and at the first bar after a change, which starts one);
  a bar's tempo and layers are those of the emotion a seek reaches by the bar's end, so a
  change's tempo and layers land with it;
  drums come from the beat grid (:mod:`engine.music.percussion`);
* **form**: as a bar opens, the conductor may fix its onsets to an earlier bar's of the same
  section (:mod:`engine.music.form`): phrases restate their idea and return to the first
  phrase's; a cut frees the rest of the bar it lands in;
* **steering** (``config.steer`` K > 1): as a bar opens, its rest is chosen among K candidates by
  the emotion recognizer and the composer's likelihood (:mod:`engine.model.live_steering`: a
  token per composing round, every session's candidates in one batch, so a search never holds
  up another session), then fed to the stream as the conductor's own tokens, so snapshots and
  cuts work inside it as in any bar: the rest of a bar that a change cuts into is composed
  plainly, a change at a bar line searches the bar again, and with no candidate slots free the
  bar is plain;
* **stingers** play on the next beat in the key and mode of the moment; **leitmotifs** are fed
  to the composer at the next bar (or phrase) as its own music, transformed to the moment;
* **history**: the bars composed (:attr:`Conductor.bars`), the notes :meth:`Conductor.heard` reads
  and the tempo changes are kept for ``config.history_bars`` bars behind the newest bar (trimmed
  as each bar opens, one bar at a time), so a session that plays for days holds its memory flat;
  ``history_bars=None`` keeps every bar and tempo change (the offline render), and the notes for
  ``HISTORY_BARS`` bars.

Deterministic: everything depends on the seed and on the beats at which inputs arrive.
Not thread-safe: the engine drives each conductor from one thread.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

import numpy as np

from engine.model.composer import Composer, StreamSnapshot
from engine.model.tonal_primer import choose_key, primer_velocity
from engine.music.articulation import sounding_steps
from engine.music.config import (
    HISTORY_BARS,
    STINGER_CHANNEL,
    STINGER_PROGRAM,
    ConductorConfig,
    Emotion,
    check_seek,
    check_sync,
    check_unit,
)
from engine.music.form import (
    EMOTION_TOLERANCE,
    GROUP_PHRASES,
    MIN_ONSETS,
    head_source,
    in_contrast,
    positions,
    rhythm_source,
)
from engine.music.keys import SCALES, contrast_key
from engine.music.leitmotif import Theme, theme_tokens, transform
from engine.music.percussion import bar_hits, drum_velocity
from engine.music.tempo_map import TempoMap, check_tempo
from engine.outputs.gm import DRUM_CHANNEL, voice_code
from engine.realtime.event_queue import EventQueue
from engine.realtime.kinds import BEAT, CLOCK, CLOCK_START, CONTROL, PROGRAM
from engine.tokens import vocab as V

MELODY_FROM: Final = 60  # the top note of a chord is melody from middle C up
BASS_BELOW: Final = 50
MODE_HYSTERESIS: Final = 0.2  # valence must pass ±this to switch mode
PULL_STEP: Final = 0.125  # the off-beat key pull follows the emotion in steps of this
#: the share of the key pull that eases at valence +1 (see Conductor._key_strength); the
#: parallel mode's pitch classes keep all of it (the mode guard)
BRIGHT_KEY_RELEASE: Final = 1.0
#: the share of the off-beat key pull that eases at -V+A, full arousal (Conductor._offbeat_pull)
DARK_OFFBEAT_RELEASE: Final = 0.5
LAYER_HYSTERESIS: Final = 0.05
MIDI_CLOCK_PPQN: Final = 24
MAX_KEPT_BOUNDARIES: Final = 64  # cut points kept (the oldest, already played, are dropped)
_EPS: Final = 1e-9
#: a change lands at least this long after the last instant the clock has sent
SENT_MARGIN_S: Final = 1e-4


@dataclass(frozen=True)
class BarInfo:
    """What a bar was composed under (for timelines and listeners)."""

    index: int
    start_beat: float
    start_s: float
    tempo_bpm: float
    state: str
    emotion: Emotion
    key: tuple[int, str]
    layers: tuple[str, ...]  # switched on; as bar listeners get it, those heard (Conductor.bar_heard)


@dataclass(frozen=True)
class _Transition:
    beat: float
    target: Emotion | None = None
    seek_per_s: float | None = None
    state: str | None = None
    tempo_bpm: float | None = None  # <= 0: follow arousal again
    theme: str | None = None
    release_s: float | None = None  # immediate: sounding notes end, the first new note sounds, now
    anchored: bool = False  # the music from ``beat`` on has been cut and is being composed again


def _changes(t: _Transition) -> set[str]:
    """What a transition changes (the kinds it sets)."""
    kinds = (("target", t.target), ("state", t.state), ("tempo", t.tempo_bpm), ("theme", t.theme))
    return {kind for kind, value in kinds if value is not None}


@dataclass(frozen=True)
class _Cursor:
    """The conductor's musical position and state; copied at every onset so cuts can return."""

    bar_index: int = -1
    bar_start: float = 0.0
    onset: float = -1.0  # beat of the current onset group
    group_notes: int = 0
    pitch: int = 0
    duration_steps: int = 0
    emotion: Emotion = field(default_factory=Emotion)
    target: Emotion = field(default_factory=Emotion)
    seek_per_s: float | None = None
    state: str = ""
    boundary_s: float = 0.0
    key: tuple[int, str] = (0, "major")
    layers: frozenset[str] = frozenset()
    fixed_tempo_bpm: float | None = None
    pull_to_s: float = -1.0  # immediate transition: this group sounds at this time
    pull_next_s: float = -1.0  # ... set by the cut, taken by the next onset group
    forced_melody: bool = False
    onsets: int = 0  # the current bar's onset positions so far (bit p: sixteenth p)
    group_closed: bool = True  # the bass has been decided for the current onset group
    velocity: int = 0  # the last note's
    section_bar: int = 0  # the first bar after the latest change of emotion or state (see form)
    in_contrast: bool = False  # the bar sounds in the contrast's key (decided as it opens; see _sounding_key)
    steer_bar: bool = False  # the bar is open, its rest to be chosen among candidates (live steering)


@dataclass(frozen=True)
class _Boundary:
    beat: float
    snapshot: StreamSnapshot
    cursor: _Cursor  # as it was before the changes due here were applied
    applied: tuple[_Transition, ...] = ()  # the changes applied here (a cut back here gives them back)


class Conductor:
    """Conducts one composer stream into one event queue.

    Args:
        composer: the (shared) composer; the conductor opens and owns one stream.
        queue: the session's event queue.
        seed: the session seed (int >= 0).
        config: tables and settings.
        state: the starting state (a name in ``config.states``), or None.
        emotion: the starting emotion (None: the state's; neutral without a state).

    Raises:
        TypeError, ValueError: a bad seed, state or emotion.
        RuntimeError: the composer has no free stream.
        FileNotFoundError: ``config.steer`` > 1 and no emotion recognizer is shipped.
    """

    def __init__(
        self,
        composer: Composer,
        queue: EventQueue,
        seed: int,
        config: ConductorConfig | None = None,
        *,
        state: str | None = "explore",
        emotion: Emotion | None = None,
    ) -> None:
        self.config = config or ConductorConfig()
        if state is not None and state not in self.config.states:
            raise ValueError(f"unknown state {state!r}; states: {sorted(self.config.states)}")
        if emotion is not None:
            start = emotion
        else:
            start = self.config.states[state].emotion if state is not None else Emotion()
        self.composer = composer
        if self.config.steer > 1:
            composer.load_recognizer()  # before the stream opens: a missing recognizer says so now
        self.queue = queue
        self.seed = int(seed)
        tonic, mode = choose_key(seed, start.valence)
        if self.config.key_tonic_pc is not None:
            tonic = self.config.key_tonic_pc
        if self.config.mode_policy != "auto":
            mode = self.config.mode_policy
        pull, strength = self._pull_step(start), self._key_strength(start)
        self.stream = composer.open_stream(
            seed,
            start.valence,
            start.arousal,
            temperature=self.config.temperature,
            top_p=self.config.top_p,
            tonal_prime=True,
            key_strength=strength,
            offbeat_pull=pull,
            mode_guard=self.config.key_strength,
            key=(tonic, mode),
        )
        key = composer.info(self.stream).key or (0, "major")
        #: the key and off-beat pull the stream was last given (see _set_key)
        self._pulled = (key, pull, strength)
        self._history = self.config.history_bars
        #: bars a note can sound past the bar it starts in (the longest duration)
        self._reach = math.ceil(max(V.DURATION_STEPS) / (V.STEPS_PER_BEAT * composer.meter_beats))
        #: the bars :meth:`heard` answers for, behind the newest (their notes, and ``_reach`` more)
        self._heard_bars = HISTORY_BARS if self._history is None else self._history
        # trimmed: room for twice the window's changes (at most one a bar), so compacting it
        # (when full) frees half of it: amortized O(1), and it never grows
        capacity = 256 if self._history is None else 2 * (self._history + 2)
        self.tempo_map = TempoMap(self.config.tempo_for(start), capacity)
        self.meter_beats = composer.meter_beats
        self._cursor = _Cursor(emotion=start, target=start, state=state or "", key=key)
        self._pending_snap = composer.snapshot(self.stream)
        self._pending_cursor = self._cursor
        self._boundaries: list[_Boundary] = []
        self._transitions: list[_Transition] = []
        self._forced: list[int] = []
        self._needed_after_s: float | None = None  # see needs_tokens
        self._theme_next: str | None = None
        self.themes: dict[str, Theme] = {}
        #: the bars composed, by index (the last ``config.history_bars`` + 1 of them when trimmed)
        self.bars: dict[int, BarInfo] = {}
        #: the notes composed, (onset beat, end beat, layer), by the bar they start in, for :meth:`heard`
        #: (the composing thread appends, and replaces a bar's list when it drops some of it: a
        #: reader's list never shrinks under it); kept for ``_heard_bars`` (and ``_reach``) bars
        self._sounds: dict[int, list[tuple[float, float, str]]] = {}
        #: each finished bar's onset positions (bit mask) and emotion, the form's sources
        #: (:mod:`engine.music.form`); kept for a form group of bars
        self._rhythms: dict[int, tuple[int, Emotion]] = {}
        #: live steering: candidates per bar (config.steer; a host may lower it to hold its budget)
        self.steer = self.config.steer
        #: the current bar's tokens so far (BAR first) while its rest waits to be searched
        self._bar_tokens: list[int] = []
        #: a search for the current bar's rest is running (see start_search)
        self.searching = False
        #: bars chosen by a search, and searches given up (no slots free, or late: live only)
        self.bars_searched = 0
        self.searches_given_up = 0
        self.closed = False

    # ---------------------------------------------------------------------------- reading
    @property
    def emotion(self) -> Emotion:
        """The emotion at the composition frontier."""
        return self._cursor.emotion

    @property
    def target(self) -> Emotion:
        return self._cursor.target

    @property
    def state(self) -> str:
        return self._cursor.state

    @property
    def key(self) -> tuple[int, str]:
        """The key of the newest bar composed: the home key, or where the form has moved it
        (:func:`_sounding_key`)."""
        return _sounding_key(self._cursor)

    def key_at(self, beat: float) -> tuple[int, str]:
        """The key sounding at ``beat``: its bar's (the newest bar's as :attr:`key`, which follows a
        change of mode within it)."""
        bar = self.bar_at(beat)
        info = self.bars.get(bar)
        return self.key if info is None or bar >= self._cursor.bar_index else info.key

    @property
    def frontier_beat(self) -> float:
        """The beat up to which the music is composed (the latest onset or bar line)."""
        c = self._cursor
        return max(c.onset, c.bar_start) if c.bar_index >= 0 else -1.0

    def playhead_beat(self, now_s: float) -> float:
        return self.tempo_map.beat(now_s)

    def bar_at(self, beat: float) -> int:
        """The index of the composed bar sounding at ``beat``: the newest one that starts at or
        before it (0 before anything is composed). O(1) when ``beat`` is near the frontier; reads
        no more than it looks up, so another thread may call it while the music is composed."""
        bar = self._cursor.bar_index
        while bar > 0:
            info = self.bars.get(bar)
            if info is None or info.start_beat <= beat + _EPS:
                break
            bar -= 1
        return max(0, bar)

    def heard(self, bar: int) -> tuple[str, ...]:
        """The layers with a note sounding in ``bar`` as far as it is composed (sorted): notes
        held into it, and those starting in it (the drums' hits too). When its downbeat sounds that
        is its first ``lookahead_beats`` at least: layers switched on but silent are not among them.
        Empty for a bar not composed, or more than ``history_bars`` (HISTORY_BARS when that is None)
        behind the newest. Reads only the notes of the bars that can reach it (its own and
        ``_reach`` before it)."""
        info = self.bars.get(bar)
        if info is None or bar < self._cursor.bar_index - self._heard_bars:
            return ()
        start, end = info.start_beat, info.start_beat + self.meter_beats
        sounds = self._sounds
        found: set[str] = set()
        for b in range(bar - self._reach, bar + 1):
            for on, off, layer in sounds.get(b, ()):
                if on < end - _EPS and off > start + _EPS:
                    found.add(layer)
        return tuple(sorted(found))

    def bar_heard(self, bar: int) -> BarInfo | None:
        """Bar ``bar``'s info with ``layers`` the layers heard (:meth:`heard`), for bar listeners
        and the ``bar`` event; None for a bar not composed."""
        info = self.bars.get(bar)
        return None if info is None else replace(info, layers=self.heard(bar))

    def sync_beat(self, now_s: float, sync: str) -> float:
        """The beat of the next ``sync`` point after ``now_s`` (immediate: the beat at now)."""
        p = max(0.0, self.tempo_map.beat(now_s))
        if sync == "immediate":
            return p
        unit = {"beat": 1, "bar": self.meter_beats, "phrase": self.meter_beats * self.config.phrase_bars}[
            sync
        ]
        return float(unit * math.floor(p / unit + 1.0 - _EPS) if p > 0 else 0.0)

    # --------------------------------------------------------------------------- commands
    def start(self, time_s: float = 0.0) -> None:
        """Queue the channel setup (programs, volumes; see :func:`channel_setup`) at ``time_s``,
        and MIDI Start (0xFA) when the conductor sends MIDI clock (its ticks follow)."""
        for kind, channel, a, b in channel_setup(self.config):
            self.queue.push(time_s, kind, channel, a, b, origin_beat=-1, cuttable=False)
        if self.config.midi_clock:
            self.queue.push(time_s, CLOCK, 0, CLOCK_START, origin_beat=-1, cuttable=False)

    def set_emotion(
        self,
        now_s: float,
        valence: float,
        arousal: float,
        tension: float | None = None,
        *,
        sync: str = "immediate",
        seek_per_s: float | None = None,
    ) -> float:
        """Move toward (valence, arousal, tension) from the next ``sync`` point; returns its beat.

        Args:
            now_s: the engine time the command arrived.
            valence, arousal, tension: in [-1, 1]; tension None keeps the current target's.
            sync: one of SYNC_POINTS.
            seek_per_s: seek speed in units per second, None: jump.

        Raises:
            TypeError, ValueError: a value out of range.
        """
        t = self._cursor.target.tension if tension is None else check_unit("tension", tension)
        target = Emotion(check_unit("valence", valence), check_unit("arousal", arousal), t)
        return self._transition(now_s, check_sync(sync), target=target, seek_per_s=check_seek(seek_per_s))

    def set_state(
        self, now_s: float, name: str, *, sync: str | None = None, emotion: Emotion | None = None
    ) -> float:
        """Go to a named state (its emotion and seek speed) at ``sync`` (default: the state's own).

        Args:
            emotion: the emotion to go to instead of the state's own (e.g. the state's as the
                game's parameters move it: :meth:`engine.sessions.profile.ParamMapper.rebase`).

        Raises:
            ValueError: unknown state or sync point.
        """
        if name not in self.config.states:
            raise ValueError(f"unknown state {name!r}; states: {sorted(self.config.states)}")
        st = self.config.states[name]
        sync = check_sync(sync if sync is not None else st.sync)
        target = st.emotion if emotion is None else emotion
        return self._transition(now_s, sync, target=target, seek_per_s=st.seek_per_s, state=name)

    def set_tempo(self, now_s: float, tempo_bpm: float | None, *, sync: str = "bar") -> float:
        """Fix the tempo (None: follow arousal again) from the next ``sync`` point (bar lines only).

        Raises:
            TypeError, ValueError: tempo or sync out of range.
        """
        value = -1.0 if tempo_bpm is None else check_tempo(tempo_bpm)
        sync = check_sync(sync)
        if sync in ("immediate", "beat"):
            sync = "bar"  # tempo changes land on bar lines
        return self._transition(now_s, sync, tempo_bpm=value)

    def register_leitmotif(self, theme: Theme) -> None:
        """Register (or replace) a theme under ``theme.name``."""
        self.themes[theme.name] = theme

    def leitmotif(self, now_s: float, name: str, *, sync: str = "bar") -> float:
        """Play theme ``name`` from the next bar (or phrase) and let the music continue from it.

        Raises:
            ValueError: unknown theme or sync point.
        """
        if name not in self.themes:
            raise ValueError(f"unknown leitmotif {name!r}; registered: {sorted(self.themes)}")
        sync = check_sync(sync)
        if sync in ("immediate", "beat"):
            sync = "bar"
        return self._transition(now_s, sync, theme=name)

    def stinger(self, now_s: float, name: str) -> float:
        """Play stinger ``name`` on the next beat, in the key and mode of the moment; returns the beat.

        Raises:
            ValueError: unknown stinger.
        """
        if name not in self.config.stingers:
            raise ValueError(f"unknown stinger {name!r}; stingers: {sorted(self.config.stingers)}")
        beat = self.sync_beat(now_s + 0.005, "beat")
        tonic, mode = self.key_at(beat)
        scale = SCALES[mode]
        base = 60 + tonic
        vel = drum_velocity(self.emotion.arousal)
        for onset, degree, dur, scale_vel in self.config.stingers[name].notes:
            octave, step = divmod(degree, 7)
            pitch = min(V.PITCH_MAX, max(V.PITCH_MIN, base + 12 * octave + scale[step]))
            on_beat = beat + onset / V.STEPS_PER_BEAT
            self.queue.push_note(
                self.tempo_map.seconds(on_beat),
                self.tempo_map.seconds(on_beat + dur / V.STEPS_PER_BEAT),
                STINGER_CHANNEL,
                pitch,
                max(1, min(127, round(vel * scale_vel))),
                origin_beat=on_beat,
                cuttable=False,
            )
        return beat

    def _transition(self, now_s: float, sync: str, **change: object) -> float:
        """Queue a change at the ``sync`` point; music already composed past it is cut now.

        Whether the music past the point was composed yet or not, it is composed from the same
        state and the same random numbers (the cut is made when composing reaches the point
        otherwise), so the notes depend only on the inputs and their beats.
        """
        with self.queue.lock:  # the clock sends nothing between reading its progress and the cut
            # what the clock already sent stays sent (a beat tick must not go out twice)
            now_s = max(now_s, self.queue.sent_until_s + SENT_MARGIN_S)
            beat = self.sync_beat(now_s, sync)
            release = now_s if sync == "immediate" else None
            new = _Transition(beat, release_s=release, **change)  # type: ignore[arg-type]
            changes = _changes(new)
            if any(b.beat >= beat - _EPS for b in self._boundaries):
                self._cut(beat, release)  # gives back the changes applied from ``beat`` on
                new = replace(new, anchored=True)
            # a change waiting at the same beat that this one wholly replaces goes (a flood of
            # changes to one sync point costs one), the rest stay in beat order
            self._transitions = [
                t for t in self._transitions if abs(t.beat - beat) > _EPS or not _changes(t) <= changes
            ]
            bisect.insort(self._transitions, new, key=lambda t: t.beat)
        return beat

    # ------------------------------------------------------------------------ composition
    def needs_tokens(self, playhead_s: float) -> bool:
        """True while the music is composed less than the lookahead past ``playhead_s``.

        Called for every session on every composing round, so it is one comparison: the time
        after which more music is needed is computed once per change of the frontier or tempo.
        """
        if self._forced:
            return True
        if self._needed_after_s is None:
            frontier = self.frontier_beat
            lookahead = self.config.lookahead_beats
            if self.steer > 1:  # a bar's search has (nearly) a bar to run before it is due
                lookahead = max(lookahead, float(self.meter_beats))
            self._needed_after_s = -math.inf if frontier < 0 else self.tempo_map.seconds(frontier - lookahead)
            if len(self._boundaries) > MAX_KEPT_BOUNDARIES:
                head = self.tempo_map.beat(playhead_s)
                while len(self._boundaries) > 1 and self._boundaries[1].beat < head:
                    self._boundaries.pop(0)  # the past cannot be cut any more
        return playhead_s > self._needed_after_s

    def start_search(self) -> None:
        """Live steering: if the bar just opened waits for its rest to be chosen (nothing is
        forced, ``steer`` > 1), start its search (see :func:`compose_ahead`); with no candidate
        slots free the bar is composed plainly."""
        c = self._cursor
        if not c.steer_bar or self._forced or self.steer < 2 or self.searching:
            return
        self._cursor = replace(c, steer_bar=False)
        tempo = self.bars[c.bar_index].tempo_bpm
        self.searching = self.composer.start_search(self.stream, self.steer, self._bar_tokens, tempo)
        self.searches_given_up += not self.searching

    def search_late(self, playhead_s: float, deadline_s: float) -> bool:
        """True if the bar's search still runs though the bar starts within ``deadline_s`` of
        ``playhead_s``: then :meth:`drop_search` and compose it plainly (live composing only)."""
        return self.searching and self.tempo_map.seconds(self.frontier_beat) - playhead_s < deadline_s

    def drop_search(self) -> None:
        """Give up the bar's search: the rest of the bar is composed plainly."""
        if self.searching:
            self.searches_given_up += 1
            self._cancel_search()

    def _cancel_search(self) -> None:
        if self.searching:
            self.composer.cancel_search(self.stream)
            self.searching = False

    def take_search(self) -> bool:
        """True while the bar's search runs; once it is done its tokens become the stream's next."""
        if not self.searching:
            return False
        rest = self.composer.search_result(self.stream)
        if rest is None:
            return True
        self.searching = False
        self.bars_searched += 1
        self._forced = rest.tolist()
        return False

    def take_forced(self) -> int | None:
        """The next token the conductor makes the composer output (a theme, a cut's sync note)."""
        return self._forced.pop(0) if self._forced else None

    def accept(self, token: int) -> None:
        """Turn the stream's next token (sampled or forced) into music."""
        if token < V.PITCH_OFFSET:  # a bar or an onset: the frontier moves, the onset group is whole
            self._needed_after_s = None
            self._close_group()
        c = self._cursor
        if V.BAR_OFFSET <= token < V.POS_OFFSET:
            beats = V.BAR_BEATS[token - V.BAR_OFFSET]
            start = c.bar_start + self.meter_beats if c.bar_index >= 0 else 0.0
            if self._boundary(start, is_bar=True):
                self._open_bar(start, beats)
        elif V.POS_OFFSET <= token < V.PITCH_OFFSET:
            step = token - V.POS_OFFSET
            onset = self._cursor.bar_start + step / V.STEPS_PER_BEAT
            if self._boundary(onset):
                c = self._cursor
                self._cursor = replace(
                    c, onset=onset, group_notes=0, onsets=c.onsets | 1 << step, group_closed=False
                )
        elif V.PITCH_OFFSET <= token < V.DUR_OFFSET:
            self._cursor = replace(c, pitch=token - V.PITCH_OFFSET + V.PITCH_MIN)
        elif V.DUR_OFFSET <= token < V.VEL_OFFSET:
            self._cursor = replace(c, duration_steps=V.DURATION_STEPS[token - V.DUR_OFFSET])
        elif V.VEL_OFFSET <= token < V.VOCAB_SIZE:
            self._note(V.BIN_VELOCITIES[token - V.VEL_OFFSET])
            self._pending_snap = self.composer.snapshot(self.stream)
            self._pending_cursor = self._cursor
        if self._cursor.steer_bar:  # a bar to search: remember its prefix (BAR first)
            if V.BAR_OFFSET <= token < V.POS_OFFSET:
                self._bar_tokens = [token]
            else:
                self._bar_tokens.append(token)

    def stop(self, time_s: float) -> None:
        """End the session's music: the queue sends every sounding note's NOTE_OFF from now."""
        self._transitions.clear()
        self._forced.clear()
        if not self.closed:
            self.composer.close_stream(self.stream)
            self.closed = True

    # ---------------------------------------------------------------------------- internals
    def _boundary(self, beat: float, *, is_bar: bool = False) -> bool:
        """An onset group or a bar starts at ``beat``: remember how to return here, apply changes.

        Returns:
            False if the token was thrown away: it crossed a transition's sync point, so the
            music is composed again from that point (see :meth:`_transition`).
        """
        self._boundaries.append(_Boundary(beat, self._pending_snap, self._pending_cursor))
        crossed = next((t for t in self._transitions if not t.anchored and t.beat <= beat + _EPS), None)
        if crossed is not None:
            self._cut(crossed.beat, crossed.release_s)
            return False
        c = self._cursor
        seek, target, state = c.seek_per_s, c.target, c.state
        fixed = c.fixed_tempo_bpm
        emotion = c.emotion
        due = [t for t in self._transitions if t.beat <= beat + _EPS and (is_bar or t.theme is None)]
        if due:
            self._boundaries[-1] = replace(self._boundaries[-1], applied=tuple(due))
        section = c.section_bar
        since_s = c.boundary_s  # the seek moves from the previous onset, or from a change's sync point
        for tr in due:
            self._transitions.remove(tr)
            if tr.target is not None or tr.state is not None:
                section = c.bar_index + 1  # the form starts again at the next bar
            if tr.target is not None:
                target, seek = tr.target, tr.seek_per_s
                since_s = max(since_s, self.tempo_map.seconds(tr.beat))
                if seek is None:
                    emotion = target
            if tr.state is not None:
                state = tr.state
            if tr.tempo_bpm is not None:
                fixed = tr.tempo_bpm if tr.tempo_bpm > 0 else None
            if tr.theme is not None:
                self._theme_next = tr.theme
        now_s = self.tempo_map.seconds(beat)
        if seek is not None and emotion != target:
            emotion = emotion.approach(target, seek * max(0.0, now_s - since_s))
        if emotion != c.emotion:
            self.composer.set_emotion(self.stream, emotion.valence, emotion.arousal, immediate=True)
        key = self._key_for(emotion, c.key)
        if key != c.key or emotion != c.emotion:
            self._set_key(contrast_key(key) if c.in_contrast else key, emotion)
        self._cursor = replace(
            c, emotion=emotion, target=target, seek_per_s=seek, state=state, boundary_s=now_s, key=key,
            fixed_tempo_bpm=fixed, section_bar=section,
            pull_to_s=-1.0 if is_bar else c.pull_next_s,  # the first onset group takes the pull
            pull_next_s=c.pull_next_s if is_bar else -1.0,
        )  # fmt: skip
        return True

    def _offbeat_pull(self, emotion: Emotion) -> float:
        """The share of the key pull on notes between beats: ``config.offbeat_pull``, easing by up
        to ``DARK_OFFBEAT_RELEASE`` of it as the emotion darkens toward -V+A (danger wants
        chromatic colour: passing and neighbour tones). Only by half: with none left, the held-out
        judge hears -V+A right far less often (36 % of sessions against 56-64 %)."""
        darkness = max(0.0, -emotion.valence) * (1.0 + emotion.arousal) / 2.0
        return self.config.offbeat_pull * (1.0 - DARK_OFFBEAT_RELEASE * darkness)

    def _set_key(self, key: tuple[int, str], emotion: Emotion) -> None:
        """Pull the stream toward ``key`` as ``emotion`` wants it (see :meth:`_offbeat_pull`); the
        pull moves in steps of ``PULL_STEP``, so a seek re-tunes it a few times, not every onset."""
        pull, strength = self._pull_step(emotion), self._key_strength(emotion)
        if (key, pull, strength) == self._pulled:
            return
        self._pulled = (key, pull, strength)
        self.composer.set_key(self.stream, key[0], key[1], strength, offbeat_pull=pull)

    def _pull_step(self, emotion: Emotion) -> float:
        return round(self._offbeat_pull(emotion) / PULL_STEP) * PULL_STEP

    def _key_strength(self, emotion: Emotion) -> float:
        """The key pull (nats): ``config.key_strength`` where the emotion is dark or neutral (the
        pull is what makes the minor mode heard), easing by up to ``BRIGHT_KEY_RELEASE`` of it as
        valence brightens (bright music has room for colour), in steps of ``PULL_STEP`` nats.
        The parallel mode's pitch classes keep the whole pull (the stream's mode guard,
        ``config.key_strength``): with all of it eased and no guard, +V-A sessions drifted out of
        major (music21 heard 52 % of them in a major key, the held-out judge 72 % of them
        right; with the guard 68 % and 96 %, seed 0)."""
        strength = self.config.key_strength * (1.0 - BRIGHT_KEY_RELEASE * max(0.0, emotion.valence))
        return round(strength / PULL_STEP) * PULL_STEP

    def _in_contrast(self, c: _Cursor, bar: int) -> bool:
        """Whether bar ``bar``, opening under ``c``, sounds in the contrast's key
        (:func:`engine.music.form.in_contrast`, ``config.modulate``); a theme that goes on into
        the bar keeps the key it began in (its notes were placed in it)."""
        if c.forced_melody:
            return c.in_contrast
        return self.config.modulate and in_contrast(bar, c.section_bar, self.config.phrase_bars)

    def _key_for(self, emotion: Emotion, key: tuple[int, str]) -> tuple[int, str]:
        if self.config.mode_policy != "auto":
            return key
        if key[1] == "major" and emotion.valence < -MODE_HYSTERESIS:
            return key[0], "minor"
        if key[1] == "minor" and emotion.valence > MODE_HYSTERESIS:
            return key[0], "major"
        return key

    def _open_bar(self, start: float, beats: int) -> None:
        c = self._cursor
        index = c.bar_index + 1
        # a bar's tempo and layers are those of where a seek has gone by the bar's end (at the
        # tempo it had), so a change lands with them rather than a bar or a phrase late
        arriving = c.emotion
        if c.seek_per_s is not None:
            bar_s = beats * 60.0 / (c.fixed_tempo_bpm or self.config.tempo_for(c.emotion))
            arriving = arriving.approach(c.target, c.seek_per_s * bar_s)
        tempo = c.fixed_tempo_bpm or self.config.tempo_for(arriving)
        self.tempo_map.set_tempo(start, tempo)
        layers = c.layers
        if (index - c.section_bar) % self.config.phrase_bars == 0:  # a phrase (or a section) starts
            layers = self._layers_for(arriving.intensity, c.layers)
        if c.bar_index >= 0:
            self._rhythms[c.bar_index] = (c.onsets, c.emotion)
        self._cursor = replace(
            c, bar_index=index, bar_start=start, onset=start, group_notes=0, layers=layers, onsets=0,
            steer_bar=self.steer > 1 and self._theme_next is None, in_contrast=self._in_contrast(c, index),
        )  # fmt: skip
        sounding = _sounding_key(self._cursor)
        # one bar in, one out (a cut only ever removes bars)
        self._sounds.pop(index - self._heard_bars - 1 - self._reach, None)
        self._rhythms.pop(index - GROUP_PHRASES * self.config.phrase_bars - 1, None)
        if self._history is not None:
            self.bars.pop(index - self._history - 1, None)
            self.tempo_map.forget_before(start - self._history * self.meter_beats)
        self.bars[index] = BarInfo(
            index,
            start,
            self.tempo_map.seconds(start),
            tempo,
            c.state,
            c.emotion,
            sounding,
            tuple(sorted(layers)),
        )
        self._set_key(sounding, c.emotion)  # the form may move the key here
        self._push_grid(start, start)
        if self._theme_next is None and not self._forced:  # the conductor plans only bars it composes
            self._restate_rhythm(index, c.emotion)
        self._pending_snap = self.composer.snapshot(self.stream)
        self._pending_cursor = self._cursor
        if self._theme_next is not None:
            self._queue_theme(self._theme_next)
            self._theme_next = None

    def _restate_rhythm(self, bar: int, emotion: Emotion) -> None:
        """Make the bar just opened restate its form source's rhythm (:mod:`engine.music.form`)."""
        section, phrase_bars = self._cursor.section_bar, self.config.phrase_bars
        source = rhythm_source(bar, section, phrase_bars)
        free_from = None
        if source is None:
            source = head_source(bar, section, phrase_bars)
            free_from = self.meter_beats * V.STEPS_PER_BEAT // 2
        if source is None or source not in self._rhythms:
            return
        mask, then = self._rhythms[source]
        if free_from is not None:
            mask &= (1 << free_from) - 1
        if mask.bit_count() < (1 if free_from is not None else MIN_ONSETS):
            return
        if max(abs(then.valence - emotion.valence), abs(then.arousal - emotion.arousal)) > EMOTION_TOLERANCE:
            return
        self.composer.set_bar_rhythm(self.stream, positions(mask), free_from)

    def _layers_for(self, intensity: float, current: frozenset[str]) -> frozenset[str]:
        on = set()
        for layer in self.config.layers:
            threshold = layer.enter_intensity
            if layer.name in current:
                threshold -= LAYER_HYSTERESIS
            if threshold <= 0 or intensity >= threshold:
                on.add(layer.name)
        return frozenset(on)

    def _push_grid(self, bar_start: float, from_beat: float) -> None:
        """Beat ticks, drums and MIDI clock of the current bar, from ``from_beat`` on."""
        c = self._cursor
        steps = self.meter_beats * V.STEPS_PER_BEAT
        seconds = self.tempo_map.seconds
        for beat in range(self.meter_beats):
            b = bar_start + beat
            if b >= from_beat - _EPS:
                self.queue.push(seconds(b), BEAT, 0, beat, c.bar_index, origin_beat=b)
        drums = self.config.layer("drums")
        if drums is not None and "drums" in c.layers:
            intensity = c.emotion.intensity
            level = 2 if intensity >= drums.enter_intensity + 0.18 else 1
            cfg = self.config
            hits = bar_hits(
                intensity, c.emotion.arousal, c.bar_index, self.meter_beats, cfg.phrase_bars, self.seed,
                level=level,
            )  # fmt: skip
            for step, note, vel in hits:
                b = bar_start + step / V.STEPS_PER_BEAT
                if b >= from_beat - _EPS and step < steps:
                    self.queue.push_note(
                        seconds(b), seconds(b + 0.25), drums.channel, note, vel, origin_beat=b
                    )
                    self._sound(b, b + 0.25, "drums")
        if self.config.midi_clock:
            for tick in range(self.meter_beats * MIDI_CLOCK_PPQN):
                b = bar_start + tick / MIDI_CLOCK_PPQN
                if b >= from_beat - _EPS:
                    self.queue.push(seconds(b), CLOCK, 0, origin_beat=b)

    def _note(self, velocity: int) -> None:
        c = self._cursor
        pitch, first = c.pitch, c.group_notes == 0
        if c.forced_melody or (first and pitch >= MELODY_FROM):
            name = "melody"
        elif pitch < BASS_BELOW:
            name = "bass"
        else:
            name = "harmony"
        self._cursor = replace(c, group_notes=c.group_notes + 1, velocity=velocity)
        layer = self.config.layer(name) or self.config.layer("melody")
        if layer is None or layer.name not in c.layers:
            return
        steps = c.duration_steps
        if self.config.articulation:
            steps = sounding_steps(steps, c.emotion.valence, c.emotion.arousal)
        self._play(layer.name, layer.channel, c.onset, c.onset + steps / V.STEPS_PER_BEAT, pitch, velocity)

    def _close_group(self) -> None:
        """The current onset group is whole: play the bass under it (see the module docstring)."""
        c = self._cursor
        if c.group_closed:
            return
        self._cursor = replace(c, group_closed=True)
        bass = self.config.layer("bass")
        if c.group_notes == 0 or c.pitch < BASS_BELOW or bass is None or bass.name not in c.layers:
            return  # no chord, its lowest note is the bass already, or no bass
        strong = 2 if self.meter_beats == 4 else self.meter_beats  # beats between strong beats
        offset = c.onset - c.bar_start
        if abs(offset / strong - round(offset / strong)) > _EPS:
            return
        pitch = c.pitch - 12 * ((c.pitch - BASS_BELOW) // 12 + 1)  # the octave just below BASS_BELOW
        end = min(c.onset + strong, c.bar_start + self.meter_beats)
        self._play(bass.name, bass.channel, c.onset, end - 1.0 / V.STEPS_PER_BEAT, pitch, c.velocity)

    def _play(
        self, layer: str, channel: int, on_beat: float, off_beat: float, pitch: int, velocity: int
    ) -> None:
        """Queue one note of the current onset group (pulled, humanized) and remember it for :meth:`heard`."""
        c = self._cursor
        on_s = self.tempo_map.seconds(on_beat)
        off_s = self.tempo_map.seconds(off_beat)
        if c.pull_to_s >= 0:  # the first note after an immediate change sounds at once
            on_s = min(on_s, c.pull_to_s)
        cfg = self.config
        if cfg.humanize_ms > 0 or cfg.humanize_velocity > 0:
            rng = np.random.default_rng([self.seed & 0x7FFFFFFF, round(on_beat * 4096), pitch])
            jitter = rng.normal(0.0, 1.0, 2).clip(-2.0, 2.0)
            on_s += float(jitter[0]) * cfg.humanize_ms / 1000.0
            velocity = max(1, min(127, round(velocity + float(jitter[1]) * cfg.humanize_velocity)))
        self.queue.push_note(on_s, off_s, channel, pitch, velocity, origin_beat=on_beat)
        self._sound(on_beat, off_beat, layer)

    def _sound(self, on_beat: float, off_beat: float, layer: str) -> None:
        """Remember a note of the current bar for :meth:`heard`."""
        bar = self._cursor.bar_index
        notes = self._sounds.get(bar)
        if notes is None:
            self._sounds[bar] = [(on_beat, off_beat, layer)]
        else:
            notes.append((on_beat, off_beat, layer))

    def _queue_theme(self, name: str) -> None:
        """Make the theme the music of the bar just opened (and the bars after it, if longer)."""
        theme = self.themes[name]
        c = self._cursor
        tonic, mode = _sounding_key(c)
        notes = transform(theme, tonic, mode, primer_velocity(c.emotion.arousal) + 10)
        self._forced = theme_tokens(notes, self.meter_beats).tolist()[1:]  # its bar is open already
        self._cursor = replace(self._cursor, forced_melody=True)

    def after_forced(self) -> None:
        """Called when the last forced token has been accepted."""
        if not self._forced and self._cursor.forced_melody:
            self._cursor = replace(self._cursor, forced_melody=False)

    def _cut(self, beat: float, release_s: float | None) -> None:
        """Throw away the music composed from ``beat`` on and set up composing it again."""
        self._needed_after_s = None
        k = next((i for i, b in enumerate(self._boundaries) if b.beat >= beat - _EPS), None)
        if k is None:
            return
        back = self._boundaries[k]
        top = self._cursor.bar_index  # the newest bar composed: no bar or note is past it
        # the changes applied at the boundaries cut away apply again when the music gets there
        # (first, as they came first); those at or before the cut are composed again from now
        given_back = [t for b in self._boundaries[k:] for t in b.applied]
        del self._boundaries[k:]
        waiting = given_back + self._transitions
        self._transitions = sorted(
            (replace(t, anchored=True) if t.beat <= beat + _EPS else t for t in waiting), key=lambda t: t.beat
        )
        self._forced.clear()
        self._cancel_search()  # the bar it searched is cut away
        self.composer.restore(self.stream, back.snapshot, _mix_seed(self.seed, beat))
        self.composer.set_bar_rhythm(self.stream, None)  # the bar composed again is free from here
        self._set_key(_sounding_key(back.cursor), back.cursor.emotion)  # the pull as it was there
        # the group before the point was whole when the music first got here: its bass is queued
        c = replace(
            back.cursor, forced_melody=False, pull_next_s=release_s if release_s is not None else -1.0,
            group_closed=True, steer_bar=False,  # a bar cut into continues plainly
        )  # fmt: skip
        self._cursor = c
        self._pending_snap, self._pending_cursor = back.snapshot, c
        self.queue.cut(beat, release_s)
        self.tempo_map.truncate(beat)
        _drop_after(self.bars, c.bar_index, top)
        _drop_after(self._sounds, c.bar_index, top)
        _drop_after(self._rhythms, c.bar_index - 1, top)
        notes = self._sounds.get(c.bar_index)
        if notes is not None:  # as the queue's cut drops them (earlier bars' notes start before it)
            self._sounds[c.bar_index] = [n for n in notes if n[0] < beat - _EPS]
        if c.bar_index < 0:
            return
        # compose again from a note on the sync point
        bar = V.bar_token(self.meter_beats)
        steps = self.meter_beats * V.STEPS_PER_BEAT
        step = math.ceil((beat - c.bar_start) * V.STEPS_PER_BEAT - 1e-6)
        forced: list[int] = []
        if step < steps:
            self._push_grid(c.bar_start, beat)
        while step >= steps:
            forced.append(bar)
            step -= steps
        forced.append(V.pos_token(step))
        self._forced = forced


def _sounding_key(c: _Cursor) -> tuple[int, str]:
    """The key bar ``c.bar_index`` sounds in: the home key ``c.key``, or in its form group's
    contrasting phrase the related key :func:`engine.music.keys.contrast_key` gives (decided as
    the bar opens, :meth:`Conductor._in_contrast`: a change within the bar starts a new section
    from the next bar and leaves this one in its key)."""
    return contrast_key(c.key) if c.in_contrast else c.key


def _drop_after(table: dict[int, Any], bar: int, top: int) -> None:
    """Delete the keys of ``table`` after ``bar`` (none is after ``top``): O(min(top - bar, len))."""
    if top - bar <= len(table):
        for index in range(bar + 1, top + 1):
            table.pop(index, None)
    else:
        for index in [i for i in table if i > bar]:
            del table[index]


def _mix_seed(seed: int, beat: float) -> int:
    """A seed for composing again from ``beat`` (deterministic in the seed and the beat)."""
    return int(
        np.random.SeedSequence([seed & 0x7FFFFFFF, round(beat * 4096) & 0x7FFFFFFF]).generate_state(1)[0]
    )


def channel_setup(config: ConductorConfig) -> list[tuple[int, int, int, int]]:
    """The (kind, channel, a, b) events that set up an output for ``config``: each layer's
    program with its synth voice (:func:`engine.outputs.gm.voice_code`) and volume, and the
    stinger channel's. Drums on channel 10 keep its kit (no program); drums on another channel
    name the synth's kit (or their ``instrument``) in their program row."""
    rows: list[tuple[int, int, int, int]] = []
    for layer in config.layers:
        if layer.name != "drums":
            rows.append((PROGRAM, layer.channel, layer.program, voice_code(layer.instrument)))
        elif layer.channel != DRUM_CHANNEL or layer.instrument not in (None, "drums"):
            voice = voice_code(layer.instrument or "drums")
            rows.append((PROGRAM, layer.channel, layer.program, voice))
        rows.append((CONTROL, layer.channel, 7, layer.volume_cc))
    rows += [(PROGRAM, STINGER_CHANNEL, STINGER_PROGRAM, 0), (CONTROL, STINGER_CHANNEL, 7, 100)]
    return rows


def compose_ahead(
    composer: Composer,
    conductors: Sequence[Conductor],
    playhead_s: float | Sequence[float],
    max_tokens: int = 100_000,
    search_deadline_s: float | None = None,
) -> int:
    """Step every conductor that needs music (batched) until each is ``lookahead`` ahead.

    Args:
        composer: the composer all conductors' streams live in.
        conductors: the conductors to serve.
        playhead_s: the playhead on each conductor's clock: one time for all, or one each.
        max_tokens: stop after about this many tokens (a batched step counts one per stream, a
            step of a stream's search one for it).
        search_deadline_s: live composing: a steered bar whose search still runs when the bar
            starts within this many seconds of the playhead is composed plainly (None: searches
            always finish, as offline).

    Returns:
        tokens produced (as counted for ``max_tokens``).
    """
    heads = [float(playhead_s)] * len(conductors) if isinstance(playhead_s, int | float) else list(playhead_s)
    produced = 0
    while produced < max_tokens:
        pairs = [(c, h) for c, h in zip(conductors, heads, strict=True) if not c.closed and c.needs_tokens(h)]
        if not pairs:
            break
        needy = [c for c, _ in pairs]
        for c, head in pairs:  # live steering: a bar just opened starts its search
            c.start_search()
            if search_deadline_s is not None and c.search_late(head, search_deadline_s):
                c.drop_search()
        if any(c.searching for c in needy):  # every search in flight, one token further
            composer.advance_searches()
        forced: list[tuple[Conductor, int]] = []
        sampled = []
        for c in needy:
            if c.take_search():
                continue  # its bar is being chosen
            token = c.take_forced()
            if token is None:
                sampled.append(c)
            else:
                forced.append((c, token))
        if forced:
            composer.force_step([c.stream for c, _ in forced], [t for _, t in forced])
            for c, token in forced:
                c.accept(token)
                c.after_forced()
        produced += len(needy)  # each had its turn (a search's step counts as its token)
        if sampled:
            tokens = composer.step([c.stream for c in sampled])
            for c, token in zip(sampled, tokens.tolist(), strict=True):
                c.accept(token)
    return produced
