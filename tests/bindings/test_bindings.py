"""The client bindings against a real ``affetto serve`` subprocess (bindings/PROTOCOL.md).

* C# (bindings/unity): compiled with Mono's ``mcs`` (also as Unity would, against a stub of the
  few UnityEngine types it uses) and run with ``mono``: validation, operations, beats, bars,
  notes (the ``notes`` output), errors; volume, pause/resume, stop with a fade-out, the hello
  and status answers; its OSC bytes are read back by liblo's ``oscdump``.
* JavaScript (bindings/web): ``node`` runs bindings/web/tests/smoke.mjs and control.mjs (the same
  checks) over WebSocket, and forward.mjs against a WebSocket server of this file's own that
  sends events and fields the client does not know.
* liblo (``oscsend``, ``oscsendfile``, ``oscdump``): an independent OSC implementation sends
  ``/affetto/emotion ff 0.5 -0.2`` and ``/affetto/subscribe`` and receives the beats.
* Both clients' keep-alive holds a listening session past a short server idle timeout.
* C++ (bindings/unreal): ``g++ -fsyntax-only`` type-checks the Unreal component against stand-ins for
  the UE 5.x API it uses (bindings/unreal/tests/stubs); no engine, nothing run but the UTF-8
  encoding of its ``Text`` lines, compiled on its own.
* Story text (``text``): the C# client's OnText and affetto.js's "text" handlers read the
  reference's ``text`` event from servers of this file's own (fixed OSC bytes, JSON); against
  ``affetto serve`` the C#, JavaScript and liblo clients get a reading in range when the server has
  the text emotion model (models/text_emotion), ``unsupported`` when it has none.

Each part skips when its tool is missing (apt: mono-mcs mono-runtime liblo-tools g++; Node.js ≥ 20),
but fails instead under ``AFFETTO_REQUIRE_BINDINGS=1`` (CI sets it).
"""

from __future__ import annotations

import json
import queue
import re
import shlex
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from served import Server, free_port, node_command, require_tools, serve
from text_contract import SCENES, TEXT_EVENT, TEXT_OSC, TEXT_OSC_UNCHANGED

from engine.music.config import LAYER_NAMES
from engine.server.osc_codec import decode_packet, encode_message

ROOT = Path(__file__).resolve().parents[2]
UNITY = ROOT / "bindings" / "unity"
WEB = ROOT / "bindings" / "web"
UNREAL = ROOT / "bindings" / "unreal"
EXAMPLES = ROOT / "examples"
EVENT_WAIT_S = 30.0
SHORT_IDLE_S = 2.0
#: the text emotion model `affetto serve` reads story text with (without it: ``unsupported``)
TEXT_MODEL_MANIFEST = ROOT / "models" / "text_emotion" / "manifest.json"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The server most tests share (the one-message liblo clients' sessions expire in 30 s)."""
    with serve(tmp_path_factory.mktemp("serve"), idle_timeout_s=30.0) as srv:
        yield srv


@pytest.fixture(scope="module")
def short_idle_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server that expires sessions after 2 s without a request."""
    with serve(tmp_path_factory.mktemp("serve_idle"), idle_timeout_s=SHORT_IDLE_S) as srv:
        yield srv


# ---------------------------------------------------------------------------------- helpers
def run(cmd: list[str], timeout_s: float = 120.0, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``; fail the test (with its output) on a non-zero exit."""
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout_s, check=False)
    output = f"{proc.stdout}\n{proc.stderr}"
    assert proc.returncode == 0, f"{shlex.join(cmd)} exited with {proc.returncode}:\n{output}"
    return proc


def assert_validated(lines: list[str], output: str) -> None:
    """The smoke program's client-side validation cases all threw (or rejected)."""
    assert any(re.fullmatch(r"VALIDATION ok \d+", line) for line in lines), output
    assert not any(line.startswith("VALIDATION FAIL") for line in lines), output


def assert_beats(beats: list[tuple[int, int]], what: str) -> None:
    """At least 4 beats, each the next one after the last (next beat, or beat 0 of the next bar),
    and at least one downbeat."""
    assert len(beats) >= 4, f"{what}: only {len(beats)} beats: {beats}"
    for (bar0, beat0), (bar1, beat1) in pairwise(beats):
        assert (bar1, beat1) in ((bar0, beat0 + 1), (bar0 + 1, 0)), f"{what}: beats not consecutive: {beats}"
    assert any(beat == 0 for _, beat in beats), f"{what}: no downbeat in {beats}"


