"""The Python clients and the simulated-game example against a running server."""

from __future__ import annotations

import asyncio
import importlib.util
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from affetto_client import NOTES, AffettoClient, AffettoError, Note, OscClient

from engine.model.composer import Composer
from engine.server.transports import AffettoServer, ServerSettings
from engine.sessions.host import SessionHost
from engine.sessions.profile_file import load_profile

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
        layer = hello["layer_names"][0]
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
        got: dict[str, list[Any]] = {}

        def poll() -> None:
            got.update(osc.poll())

        await until(lambda: {"/affetto/hello", "/affetto/status"} <= got.keys(), poll=poll)
    finally:
        osc.close()
    session, version, states, stingers, params, outputs, layer_names = got["/affetto/hello"]
    assert version == 1 and "combat" in states.split(",") and "hit" in stingers.split(","), got
    assert "health" in params.split(",") and NOTES in outputs.split(",") and layer in layer_names.split(",")
    assert len(got["/affetto/status"]) == 17 and got["/affetto/status"][0] == session, got
