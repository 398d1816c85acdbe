"""``affetto serve``: OSC over UDP and WebSocket (JSON) in front of a :class:`SessionHost`.

The transports only move bytes: packets and messages go through the pure protocol core
(:mod:`engine.server.protocol`) and the answers come back out. Everything runs on one asyncio loop
that never blocks: the host answers requests at once and does the work on its own threads;
events from the host's clock thread are handed to the loop with ``call_soon_threadsafe``.

Security: the server binds to loopback by default. Bound beyond it, WebSocket clients must give
the shared-secret token (``?token=`` or a first ``hello``) and OSC packets are accepted only
from allowlisted addresses (others are counted and ignored, never answered). Every client has
a message budget (token bucket); every argument is validated and answered with an error event.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qs, urlparse

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from engine.server.protocol import (
    MAX_JSON_BYTES,
    ProtocolError,
    Request,
    event_json,
    event_osc,
    parse_json,
    parse_osc_packet,
)
from engine.sessions.host import SessionHost
from engine.sessions.session import Session

UDP_RECEIVE_BUFFER_BYTES: Final = 4 << 20
EVENT_QUEUE_LIMIT: Final = 512  # events waiting for a slow WebSocket client (oldest dropped)


@dataclass
class ServerSettings:
    """Where and how the server listens.

    Attributes:
        bind: the address to bind (loopback by default).
        osc_port, ws_port: UDP and TCP ports (0: pick a free one).
        token: the WebSocket shared secret; required when ``bind`` is not loopback.
        osc_allow: client addresses (or networks) OSC accepts beyond loopback.
        rate_per_s, burst: each client's message budget.
    """

    bind: str = "127.0.0.1"
    osc_port: int = 9000
    ws_port: int = 9001
    token: str | None = None
    osc_allow: tuple[str, ...] = ()
    rate_per_s: float = 2000.0
    burst: float = 4000.0

    def __post_init__(self) -> None:
        if not self.loopback:
            if not self.token:
                raise ValueError(f"binding to {self.bind} (beyond loopback) needs a WebSocket token")
            if not self.osc_allow:
                raise ValueError(f"binding to {self.bind} (beyond loopback) needs an OSC allowlist")
        self._networks = [ipaddress.ip_network(a, strict=False) for a in self.osc_allow]
        self._verdicts: dict[str, bool] = {}

    @property
    def loopback(self) -> bool:
        return self.bind in ("localhost",) or ipaddress.ip_address(self.bind).is_loopback

    def osc_allowed(self, host: str) -> bool:
        known = self._verdicts.get(host)
        if known is not None:
            return known
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        verdict = addr.is_loopback or any(addr in net for net in self._networks)
        if len(self._verdicts) < 65536:
            self._verdicts[host] = verdict
        return verdict


@dataclass
class _Bucket:
    rate: float
    burst: float
    tokens: float = 0.0
    stamp: float = field(default_factory=time.monotonic)
    warned: float = 0.0

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class _OscClient:
    """One OSC client: a host (every packet from its address), or an address of its own (one
    that subscribed from its own socket); see bindings/PROTOCOL.md, Sessions."""

    session: Session | None  # None once its session has closed (the record remembers the rest)
    bucket: _Bucket
    reply_to: tuple[str, int] | None = None  # its subscribed port (None: reply to each sender)
    subscriber: Any = None
    name: str | None = None  # the session it chose (``/affetto/session``), rejoined after expiry
    last_seen: float = field(default_factory=time.monotonic)


#: how long the record of an OSC client whose session closed is kept (its named session and
#: subscription come back with its next packet), and how many such records at most
OSC_CLIENT_MEMORY_S: Final = 3600.0
MAX_OSC_CLIENTS: Final = 4096
OSC_SWEEP_S: Final = 5.0


class AffettoServer:
    """The OSC and WebSocket transports of one :class:`SessionHost`.

    Args:
        host: the session host (started and stopped with the server).
        settings: where to listen, security and limits.
    """

    def __init__(self, host: SessionHost, settings: ServerSettings | None = None) -> None:
        self.host = host
        self.settings = settings or ServerSettings()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._ws: Server | None = None
        #: OSC clients by host, or by address for those that subscribed from their own socket
        self._osc_clients: dict[str | tuple[str, int], _OscClient] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self.ignored_packets = 0
        self.osc_packets_received = 0
        self.osc_ports: tuple[int, int] = (0, 0)

    # ------------------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Bind both transports and start the host."""
        self.loop = asyncio.get_running_loop()
        s = self.settings
        self.host.start()
        sock = socket.socket(socket.AF_INET6 if ":" in s.bind else socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER_BYTES)  # absorb bursts
        sock.bind((s.bind, s.osc_port))
        self._udp, _ = await self.loop.create_datagram_endpoint(lambda: _OscProtocol(self), sock=sock)
        self._ws = await serve(self._ws_handler, s.bind, s.ws_port, max_size=MAX_JSON_BYTES, max_queue=64)
        self._sweeper = self.loop.call_later(OSC_SWEEP_S, self._sweep_osc_clients)

    @property
    def osc_port(self) -> int:
        assert self._udp is not None
        return int(self._udp.get_extra_info("sockname")[1])

    @property
    def ws_port(self) -> int:
        assert self._ws is not None
        return int(next(iter(self._ws.sockets)).getsockname()[1])

    async def close(self) -> None:
        """Stop listening, close every session (releasing its notes), stop the host."""
        if self._ws is not None:
            self._ws.close()
            await self._ws.wait_closed()
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        await asyncio.get_running_loop().run_in_executor(None, self.host.stop)

    # ----------------------------------------------------------------------------------- OSC
    def osc_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        """Handle one UDP packet (on the loop; never raises).

        The packet's client is its address if that subscribed from its own socket, else its host
        (so one-message-per-process senders such as ``oscsend`` drive one session)."""
        self.osc_packets_received += 1
        if not self.settings.osc_allowed(addr[0]):
            self.ignored_packets += 1
            return
        client = self._osc_clients.get(addr) or self._osc_clients.get(addr[0])
        if client is None:
            client = self._osc_client(addr[0], addr)
            if client is None:
                return
        client.last_seen = time.monotonic()
        if not client.bucket.take():
            now = time.monotonic()
            if now - client.bucket.warned > 1.0:  # at most one warning a second: no amplification
                client.bucket.warned = now
                self._osc_send(
                    client.reply_to or addr, ProtocolError("rate_limited", "too many messages").event()
                )
            return
        requests, errors = parse_osc_packet(data)
        for bad in errors:
            self._osc_send(client.reply_to or addr, bad.event())
        for request in requests:
            try:
                self._osc_request(client, addr, request)
            except ProtocolError as err:
                self._osc_send(client.reply_to or addr, err.event())

    def _osc_client(self, key: str | tuple[str, int], addr: tuple[str, int]) -> _OscClient | None:
        """A new client record for ``key`` (a host, or an address), with a fresh session; None if
        there is no free slot (the sender is told ``busy``)."""
        try:
            session = self.host.open(None)
        except ProtocolError as err:
            self._osc_send(addr, err.event())
            return None
        s = self.settings
        client = _OscClient(session, _Bucket(s.rate_per_s, s.burst, s.burst))
        self._osc_clients[key] = client
        return client

    def _osc_session(self, client: _OscClient) -> Session:
        """The client's session; a fresh one (or its named one again) if it has expired, with its
        subscription moved along.

        Raises:
            ProtocolError: busy (no free slot for it).
        """
        session = client.session
        if session is not None and not session.closed:
            return session
        fresh = self.host.open(client.name)
        if client.subscriber is not None:
            self.host.subscribe(fresh, client.subscriber)
        client.session = fresh
        return fresh

    def _osc_request(self, client: _OscClient, addr: tuple[str, int], request: Request) -> None:
        host = self.host
        if request.op == "subscribe":
            port = request.args.get("port", addr[1])
            if port == addr[1] and self._osc_clients.get(addr) is not client:
                own = self._osc_client(addr, addr)  # an address of its own from now on
                if own is None:
                    return
                client = own
            session = self._osc_session(client)
            client.reply_to = (addr[0], port)
            if client.subscriber is not None:
                host.unsubscribe(session, client.subscriber)
            target = client.reply_to
            client.subscriber = lambda event: self._threadsafe_osc(target, event)
            host.subscribe(session, client.subscriber)
            return
        session = self._osc_session(client)
        reply_to = client.reply_to or addr
        if request.op == "unsubscribe":
            if client.subscriber is not None:
                host.unsubscribe(session, client.subscriber)
                client.subscriber = None
            client.reply_to = None
        elif request.op == "session":
            name = request.args["name"]
            if name != session.name:
                self._move(client, session, host.open(name))
            client.name = name
        elif request.op == "hello":
            session.last_active = time.monotonic()
            self._osc_send(reply_to, host.hello(session))
        else:
            reply = host.submit(session, request)
            if reply["event"] == "status":
                self._osc_send(reply_to, reply)

    def _move(self, client: _OscClient, old: Session, session: Session) -> None:
        if client.subscriber is not None:
            self.host.unsubscribe(old, client.subscriber)
            self.host.subscribe(session, client.subscriber)
        client.session = session
        self.host.leave(old)

    def _sweep_osc_clients(self) -> None:
        """Let go of closed sessions' clients (on the loop, every ``OSC_SWEEP_S``): a record whose
        session closed keeps only its name and subscription, for ``OSC_CLIENT_MEMORY_S``, and
        at most ``MAX_OSC_CLIENTS`` records are kept (the longest quiet forgotten first)."""
        now = time.monotonic()
        for key, client in list(self._osc_clients.items()):
            if client.session is not None and client.session.closed:
                client.session = None
            if client.session is None and now - client.last_seen > OSC_CLIENT_MEMORY_S:
                del self._osc_clients[key]
        excess = len(self._osc_clients) - MAX_OSC_CLIENTS
        if excess > 0:
            idle = sorted(
                (c.last_seen, i, k) for i, (k, c) in enumerate(self._osc_clients.items()) if c.session is None
            )
            for _, _, key in idle[:excess]:
                del self._osc_clients[key]
        if self.loop is not None and self._udp is not None:
            self._sweeper = self.loop.call_later(OSC_SWEEP_S, self._sweep_osc_clients)

    def _osc_send(self, target: tuple[str, int], event: dict[str, Any]) -> None:
        data = event_osc(event)
        if data is not None and self._udp is not None:
            self._udp.sendto(data, target)

    def _threadsafe_osc(self, target: tuple[str, int], event: dict[str, Any]) -> None:
        loop = self.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._osc_send, target, event)

    # ----------------------------------------------------------------------------- WebSocket
    async def _ws_handler(self, ws: ServerConnection) -> None:
        settings = self.settings
        authorized = settings.token is None
        if not authorized and ws.request is not None:
            given = parse_qs(urlparse(ws.request.path).query).get("token", [""])[0]
            authorized = hmac.compare_digest(given.encode(), settings.token.encode())  # type: ignore[union-attr]
        try:
            session = self.host.open(None)
        except ProtocolError as err:
            await ws.send(event_json(err.event()))
            return
        outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=EVENT_QUEUE_LIMIT)
        loop = asyncio.get_running_loop()

        def enqueue(event: dict[str, Any]) -> None:
            if outbox.full():
                outbox.get_nowait()  # a slow client loses the oldest event, never blocks the clock
            outbox.put_nowait(event)

        def subscriber(event: dict[str, Any]) -> None:
            loop.call_soon_threadsafe(enqueue, event)

        async def pump() -> None:
            while True:
                event = await outbox.get()
                await ws.send(event_json(event))

        sender = asyncio.create_task(pump())
        session.connections += 1
        bucket = _Bucket(settings.rate_per_s, settings.burst, settings.burst)
        subscribed = False
        try:
            async for message in ws:
                if not bucket.take():
                    enqueue(ProtocolError("rate_limited", "too many messages").event())
                    continue
                try:
                    if isinstance(message, bytes):
                        raise ProtocolError("bad_message", "send JSON as text messages, not binary")
                    request = parse_json(message)
                    if not authorized:
                        token = request.args.get("token") if request.op == "hello" else None
                        if token is None or not hmac.compare_digest(token.encode(), settings.token.encode()):  # type: ignore[union-attr]
                            raise ProtocolError(
                                "unauthorized", 'send the token first: {"op": "hello", "token": ...}'
                            )
                        authorized = True
                    reply, session, subscribed = self._ws_request(session, request, subscriber, subscribed)
                    enqueue(reply)
                except ProtocolError as err:
                    enqueue(err.event())
        except ConnectionClosed:
            pass  # the client went away: its session is closed below
        finally:
            sender.cancel()
            session.connections -= 1
            self.host.unsubscribe(session, subscriber)
            self.host.leave(session)

    def _ws_request(
        self, session: Session, request: Request, subscriber: Any, subscribed: bool
    ) -> tuple[dict[str, Any], Session, bool]:
        host = self.host
        rid = request.request_id
        ok: dict[str, Any] = {"event": "ok", "op": request.op, **({"id": rid} if rid is not None else {})}
        if request.op == "hello":
            name = request.args.get("session")
            if name is not None and name != session.name:
                session = self._ws_move(session, host.open(name), subscriber, subscribed)
            return {**ok, **host.hello(session, rid)}, session, subscribed
        if request.op == "session":
            return (
                ok,
                self._ws_move(session, host.open(request.args["name"]), subscriber, subscribed),
                subscribed,
            )
        if request.op == "subscribe":
            host.subscribe(session, subscriber)
            return ok, session, True
        if request.op == "unsubscribe":
            host.unsubscribe(session, subscriber)
            return ok, session, False
        return host.submit(session, request), session, subscribed

    def _ws_move(self, old: Session, new: Session, subscriber: Any, subscribed: bool) -> Session:
        old.connections -= 1
        new.connections += 1
        if subscribed:
            self.host.unsubscribe(old, subscriber)
            self.host.subscribe(new, subscriber)
        self.host.leave(old)
        return new


class _OscProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: AffettoServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.server.osc_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:  # e.g. ICMP port unreachable from a subscriber
        self.server.host.report(f"osc: {exc}")


def parse_allowlist(items: Iterable[str]) -> tuple[str, ...]:
    """Validate allowlist entries (addresses or CIDR networks).

    Raises:
        ValueError: an entry is neither.
    """
    out = []
    for item in items:
        ipaddress.ip_network(item, strict=False)
        out.append(item)
    return tuple(out)
