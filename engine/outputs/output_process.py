"""The server's devices in a process of their own, so the music keeps time under load.

In one process the clock thread shares the GIL with the composing thread and the network loop:
at 200 sessions it waited milliseconds for it hundreds of times a minute (``affetto bench
server``), and an audio callback waits the same way. So ``affetto serve`` opens its synth and MIDI
port (:class:`engine.outputs.host_outputs.HostOutputs`) in a child process and feeds it through a ring
in shared memory (:class:`engine.realtime.row_ring.RowRing`):

* the server's clock thread takes each session's events ``LEAD_S`` ahead of their time and
  writes them, stamped with absolute ``time.perf_counter()`` seconds, into the ring (never
  waits: a full ring drops the row and the sink reports it);
* the child's clock reads the ring every few milliseconds into a heap and hands each event
  on at its time (within ``GRAIN_S``): MIDI messages to the port, synth events to the synth's
  ring, stamped with their frame (``AUDIO_DELAY_BLOCKS`` ahead, as in one process: the synth
  applies its ring in order, so events of all sessions must enter it in time order). It shares
  its GIL only with its own audio callback;
* it counts every event it handles and the late ones (see :attr:`OutputProcess.stats`).

The child ignores Ctrl-C (the server shuts it down in order: every session's notes released,
the ring drained, then the devices closed) and closes its devices (MIDI: All Notes Off) if the
server process dies. Opening errors reach the caller as the same exceptions
:class:`engine.outputs.host_outputs.HostOutputs` raises.
"""

from __future__ import annotations

import contextlib
import heapq
import math
import multiprocessing as mp
import os
import signal
import time
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_for
from typing import Any, Final

import numpy as np

from engine.outputs.host_outputs import HostOutputs
from engine.outputs.sinks import EventSink
from engine.realtime.clock import LATE_S, Lateness, enter_realtime, realtime_priority
from engine.realtime.row_ring import (
    ASK_RESET,
    ASK_STOP,
    ROW_WIDTH,
    STAT_COMPOSED_LATE,
    STAT_CPU_NS,
    STAT_ERRORS,
    STAT_HANDLED,
    STAT_LATE,
    STAT_REALTIME,
    STAT_VOICES,
    STAT_WORST_NS,
    STAT_XRUNS,
    RowRing,
)

#: how far ahead of their time the server hands events to this process (s)
LEAD_S: Final = 0.03
#: the child looks at the ring at least this often (s); every event reaches it about ``LEAD_S``
#: before its time, so it is never waited for
POLL_S: Final = 0.005
#: late events the child remembers (see :meth:`OutputProcess.late_events`)
LATE_LOG: Final = 10_000
#: rows taken from the ring at a time, between looks at what is due (a few hundred microseconds)
TAKE_ROWS: Final = 256
#: MIDI messages due within this much of now go out together, up to this early (s): one wake-up
#: per group instead of per message (a MIDI cable takes 0.32 ms per message anyway)
GRAIN_S: Final = 0.0005
#: a row kind that tells the child to forget a sink (a session left the output)
FORGET: Final = -1
_TARGETS: Final = 1 << 20  # target = output index * _TARGETS + sink number


class OutputProcessError(RuntimeError):
    """The output process failed to start, stopped, or cannot keep up."""


class RingSink:
    """A session's sink on one output of the output process (send from one thread only)."""

    def __init__(self, ring: RowRing, target: int, origin_s: Any) -> None:
        self._ring = ring
        self._target = target
        self._origin_s = origin_s

    def send(self, time_s: float, kind: int, channel: int, a: int, b: int) -> None:
        """Queue an event for the output process (see :meth:`send_queued`)."""
        self.send_queued(time_s, kind, channel, a, b, -math.inf)

    def send_queued(self, time_s: float, kind: int, channel: int, a: int, b: int, queued_s: float) -> None:
        """Queue an event composed at ``queued_s`` (session time, like ``time_s``): one composed
        after its time is not the output's fault (counted apart, see :attr:`OutputProcess.stats`).

        Raises:
            OutputProcessError: the ring is full (the process stopped or cannot keep up).
        """
        origin = self._origin_s()
        if not self._ring.push(origin + time_s, self._target, kind, channel, a, b, origin + queued_s):
            raise OutputProcessError(
                f"the output process is not keeping up: {self._ring.dropped} events dropped"
            )

    def forget(self) -> None:
        """Tell the output process to forget this sink once its last event is out (events are
        handed over at most ``LEAD_S`` ahead)."""
        self._ring.push(time.perf_counter() + LEAD_S + GRAIN_S, self._target, FORGET, 0, 0, 0)


