"""The server's ``text`` op over real sockets, with the shipped text emotion model: each line is
answered with a ``text`` event; the session's emotion moves only when the arc changes; a flood of
lines is refused per session while another session's lines are still read."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import connect

from engine.model.composer import Composer
from engine.server.osc_codec import decode_packet, encode_message
from engine.server.transports import AffettoServer, ServerSettings
from engine.sessions.host import SessionHost
from engine.story.live_text import MAX_SESSION_LINES_WAITING
from engine.story.text_model import default_text_model_dir

pytestmark = pytest.mark.skipif(
    not (default_text_model_dir() / "manifest.json").is_file(), reason="no shipped text emotion model"
)

CALM = [
    "We rest at the inn by the warm fire.",
    "The innkeeper smiles and brings us bread.",
    "It is a quiet, peaceful evening and everyone laughs.",
    "We sleep soundly until morning.",
]


@pytest.fixture(scope="module")
def composer() -> Iterator[Composer]:
    yield Composer(max_streams=4, intra_op_threads=1)


async def _events(ws: Any, wanted: str, n: int, timeout_s: float = 20.0) -> list[dict[str, Any]]:
    return (await _collect(ws, {wanted: n}, timeout_s))[wanted]


async def _collect(
    ws: Any, wanted: dict[str, int], timeout_s: float = 20.0
) -> dict[str, list[dict[str, Any]]]:
    """Events of the kinds in ``wanted`` until each has its count (others skipped; a kind wanted 0
    times is kept if it comes), within ``timeout_s``."""
    got: dict[str, list[dict[str, Any]]] = {kind: [] for kind in wanted}
    deadline = time.monotonic() + timeout_s
    while any(len(got[k]) < n for k, n in wanted.items() if n):
        event = json.loads(await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic())))
        if event.get("event") in got:
            got[event["event"]].append(event)
    return got


@pytest.mark.asyncio
async def test_each_line_is_answered_and_the_music_moves_only_when_the_scene_does(composer: Composer) -> None:
    srv = AffettoServer(SessionHost(composer), ServerSettings(osc_port=0, ws_port=0))
    await srv.start()
    try:
        async with connect(f"ws://127.0.0.1:{srv.ws_port}") as ws:
            await ws.send(json.dumps({"op": "hello", "session": "tavern"}))
            await _events(ws, "hello", 1)
            await ws.send(json.dumps({"op": "subscribe"}))
            # a game master's pace: each line after the last one's answer (at most 8 may wait)
            answers, transitions = [], []
            for i, line in enumerate(CALM * 3):
                await ws.send(json.dumps({"op": "text", "text": line, "id": i}))
                got = await _collect(ws, {"text": 1, "transition": 0})
                answers += got["text"]
                transitions += got["transition"]
            if not transitions:
                transitions = (await _collect(ws, {"transition": 1}))["transition"]
            assert [a["id"] for a in answers] == list(range(12))  # in order, each with its id
            for a in answers:
                assert -1 <= a["valence"] <= 1 and -1 <= a["arousal"] <= 1 and 0 < a["confidence"] <= 1
                assert a["scene"] in ("+V+A", "-V+A", "-V-A", "+V-A")
                assert a["session"] == "tavern" and a["time_s"] >= 0
            # the first line sets the scene; a calm stretch of a minute does not change it again
            assert answers[0]["changed"] is True and answers[0]["sync"] == "bar"
            assert not any(a["changed"] for a in answers[1:])
            first = answers[0]
            # the change lands at the next bar line: one emotion transition, then the session's
            # emotion is the scene's (read back over the protocol)
            (transition,) = transitions
            assert transition["op"] == "emotion" and transition["beat"] % 4 == 0
            await ws.send(json.dumps({"op": "status", "id": "s"}))
            (status,) = await _events(ws, "status", 1)
            assert status["valence"] == pytest.approx(first["scene_valence"], abs=0.01)
            assert status["arousal"] == pytest.approx(first["scene_arousal"], abs=0.01)
    finally:
        await srv.close()


@pytest.mark.asyncio
async def test_a_flood_of_lines_is_refused_for_its_session_only(composer: Composer) -> None:
    srv = AffettoServer(SessionHost(composer), ServerSettings(osc_port=0, ws_port=0))
    await srv.start()
    try:
        async with (
            connect(f"ws://127.0.0.1:{srv.ws_port}") as flood,
            connect(f"ws://127.0.0.1:{srv.ws_port}") as calm,
        ):
            await flood.send(json.dumps({"op": "hello", "session": "flood"}))
            await calm.send(json.dumps({"op": "hello", "session": "calm"}))
            await _events(flood, "hello", 1)
            await _events(calm, "hello", 1)
            # the model loads with the first line (hundreds of ms): the burst waits behind it
            for i in range(40):
                await flood.send(json.dumps({"op": "text", "text": f"line {i} of the flood", "id": i}))
            await calm.send(json.dumps({"op": "text", "text": CALM[0], "id": "c"}))
            replies: dict[Any, dict[str, Any]] = {}
            while len(replies) < 40 or not any(r.get("event") == "text" for r in replies.values()):
                event = json.loads(await asyncio.wait_for(flood.recv(), 20))  # no beats: not subscribed
                if event.get("event") in ("text", "error"):
                    replies[event["id"]] = event
            refused = [r for r in replies.values() if r["event"] == "error"]
            read = [r for r in replies.values() if r["event"] == "text"]
            assert refused and all(r["code"] == "rate_limited" and r["op"] == "text" for r in refused)
            assert MAX_SESSION_LINES_WAITING <= len(read) < 40
            (answer,) = await _events(calm, "text", 1)
            assert answer["id"] == "c"
    finally:
        await srv.close()


@pytest.mark.asyncio
async def test_an_osc_line_is_answered_where_it_came_from(composer: Composer) -> None:
    srv = AffettoServer(SessionHost(composer), ServerSettings(osc_port=0, ws_port=0))
    await srv.start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(20.0)
    try:
        sock.sendto(encode_message("/affetto/text", ["The dragon attacks! Run for your lives!"]),
                    ("127.0.0.1", srv.osc_port))  # fmt: skip
        while True:
            (msg,) = decode_packet(await asyncio.to_thread(sock.recv, 65536))
            if msg.address == "/affetto/text":
                break
        args: list[Any] = list(msg.args)
        v, a, confidence, scene_v, scene_a, changed, scene = args
        assert -1 <= v <= 1 and -1 <= a <= 1 and 0 < confidence <= 1
        assert changed == 1 and scene in ("+V+A", "-V+A", "-V-A", "+V-A")
        assert (scene_v > 0) == scene.startswith("+V") and (scene_a > 0) == scene.endswith("+A")
    finally:
        sock.close()
        await srv.close()


@pytest.mark.asyncio
async def test_a_server_without_a_text_model_refuses_text_as_unsupported(
    composer: Composer, tmp_path: Any
) -> None:
    host = SessionHost(composer, text_model_dir=str(tmp_path / "no-model"))
    server = AffettoServer(host, ServerSettings(osc_port=0, ws_port=0, bind="127.0.0.1"))
    await server.start()
    try:
        async with connect(f"ws://127.0.0.1:{server.ws_port}") as ws:
            await ws.send(json.dumps({"op": "text", "text": "The wolf howled.", "id": 3}))
            error = (await _events(ws, "error", 1))[0]
            assert (error["code"], error["op"], error["id"]) == ("unsupported", "text", 3)
            await ws.send(json.dumps({"op": "status"}))
            assert (await _events(ws, "status", 1))[0]["playing"] is True  # the session goes on
    finally:
        await server.close()
