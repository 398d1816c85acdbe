"""``--midi-port NAME`` (an existing port only) and ``--virtual-port NAME`` (a new one) on the
commands that play live, on real JACK MIDI ports (headless jackd, see tests/jack_server.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from jack_server import JackServer, MidiCapture

from engine.cli import main

ROOT = Path(__file__).resolve().parents[2]
SHORT_ARC = "start_state: combat\nend_beat: 8\ncues: []\n"


@pytest.mark.parametrize(
    "command",
    [
        ["play", "--no-audio", "--arc", str(ROOT / "examples" / "arc.yaml")],
        ["demo"],
        ["serve", "--osc-port", "0", "--ws-port", "0"],
        ["bench", "server", "--seconds", "2"],
    ],
    ids=["play", "demo", "serve", "bench-server"],
)
def test_a_midi_port_that_is_not_there_is_one_line_listing_the_ports(
    jack_server: JackServer, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with MidiCapture(jack_server) as cap:
        before = set(jack_server.ports())
        assert main([*command, "--midi-port", "Microsoft GS", "--midi-api", "jack"]) == 1
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert "no MIDI output port matches 'Microsoft GS' on jack" in err
        assert repr(cap.input_port) in err  # the ports there are
        assert "--virtual-port NAME creates a new port" in err
        assert set(jack_server.ports()) == before  # no port of that name was made


def test_midi_port_and_virtual_port_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["play", "--midi-port", "a", "--virtual-port", "b"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_play_into_an_existing_port_by_part_of_its_name(jack_server: JackServer, tmp_path: Path) -> None:
    arc = tmp_path / "arc.yaml"
    arc.write_text(SHORT_ARC)
    with MidiCapture(jack_server) as cap:
        part = cap.client_name.upper()  # a case-insensitive part of "midicap-xxxxxx:input"
        cmd = [sys.executable, "-m", "engine.cli", "play", "--no-audio", "--arc", str(arc)]
        cmd += ["--midi-port", part, "--midi-api", "jack"]
        done = subprocess.run(
            cmd, cwd=ROOT, env=jack_server.env(), capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert f"MIDI on {cap.input_port!r}" in done.stdout
        notes = [m for _, m in cap.wait_quiet(quiet_s=0.3) if m[0] & 0xF0 == 0x90 and m[2] > 0]
        assert len(notes) > 5
    assert not [p for p in jack_server.ports() if part.lower() in p.lower()]  # no virtual port was made


def test_play_on_a_virtual_port_a_daw_connects_to(jack_server: JackServer, tmp_path: Path) -> None:
    arc = tmp_path / "arc.yaml"
    arc.write_text(SHORT_ARC.replace("end_beat: 8", "end_beat: 24"))
    cmd = [sys.executable, "-m", "engine.cli", "play", "--no-audio", "--arc", str(arc)]
    cmd += ["--virtual-port", "affetto-daw", "--midi-api", "jack"]
    env = {**jack_server.env(), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "affetto play: seed N, MIDI on 'affetto-daw:affetto-daw'"
        assert "MIDI on 'affetto-daw:affetto-daw'" in line, line + proc.stderr.read() if proc.stderr else ""
        with MidiCapture(jack_server, "affetto-daw:affetto-daw") as cap:
            notes = [m for _, m in cap.wait_for(20, timeout_s=20.0) if m[0] & 0xF0 == 0x90 and m[2] > 0]
            assert notes
            assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not [p for p in jack_server.ports() if "affetto-daw" in p]  # closed with the command


def test_a_virtual_port_name_an_existing_port_matches_is_refused(
    jack_server: JackServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """play and demo hand the name to an output that would open a matching port instead."""
    with MidiCapture(jack_server) as cap:
        args = ["play", "--no-audio", "--arc", str(ROOT / "examples" / "arc.yaml"), "--midi-api", "jack"]
        assert main([*args, "--virtual-port", cap.client_name]) == 1
        err = capsys.readouterr().err
        assert f"the MIDI port {cap.input_port!r} matches the virtual port name" in err
        assert len(err.strip().splitlines()) == 1