class OutputProcess:
    """The server's outputs, opened and played in a child process (see the module docstring).

    Args: as :class:`engine.outputs.host_outputs.HostOutputs`, plus
        ring_capacity: events the ring holds (at 200 sessions ~10,000 a second pass through).
        start_timeout_s: how long the child may take to open its devices.

    Raises:
        engine.outputs.audio_stream.AudioUnavailable: the audio device cannot be opened.
        engine.outputs.midi_port.MidiPortError: the MIDI port cannot be opened
            (:class:`engine.outputs.midi_port.MidiPortNotFound`: no existing port matches).
        OutputProcessError: the child did not start.
    """

    lead_s: Final = LEAD_S

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
        ring_capacity: int = 65_536,
        start_timeout_s: float = 60.0,
    ) -> None:
        spec = {"audio": audio, "midi_port": midi_port, "midi_virtual": midi_virtual, "midi_api": midi_api,
                "device": device, "hostapi": hostapi, "sample_rate_hz": sample_rate_hz,
                "block_frames": block_frames,
                "record_wav": None if record_wav is None else os.fspath(record_wav)}  # fmt: skip
        self._ring = RowRing(ring_capacity)
        self._next_sink = 0
        self._closed = False
        ctx = mp.get_context("spawn")
        self._conn, child_conn = ctx.Pipe()
        self._proc = ctx.Process(
            target=_child_main, args=(spec, self._ring.name, child_conn), name="affetto-outputs", daemon=True
        )
        self._proc.start()
        child_conn.close()
        try:
            reply = self._reply(start_timeout_s, "open its devices")
        except BaseException:
            self._shut(0.0)
            raise
        self._names: tuple[str, ...] = tuple(reply[1])
        self.midi_port_name: str | None = reply[2]  # as other programs see it (None: no port)

    @property
    def names(self) -> tuple[str, ...]:
        """The outputs sessions can choose, in a fixed order."""
        return self._names

    @property
    def alive(self) -> bool:
        """Whether the child still runs (it stops only when closed, or on a fatal error)."""
        return self._proc.is_alive()

    @property
    def exit_code(self) -> int | None:
        """The child's exit code (negative: killed by that signal); None while it runs."""
        return self._proc.exitcode

    @property
    def stats(self) -> dict[str, Any]:
        """Events the child handled, how many went out more than 5 ms after their time (or after
        they were composed, for one composed late: ``composed_late`` counts those), the
        worst lateness (ms), events dropped because the ring was full, sends a device refused,
        the scheduling priority the child got (:func:`engine.realtime.clock.realtime_priority`),
        the synth's sounding voices and the audio stream's xruns (0 without audio) and the child's CPU time
        (s), as of the last millisecond or so."""
        h = self._ring.header
        return {"events": int(h[STAT_HANDLED]), "late": int(h[STAT_LATE]),
                "max_lateness_ms": round(int(h[STAT_WORST_NS]) / 1e6, 2), "dropped": self._ring.dropped,
                "errors": int(h[STAT_ERRORS]),
                "priority": ("normal", "niced", "real-time")[int(h[STAT_REALTIME])],
                "active_voices": int(h[STAT_VOICES]), "xruns": int(h[STAT_XRUNS]),
                "cpu_s": int(h[STAT_CPU_NS]) / 1e9, "composed_late": int(h[STAT_COMPOSED_LATE])}  # fmt: skip

    def late_events(self) -> list[tuple[float, float]]:
        """The latest ``LATE_LOG`` late events: (when due, when sent), ``time.perf_counter()`` s.

        Raises:
            OutputProcessError: the process did not answer.
        """
        self._conn.send(("late",))
        return [tuple(x) for x in self._reply(5.0, "report its late events")[1]]

    def reset_stats(self) -> None:
        """Zero the worst lateness (the counters only grow: take differences)."""
        self._ring.header[ASK_RESET] = 1

    def start(self) -> None:
        """Start the audio stream (tying the synth's frame clock to ``time.perf_counter()``).

        Raises:
            engine.outputs.audio_stream.AudioUnavailable: the stream cannot start.
        """
        self._conn.send(("start",))
        self._reply(30.0, "start its audio stream")

    def sink(self, name: str, origin_s: Any) -> EventSink:
        """A session's sink on output ``name`` (``origin_s()``: the session's time 0 as
        ``time.perf_counter()`` seconds).

        Raises:
            ValueError: ``name`` is not one of this server's outputs.
        """
        if name not in self._names:
            raise ValueError(f"unknown output {name!r}; this server has: {list(self._names) or 'none'}")
        self._next_sink = (self._next_sink + 1) % _TARGETS
        return RingSink(self._ring, self._names.index(name) * _TARGETS + self._next_sink, origin_s)

    def close(self, timeout_s: float = 10.0) -> None:
        """Let the child play what it was sent (due MIDI messages go out at once), close its
        devices and exit; then free the ring. Idempotent.

        Raises:
            engine.outputs.audio_stream.AudioRenderError: the synth failed while rendering.
        """
        if self._closed:
            return
        self._closed = True
        self._shut(timeout_s)

    def _shut(self, timeout_s: float) -> None:
        error: tuple[Any, ...] | None = None
        try:
            if self._proc.is_alive():
                self._ring.header[ASK_STOP] = 1
                with contextlib.suppress(EOFError, OSError):
                    if self._conn.poll(timeout_s):
                        reply = self._conn.recv()
                        error = reply if reply[0] == "error" else None
            self._proc.join(timeout=timeout_s)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(timeout=5.0)
        finally:
            self._closed = True
            self._conn.close()
            self._ring.close()
        if error is not None:
            raise _rebuild(error)

    def _reply(self, timeout_s: float, doing: str) -> tuple[Any, ...]:
        if not self._conn.poll(timeout_s):
            raise OutputProcessError(f"the output process did not {doing} within {timeout_s:.0f} s")
        try:
            reply: tuple[Any, ...] = self._conn.recv()
        except EOFError:
            raise OutputProcessError(
                f"the output process exited (code {self._proc.exitcode}) before it could {doing}"
            ) from None
        if reply[0] == "error":
            raise _rebuild(reply)
        return reply