class OscDump:
    """``oscdump -L PORT`` in the background; lines are parsed into (address, types, args)."""

    def __init__(self) -> None:
        self.port = free_port(socket.SOCK_DGRAM)
        self.proc = subprocess.Popen(
            ["oscdump", "-L", str(self.port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[tuple[str, str, list[str]]] = []
        threading.Thread(target=self._pump, daemon=True).start()
        self._wait_until_bound()

    def _wait_until_bound(self) -> None:
        """Ping the port until oscdump prints a ping, then drop the pings."""
        deadline = time.monotonic() + 10.0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as ping:
            while self.lines.empty():
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    pytest.fail(f"oscdump did not start on port {self.port}")
                ping.sendto(encode_message("/ping"), ("127.0.0.1", self.port))
                time.sleep(0.05)
        time.sleep(0.2)  # the last pings' lines
        while not self.lines.empty():
            self.lines.get_nowait()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def until(self, done: Callable[[list[tuple[str, str, list[str]]]], bool], timeout_s: float) -> None:
        """Collect messages into ``seen`` until ``done(seen)`` or the time runs out."""
        deadline = time.monotonic() + timeout_s
        while not done(self.seen) and time.monotonic() < deadline:
            if self.proc.poll() is not None and self.lines.empty():
                pytest.fail(f"oscdump exited with {self.proc.returncode} (port {self.port} in use?)")
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            fields = shlex.split(line)  # "<timetag> <address> <types> <args...>", strings quoted
            if len(fields) >= 2:
                self.seen.append((fields[1], fields[2] if len(fields) > 2 else "", fields[3:]))

    def messages(self, address: str) -> list[list[str]]:
        return [args for addr, _, args in self.seen if addr == address]

    def confirm(self, osc_port: int) -> None:
        """Wait for the subscription's challenge here and echo its nonce with ``oscsend`` (the
        port proves it receives; the server sends it nothing else before)."""
        self.until(lambda seen: any(m[0] == "/affetto/challenge" for m in seen), 5.0)
        assert [m[0] for m in self.seen] == ["/affetto/challenge"], self.seen
        (nonce,) = self.messages("/affetto/challenge")[0]
        run(["oscsend", "127.0.0.1", str(osc_port), "/affetto/confirm", "s", nonce])

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=5)


@pytest.fixture
def oscdump() -> Iterator[Callable[[], OscDump]]:
    """Start oscdump listeners (stopped after the test)."""
    dumps: list[OscDump] = []

    def start() -> OscDump:
        dumps.append(OscDump())
        return dumps[-1]

    yield start
    for dump in dumps:
        dump.close()


# ------------------------------------------------------------------------------- C# (Unity)
@pytest.fixture(scope="module")
def smoke_exe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bindings/unity/AffettoClient.cs + tests/SmokeTest.cs compiled with mcs (warnings are errors)."""
    require_tools("mcs", "mono")
    exe = tmp_path_factory.mktemp("csharp") / "smoke.exe"
    sources = [str(UNITY / "AffettoClient.cs"), str(UNITY / "tests" / "SmokeTest.cs")]
    run(["mcs", "-warnaserror", f"-out:{exe}", *sources])
    return exe


def test_csharp_client_compiles_for_unity(tmp_path: Path) -> None:
    """The MonoBehaviour wrapper (#if UNITY_5_3_OR_NEWER) and examples/unity/BeatLight.cs type-check
    against bindings/unity/tests/UnityEngineStub.cs."""
    require_tools("mcs")
    sources = [UNITY / "AffettoClient.cs", UNITY / "tests" / "UnityEngineStub.cs"]
    sources.append(EXAMPLES / "unity" / "BeatLight.cs")
    flags = ["-warnaserror", "-target:library", "-define:UNITY_5_3_OR_NEWER", f"-out:{tmp_path / 'u.dll'}"]
    run(["mcs", *flags, *map(str, sources)])


def test_csharp_osc_bytes_read_by_liblo(smoke_exe: Path, oscdump: Callable[[], OscDump]) -> None:
    """Every operation's packet, as liblo's oscdump decodes it."""
    require_tools("oscdump")
    dump = oscdump()
    out = run(["mono", str(smoke_exe), "send", "127.0.0.1", str(dump.port)]).stdout
    local_port = re.search(r"SENT (\d+)", out)
    assert local_port, out
    expected = [
        ("/affetto/emotion", "ff", ["0.500000", "-0.200000"]),
        ("/affetto/emotion", "fffs", ["0.250000", "0.750000", "-1.000000", "bar"]),
        ("/affetto/state", "ss", ["combat", "phrase"]),
        ("/affetto/param", "sf", ["health", "0.300000"]),
        ("/affetto/stinger", "s", ["hit"]),
        ("/affetto/leitmotif", "s", ["hero"]),
        ("/affetto/transport", "s", ["start"]),
        ("/affetto/transport", "sf", ["tempo", "120.500000"]),
        ("/affetto/transport", "si", ["seed", "42"]),
        ("/affetto/transport", "ss", ["sync", "beat"]),
        ("/affetto/transport", "s", ["pause"]),
        ("/affetto/transport", "s", ["resume"]),
        ("/affetto/transport", "s", ["stop"]),
        ("/affetto/transport", "sf", ["stop", "2.500000"]),
        ("/affetto/transport", "sf", ["stop", "3.000000"]),
        ("/affetto/volume", "f", ["0.500000"]),
        ("/affetto/volume", "ff", ["0.250000", "2.000000"]),
        ("/affetto/volume", "ffs", ["1.000000", "0.500000", "drums"]),
        ("/affetto/volume", "fs", ["0.000000", "melody"]),
        ("/affetto/hello", "", []),
        ("/affetto/hello", "s", ["s3cret"]),
        ("/affetto/subscribe", "i", [local_port.group(1)]),
        ("/affetto/unsubscribe", "", []),
        ("/affetto/session", "s", ["level-3"]),
        ("/affetto/output", "", []),
        ("/affetto/output", "ss", ["audio", "midi"]),
        ("/affetto/text", "s", ["The wolf howled."]),
        ("/affetto/status", "", []),
    ]
    dump.until(lambda seen: len(seen) >= len(expected), 5.0)
    assert dump.seen == expected


def test_csharp_client_against_server(smoke_exe: Path, server: Server) -> None:
    """Validation, emotion/state/stinger/tempo/outputs, subscribe: consecutive beats with a downbeat,
    bars with their key, layers and time, the errors for an output the server lacks and an unknown
    state, the status, and OnNote's typed notes once the "notes" output is chosen; all through
    AffettoOscClient.Poll()."""
    proc = run(["mono", str(smoke_exe), "run", "127.0.0.1", str(server.osc_port), str(EVENT_WAIT_S)])
    lines = proc.stdout.splitlines()
    assert_validated(lines, proc.stdout)
    beats = [(int(f[1]), int(f[2])) for f in (line.split() for line in lines) if f[0] == "BEAT"]
    assert_beats(beats, "C# client")
    errors = [line for line in lines if line.startswith("ERROR ")]
    assert any(e.startswith("ERROR bad_argument ") and "no-such-state" in e for e in errors), proc.stdout
    assert any(e.startswith("ERROR bad_argument ") and "'audio'" in e for e in errors), proc.stdout
    assert len(errors) == 2, proc.stdout  # the silent output (no names) is accepted
    assert any(line.startswith("STATUS ") for line in lines), proc.stdout
    bars = [shlex.split(line) for line in lines if line.startswith("BAR ")]
    assert bars and all(len(b) == 10 for b in bars), proc.stdout
    for _, bar, _state, *numbers, key, layers, time_s in bars:
        assert int(bar) >= 0 and len(numbers) == 4 and float(time_s) >= 0, proc.stdout
        assert re.fullmatch(r"[A-G][#b]? (major|minor)", key), proc.stdout
        assert set(layers.split(",")) <= set(DEFAULT_LAYERS) | {""}, proc.stdout
    notes: list[dict[str, Any]] = []
    for line in lines:
        if line.startswith("NOTE "):
            _, channel, pitch, velocity, layer, time_s = line.split()
            notes.append({"channel": int(channel), "pitch": int(pitch), "velocity": int(velocity),
                          "layer": layer, "time_s": float(time_s)})  # fmt: skip
    assert_notes(notes, "C# client")


def test_csharp_client_volume_pause_stop_hello(smoke_exe: Path, server: Server) -> None:
    """SetVolume (session and layer: OnVolume; an unknown layer: OnError), Transport pause/resume
    (no beats while paused, the place and the clock kept, sounding notes released), stop with a
    fade-out (then silence, a stinger refused with not_playing) and start from bar 0, with OnHello
    and OnStatus parsed into typed fields (lists from the comma-separated strings, booleans from
    the ints)."""
    proc = run(["mono", str(smoke_exe), "control", "127.0.0.1", str(server.osc_port)])
    check_control(proc.stdout, "C# client", osc=True)


# ------------------------------------------------------------------------ the shared checks
#: the label of a stinger's notes in note events (the rest carry a layer of the profile)
STINGER_LAYER = "stinger"
DEFAULT_LAYERS = LAYER_NAMES  # the test servers run the default profile


def assert_notes(notes: list[dict[str, Any]], what: str) -> None:
    """At least 4 notes, a note-on and a note-off among them, each with a MIDI channel, pitch and
    velocity in range, a layer of the profile (or a stinger's) and a time that never goes back."""
    assert len(notes) >= 4, f"{what}: only {len(notes)} notes: {notes}"
    for note in notes:
        assert isinstance(note["channel"], int) and 0 <= note["channel"] <= 15, f"{what}: {note}"
        assert isinstance(note["pitch"], int) and 0 <= note["pitch"] <= 127, f"{what}: {note}"
        assert isinstance(note["velocity"], int) and 0 <= note["velocity"] <= 127, f"{what}: {note}"
        # the session's clock; the first notes may be humanized a few ms ahead of its 0
        assert isinstance(note["time_s"], int | float) and note["time_s"] > -0.05, f"{what}: {note}"
        assert note["layer"] in (*DEFAULT_LAYERS, STINGER_LAYER), f"{what}: {note}"
    assert any(n["velocity"] == 0 for n in notes), f"{what}: no note-off: {notes}"
    assert any(n["velocity"] > 0 for n in notes), f"{what}: no note-on: {notes}"
    times = [n["time_s"] for n in notes]
    assert times == sorted(times), f"{what}: notes out of time order: {times}"


@dataclass
class ControlLine:
    """One line of control.mjs / ``SmokeTest.cs control``: ``KIND elapsed_ms {json}``, in the
    step of the last MARK before it."""

    kind: str
    ms: int
    step: str
    event: dict[str, Any]


def _control_lines(stdout: str) -> list[ControlLine]:
    out = []
    step = ""
    for line in stdout.splitlines():
        kind, ms, payload = line.split(" ", 2)
        event = json.loads(payload)
        if kind == "MARK":
            step = event["step"]
        out.append(ControlLine(kind, int(ms), step, event))
    return out


def _close(value: Any, expected: float) -> bool:
    return isinstance(value, int | float) and abs(value - expected) < 1e-3  # 32-bit floats over OSC


def check_control(stdout: str, what: str, *, osc: bool) -> None:
    """The volume, pause/resume, stop-with-fade, start and hello steps of
    bindings/web/tests/control.mjs and ``SmokeTest.cs control``, as the reference describes them."""
    lines = _control_lines(stdout)
    marks = {line.step: line.ms for line in lines if line.kind == "MARK"}
    assert "end" in marks, f"{what}: the steps did not finish:\n{stdout}"

    def events(kind: str) -> list[ControlLine]:
        return [line for line in lines if line.kind == kind]

    # hello: the session, the version, the profile's names, the server's outputs
    hellos = events("HELLO")
    assert len(hellos) == 1, f"{what}: no hello answer:\n{stdout}"
    hello = hellos[0].event
    assert isinstance(hello["session"], str) and hello["session"] and hello["version"] == 1, hello
    assert "combat" in hello["states"] and "hit" in hello["stingers"], hello
    assert hello["params"] == [] and "notes" in hello["available_outputs"], hello
    assert hello["layer_names"] and set(hello["layer_names"]) <= set(DEFAULT_LAYERS), hello
    layer = hello["layer_names"][0]
    # sessions: the server's open sessions, this one among them, each with its profile
    listed = events("SESSIONS")
    assert len(listed) == 1, f"{what}: no sessions answer:\n{stdout}"
    names, profiles = listed[0].event["names"], listed[0].event["profiles"]
    assert hello["session"] in names and len(profiles) == len(names) and "default" in profiles, listed

    # volume events as each change starts: the session's fade, then one layer's
    volumes = [line.event for line in events("VOLUME")]
    faded = [v for v in volumes if v["layer"] in (None, "") and _close(v["level"], 0.5)]
    assert faded and _close(faded[0]["fade_s"], 0.5), f"{what}: no session volume event: {volumes}"
    assert isinstance(faded[0]["time_s"], int | float), faded
    assert any(v["layer"] == layer and _close(v["level"], 0.25) for v in volumes), f"{what}: {volumes}"

    # the two refusals, and no other
    refused = [line for line in lines if line.kind in ("ERROR", "REJECTED")]
    assert [line.step for line in refused] == ["unknown-layer", "stinger-stopped"], f"{what}:\n{stdout}"
    assert refused[0].event["code"] == "bad_argument", refused[0]
    assert "no-such-layer" in refused[0].event["message"], refused[0]
    assert refused[1].event["code"] == "not_playing", refused[1]

    # status: every field, the level kept by a stop's fade-out, playing/paused through the steps
    statuses = {line.step: line.event for line in events("STATUS")}
    expected = {
        "status-volume": (True, False),
        "status-paused": (False, True),  # playing: neither paused nor stopped
        "status-resumed": (True, False),
        "status-stopped": (False, False),
        "status-started": (True, False),
    }
    assert set(statuses) == set(expected), f"{what}: status answers missing:\n{stdout}"
    for step, (playing, paused) in expected.items():
        status = statuses[step]
        assert (status["playing"], status["paused"]) == (playing, paused), (what, step, status)
        assert status["profile"] == "default" and status["outputs"] == ["notes"], status
        assert status["params"] == [] and "combat" in status["states"] and "hit" in status["stingers"], status
        assert isinstance(status["layers"], list) and set(status["layers"]) <= set(DEFAULT_LAYERS), status
        assert isinstance(status["key"], str) and isinstance(status["bar"], int), status
        assert _close(status["level"], 0.5), (what, step, status)  # a stop's fade-out keeps the level
    if not osc:  # layer_levels is WebSocket only
        assert _close(statuses["status-volume"]["layer_levels"][layer], 0.25), statuses["status-volume"]

    # beats: none while paused; resume goes on from the beat after the last, the clock held;
    # none after the stop's fade-out; start begins at bar 0
    beats = events("BEAT")
    grace_ms = 300  # beats sent just before a request landed
    held = [b.event for b in beats if marks["pause"] + grace_ms < b.ms < marks["resume"]]
    assert not held, f"{what}: beats while paused: {held}"
    before = [b.event for b in beats if b.ms <= marks["pause"] + grace_ms]
    after = [b.event for b in beats if marks["resume"] <= b.ms < marks["stop"]]
    assert before and after, f"{what}: no beats around the pause:\n{stdout}"
    last, first = before[-1], after[0]
    following = ((last["bar"], last["beat"] + 1), (last["bar"] + 1, 0))
    assert (first["bar"], first["beat"]) in following, f"{what}: resumed elsewhere: {last} then {first}"
    gap = first["time_s"] - last["time_s"]
    assert 0 < gap < 1.0, f"{what}: the session's clock ran on through the 2 s pause ({gap:.3f} s)"
    late = [b.event for b in beats if marks["stop"] + 500 + grace_ms < b.ms < marks["start"]]
    assert not late, f"{what}: beats after the stop's fade-out: {late}"
    restarted = [b.event for b in beats if b.ms > marks["start"]]
    assert restarted and (restarted[0]["bar"], restarted[0]["beat"]) == (0, 0), f"{what}: {restarted[:2]}"

    # notes: typed, and none left sounding by the pause or the stop (start begins a new clock)
    notes = events("NOTE")
    assert_notes([n.event for n in notes if n.ms < marks["start"]], what)
    restarted_times = [n.event["time_s"] for n in notes if n.ms > marks["start"]]
    assert restarted_times == sorted(restarted_times), f"{what}: {restarted_times}"

    def sounding(until_ms: int) -> set[tuple[int, int]]:
        on: set[tuple[int, int]] = set()
        for note in notes:
            if note.ms < until_ms:
                key = (note.event["channel"], note.event["pitch"])
                (on.add if note.event["velocity"] else on.discard)(key)
        return on

    assert not sounding(marks["status-paused"]), f"{what}: notes left sounding by the pause"
    assert not sounding(marks["status-stopped"]), f"{what}: notes left sounding by the stop"


# ------------------------------------------------------------------------------ C++ (Unreal)
UNREAL_CHECK = [
    *("g++", "-std=c++20", "-fsyntax-only", "-Wall", "-Werror"),
    *("-I", str(UNREAL), "-I", str(UNREAL / "tests" / "stubs")),
]


def test_cpp_component_compiles_for_unreal() -> None:
    """bindings/unreal/AffettoComponent.cpp (and its header) type-check, warnings as errors, against
    bindings/unreal/tests/stubs: stand-ins for the UE 5.x engine and OSC plugin API it uses."""
    require_tools("g++")
    run([*UNREAL_CHECK, str(UNREAL / "AffettoComponent.cpp")])


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        # an FString for %s: UE_LOG checks its format against the arguments
        ("*ServerHost, ServerPort,", "ServerHost, ServerPort,", "UE_LOG: the format"),
        # the UE 4.x CreateOSCClient, without a client name
        ('ServerPort, TEXT("AffettoClient"), this)', "ServerPort)", "no matching function"),
        # a timer method that returns bool
        ("&UAffettoComponent::KeepAlive,", "&UAffettoComponent::Status,", "cannot convert"),
        # the bar's layers as the comma-separated string OSC carries, not the TArray OnBar declares
        ("SplitNames(Layers), Time);", "Layers, Time);", "cannot convert"),
    ],
    ids=["log-format", "ue4-create-client", "timer-method", "bar-layers-unsplit"],
)
def test_cpp_stubs_reject_api_misuse(tmp_path: Path, old: str, new: str, error: str) -> None:
    """The stand-ins are not permissive: the component with one misuse the engine rejects fails."""
    require_tools("g++")
    source = (UNREAL / "AffettoComponent.cpp").read_text()
    assert old in source
    broken = tmp_path / "AffettoComponent.cpp"  # its #include "AffettoComponent.h" finds bindings/unreal's
    broken.write_text(source.replace(old, new, 1))
    cmd = [*UNREAL_CHECK, str(broken)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode != 0, f"{new!r} compiled against the stand-ins"
    assert error in proc.stderr, proc.stderr


# ------------------------------------------------------------------------------- JavaScript
def test_web_client_against_server(server: Server) -> None:
    """Validation, ok replies matched by id, consecutive beats with a downbeat, the rejected
    output (this server has none) and unknown state, the status with no outputs, and typed note
    events once the "notes" output is chosen; all through affetto.js over WebSocket."""
    node = node_command()
    smoke = WEB / "tests" / "smoke.mjs"
    proc = run([*node, str(smoke), server.ws_url, str(EVENT_WAIT_S)])
    lines = proc.stdout.splitlines()
    assert_validated(lines, proc.stdout)
    events = [(line.split(" ", 1)[0], json.loads(line.split(" ", 1)[1])) for line in lines if " {" in line]
    oks = [e for kind, e in events if kind == "OK"]
    ops = ["subscribe", "emotion", "state", "stinger", "transport", "output", "output"]
    assert [e["op"] for e in oks] == ops, proc.stdout
    assert [e["id"] for e in oks] == [1, 2, 3, 4, 5, 6, 11], proc.stdout
    beats = [e for kind, e in events if kind == "BEAT"]
    assert all(e["downbeat"] == (e["beat"] == 0) for e in beats), proc.stdout
    assert_beats([(e["bar"], e["beat"]) for e in beats], "web client")
    errors = [e for kind, e in events if kind == "ERROR"]
    rejected = {e.get("op"): e for e in errors if e["code"] == "bad_argument"}
    assert rejected.keys() == {"output", "state"}, proc.stdout
    assert rejected["output"]["id"] == 7 and "'audio'" in rejected["output"]["message"], proc.stdout
    assert rejected["state"]["id"] == 8 and "no-such-state" in rejected["state"]["message"], proc.stdout
    statuses = [e for kind, e in events if kind == "STATUS"]
    assert statuses and statuses[0]["id"] == 9 and statuses[0]["outputs"] == [], proc.stdout
    hellos = [e for kind, e in events if kind == "HELLO"]
    assert len(hellos) == 1 and hellos[0]["id"] == 10 and hellos[0]["session"] == statuses[0]["session"]
    notes = [e for kind, e in events if kind == "NOTE"]
    assert all(e["event"] == "note" and e["session"] == statuses[0]["session"] for e in notes), proc.stdout
    assert_notes(notes, "web client")


def test_web_client_volume_pause_stop_hello(server: Server) -> None:
    """volume() (session and layer: "volume" events; an unknown layer rejects), transport pause
    and resume (no beats while paused, the place and the clock kept, sounding notes released),
    stop with a fade-out (then silence, a stinger rejected with not_playing) and start from bar
    0, hello() and status() with every field of the reference."""
    node = node_command()
    proc = run([*node, str(WEB / "tests" / "control.mjs"), server.ws_url])
    check_control(proc.stdout, "web client", osc=False)


def test_web_client_ignores_events_it_does_not_know(tmp_path: Path) -> None:
    """A newer server's events and fields: an event affetto.js has no name for reaches only the
    "message" handlers, a note with an extra field the "note" handler, a status with one resolves
    status(); nothing throws (a listener's exception would end node with an error). The server
    here is this test's own WebSocket server."""
    from websockets.sync.server import ServerConnection, serve

    node = node_command()
    future = {"event": "lyrics", "session": "s", "text": "la la", "time_s": 1.5}
    note = {"event": "note", "session": "s", "channel": 0, "pitch": 60, "velocity": 90, "layer": "melody",
            "time_s": 1.5, "articulation": "staccato"}  # fmt: skip

    def handler(ws: ServerConnection) -> None:
        for message in ws:
            request = json.loads(message)
            if request["op"] == "status":
                ws.send(json.dumps(future))
                ws.send(json.dumps(note))
                ws.send(json.dumps({"event": "status", "session": "s", "id": request["id"], "mood": "?"}))
            else:
                ws.send(json.dumps({"event": "ok", "op": request["op"], "id": request["id"]}))

    with serve(handler, "127.0.0.1", 0) as ws_server:
        threading.Thread(target=ws_server.serve_forever, daemon=True).start()
        url = f"ws://127.0.0.1:{ws_server.socket.getsockname()[1]}"
        proc = run([*node, str(WEB / "tests" / "forward.mjs"), url], timeout_s=30)
        ws_server.shutdown()
    lines = [(line.split(" ", 1)[0], json.loads(line.split(" ", 1)[1])) for line in proc.stdout.splitlines()]
    messages = [e for kind, e in lines if kind == "MESSAGE"]
    assert [e["event"] for e in messages] == ["ok", "lyrics", "note", "status"], proc.stdout
    assert [e for kind, e in lines if kind == "NOTE"] == [note], proc.stdout
    assert [e["mood"] for kind, e in lines if kind == "STATUS"] == ["?"], proc.stdout
    assert not [e for kind, e in lines if kind in ("ERROR", "BEAT")], proc.stdout


def test_web_client_typings_name_every_method() -> None:
    """affetto.d.ts declares every public method of the AffettoClient class in affetto.js."""
    source = (WEB / "affetto.js").read_text()
    source = source[source.index("export class AffettoClient {") :]
    source = source[: source.index("\n}\n")]  # the class body
    typings = (WEB / "affetto.d.ts").read_text()
    methods = set(re.findall(r"^  (?:async )?([a-z]\w*)\(", source, re.MULTILINE))
    assert {"connect", "emotion", "state", "subscribe", "on"} <= methods
    declared = set(re.findall(r"^  ([a-z]\w*)(?:<[^>]*>)?\(", typings, re.MULTILINE))
    assert methods - {"constructor"} <= declared, methods - declared


# ------------------------------------------------------------------------------------ liblo
def test_liblo_oscsend_subscribe_receives_beats(server: Server, oscdump: Callable[[], OscDump]) -> None:
    """``oscsend`` subscribes oscdump's port: consecutive beats with a downbeat arrive there;
    ``oscsend /affetto/emotion ff 0.5 -0.2`` is accepted, and ``oscsend /affetto/status`` (each
    from a port of its own: one session, the host's) is answered there too, with the reference's
    17 arguments."""
    require_tools("oscsend", "oscdump")
    dump = oscdump()
    run(["oscsend", "127.0.0.1", str(server.osc_port), "/affetto/subscribe", "i", str(dump.port)])
    dump.confirm(server.osc_port)
    run(["oscsend", "127.0.0.1", str(server.osc_port), "/affetto/emotion", "ff", "0.5", "-0.2"])
    dump.until(lambda seen: len([m for m in seen if m[0] == "/affetto/beat"]) >= 6, EVENT_WAIT_S)
    for args in dump.messages("/affetto/beat"):
        assert len(args) == 4, dump.seen
    assert {types for addr, types, _ in dump.seen if addr == "/affetto/beat"} == {"iiff"}
    assert_beats([(int(a[0]), int(a[1])) for a in dump.messages("/affetto/beat")], "oscdump")
    assert not dump.messages("/affetto/error"), dump.seen
    run(["oscsend", "127.0.0.1", str(server.osc_port), "/affetto/status"])
    dump.until(lambda seen: any(m[0] == "/affetto/status" for m in seen), 5.0)
    statuses = [(types, args) for addr, types, args in dump.seen if addr == "/affetto/status"]
    assert statuses and statuses[0][0] == "ssffffiiisssssssf", dump.seen  # session ... level


def test_liblo_one_client_emotion_error_status(
    server: Server, oscdump: Callable[[], OscDump], tmp_path: Path
) -> None:
    """One liblo client (``oscsendfile``: one socket) subscribes, sends ``emotion ff 0.5 -0.2``,
    another emotion, an unknown state and a status request: oscdump gets the one error, the
    status, an emotion transition and a bar with the second emotion. (The server may skip an
    emotion that a later one supersedes before it lands, so one transition is enough.)"""
    require_tools("oscsendfile", "oscdump")
    dump = oscdump()
    script = tmp_path / "messages.txt"  # oscdump's own format: "<timetag> <address> <types> <args>"
    script.write_text(f"00000000.00000000 /affetto/subscribe i {dump.port}\n")
    run(["oscsendfile", "127.0.0.1", str(server.osc_port), str(script)])
    dump.confirm(server.osc_port)
    script.write_text(
        "00000000.00000000 /affetto/emotion ff 0.5 -0.2\n"
        "00000000.00000000 /affetto/emotion fffs -0.75 0.25 0.5 immediate\n"
        "00000000.00000000 /affetto/state s nosuch\n"
        "00000000.00000000 /affetto/status\n"
    )
    run(["oscsendfile", "127.0.0.1", str(server.osc_port), str(script)])

    def new_emotion(seen: list[tuple[str, str, list[str]]]) -> bool:
        wanted = ["-0.750000", "0.250000", "0.500000"]  # valence, arousal, tension
        return any(address == "/affetto/bar" and args[2:5] == wanted for address, _, args in seen)

    def transitions(seen: list[tuple[str, str, list[str]]]) -> list[str]:
        return [args[0] for address, _, args in seen if address == "/affetto/transition"]

    dump.until(lambda seen: new_emotion(seen) and "emotion" in transitions(seen), EVENT_WAIT_S)
    assert new_emotion(dump.seen), dump.seen
    errors = dump.messages("/affetto/error")
    assert len(errors) == 1 and errors[0][0] == "bad_argument" and "nosuch" in errors[0][1], dump.seen
    assert len(dump.messages("/affetto/status")) == 1, dump.seen
    assert "emotion" in transitions(dump.seen), dump.seen


# ------------------------------------------------------------------------------- keep-alive
def assert_listened_past_idle_timeout(stdout: str, what: str) -> None:
    """Beats ("BEAT elapsed_ms bar beat" lines) kept coming well after the idle timeout."""
    beats = [[int(x) for x in line.split()[1:]] for line in stdout.splitlines() if line.startswith("BEAT ")]
    assert not [line for line in stdout.splitlines() if line.startswith("ERROR ")], stdout
    assert beats and beats[-1][0] > (SHORT_IDLE_S + 2.5) * 1000, f"{what}: the session expired:\n{stdout}"
    assert_beats([(bar, beat) for _, bar, beat in beats], what)


def test_csharp_keepalive_keeps_a_listening_session(smoke_exe: Path, short_idle_server: Server) -> None:
    """A client that only subscribes and polls keeps its session past the server's idle timeout
    (KeepAliveSeconds sends the status requests)."""
    port = str(short_idle_server.osc_port)
    proc = run(["mono", str(smoke_exe), "listen", "127.0.0.1", port, str(SHORT_IDLE_S + 3.5), "0.5"])
    assert_listened_past_idle_timeout(proc.stdout, "C# client")


def test_web_keepalive_keeps_a_listening_session(short_idle_server: Server) -> None:
    """The same for affetto.js (keepAliveMs)."""
    node = node_command()
    listen = WEB / "tests" / "listen.mjs"
    proc = run([*node, str(listen), short_idle_server.ws_url, str(SHORT_IDLE_S + 3.5), "500"])
    assert_listened_past_idle_timeout(proc.stdout, "web client")


# ------------------------------------------------------------------------------------ story text
#: lines of story text (one with characters beyond ASCII, sent as UTF-8)
TEXT_LINES = ["The wolf howled at the door.", "« Ça va ? » she whispered, and laughed \u2014 \U0001f43a"]


def _reading(event: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(event[k] for k in ("valence", "arousal", "confidence", "scene_valence", "scene_arousal",
                                    "changed", "scene"))  # fmt: skip


def assert_reading(event: dict[str, Any], what: str, *, osc: bool) -> None:
    """A text event within the reference's ranges."""
    for key in ("valence", "arousal", "scene_valence", "scene_arousal"):
        assert isinstance(event[key], int | float) and -1 <= event[key] <= 1, f"{what}: {key}: {event}"
    assert 0 < event["confidence"] <= 1, f"{what}: {event}"
    assert event["scene"] in SCENES and isinstance(event["changed"], bool), f"{what}: {event}"
    if not osc:
        assert (event["sync"] is None) == (not event["changed"]), f"{what}: {event}"
        assert isinstance(event["time_s"], int | float) and event["time_s"] >= 0, f"{what}: {event}"


def test_csharp_text_event_from_fixed_bytes(smoke_exe: Path) -> None:
    """Text() sends each line as /affetto/text s (UTF-8 kept); OnText reads the reference's
    /affetto/text bytes (fixed here, sent back by this test's own server) into AffettoText's typed
    fields, changed (the int 1 or 0) as a bool."""
    answers = iter([TEXT_OSC, TEXT_OSC_UNCHANGED])
    received: list[tuple[str, list[Any]]] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as fake:
        fake.bind(("127.0.0.1", 0))
        fake.settimeout(0.1)
        cmd = ["mono", str(smoke_exe), "text", "127.0.0.1", str(fake.getsockname()[1]), "20", *TEXT_LINES]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                data, sender = fake.recvfrom(65536)
            except TimeoutError:
                continue
            for message in decode_packet(data):
                received.append((message.address, list(message.args)))
                if message.address == "/affetto/text":
                    fake.sendto(next(answers), sender)
        if proc.poll() is None:
            proc.kill()
        stdout, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, f"{stdout}\n{stderr}"
    sent = [args for address, args in received if address == "/affetto/text"]
    assert sent == [[line] for line in TEXT_LINES], received
    assert received[0][0] == "/affetto/subscribe", received
    readings = [json.loads(line[5:]) for line in stdout.splitlines() if line.startswith("TEXT ")]
    expected = _reading(TEXT_EVENT)
    assert [_reading(r) for r in readings] == [expected, (*expected[:5], False, "+V-A")], stdout


def test_web_client_text_events_from_its_own_server(tmp_path: Path) -> None:
    """text() resolves with the ok; the text event that follows (with the line's id) reaches the
    "text" handlers, also when it comes before the ok; a line answered after its ok with an
    error reaches the "error" handlers; a refused line (rate_limited) rejects. The server here
    is this test's own, answering as the reference says."""
    from websockets.sync.server import ServerConnection, serve

    node = node_command()
    requests: list[dict[str, Any]] = []

    def error(code: str, rid: Any) -> dict[str, Any]:
        return {"event": "error", "code": code, "message": "...", "op": "text", "id": rid}

    def handler(ws: ServerConnection) -> None:
        for message in ws:
            request = json.loads(message)
            requests.append(request)
            ok = {"event": "ok", "op": "text", "id": request["id"]}
            reading = {**TEXT_EVENT, "id": request["id"]}
            n = len(requests)
            if n == 1:
                ws.send(json.dumps(ok))
                ws.send(json.dumps(reading))
            elif n == 2:  # the reading first: still a "text" event, and the ok still resolves text()
                ws.send(json.dumps({**reading, "changed": False, "sync": None, "scene": "+V-A"}))
                ws.send(json.dumps(ok))
            elif n == 3:  # read after its ok, and found unreadable
                ws.send(json.dumps(ok))
                ws.send(json.dumps(error("unsupported", request["id"])))
            else:
                ws.send(json.dumps(error("rate_limited", request["id"])))

    lines = [*TEXT_LINES, "unreadable", "one too many"]
    with serve(handler, "127.0.0.1", 0) as ws_server:
        threading.Thread(target=ws_server.serve_forever, daemon=True).start()
        url = f"ws://127.0.0.1:{ws_server.socket.getsockname()[1]}"
        proc = run([*node, str(WEB / "tests" / "text.mjs"), url, "10", *lines], timeout_s=30)
        ws_server.shutdown()
    assert [(r["op"], r["text"]) for r in requests] == [("text", line) for line in lines], requests
    out = [(line.split(" ", 1)[0], json.loads(line.split(" ", 1)[1])) for line in proc.stdout.splitlines()]
    ids = [r["id"] for r in requests]
    assert [e["id"] for kind, e in out if kind == "OK"] == ids[:3], proc.stdout
    texts = [e for kind, e in out if kind == "TEXT"]
    unchanged = {**TEXT_EVENT, "id": ids[1], "changed": False, "sync": None, "scene": "+V-A"}
    assert texts == [{**TEXT_EVENT, "id": ids[0]}, unchanged], proc.stdout
    errors = [e for kind, e in out if kind == "ERROR"]
    assert [(e["code"], e["op"], e["id"]) for e in errors] == [("unsupported", "text", ids[2])], proc.stdout
    rejected = [e for kind, e in out if kind == "REJECTED"]
    assert [(e["code"], e["id"]) for e in rejected] == [("rate_limited", ids[3])], proc.stdout


def test_text_against_server(smoke_exe: Path, server: Server, oscdump: Callable[[], OscDump]) -> None:
    """Story text against ``affetto serve``, from the C# client (OSC), affetto.js (WebSocket) and
    liblo (``oscsend`` to a subscribed oscdump: the event's types are the reference's ``fffffis``).
    With the text emotion model each line gets a reading in range (WebSocket: with the line's id,
    after its ok); without it, each is refused with ``unsupported``."""
    has_model = TEXT_MODEL_MANIFEST.is_file()
    # C#: one line (a second could land in the same 30 s scene; the reading is what is checked)
    port, wait = str(server.osc_port), str(EVENT_WAIT_S)
    cs = run(["mono", str(smoke_exe), "text", "127.0.0.1", port, wait, TEXT_LINES[1]])
    cs_lines = [(line.split(" ", 1)[0], json.loads(line.split(" ", 1)[1])) for line in cs.stdout.splitlines()]
    cs_texts = [e for kind, e in cs_lines if kind == "TEXT"]
    cs_errors = [e for kind, e in cs_lines if kind == "ERROR"]
    # JavaScript
    node = node_command()
    js = run([*node, str(WEB / "tests" / "text.mjs"), server.ws_url, wait, *TEXT_LINES])
    js_lines = [(line.split(" ", 1)[0], json.loads(line.split(" ", 1)[1])) for line in js.stdout.splitlines()]
    # liblo
    require_tools("oscsend", "oscdump")
    dump = oscdump()
    run(["oscsend", "127.0.0.1", port, "/affetto/subscribe", "i", str(dump.port)])
    dump.confirm(server.osc_port)
    run(["oscsend", "127.0.0.1", port, "/affetto/text", "s", TEXT_LINES[0]])
    replies = ("/affetto/text", "/affetto/error")
    dump.until(lambda seen: any(m[0] in replies for m in seen), EVENT_WAIT_S)
    answers = [(addr, types, args) for addr, types, args in dump.seen if addr in replies]

    if not has_model:
        assert not cs_texts and [e["code"] for e in cs_errors] == ["unsupported"], cs.stdout
        rejected = [e for kind, e in js_lines if kind == "REJECTED"]
        assert [e["code"] for e in rejected] == ["unsupported"] * len(TEXT_LINES), js.stdout
        assert not [e for kind, e in js_lines if kind in ("OK", "TEXT")], js.stdout
        assert answers and answers[0][0] == "/affetto/error" and answers[0][2][0] == "unsupported", dump.seen
        return
    assert not cs_errors and len(cs_texts) == 1, cs.stdout
    assert_reading(cs_texts[0], "C# client", osc=True)
    oks = [e for kind, e in js_lines if kind == "OK"]
    texts = [e for kind, e in js_lines if kind == "TEXT"]
    assert [e["op"] for e in oks] == ["text"] * len(TEXT_LINES), js.stdout
    assert [e["id"] for e in texts] == [e["id"] for e in oks], js.stdout
    for event in texts:
        assert event["event"] == "text" and isinstance(event["session"], str) and event["session"], event
        assert_reading(event, "web client", osc=False)
    assert texts[0]["time_s"] <= texts[1]["time_s"], js.stdout
    assert answers and answers[0][:2] == ("/affetto/text", "fffffis"), dump.seen
    *numbers, changed, scene = answers[0][2]
    keys = ("valence", "arousal", "confidence", "scene_valence", "scene_arousal")
    reading = {**dict(zip(keys, map(float, numbers), strict=True)), "changed": changed == "1", "scene": scene}
    assert_reading(reading, "oscdump", osc=True)
    assert changed in ("0", "1"), answers


#: Unreal's Text() hands the OSC plugin (which writes one byte per TCHAR) a line's UTF-8 bytes, one
#: per TCHAR: OscUtf8 in AffettoComponent.cpp, compiled here on its own with an FString of std::u16string.
UTF8_HARNESS = r"""
#include <cstdint>
#include <cstdio>
#include <string>
using TCHAR = char16_t;
using int32 = std::int32_t;
using uint32 = std::uint32_t;
struct FString
{
	std::u16string S;
	int32 Len() const { return static_cast<int32>(S.size()); }
	const TCHAR& operator[](int32 Index) const { return S[Index]; }
	FString& AppendChar(TCHAR C) { S.push_back(C); return *this; }
};
namespace
{
@FUNCTION@
}
int main()  // each input line: UTF-16 code units in hex; each output line: the TCHARs sent, in hex
{
	unsigned Unit;
	FString Line;
	while (std::scanf("%x", &Unit) == 1)
	{
		Line.S.push_back(static_cast<TCHAR>(Unit));
		if (std::getchar() == '\n')
		{
			for (TCHAR C : OscUtf8(Line).S) std::printf("%x ", static_cast<unsigned>(C));
			std::printf("\n");
			Line.S.clear();
		}
	}
}
"""


def test_cpp_text_is_sent_as_utf8(tmp_path: Path) -> None:
    """Unreal's OSC plugin writes a string one byte per TCHAR (the low byte): Text() therefore
    hands it the line's UTF-8 bytes, one per TCHAR, each < 256, which on the wire are the line in
    UTF-8 (accents, curly quotes, a surrogate pair; a lone surrogate becomes U+FFFD)."""
    require_tools("g++")
    source = (UNREAL / "AffettoComponent.cpp").read_text()
    body = source[source.index("bool UAffettoComponent::Text(") :]
    body = body[: body.index("\n}\n")]
    assert "= OscUtf8(Line);" in body and "AddString(Message, Bytes);" in body, body  # what Text() sends
    start = source.index("\tFString OscUtf8(const FString& Line)")
    end = source.index("\n\t}\n", start) + 4
    harness = tmp_path / "utf8.cpp"
    harness.write_text(UTF8_HARNESS.replace("@FUNCTION@", source[start:end]))
    exe = tmp_path / "utf8"
    run(["g++", "-std=c++20", "-Wall", "-Werror", "-o", str(exe), str(harness)])
    cases = [*TEXT_LINES, "plain", "\u00e9\u2019\u20ac", "\U0001f43a", "\ud83d", "a\udc3ab", "\udc3a\ud83d"]
    utf16 = [case.encode("utf-16-be", "surrogatepass") for case in cases]
    stdin = "".join(raw.hex(" ", 2) + "\n" for raw in utf16)  # "0061 00e9 ...": one code unit each
    proc = subprocess.run([str(exe)], input=stdin, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    sent = [bytes(int(x, 16) for x in line.split()) for line in proc.stdout.splitlines()]
    # the line's UTF-8, a lone surrogate as U+FFFD
    assert sent == [raw.decode("utf-16-be", "replace").encode("utf-8") for raw in utf16]
