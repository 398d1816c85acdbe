"""``affetto serve``'s limits over real sockets: the OSC budget counts messages (not packets), a
WebSocket opens no session before it is authorized and is closed if it never is, a named session
can be joined and a client's own slot switched when every slot is taken, a subscriber moving
to another session hears its notes end, IPv4 senders reach a dual-stack server, and an expired
OSC client's session is let go."""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import time
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from engine.model.composer import Composer
from engine.server import transports
from engine.server.osc_codec import decode_packet, encode_message
from engine.server.transports import AffettoServer, ServerSettings, plain_host
from engine.sessions.host import SessionHost


@pytest.fixture(scope="module")
def composer() -> Iterator[Composer]:
    yield Composer(max_streams=3, intra_op_threads=1)


async def request(ws: Any, message: dict[str, Any]) -> dict[str, Any]:
    """Send ``message`` (with an id) and return its reply, skipping events."""
    await ws.send(json.dumps({**message, "id": 7}))
    while True:
        reply = json.loads(await asyncio.wait_for(ws.recv(), 5.0))
        if reply.get("id") == 7:  # errors too carry the request's id (busy from hello, ...)
            return dict(reply)


def udp_socket(timeout_s: float) -> socket.socket:
    """A client's UDP socket on a port of its own on loopback."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(timeout_s)
    return sock


def bundle(n: int) -> bytes:
    builder = OscBundleBuilder(IMMEDIATELY)
    for i in range(n):
        msg = OscMessageBuilder(address="/affetto/emotion")
        msg.add_arg(float(i % 10) / 10)
        msg.add_arg(0.5)
        builder.add_content(msg.build())
    return bytes(builder.build().dgram)


@pytest.mark.asyncio
async def test_the_osc_budget_counts_messages_not_packets(composer: Composer) -> None:
    srv = AffettoServer(
        SessionHost(composer), ServerSettings(osc_port=0, ws_port=0, rate_per_s=1.0, burst=100)
    )
    await srv.start()
    sock = udp_socket(5.0)
    try:
        for _ in range(2):  # 128 messages against a budget of 100: the second bundle is refused
            sock.sendto(bundle(64), ("127.0.0.1", srv.osc_port))
        data = await asyncio.to_thread(sock.recv, 65536)
        (reply,) = decode_packet(data)
        assert reply.address == "/affetto/error" and reply.args[0] == "rate_limited"
        applied = srv.host.requests_applied
        assert applied <= 64, applied
    finally:
        sock.close()
        await srv.close()


@pytest.mark.asyncio
async def test_no_session_before_the_token_and_no_connection_kept_without_it(
    composer: Composer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transports, "AUTH_TIMEOUT_S", 0.5)
    monkeypatch.setattr(transports, "MAX_UNAUTHORIZED", 2)
    host = SessionHost(composer)
    srv = AffettoServer(host, ServerSettings(osc_port=0, ws_port=0, token="s3cret"))
    await srv.start()
    url = f"ws://127.0.0.1:{srv.ws_port}"
    try:
        async with connect(url) as a, connect(url) as b:
            assert (await request(a, {"op": "status"}))["code"] == "unauthorized"
            assert (await request(b, {"op": "subscribe"}))["code"] == "unauthorized"
            assert host.sessions == {}  # nobody holds a slot before it is authorized
            async with connect(url) as c:  # a third one waiting to authorize: refused at once
                with pytest.raises(ConnectionClosed) as refused:
                    await asyncio.wait_for(c.recv(), 5.0)
                assert refused.value.rcvd is not None and refused.value.rcvd.code == 1013
            for ws in (a, b):  # and the two waiting are closed when their time is up
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        await asyncio.wait_for(ws.recv(), 5.0)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        async with connect(url) as ok:
            hello = await request(ok, {"op": "hello", "token": "s3cret"})
            assert hello["event"] == "hello" and list(host.sessions) == [hello["session"]]
            await asyncio.sleep(0.8)  # authorized: no deadline any more
            assert (await request(ok, {"op": "status"}))["event"] == "status"
    finally:
        await srv.close()


@pytest.mark.asyncio
async def test_every_slot_taken_a_named_session_can_be_joined_and_a_lone_client_switch(
    composer: Composer,
) -> None:
    host = SessionHost(composer)
    srv = AffettoServer(host, ServerSettings(osc_port=0, ws_port=0))
    await srv.start()
    url = f"ws://127.0.0.1:{srv.ws_port}"
    try:
        async with connect(url) as a, connect(url) as b, connect(url) as c, connect(url) as d:
            for ws, name in ((a, "lobby"), (b, "b"), (c, "c")):  # every slot
                assert (await request(ws, {"op": "hello", "session": name}))["session"] == name
            assert (await request(d, {"op": "status"}))["code"] == "busy"  # no slot for a new one
            joined = await request(d, {"op": "hello", "session": "lobby"})  # joining takes none
            assert joined["event"] == "hello" and joined["session"] == "lobby"
            assert (await request(c, {"op": "session", "name": "arena"}))["event"] == "ok"  # its own slot
            assert sorted(n for n, s in host.sessions.items() if not s.closing) == ["arena", "b", "lobby"]
            assert (await request(a, {"op": "session", "name": "x"}))["code"] == "busy"  # d is still in lobby
        deadline = time.monotonic() + 5.0
        while host.sessions:
            assert time.monotonic() < deadline, host.sessions
            await asyncio.sleep(0.02)
        async with connect(url) as e:  # the slots came back as the connections closed
            assert (await request(e, {"op": "hello", "session": "again"}))["event"] == "hello"
    finally:
        await srv.close()


@pytest.mark.asyncio
async def test_a_subscriber_moving_to_another_session_hears_its_notes_end(composer: Composer) -> None:
    host = SessionHost(composer)
    srv = AffettoServer(host, ServerSettings(osc_port=0, ws_port=0))
    await srv.start()
    try:
        async with connect(f"ws://127.0.0.1:{srv.ws_port}") as ws:
            await request(ws, {"op": "hello", "session": "one"})
            for op in ({"op": "state", "name": "combat"}, {"op": "output", "outputs": ["notes"]}):
                await request(ws, op)
            await request(ws, {"op": "subscribe"})
            for target in ("two", "one", "two"):
                notes: list[dict[str, Any]] = []
                while sum(1 for n in notes if n["velocity"]) < 20:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 10.0))
                    if msg["event"] == "note":
                        notes.append(msg)
                left = notes[0]["session"]
                await ws.send(json.dumps({"op": "session", "name": target}))
                deadline = time.monotonic() + 1.0
                while time.monotonic() < deadline:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 10.0))
                    if msg["event"] == "note" and msg["session"] == left:
                        notes.append(msg)
                sounding: set[tuple[int, int]] = set()
                for n in notes:
                    if n["session"] == left:
                        (sounding.add if n["velocity"] else sounding.discard)((n["channel"], n["pitch"]))
                assert sounding == set(), f"left hanging after leaving {left}: {sounding}"
                await request(ws, {"op": "output", "outputs": ["notes"]})  # the one it joined too
        assert not host.errors
    finally:
        await srv.close()


def test_ipv4_mapped_senders_are_themselves() -> None:
    assert plain_host("::ffff:192.0.2.7") == "192.0.2.7"
    assert plain_host("::ffff:127.0.0.1") == "127.0.0.1"
    assert plain_host("::1") == "::1" and plain_host("192.0.2.7") == "192.0.2.7"
    assert plain_host("::ffff:zz") == "::ffff:zz"  # not an address: left as it is (refused later)


@pytest.mark.asyncio
async def test_a_dual_stack_server_answers_ipv4_osc_clients(composer: Composer) -> None:
    if not socket.has_ipv6:
        pytest.skip("this machine has no IPv6")
    srv = AffettoServer(
        SessionHost(composer),
        ServerSettings(bind="::", osc_port=0, ws_port=0, token="t", osc_allow=("192.0.2.0/24",)),
    )
    try:
        await srv.start()
    except OSError as exc:
        pytest.skip(f"cannot bind a dual-stack socket here: {exc}")
    sock = udp_socket(5.0)
    try:
        sock.sendto(encode_message("/affetto/status"), ("127.0.0.1", srv.osc_port))
        (reply,) = decode_packet(await asyncio.to_thread(sock.recv, 65536))
        assert reply.address == "/affetto/status"
        assert srv.ignored_packets == 0
    finally:
        sock.close()
        await srv.close()


@pytest.mark.asyncio
async def test_an_expired_osc_clients_session_is_let_go(
    composer: Composer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transports, "OSC_SWEEP_S", 0.2)
    host = SessionHost(composer, idle_timeout_s=1.0)
    srv = AffettoServer(host, ServerSettings(osc_port=0, ws_port=0))
    await srv.start()
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    try:
        for sock in socks:  # three clients of their own
            sock.bind(("127.0.0.1", 0))
            sock.sendto(encode_message("/affetto/subscribe"), ("127.0.0.1", srv.osc_port))
        deadline = time.monotonic() + 5.0
        while len(host.sessions) < 3:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        refs = [weakref.ref(s) for s in host.sessions.values()]
        deadline = time.monotonic() + 10.0
        while any(r() is not None for r in refs):
            assert time.monotonic() < deadline, "an expired session is still held"
            await asyncio.sleep(0.2)
            gc.collect()
        assert len(srv._osc_clients) == 3  # their records (name, subscription) are kept, small
    finally:
        for sock in socks:
            sock.close()
        await srv.close()


@pytest.mark.asyncio
async def test_no_events_to_a_port_that_has_not_proven_it_receives(composer: Composer) -> None:
    """A subscription names any port (a spoofed source could name a victim's): that port gets the
    challenge and nothing more until its nonce comes back; replies to an unproven address stay
    within twice the bytes that came from it, plus 512 a second."""
    srv = AffettoServer(SessionHost(composer), ServerSettings(osc_port=0, ws_port=0))
    await srv.start()
    victim = udp_socket(0.1)
    sender = udp_socket(0.1)
    server = ("127.0.0.1", srv.osc_port)

    def drain(sock: socket.socket, seconds: float) -> list[bytes]:
        got, deadline = [], time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                got.append(sock.recv(65536))
            except TimeoutError:
                continue
        return got

    try:
        ops = [("/affetto/subscribe", [victim.getsockname()[1]]), ("/affetto/output", ["notes"])]
        for address, args in [*ops, ("/affetto/state", ["combat"])]:
            sender.sendto(encode_message(address, args), server)
        got = await asyncio.to_thread(drain, victim, 2.0)  # the session plays: beats, bars, notes
        assert [m.address for data in got for m in decode_packet(data)] == ["/affetto/challenge"]
        status = encode_message("/affetto/status")
        sent = received = 0
        start = time.monotonic()
        for _ in range(200):  # an unproven address asking for status (about 20x its size) fast
            sender.sendto(status, server)
            sent += len(status)
        received = sum(len(d) for d in await asyncio.to_thread(drain, sender, 1.0))
        allowed = float(transports.UNPROVEN_FACTOR * sent + transports.UNPROVEN_BURST_BYTES)
        allowed += transports.UNPROVEN_BYTES_PER_S * (time.monotonic() - start)
        assert 0 < received <= allowed, (received, allowed)
        (nonce,) = next(m.args for data in got for m in decode_packet(data))
        victim.sendto(encode_message("/affetto/confirm", [nonce]), server)  # the port proves it
        proven = await asyncio.to_thread(drain, victim, 1.0)
        assert any(m.address == "/affetto/beat" for data in proven for m in decode_packet(data))
    finally:
        victim.close()
        sender.close()
        await srv.close()
