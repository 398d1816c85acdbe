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
import functools
import hmac
import ipaddress
import math
import secrets
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
from engine.server.ui_page import PageServer
from engine.sessions.host import SessionHost
from engine.sessions.session import Session

UDP_RECEIVE_BUFFER_BYTES: Final = 4 << 20
EVENT_QUEUE_LIMIT: Final = 512  # events waiting for a slow WebSocket client (oldest dropped)
#: WebSocket connections served at once, from one address, and not yet authorized (a token
#: server); a connection without the token this long after it opened is closed
MAX_WS_CONNECTIONS: Final = 1024
MAX_WS_PER_HOST: Final = 256
MAX_UNAUTHORIZED: Final = 64
AUTH_TIMEOUT_S: Final = 10.0


@dataclass
class ServerSettings:
    """Where and how the server listens.

    Attributes:
        bind: the address to bind (loopback by default).
        osc_port, ws_port: UDP and TCP ports (0: pick a free one).
        token: the WebSocket shared secret; required when ``bind`` is not loopback.
        osc_allow: client addresses (or networks) OSC accepts beyond loopback.
        rate_per_s, burst: each client's message budget.
        ui_port: where the browser control surface's page is served (``affetto serve --ui``; on
            ``bind``, with the same token rule); None: no page.
    """

    bind: str = "127.0.0.1"
    osc_port: int = 9000
    ws_port: int = 9001
    token: str | None = None
    osc_allow: tuple[str, ...] = ()
    rate_per_s: float = 2000.0
    burst: float = 4000.0
    ui_port: int | None = None

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
    """A token bucket: ``rate`` tokens a second up to ``burst`` (a client's messages, or the bytes
    it may be sent), plus what :meth:`credit` adds; it starts full."""

    rate: float
    burst: float
    tokens: float = math.inf  # starts at ``burst``
    stamp: float = field(default_factory=time.monotonic)
    warned: float = 0.0  # when the client was last told it is over its budget

    def __post_init__(self) -> None:
        self.tokens = min(self.tokens, self.burst)

    def take(self, amount: int = 1) -> bool:
        """Spend ``amount`` tokens; False (nothing spent) when the bucket does not hold them all
        (``amount`` 0: whether it holds one)."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= max(1, amount):
            self.tokens -= amount
            return True
        return False

    def credit(self, amount: int) -> None:
        self.tokens = min(self.burst, self.tokens + amount)


#: bytes a second (and burst) an OSC client's proven port may be sent: events of a busy session
#: with the notes output come to ~10 KB/s
SUBSCRIBER_BYTES_PER_S: Final = 64 * 1024
SUBSCRIBER_BURST_BYTES: Final = 256 * 1024
#: what an address that has not proven it receives may be sent (replies, errors, the challenge):
#: twice the bytes that came from it (``UNPROVEN_FACTOR``), plus this many a second; records of
#: no client (a ``busy`` refusal) share one such budget
UNPROVEN_FACTOR: Final = 2
UNPROVEN_BYTES_PER_S: Final = 512
UNPROVEN_BURST_BYTES: Final = 4096
#: addresses of one host with records of their own (two game instances on a machine, ...)
MAX_OSC_ADDRESSES_PER_HOST: Final = 16


@dataclass
class _OscClient:
    """One OSC client: a host (every packet from its address), or an address of its own (one
    that subscribed from its own socket); see bindings/PROTOCOL.md, Sessions."""

    session: Session | None  # None once its session has closed (the record remembers the rest)
    bucket: _Bucket  # its message budget
    reply_to: tuple[str, int] | None = None  # its subscribed port, proven (None: reply to each sender)
    subscriber: Any = None
    name: str | None = None  # the session it chose (``/affetto/session``), rejoined after expiry
    last_seen: float = field(default_factory=time.monotonic)
    #: a subscription waiting for its proof: the port to send to and the nonce sent there
    pending: tuple[tuple[str, int], str] | None = None
    #: bytes it may be sent: to its proven port, and to where its packets say they come from
    #: (anyone can put any address there: twice what came from it, plus a little: see UNPROVEN_FACTOR)
    sent: _Bucket = field(default_factory=lambda: _Bucket(SUBSCRIBER_BYTES_PER_S, SUBSCRIBER_BURST_BYTES))
    replies: _Bucket = field(default_factory=lambda: _Bucket(UNPROVEN_BYTES_PER_S, UNPROVEN_BURST_BYTES))
    own: int = 0  # a host's record: how many of its addresses have records of their own


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
        self._stray = _Bucket(UNPROVEN_BYTES_PER_S, UNPROVEN_BURST_BYTES)  # refusals of no client's
        self._ws_links: set[_WsLink] = set()  # the WebSocket connections served now
        self._ws_per_host: dict[str, int] = {}  # how many of them from each address
        self.ignored_packets = 0
        self.osc_packets_received = 0
        self.osc_ports: tuple[int, int] = (0, 0)
        self.page: PageServer | None = None  # the control surface's page (``settings.ui_port``)

    # ------------------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Bind both transports and start the host."""
        self.loop = asyncio.get_running_loop()
        s = self.settings
        self.host.start()
        sock = socket.socket(socket.AF_INET6 if ":" in s.bind else socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER_BYTES)  # absorb bursts
        if sock.family == socket.AF_INET6 and ipaddress.ip_address(s.bind).is_unspecified:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # "::": IPv4 senders too
        sock.bind((s.bind, s.osc_port))
        self._udp, _ = await self.loop.create_datagram_endpoint(lambda: _OscProtocol(self), sock=sock)
        self._ws = await serve(self._ws_handler, s.bind, s.ws_port, max_size=MAX_JSON_BYTES, max_queue=64)
        self._sweeper = self.loop.call_later(OSC_SWEEP_S, self._sweep_osc_clients)
        if s.ui_port is not None:
            self.page = PageServer(s.bind, s.ui_port, self.ws_port, s.token, token_required=not s.loopback)
            await self.page.start()

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
        if self.page is not None:
            await self.page.close()
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
        host = plain_host(addr[0])
        if not self.settings.osc_allowed(host):
            self.ignored_packets += 1
            return
        client = self._osc_clients.get(addr) or self._osc_clients.get(host)
        if client is None:
            client = self._osc_client(host, addr)
            if client is None:
                return
        client.last_seen = time.monotonic()
        client.replies.credit(UNPROVEN_FACTOR * len(data))
        if not client.bucket.take(0):  # spent: not even parsed
            self._osc_rate_limited(client, addr)
            return
        requests, errors = parse_osc_packet(data)
        if not client.bucket.take(len(requests) + len(errors)):  # the budget counts messages
            self._osc_rate_limited(client, addr)
            return
        for bad in errors:
            self._osc_reply(client, addr, bad.event())
        for request in requests:
            try:
                self._osc_request(client, addr, request)
            except ProtocolError as err:
                self._osc_reply(client, addr, err.event())

    def _osc_rate_limited(self, client: _OscClient, addr: tuple[str, int]) -> None:
        """Tell the client it is over its budget, at most once a second (no amplification)."""
        now = time.monotonic()
        if now - client.bucket.warned > 1.0:
            client.bucket.warned = now
            self._osc_reply(client, addr, ProtocolError("rate_limited", "too many messages").event())

    def _osc_reply(self, client: _OscClient, addr: tuple[str, int], event: dict[str, Any]) -> None:
        """Answer the client: at its proven port, within that budget, else where the packet says
        it came from, within the unproven budget (see ``UNPROVEN_FACTOR``)."""
        target = client.reply_to or addr
        self._osc_send(target, event, client.sent if target == client.reply_to else client.replies)

    def _osc_client(self, key: str | tuple[str, int], addr: tuple[str, int]) -> _OscClient | None:
        """A new client record for ``key`` (a host, or an address), with a fresh session; None if
        there is no free slot or the host has ``MAX_OSC_ADDRESSES_PER_HOST`` addresses of its own
        (the sender is told, within the shared unproven budget)."""
        host_record = self._osc_clients.get(plain_host(addr[0])) if isinstance(key, tuple) else None
        if host_record is not None and host_record.own >= MAX_OSC_ADDRESSES_PER_HOST:
            refusal = ProtocolError("busy", f"at most {MAX_OSC_ADDRESSES_PER_HOST} OSC clients of one host")
            self._osc_send(addr, refusal.event(), self._stray)
            return None
        try:
            session = self.host.open(None)
        except ProtocolError as err:
            self._osc_send(addr, err.event(), self._stray)
            return None
        s = self.settings
        client = _OscClient(session, _Bucket(s.rate_per_s, s.burst))
        self._osc_clients[key] = client
        if host_record is not None:
            host_record.own += 1
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
            target = (addr[0], port)
            self._osc_session(client)
            if client.reply_to == target and client.subscriber is not None:
                return  # subscribed and proven there already
            nonce = secrets.token_hex(8)
            client.pending = (target, nonce)  # events start once the port proves it receives
            self._osc_send(target, {"event": "challenge", "nonce": nonce}, client.replies)
            return
        if request.op == "confirm":
            self._osc_confirm(client, addr, request.args["nonce"])
            return
        if request.op == "sessions":
            self._osc_reply(client, addr, host.listing())
            return
        session = self._osc_session(client)
        if request.op == "unsubscribe":
            if client.subscriber is not None:
                host.unsubscribe(session, client.subscriber)
                client.subscriber = None
            client.reply_to = client.pending = None
        elif request.op == "session":
            name = request.args["name"]
            if name != session.name:
                self._move(client, session, host.switch(session, name))
            client.name = name
        elif request.op == "hello":
            session.last_active = time.monotonic()
            self._osc_reply(client, addr, host.hello(session))
        else:
            reply = host.submit(session, request, functools.partial(self._osc_reply_later, client, addr))
            if reply["event"] == "status":
                self._osc_reply(client, addr, reply)

    def _osc_confirm(self, client: _OscClient, addr: tuple[str, int], nonce: str) -> None:
        """The subscribed port proved it receives (it got the challenge's nonce): its events
        start.

        Raises:
            ProtocolError: bad_argument (no subscription waits for this nonce from this host).
        """
        pending = client.pending
        if pending is None or pending[0][0] != addr[0] or not hmac.compare_digest(pending[1], nonce):
            raise ProtocolError(
                "bad_argument", "no subscription from this address waits for that nonce", "confirm"
            )
        target = pending[0]
        client.pending = None
        session = self._osc_session(client)
        if client.subscriber is not None:
            self.host.unsubscribe(session, client.subscriber)
        client.reply_to = target
        client.subscriber = lambda event: self._threadsafe_osc(client, target, event)
        self.host.subscribe(session, client.subscriber)

    def _move(self, client: _OscClient, old: Session, session: Session) -> None:
        """The client has switched from ``old`` to ``session``: its subscription goes along."""
        if client.subscriber is not None:
            self.host.unsubscribe(old, client.subscriber)
            self.host.subscribe(session, client.subscriber)
        client.session = session

    def _sweep_osc_clients(self) -> None:
        """Let go of closed sessions' clients (on the loop, every ``OSC_SWEEP_S``): a record whose
        session closed keeps only its name and subscription, for ``OSC_CLIENT_MEMORY_S``, and
        at most ``MAX_OSC_CLIENTS`` records are kept (the longest quiet forgotten first)."""
        now = time.monotonic()
        for key, client in list(self._osc_clients.items()):
            if client.session is not None and client.session.closed:
                client.session = None
            if client.session is None and now - client.last_seen > OSC_CLIENT_MEMORY_S:
                self._forget_osc_client(key)
        excess = len(self._osc_clients) - MAX_OSC_CLIENTS
        if excess > 0:
            idle = sorted(
                (c.last_seen, i, k) for i, (k, c) in enumerate(self._osc_clients.items()) if c.session is None
            )
            for _, _, key in idle[:excess]:
                self._forget_osc_client(key)
        if self.loop is not None and self._udp is not None:
            self._sweeper = self.loop.call_later(OSC_SWEEP_S, self._sweep_osc_clients)

    def _forget_osc_client(self, key: str | tuple[str, int]) -> None:
        del self._osc_clients[key]
        if isinstance(key, tuple):  # an address of its own: its host has one fewer
            host_record = self._osc_clients.get(plain_host(key[0]))
            if host_record is not None:
                host_record.own = max(0, host_record.own - 1)

    def _osc_send(self, target: tuple[str, int], event: dict[str, Any], budget: _Bucket) -> None:
        """Send ``event`` to ``target`` if ``budget`` holds its bytes (else it is dropped)."""
        data = event_osc(event)
        if data is not None and self._udp is not None and budget.take(len(data)):
            self._udp.sendto(data, target)

    def _osc_reply_later(self, client: _OscClient, addr: tuple[str, int], event: dict[str, Any]) -> None:
        """An answer that comes later (a ``text`` event, from the story thread), sent on the loop
        as :meth:`_osc_reply` sends."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._osc_reply, client, addr, event)

    def _threadsafe_osc(self, client: _OscClient, target: tuple[str, int], event: dict[str, Any]) -> None:
        """A subscriber's event (clock thread), sent on the loop within its port's budget."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._osc_send, target, event, client.sent)

    # ----------------------------------------------------------------------------- WebSocket
    async def _ws_handler(self, ws: ServerConnection) -> None:
        """One WebSocket connection: its requests in order, its events through a bounded outbox.

        Its session is opened by its first request that needs one (``hello`` with a session name
        joins that one), never before the client is authorized; a client that has not given the
        token within ``AUTH_TIMEOUT_S`` is closed. At most ``MAX_WS_CONNECTIONS`` connections
        (``MAX_WS_PER_HOST`` from one address, ``MAX_UNAUTHORIZED`` not yet authorized) are
        served; more are closed at once (1013, try again later)."""
        settings = self.settings
        authorized = settings.token is None
        if not authorized and ws.request is not None:
            given = parse_qs(urlparse(ws.request.path).query).get("token", [""])[0]
            authorized = hmac.compare_digest(given.encode(), settings.token.encode())  # type: ignore[union-attr]
        peer = str(ws.remote_address[0]) if ws.remote_address else ""
        refusal = self._ws_admit(peer, authorized)
        if refusal is not None:
            await ws.close(1013, refusal)
            return
        link = _WsLink(self, ws, authorized)
        self._ws_links.add(link)
        self._ws_per_host[peer] = self._ws_per_host.get(peer, 0) + 1
        try:
            await link.serve()
        finally:
            self._ws_links.discard(link)
            left = self._ws_per_host[peer] - 1
            if left:
                self._ws_per_host[peer] = left
            else:
                del self._ws_per_host[peer]

    def _ws_admit(self, peer: str, authorized: bool) -> str | None:
        """Why a new connection from ``peer`` is refused (None: it is served)."""
        if len(self._ws_links) >= MAX_WS_CONNECTIONS:
            return f"the server serves at most {MAX_WS_CONNECTIONS} connections"
        if self._ws_per_host.get(peer, 0) >= MAX_WS_PER_HOST:
            return f"at most {MAX_WS_PER_HOST} connections from one address"
        if not authorized and sum(not link.authorized for link in self._ws_links) >= MAX_UNAUTHORIZED:
            return f"{MAX_UNAUTHORIZED} connections are waiting to authorize"
        return None


