"""The Python clients and the simulated-game example against a running server."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from affetto_client import NOTES, SCENES, AffettoClient, AffettoError, Note, OscClient, TextEvent
from text_contract import TEXT_EVENT, TEXT_OSC, TEXT_OSC_UNCHANGED

from engine.model.composer import Composer
from engine.server.protocol import event_osc
from engine.server.transports import AffettoServer, ServerSettings
from engine.sessions.host import SessionHost
from engine.sessions.profile_file import load_profile
from engine.story.text_model import MANIFEST_NAME, default_text_model_dir

ROOT = Path(__file__).resolve().parents[2]


@pytest_asyncio.fixture
async def server() -> AsyncIterator[AffettoServer]:
    """An in-process server with the action profile (one composing thread)."""
    composer = Composer(max_streams=4, intra_op_threads=1)
    profile = load_profile(ROOT / "examples" / "profiles" / "action.yaml")
    srv = AffettoServer(SessionHost(composer, profile), ServerSettings(osc_port=0, ws_port=0))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.close()


async def until(
    done: Callable[[], bool], timeout_s: float = 10.0, poll: Callable[[], None] | None = None
) -> None:
    """Wait (on the loop) until ``done()``, calling ``poll`` meanwhile; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "timed out"
        if poll is not None:
            poll()
        await asyncio.sleep(0.02)


@pytest.mark.asyncio
async def test_clients_and_the_simulated_game() -> None:
    composer = Composer(max_streams=4, intra_op_threads=1)
    profile = load_profile(ROOT / "examples" / "profiles" / "action.yaml")
    server = AffettoServer(SessionHost(composer, profile), ServerSettings(osc_port=0, ws_port=0))
    await server.start()
    try:
        url = f"ws://127.0.0.1:{server.ws_port}"
        async with AffettoClient(url) as music:
            with pytest.raises(AffettoError, match="bad_argument: unknown state"):
                await music.state("boss-fight-9000")
            assert (await music.param("health", 20))["event"] == "ok"
        osc = OscClient("127.0.0.1", server.osc_port)
        osc.subscribe()
        osc.emotion(0.5, 0.5)
        deadline = time.monotonic() + 5
        got: list[tuple[str, list]] = []
        while time.monotonic() < deadline and not any(a == "/affetto/beat" for a, _ in got):
            await asyncio.sleep(0.05)
            got += osc.poll()
        osc.close()
        assert any(a == "/affetto/beat" and len(args) == 4 for a, args in got)
        spec = importlib.util.spec_from_file_location(
            "simulated_game", ROOT / "examples" / "simulated_game.py"
        )
        assert spec is not None and spec.loader is not None
        game = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(game)
        counts = await game.play(url, seconds=6.0)
        assert (
            counts["error"] == 0
            and counts["downbeat"] >= 1
            and counts["beat"] >= 6
            and counts["transition"] >= 1
        )
    finally:
        await server.close()


def assert_typed_notes(notes: list[Note], layers: set[str]) -> None:
    assert len(notes) >= 4 and any(n.is_on for n in notes) and any(not n.is_on for n in notes), notes
    for note in notes:
        assert isinstance(note, Note) and 0 <= note.channel <= 15 and 0 <= note.pitch <= 127, note
        assert 0 <= note.velocity <= 127 and note.layer in layers | {"stinger"}, note
        assert note.time_s > -0.05, note  # the first notes may be humanized a few ms ahead of 0
    assert [n.time_s for n in notes] == sorted(n.time_s for n in notes)


@pytest.mark.asyncio
async def test_python_clients_receive_typed_notes(server: AffettoServer) -> None:
    """With the "notes" output, AffettoClient.on_note gets Note objects (channel, pitch, velocity,
    layer, time_s) and OscClient's /affetto/note messages read as Notes with Note.from_osc."""
    layers = {layer.name for layer in server.host.profile.config.layers}
    notes: list[Note] = []
    async with AffettoClient(f"ws://127.0.0.1:{server.ws_port}") as music:
        music.on_note(notes.append)
        await music.subscribe()
        await music.output(NOTES)
        await until(lambda: len(notes) >= 6 and any(not n.is_on for n in notes))
    assert_typed_notes(notes, layers)
    assert {n.session for n in notes} == {notes[0].session} and notes[0].session

    osc = OscClient("127.0.0.1", server.osc_port)
    try:
        osc.subscribe()
        osc.output(NOTES)
        got: list[tuple[str, list[Any]]] = []
        osc_notes: list[Note] = []

        def poll() -> None:
            for address, args in osc.poll():
                got.append((address, args))
                if address == "/affetto/note":
                    osc_notes.append(Note.from_osc(args))

        await until(lambda: len(osc_notes) >= 6 and any(not n.is_on for n in osc_notes), poll=poll)
    finally:
        osc.close()
    assert not [args for address, args in got if address == "/affetto/error"], got
    assert_typed_notes(osc_notes, layers)


