"""Outputs chosen per session, on real JACK ports: the server's MIDI port and built-in synth are
opened once; each session plays into the ones it chose, leaves them without a hanging note, and
a shared output is only silenced on every channel by the last session playing into it. The MIDI
test runs with the port in this process (:class:`HostOutputs`) and in an output process of its
own (:class:`OutputProcess`, as ``affetto serve`` runs it: events handed over 30 ms early)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from affetto_client import OscClient
from jack_server import AudioCapture, JackServer, MidiCapture, measure_without_glitches

from engine.model.composer import Composer
from engine.outputs.host_outputs import HostOutputs
from engine.outputs.midi_port import MidiPortNotFound
from engine.outputs.output_process import OutputProcess
from engine.server.protocol import ProtocolError, Request, parse_json
from engine.sessions.host import SessionHost

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def composer() -> Iterator[Composer]:
    yield Composer(max_streams=4, intra_op_threads=1)


def sounding(messages: list[bytes]) -> set[tuple[int, int]]:
    """(channel, pitch) a receiver still sounds after ``messages`` (CC 123 ends a channel)."""
    on: set[tuple[int, int]] = set()
    for m in messages:
        kind, ch = m[0] & 0xF0, m[0] & 0x0F
        if kind == 0x90 and m[2] > 0:
            on.add((ch, m[1]))
        elif kind == 0x80 or (kind == 0x90 and m[2] == 0):
            on.discard((ch, m[1]))
        elif kind == 0xB0 and m[1] == 123:
            on = {k for k in on if k[0] != ch}
    return on


def note_ons(messages: list[bytes]) -> int:
    return sum(1 for m in messages if m[0] & 0xF0 == 0x90 and m[2] > 0)


Outputs = HostOutputs | OutputProcess
WHERE = pytest.mark.parametrize("where", [HostOutputs, OutputProcess], ids=["in-process", "output-process"])


@WHERE
def test_each_session_chooses_the_midi_port(
    jack_server: JackServer, composer: Composer, where: type[Outputs]
) -> None:
    outputs = where(midi_port="affetto-host", midi_api="jack")
    host = SessionHost(composer, outputs=outputs, default_outputs=())
    try:
        with pytest.raises(ValueError, match="not among"):
            SessionHost(composer, outputs=outputs, default_outputs=("audio",))
        assert outputs.midi_port_name is not None
        with MidiCapture(jack_server, outputs.midi_port_name) as cap:
            host.start()
            outputs.start()
            a = host.open("a")
            host.submit(a, Request("state", {"name": "combat"}))
            with pytest.raises(ProtocolError, match=r"unknown output\(s\) \['audio'\]"):
                host.submit(a, parse_json('{"op": "output", "outputs": ["audio"]}'))
            time.sleep(1.0)
            assert cap.events == []  # silent until it chooses an output
            assert host.status(a)["outputs"] == []

            host.submit(a, parse_json('{"op": "output", "outputs": ["midi"]}'))
            assert host.status(a)["outputs"] == ["midi"]
            got = [m for _, m in cap.wait_for(40, timeout_s=10.0)]
            assert got[0][0] & 0xF0 == 0xC0  # the channel setup (programs, volumes) comes first
            assert note_ons(got) > 5

            host.submit(a, parse_json('{"op": "output", "outputs": []}'))  # leave: its notes end there
            time.sleep(0.3)
            left = [m for _, m in cap.wait_quiet(quiet_s=0.5)]
            assert sounding(left) == set()
            assert not any(m[1] == 123 for m in left if m[0] & 0xF0 == 0xB0)  # note-offs, no panic
            n = len(cap.events)
            time.sleep(0.8)
            assert len(cap.events) == n  # nothing more from a session that left the port

            b = host.open("b")  # default outputs are none here; b joins the port, then a again
            host.submit(b, Request("state", {"name": "combat"}))
            host.submit(b, Request("output", {"outputs": ["midi"]}))
            host.submit(a, Request("output", {"outputs": ["midi"]}))
            time.sleep(1.5)
            mark = len(cap.events)
            host.close(b)  # a still plays into the port: b's notes end, but no CC 123 on any channel
            time.sleep(0.5)
            after_b = [m for _, m in cap.events[mark:]]
            assert not any(m[0] & 0xF0 == 0xB0 and m[1] == 123 for m in after_b)
            assert note_ons(after_b) > 0  # a kept playing
            host.close(a)  # the last one on the port: CC 123 on every channel
            final = [m for _, m in cap.wait_quiet(quiet_s=0.5)]
            assert sorted(m for m in final if m[0] & 0xF0 == 0xB0 and m[1] == 123) == [
                bytes((0xB0 | ch, 123, 0)) for ch in range(16)
            ]
            assert sounding(final) == set()
            assert not host.errors
    finally:
        host.stop()
        outputs.close()


@WHERE
def test_the_midi_port_is_an_existing_one_or_a_new_virtual_one_as_asked(
    jack_server: JackServer, where: type[Outputs]
) -> None:
    with MidiCapture(jack_server) as cap:
        before = set(jack_server.ports())
        with pytest.raises(MidiPortNotFound, match="no MIDI output port matches 'affetto-nowhere'") as info:
            where(midi_port="affetto-nowhere", midi_virtual=False, midi_api="jack")
        assert repr(cap.input_port) in str(info.value)  # the ports there are
        assert set(jack_server.ports()) == before  # and none was made
        existing = where(midi_port=cap.client_name, midi_virtual=False, midi_api="jack")
        try:
            assert existing.midi_port_name == cap.input_port
        finally:
            existing.close()
        virtual = where(midi_port=cap.client_name, midi_virtual=True, midi_api="jack")  # though one matches
        try:
            assert virtual.midi_port_name not in before and virtual.midi_port_name in jack_server.ports()
        finally:
            virtual.close()


@pytest.mark.usefixtures("portaudio")
def test_sessions_mix_in_the_synth_and_leave_it_silent(jack_server: JackServer, composer: Composer) -> None:
    """As ``affetto serve --audio`` plays: the synth in the output process (in one process with
    the composing thread, its audio callback would wait for the GIL under load)."""
    rate = jack_server.sample_rate_hz

    def run() -> tuple[np.ndarray, int, int, int]:
        outputs = OutputProcess(audio=True, hostapi="jack", sample_rate_hz=rate, block_frames=256)
        host = SessionHost(composer, outputs=outputs)  # new sessions play into every output
        try:
            host.start()  # loads the hot loops first: the audio callback must never wait on that
            with AudioCapture(jack_server, duration_s=4.0) as cap:
                outputs.start()
                sessions = [host.open(None) for _ in range(2)]
                for s, state in zip(sessions, ("combat", "explore"), strict=True):
                    host.submit(s, Request("state", {"name": state}))
                time.sleep(2.0)
                playing_voices = outputs.stats["active_voices"]
                for s in sessions:
                    host.submit(s, Request("output", {"outputs": []}))
                # release tails and the echo die away (an undamped F6 piano note rings ~4 s)
                deadline = time.monotonic() + 6.0
                while outputs.stats["active_voices"] and time.monotonic() < deadline:
                    time.sleep(0.05)
                left_voices = outputs.stats["active_voices"]
                samples = cap.wait()
            assert not host.errors and all(s.playing for s in sessions)
            return samples, playing_voices, left_voices, outputs.stats["xruns"]
        finally:
            host.stop()
            outputs.close()

    samples, playing_voices, left_voices, stream_xruns = measure_without_glitches(
        jack_server, run, ours="PortAudio"
    )
    assert stream_xruns == 0
    mono = samples.mean(axis=1)
    loud = np.flatnonzero(np.abs(mono) > 1e-3)
    assert loud.size, "nothing was heard"
    playing = mono[loud[0] : loud[0] + rate]
    assert 20 * np.log10(np.sqrt(np.mean(playing**2))) > -40
    assert playing_voices > 0
    assert left_voices == 0, "a note kept sounding after the sessions left the synth"


def test_affetto_serve_midi_port_end_to_end(jack_server: JackServer, tmp_path: Path) -> None:
    """``affetto serve --virtual-port``: a game's session plays into the port by default, goes silent
    with ``/affetto/output``, and Ctrl-C leaves no note hanging (CC 123 on every channel)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        osc_port = s.getsockname()[1]
    log = tmp_path / "serve.log"
    cmd = [sys.executable, "-m", "engine.cli", "serve", "--osc-port", str(osc_port), "--ws-port", "0"]
    cmd += ["--virtual-port", "affetto-serve", "--midi-api", "jack"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=jack_server.env())
    try:
        deadline = time.monotonic() + 60
        while b"outputs: notes, midi" not in log.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        port = next(p for p in jack_server.ports() if "affetto-serve" in p)
        with MidiCapture(jack_server, port) as cap:
            game = OscClient("127.0.0.1", osc_port)
            game.state("combat")
            got = [m for _, m in cap.wait_for(40, timeout_s=10.0)]
            assert note_ons(got) > 5
            game.output()  # silent: its notes end on the port
            left = [m for _, m in cap.wait_quiet(quiet_s=0.5)]
            assert sounding(left) == set()
            game.output("midi")
            n = len(cap.events)
            assert note_ons([m for _, m in cap.wait_for(n + 20, timeout_s=10.0)[n:]]) > 0
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=15) == 0, log.read_text()
            final = [m for _, m in cap.wait_quiet(quiet_s=0.5)]
            panic = {m for m in final[-40:] if m[0] & 0xF0 == 0xB0 and m[1] == 123}
            assert panic == {bytes((0xB0 | ch, 123, 0)) for ch in range(16)}
            assert sounding(final) == set()
            game.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.usefixtures("portaudio")
def test_each_session_on_the_synth_gets_its_own_channel_block(jack_server: JackServer) -> None:
    outputs = HostOutputs(audio=True, hostapi="jack", sample_rate_hz=jack_server.sample_rate_hz)
    try:
        a, b = (outputs.sink("audio", lambda: 0.0) for _ in range(2))
        assert [a.channel_offset, b.channel_offset] == [0, 16]  # type: ignore[attr-defined]
        a.forget()  # type: ignore[attr-defined]  # a's session left: its block is free again
        c = outputs.sink("audio", lambda: 0.0)
        assert c.channel_offset == 0  # type: ignore[attr-defined]
        assert outputs.synth.channels == 16 * 16
    finally:
        outputs.close()