def _rebuild(reply: tuple[Any, ...]) -> Exception:
    """The exception the child reported, as its own class where it is one of ours."""
    from engine.outputs.audio_stream import AudioRenderError, AudioUnavailable
    from engine.outputs.midi_port import MidiPortError, MidiPortNotFound

    kinds: dict[str, type[Exception]] = {
        "AudioUnavailable": AudioUnavailable, "AudioRenderError": AudioRenderError,
        "MidiPortError": MidiPortError, "MidiPortNotFound": MidiPortNotFound,
    }  # fmt: skip
    _, kind, message = reply
    return kinds.get(kind, OutputProcessError)(message if kind in kinds else f"{kind}: {message}")


# ------------------------------------------------------------------------------- the child
def _child_main(spec: dict[str, Any], ring_name: str, conn: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's to handle
    try:
        outputs = HostOutputs(**spec)
    except BaseException as exc:
        conn.send(("error", type(exc).__name__, str(exc)))
        return
    ring = RowRing(name=ring_name)
    ring.header[STAT_REALTIME] = realtime_priority()
    try:
        outputs.prepare()
        enter_realtime()  # the audio callback must get the GIL within its period; no long collections
        conn.send(("ready", outputs.names, outputs.port.name if outputs.port is not None else None))
        _ChildClock(outputs, ring, conn).run()
    except BaseException as exc:
        with contextlib.suppress(OSError):
            conn.send(("error", type(exc).__name__, str(exc)))
    finally:
        try:
            outputs.close()
        except Exception as exc:
            with contextlib.suppress(OSError):
                conn.send(("error", type(exc).__name__, str(exc)))
        else:
            with contextlib.suppress(OSError):
                conn.send(("closed",))
        ring.close()


class _ChildClock:
    """The child's loop: read the ring, hand synth events on at once, send MIDI messages at
    their time, count lateness (see the module docstring)."""

    def __init__(self, outputs: HostOutputs, ring: RowRing, conn: Connection) -> None:
        self.outputs = outputs
        self.ring = ring
        self.conn = conn
        self.sinks: dict[int, EventSink] = {}  # target -> sink
        self.pending: list[tuple[float, int, EventSink, int, int, int, int, float]] = []
        self.seq = 0
        self.errors = self.composed_late = 0
        self.timing = Lateness(LATE_S, log=LATE_LOG)  # late_log: (due, sent), perf_counter
        parent = mp.parent_process()
        self.parent_sentinel = parent.sentinel if parent is not None else None

    def run(self) -> None:
        buf = np.zeros((TAKE_ROWS, ROW_WIDTH), dtype=np.float64)
        header = self.ring.header
        next_check = 0.0
        while True:
            stopping = bool(header[ASK_STOP])
            n = self.ring.pop_into(buf)
            if n:
                self._take(buf[:n].tolist())
            now = time.perf_counter()
            self._send_due(now + GRAIN_S)
            if stopping and n == 0:
                self._send_due(math.inf)  # everything left, in order, now
                self._publish()
                return
            self._publish()
            if now >= next_check:
                next_check = now + 0.05
                if self._parent_gone():
                    return
                if self.conn.poll():
                    self._command(self.conn.recv())
            if n == len(buf):
                continue  # more waiting
            wait = min(self.pending[0][0] - GRAIN_S - time.perf_counter() if self.pending else POLL_S, POLL_S)
            if wait > 0:
                time.sleep(wait)

    def _parent_gone(self) -> bool:
        return self.parent_sentinel is not None and bool(wait_for([self.parent_sentinel], 0))

    def _command(self, command: tuple[Any, ...]) -> None:
        if command[0] == "start":
            try:
                self.outputs.start()
            except Exception as exc:
                self.conn.send(("error", type(exc).__name__, str(exc)))
            else:
                self.conn.send(("started",))
        elif command[0] == "late":
            self.conn.send(("late", list(self.timing.late_log)))

    def _take(self, rows: list[list[float]]) -> None:
        for t, target_f, kind_f, ch, a, b, q, _ in rows:
            target, kind = int(target_f), int(kind_f)
            sink = self.sinks.get(target)
            if kind == FORGET:
                if sink is not None:
                    del self.sinks[target]
                    self.seq += 1
                    heapq.heappush(self.pending, (t, self.seq, sink, FORGET, 0, 0, 0, t))
                continue
            if sink is None:
                sink = self.sinks[target] = self.outputs.sink(self.outputs.names[target // _TARGETS], _zero)
            self.seq += 1
            heapq.heappush(self.pending, (t, self.seq, sink, kind, int(ch), int(a), int(b), q))

    def _send_due(self, until: float) -> None:
        pending = self.pending
        if not pending or pending[0][0] > until:
            return
        now = time.perf_counter()
        while pending and pending[0][0] <= until:
            t, _, sink, kind, ch, a, b, q = heapq.heappop(pending)
            if kind == FORGET:  # its events are out: the sink may free what it holds
                forget = getattr(sink, "forget", None)
                if forget is not None:
                    forget()
                continue
            self._send(sink, t, kind, ch, a, b, q, now if until != math.inf else t)

    def _send(
        self, sink: EventSink, t: float, kind: int, ch: int, a: int, b: int, q: float, now: float
    ) -> None:
        try:
            sink.send(t, kind, ch, a, b)
        except Exception:  # a device refusing one message must not stop the others: counted
            self.errors += 1
            return
        if q - t > LATE_S:  # composed after its time: late, but not this process's doing
            self.composed_late += 1
        self.timing.add(t, q, now)

    def _publish(self) -> None:
        """The counters into the ring's header, for the server to read."""
        h = self.ring.header
        if h[ASK_RESET]:
            h[ASK_RESET] = 0
            self.timing.worst_s = 0.0
        h[STAT_HANDLED], h[STAT_LATE], h[STAT_ERRORS] = self.timing.events, self.timing.late, self.errors
        h[STAT_COMPOSED_LATE] = self.composed_late
        h[STAT_WORST_NS] = int(self.timing.worst_s * 1e9)
        h[STAT_CPU_NS] = time.process_time_ns()
        if self.outputs.synth is not None:
            h[STAT_VOICES] = self.outputs.synth.active_voices
            h[STAT_XRUNS] = self.outputs.audio.xruns


def _zero() -> float:
    return 0.0