@pytest.mark.asyncio
async def test_python_client_volume_pause_stop_hello(server: AffettoServer) -> None:
    """hello's profile and server fields; volume (a "volume" event, the status level; an unknown
    layer is refused); pause and resume (status paused); stop with a fade-out (not playing once
    it has faded, a stinger refused with not_playing); start. The OSC client's hello and status
    answers carry the reference's arguments."""
    volumes: list[dict[str, Any]] = []
    async with AffettoClient(f"ws://127.0.0.1:{server.ws_port}") as music:
        hello = await music.hello()
        assert {"params", "available_outputs", "layer_names"} <= hello.keys(), hello
        assert "health" in hello["params"] and NOTES in hello["available_outputs"], hello
        assert hello["param_ranges"]["health"] == [0.0, 100.0] and hello["sync"] in ("beat", "bar", "phrase")
        layer = hello["layer_names"][0]
        listed = await music.sessions()
        assert hello["session"] in listed["names"] and listed["more"] == 0, listed
        music.on("volume", volumes.append)
        await music.subscribe()
        await music.volume(0.5, fade_s=0.2)
        await music.volume(0.25, layer=layer)
        with pytest.raises(AffettoError, match="bad_argument"):
            await music.volume(1.0, layer="no-such-layer")
        await until(lambda: len(volumes) >= 2)
        assert volumes[0]["layer"] is None and volumes[0]["level"] == 0.5 and volumes[0]["fade_s"] == 0.2
        assert volumes[1]["layer"] == layer and volumes[1]["level"] == 0.25, volumes
        status = await music.status()
        assert status["level"] == 0.5 and status["layer_levels"][layer] == 0.25, status
        await music.pause()
        assert (await music.status())["paused"] is True
        await music.resume()
        assert (await music.status())["paused"] is False
        await music.stop(fade_s=0.2)
        await asyncio.sleep(0.6)
        status = await music.status()
        assert status["playing"] is False and status["level"] == 0.5, status
        with pytest.raises(AffettoError, match="not_playing"):
            await music.stinger("hit")
        await music.start()
        assert (await music.status())["playing"] is True

    osc = OscClient("127.0.0.1", server.osc_port)
    try:
        osc.subscribe()
        osc.hello()
        osc.status()
        osc.sessions()
        got: dict[str, list[Any]] = {}

        def poll() -> None:
            got.update(osc.poll())

        await until(
            lambda: {"/affetto/hello", "/affetto/status", "/affetto/sessions"} <= got.keys(), poll=poll
        )
    finally:
        osc.close()
    session, version, states, stingers, params, outputs, layer_names = got["/affetto/hello"]
    assert version == 1 and "combat" in states.split(",") and "hit" in stingers.split(","), got
    assert "health" in params.split(",") and NOTES in outputs.split(",") and layer in layer_names.split(",")
    assert len(got["/affetto/status"]) == 17 and got["/affetto/status"][0] == session, got
    names, profiles = got["/affetto/sessions"]
    assert session in names.split(",") and len(profiles.split(",")) == len(names.split(",")), got


# ------------------------------------------------------------------------------------- text
def test_text_event_from_fixed_osc_bytes() -> None:
    """The reference's OSC form of the text event (fixed bytes) reads as a TextEvent, and is what
    the server encodes for the event."""
    from pythonosc.osc_message import OscMessage

    message = OscMessage(TEXT_OSC)
    assert message.address == "/affetto/text"
    reading = TextEvent.from_osc(list(message.params))
    assert reading == TextEvent(-0.40625, 0.625, 0.71875, -0.8125, 0.6875, "-V+A", True)
    assert reading.sync is None and reading.time_s is None and reading.session == "" and reading.id is None
    unchanged = TextEvent.from_osc(list(OscMessage(TEXT_OSC_UNCHANGED).params))
    assert unchanged.changed is False and unchanged.scene == "+V-A", unchanged
    assert event_osc(TEXT_EVENT) == TEXT_OSC


def test_text_event_from_websocket_event() -> None:
    reading = TextEvent.from_event(TEXT_EVENT)
    assert reading == TextEvent(-0.40625, 0.625, 0.71875, -0.8125, 0.6875, "-V+A", True, "bar", 12.5, "s", 3)
    quiet = TextEvent.from_event({**TEXT_EVENT, "changed": False, "sync": None, "scene": "+V-A"})
    assert quiet.changed is False and quiet.sync is None and quiet.scene in SCENES


