"""The output process (``affetto serve``'s devices in a process of their own) and its ring:
rows keep their order and are never waited for; MIDI goes out at its time; the local sinks and
subscribers still get events at their time although the devices get them early; opening errors
reach the caller; the process silences its port and exits when the server dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jack_server import JackServer, MidiCapture, measure_without_glitches
from system_parts import portaudio_missing

from engine.model.composer import Composer
from engine.outputs.audio_stream import AudioUnavailable
from engine.outputs.midi_port import MidiPortError
from engine.outputs.output_process import LEAD_S, OutputProcess
from engine.outputs.sinks import CallbackSink
from engine.realtime.kinds import NOTE_OFF, NOTE_ON
from engine.realtime.row_ring import ROW_WIDTH, RowRing
from engine.server.protocol import Request
from engine.sessions.host import SessionHost

ROOT = Path(__file__).resolve().parents[2]


@given(st.lists(st.tuples(st.booleans(), st.integers(1, 40)), max_size=60))
@settings(max_examples=60, deadline=None)
def test_ring_keeps_order_and_refuses_rows_when_full(ops: list[tuple[bool, int]]) -> None:
    ring = RowRing(16)
    try:
        model: deque[float] = deque()
        dropped = 0
        written = 0
        out = np.zeros((64, ROW_WIDTH))
        for push, n in ops:
            if push:
                for _ in range(n):
                    written += 1
                    ok = ring.push(float(written), 3, NOTE_ON, 1, 60, 100)
                    assert ok == (len(model) < 16)
                    if ok:
                        model.append(float(written))
                    else:
                        dropped += 1
            else:
                got = ring.pop_into(out[:n])
                expected = [model.popleft() for _ in range(min(n, len(model)))]
                assert got == len(expected)
                assert out[:got, 0].tolist() == expected
                assert (out[:got, 1:6] == [3, NOTE_ON, 1, 60, 100]).all()
            assert len(ring) == len(model) and ring.dropped == dropped
    finally:
        ring.close()


def test_ring_is_shared_by_name() -> None:
    ring = RowRing(64)
    other = RowRing(name=ring.name)
    try:
        assert other.capacity == 64
        ring.push(1.5, 2, NOTE_OFF, 3, 4, 0)
        out = np.zeros((4, ROW_WIDTH))
        assert other.pop_into(out) == 1 and out[0, :6].tolist() == [1.5, 2, NOTE_OFF, 3, 4, 0]
        assert len(ring) == 0
    finally:
        other.close()
        ring.close()
    with pytest.raises(ValueError, match="capacity must be in"):
        RowRing(8)


def test_opening_errors_reach_the_caller() -> None:
    with pytest.raises(MidiPortError, match="nonesuch"):
        OutputProcess(midi_port="x", midi_api="nonesuch")
    with pytest.raises(AudioUnavailable, match="PortAudio library" if portaudio_missing() else "nonesuch"):
        OutputProcess(audio=True, hostapi="nonesuch")


@pytest.fixture(scope="module")
def composer() -> Iterator[Composer]:
    yield Composer(max_streams=4, intra_op_threads=1)


def test_midi_goes_out_at_its_time_in_order(jack_server: JackServer) -> None:
    outputs = OutputProcess(midi_port="affetto-timing", midi_api="jack")
    try:
        assert outputs.names == ("midi",) and outputs.midi_port_name is not None
        outputs.start()
        sink = outputs.sink("midi", lambda: 0.0)  # times are perf_counter seconds
        port = outputs.midi_port_name

        def measure() -> tuple[list[tuple[float, bytes]], list[float]]:
            with MidiCapture(jack_server, port) as cap:
                start = time.perf_counter() + 0.2
                times = [start + 0.02 * i for i in range(40)]
                for i, t in enumerate(times):  # handed over early, as the server does
                    sink.send(t, NOTE_ON if i % 2 == 0 else NOTE_OFF, 0, 60 + i // 2, 90)
                return cap.wait_for(40, timeout_s=5.0), times

        got, times = measure_without_glitches(jack_server, measure)
        assert [m for _, m in got] == [
            bytes((0x90, 60 + i // 2, 90)) if i % 2 == 0 else bytes((0x80, 60 + i // 2, 0)) for i in range(40)
        ]
        # JACK delivers a message at the start of the next period: at most one period late
        errors = [arrival - t for (arrival, _), t in zip(got, times, strict=True)]
        assert min(errors) > -0.001, "a message went out early"
        assert max(errors) < jack_server.period_s + 0.005
        stats = outputs.stats
        assert stats["events"] % 40 == 0 and stats["dropped"] == 0 and stats["errors"] == 0
    finally:
        outputs.close()


def test_local_sinks_and_subscribers_get_events_at_their_time(
    jack_server: JackServer, composer: Composer
) -> None:
    """The devices get each event ``LEAD_S`` early; what this process hands on itself (local
    sinks, beat events to subscribers) still goes at the event's time, never early."""
    outputs = OutputProcess(midi_port="affetto-lead", midi_api="jack")
    received: list[tuple[float, float, int]] = []  # (perf_counter at receipt, event time, kind)
    sessions: list[Any] = []

    def record(time_s: float, kind: int, channel: int, a: int, b: int) -> None:
        received.append((time.perf_counter(), sessions[0].t0 + time_s, kind))

    host = SessionHost(composer, outputs=outputs, sinks_for=lambda name: [CallbackSink(record, (NOTE_ON,))])
    beats: list[tuple[float, float]] = []
    try:
        assert host.lead_s == LEAD_S
        host.start()
        outputs.start()
        assert outputs.midi_port_name is not None
        with MidiCapture(jack_server, outputs.midi_port_name) as cap:
            session = host.open("a")
            sessions.append(session)
            host.subscribe(session, lambda e: beats.append((time.perf_counter(), session.t0 + e["time_s"]))
                           if e["event"] == "beat" else None)  # fmt: skip
            host.submit(session, Request("state", {"name": "combat"}))
            time.sleep(3.0)
            host.close(session)
            got = cap.wait_quiet(quiet_s=0.5)
        assert sum(1 for _, m in got if m[0] & 0xF0 == 0x90 and m[2] > 0) > 10
        assert len(received) > 10 and len(beats) > 4
        assert all(at >= t - 0.0005 for at, t, _ in received), "a local sink got a note early"
        assert all(at >= t - 0.0005 for at, t in beats), "a beat event was published early"
        assert not host.errors
    finally:
        host.stop()
        outputs.close()