class _WsLink:
    """One WebSocket connection's requests and events (see :meth:`AffettoServer._ws_handler`)."""

    def __init__(self, server: AffettoServer, ws: ServerConnection, authorized: bool) -> None:
        self.server, self.host, self.ws = server, server.host, ws
        self.authorized = authorized
        self.session: Session | None = None
        self.subscribed = False
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=EVENT_QUEUE_LIMIT)
        self.loop = asyncio.get_running_loop()
        s = server.settings
        self.bucket = _Bucket(s.rate_per_s, s.burst)

    def enqueue(self, event: dict[str, Any]) -> None:
        if self.outbox.full():
            self.outbox.get_nowait()  # a slow client loses the oldest event, never blocks the clock
        self.outbox.put_nowait(event)

    def subscriber(self, event: dict[str, Any]) -> None:
        """The session's events (clock thread): handed to the loop."""
        self.loop.call_soon_threadsafe(self.enqueue, event)

    async def pump(self) -> None:
        while True:
            event = await self.outbox.get()
            try:
                text = event_json(event)
            except (TypeError, ValueError) as exc:  # an event no client could read: said, not sent
                self.host.report(f"websocket: event {event.get('event')!r} cannot be sent: {exc}")
                continue
            await self.ws.send(text)

    async def serve(self) -> None:
        sender = asyncio.create_task(self.pump())
        deadline = None if self.authorized else self.loop.call_later(AUTH_TIMEOUT_S, self._auth_expired)
        try:
            async for message in self.ws:
                if not self.bucket.take():
                    self.enqueue(ProtocolError("rate_limited", "too many messages").event())
                    continue
                try:
                    self.enqueue(self.request(message))
                except ProtocolError as err:
                    self.enqueue(err.event())
                if self.authorized and deadline is not None:
                    deadline.cancel()
                    deadline = None
        except ConnectionClosed:
            pass  # the client went away: its session is left below
        finally:
            if deadline is not None:
                deadline.cancel()
            sender.cancel()
            if self.session is not None:
                self.session.connections -= 1
                self.host.unsubscribe(self.session, self.subscriber)
                self.host.leave(self.session)

    def _auth_expired(self) -> None:
        if not self.authorized:
            self.loop.create_task(self.ws.close(1008, f"no token within {AUTH_TIMEOUT_S:g} s"))

    def request(self, message: str | bytes) -> dict[str, Any]:
        """Answer one message (the reply event).

        Raises:
            ProtocolError: the message cannot be applied.
        """
        if isinstance(message, bytes):
            raise ProtocolError("bad_message", "send JSON as text messages, not binary")
        request = parse_json(message)
        try:
            if not self.authorized:
                token = request.args.get("token") if request.op == "hello" else None
                expected = (self.server.settings.token or "").encode()
                if token is None or not expected or not hmac.compare_digest(token.encode(), expected):
                    raise ProtocolError("unauthorized", 'send the token first: {"op": "hello", "token": ...}')
                self.authorized = True
            return self._answer(request)
        except ProtocolError as err:  # raised without the request's op and id (host.open): add them
            err.op = err.op or request.op
            err.request_id = request.request_id if err.request_id is None else err.request_id
            raise

    def _answer(self, request: Request) -> dict[str, Any]:
        host = self.host
        rid = request.request_id
        ok: dict[str, Any] = {"event": "ok", "op": request.op, **({"id": rid} if rid is not None else {})}
        if request.op == "hello":
            name = request.args.get("session")
            session = self.join(name) if name is not None else self.own()
            return {**ok, **host.hello(session, rid)}
        if request.op == "session":
            self.join(request.args["name"])
            return ok
        if request.op == "sessions":  # needs no session of its own (a control surface choosing one)
            return host.listing(rid)
        session = self.own()
        if request.op == "subscribe":
            host.subscribe(session, self.subscriber)
            self.subscribed = True
            return ok
        if request.op == "unsubscribe":
            host.unsubscribe(session, self.subscriber)
            self.subscribed = False
            return ok
        return host.submit(session, request, self.subscriber)

    def own(self) -> Session:
        """The connection's session, a fresh one opened now if it has none.

        Raises:
            ProtocolError: busy.
        """
        if self.session is None:
            self.session = self.host.open(None)
            self.session.connections += 1
        return self.session

    def join(self, name: str) -> Session:
        """Move the connection to the session called ``name`` (see :meth:`SessionHost.switch`).

        Raises:
            ProtocolError: busy.
        """
        old = self.session
        if old is None:
            new = self.host.open(name)
        elif name == old.name:
            return old
        else:
            new = self.host.switch(old, name)
            old.connections -= 1
            if self.subscribed:
                self.host.unsubscribe(old, self.subscriber)
        new.connections += 1
        if self.subscribed:
            self.host.subscribe(new, self.subscriber)
        self.session = new
        return new


class _OscProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: AffettoServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.server.osc_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:  # e.g. ICMP port unreachable from a subscriber
        self.server.host.report(f"osc: {exc}")


def plain_host(host: str) -> str:
    """An IPv4 sender as itself: on a dual-stack socket (``--bind ::``) it arrives as
    ``::ffff:a.b.c.d``; other addresses are returned as they are."""
    if host.startswith("::ffff:"):
        try:
            mapped = ipaddress.IPv6Address(host).ipv4_mapped
        except ValueError:
            return host
        if mapped is not None:
            return str(mapped)
    return host


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