@pytest.mark.asyncio
async def test_python_client_text_against_its_own_server() -> None:
    """text() resolves with the ok; the text event that follows with the request's id reaches
    on_text as a TextEvent (and on("text")); an error answering the line after its ok reaches
    the "error" handlers. The server is this test's own, sending what the reference says."""
    from websockets.asyncio.server import ServerConnection, serve

    sent: list[dict[str, Any]] = []

    async def handler(ws: ServerConnection) -> None:
        async for message in ws:
            request = json.loads(message)
            sent.append(request)
            await ws.send(json.dumps({"event": "ok", "op": request["op"], "id": request["id"]}))
            if request["op"] == "text" and request["text"] == "The wolf howled.":
                await asyncio.sleep(0.01)
                await ws.send(json.dumps({**TEXT_EVENT, "id": request["id"]}))
            elif request["op"] == "text":
                error = {"event": "error", "code": "unsupported", "message": "the line could not be read",
                         "op": "text", "id": request["id"]}  # fmt: skip
                await ws.send(json.dumps(error))

    readings: list[TextEvent] = []
    raw: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    async with serve(handler, "127.0.0.1", 0) as ws_server:
        port = next(iter(ws_server.sockets)).getsockname()[1]
        async with AffettoClient(f"ws://127.0.0.1:{port}") as music:
            music.on_text(readings.append)
            music.on("text", raw.append)
            music.on("error", errors.append)
            ok = await music.text("The wolf howled.")
            assert ok["event"] == "ok" and ok["op"] == "text", ok
            assert (await music.text("unreadable"))["event"] == "ok"
            await until(lambda: len(readings) == 1 and len(errors) == 1)
    assert sent[-2:] == [{"op": "text", "text": "The wolf howled.", "id": ok["id"]},
                         {"op": "text", "text": "unreadable", "id": ok["id"] + 1}]  # fmt: skip
    assert readings == [TextEvent.from_event({**TEXT_EVENT, "id": ok["id"]})] and readings[0].id == ok["id"]
    assert raw[0]["event"] == "text" and readings[0].scene == "-V+A", raw
    assert [(e["code"], e["op"], e["id"]) for e in errors] == [("unsupported", "text", ok["id"] + 1)], errors


def has_text_model() -> bool:
    return (default_text_model_dir() / MANIFEST_NAME).is_file()


def assert_text_event(reading: TextEvent, *, osc: bool) -> None:
    """A reading within the reference's ranges."""
    assert -1 <= reading.valence <= 1 and -1 <= reading.arousal <= 1 and 0 < reading.confidence <= 1, reading
    assert -1 <= reading.scene_valence <= 1 and -1 <= reading.scene_arousal <= 1, reading
    assert reading.scene in SCENES and isinstance(reading.changed, bool), reading
    if not osc:
        assert reading.time_s is not None and reading.time_s >= 0 and reading.session, reading
        assert (reading.sync is None) == (not reading.changed), reading


@pytest.mark.asyncio
async def test_python_clients_text(server: AffettoServer) -> None:
    """The text op against the real server, over WebSocket and OSC: with the text emotion model
    (models/text_emotion) the ok and then a text event (for the request's id) over WebSocket, and
    an /affetto/text over OSC; without it, the error unsupported on both."""
    lines = ["The wolf howled at the door.", "She laughed and ran into the sunny meadow."]
    readings: list[TextEvent] = []
    async with AffettoClient(f"ws://127.0.0.1:{server.ws_port}", timeout_s=30) as music:
        music.on_text(readings.append)
        if not has_text_model():
            with pytest.raises(AffettoError, match="unsupported"):
                await music.text(lines[0])
        else:
            oks = [await music.text(line) for line in lines]
            assert all(ok["event"] == "ok" and ok["op"] == "text" for ok in oks), oks
            await until(lambda: len(readings) == len(lines), timeout_s=60)
            assert [r.id for r in readings] == [ok["id"] for ok in oks], readings
            for reading in readings:
                assert_text_event(reading, osc=False)
            first, second = (r.time_s for r in readings)  # seconds since the session's first line
            assert first is not None and second is not None, readings
            assert first == pytest.approx(0.0, abs=0.05) and second >= first, readings

    osc = OscClient("127.0.0.1", server.osc_port)
    got: list[tuple[str, list[Any]]] = []
    try:
        osc.subscribe()
        osc.text(lines[0])

        def poll() -> None:
            got.extend((a, args) for a, args in osc.poll() if a in ("/affetto/text", "/affetto/error"))

        await until(lambda: bool(got), timeout_s=60, poll=poll)
    finally:
        osc.close()
    address, args = got[0]
    if not has_text_model():
        assert address == "/affetto/error" and args[0] == "unsupported", got
    else:
        assert address == "/affetto/text" and len(args) == 7, got
        assert_text_event(TextEvent.from_osc(args), osc=True)