ORPHAN = """
import sys, time
from engine.outputs.output_process import OutputProcess
from engine.realtime.kinds import NOTE_ON
if __name__ == "__main__":
    out = OutputProcess(midi_port="affetto-orphan", midi_api="jack")
    out.start()
    out.sink("midi", lambda: 0.0).send(time.perf_counter(), NOTE_ON, 2, 64, 100)
    print(out._proc.pid, out.midi_port_name, flush=True)
    time.sleep(60)
"""


def test_the_output_process_silences_its_port_and_exits_when_the_server_dies(
    jack_server: JackServer, tmp_path: Path
) -> None:
    script = tmp_path / "orphan.py"
    script.write_text(ORPHAN)
    env = {**jack_server.env(), "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert server.stdout is not None
        pid_text, port = server.stdout.readline().split()
        child = int(pid_text)
        with MidiCapture(jack_server, port) as cap:
            cap.wait_quiet(quiet_s=0.3)  # the note went out before the capture connected
            server.send_signal(signal.SIGKILL)
            server.wait(timeout=10)
            deadline = time.monotonic() + 5.0
            while _alive(child) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not _alive(child), "the output process outlived the server"
            got = [m for _, m in cap.wait_quiet(quiet_s=0.3)]
        assert bytes((0xB2, 123, 0)) in got  # its port's notes released as it closed
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its dead parent's reaper) counts as gone
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_host_reports_a_lost_output_process_once(jack_server: JackServer, composer: Composer) -> None:
    outputs = OutputProcess(midi_port="affetto-lost", midi_api="jack")
    reported: list[str] = []
    host = SessionHost(composer, outputs=outputs, on_error=reported.append)
    try:
        host.start()
        outputs.start()
        session = host.open("a")
        host.submit(session, Request("state", {"name": "combat"}))
        time.sleep(1.0)
        assert reported == []
        outputs._proc.kill()  # as if the audio driver had crashed it
        deadline = time.monotonic() + 5.0
        while not reported and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)  # the music goes on; nothing more to say about it
        assert len(reported) == 1 and "the output process stopped (exit code -9): midi" in reported[0]
        assert session.playing and session.events_sent > 0
        assert host.status(session)["playing"]
    finally:
        host.stop()
        outputs.close()


def test_serve_error_log_prints_at_most_a_line_a_second(capsys: pytest.CaptureFixture[str]) -> None:
    from engine.commands.serve import ErrorLog

    log = ErrorLog(interval_s=0.2)
    for i in range(50):
        log(f"problem {i}")
    time.sleep(0.25)
    log("problem 50")
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "affetto serve: problem 0",
        "affetto serve: problem 50 (and 49 more problems since the last line)",
    ]
