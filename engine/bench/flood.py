"""``affetto bench flood``: what one client flooding the server at its message budget costs the
other sessions.

One OSC client (a process of its own, one socket) sends bundles of ``FLOOD_BUNDLE``
``/affetto/emotion`` and ``/affetto/state`` messages at exactly the server's per-client budget
(:attr:`engine.server.transports.ServerSettings.rate_per_s`, 2000 messages/s by default; the
budget counts messages, not packets). Meanwhile ``sessions`` other sessions, each a WebSocket
client of its own, and one OSC client subscribed from its own socket (all in one client process:
replies and events come back to them) play ``combat`` and change their emotion with sync
``immediate`` every ~``CHANGE_EVERY_S``. The server (an :class:`AffettoServer` and its
:class:`SessionHost`, as ``affetto serve`` runs them, on this process's asyncio loop) shares no
GIL with any client. Measured:

* **Change latency**: from sending the emotion request until its ``transition`` event (which
  the host publishes when the change lands: at once with sync immediate) arrives at the client,
  p50/p99/max. Target: the sync point + ``CHANGE_TARGET_MS`` (immediate: 20 ms).
* **Lateness of the other sessions' events**: how late the server's clock thread sent the beats
  (and notes) of the measured sessions, from ``host.sessions[name].timing`` (for the run each
  gets a :class:`engine.realtime.clock.Lateness` that keeps its samples), p99/max over those
  sessions only (target p99 <= ``BEAT_TARGET_MS``). A lone probe process
  (:func:`engine.bench.server._stall_probe`) measures the machine's own stalls; late events
  while it was not stalled (:func:`engine.bench.server._outside`) are the server's own.
* **New session start**: a fresh WebSocket session opened during the flood (connect, then
  ``subscribe``, which opens it), timed until its first ``beat`` event arrives (a session starts
  playing ``PREROLL_S`` after it opens).

``flood=False`` runs the same without the flooder: the baseline to compare with.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import random
import socket
import struct
import time
from collections import deque
from queue import Empty
from typing import Any, Final

from engine.bench.engine import _quantiles_ms
from engine.bench.server import _outside, _stall_probe
from engine.realtime.clock import Lateness
from engine.server.osc_codec import OscDecodeError, decode_packet, encode_message

#: messages per flooding bundle (the codec's limit)
FLOOD_BUNDLE: Final = 64
#: each measured session changes its emotion this often (±20 %)
CHANGE_EVERY_S: Final = 0.5
#: the issue's targets: a change lands within its sync point + this; beats p99 this late at most
CHANGE_TARGET_MS: Final = 20.0
BEAT_TARGET_MS: Final = 5.0
#: lateness samples kept per measured session
_KEEP: Final = 1_000_000
_FLOOD_STATES: Final = ("combat", "explore", "danger", "calm")


def _bundle(messages: list[bytes]) -> bytes:
    """An OSC bundle (time tag: immediately) of ``messages``."""
    out = bytearray(b"#bundle\x00" + struct.pack(">Q", 1))
    for message in messages:
        out += struct.pack(">i", len(message)) + message
    return bytes(out)


def _flood_bundles(count: int, seed: int = 1) -> list[bytes]:
    """``count`` different bundles, each of ``FLOOD_BUNDLE`` messages: three emotions (sync as
    the session's default, immediate) to one state."""
    rng = random.Random(seed)

    def message(i: int) -> bytes:
        if i % 4 == 3:
            return encode_message("/affetto/state", [rng.choice(_FLOOD_STATES)])
        return encode_message(
            "/affetto/emotion", [round(rng.uniform(-1, 1), 3), round(rng.uniform(-1, 1), 3)]
        )

    return [_bundle([message(i) for i in range(FLOOD_BUNDLE)]) for _ in range(count)]


def _flooder(port: int, rate_per_s: float, stop: Any, queue: Any) -> None:
    """One OSC client (one socket) sending bundles paced at ``rate_per_s`` messages a second
    until ``stop`` is set; counts the error events it gets back by code."""
    bundles = _flood_bundles(64)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    target = ("127.0.0.1", port)
    refused: dict[str, int] = {}
    period = FLOOD_BUNDLE / rate_per_s
    sent = 0

    def drain() -> None:
        while True:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return
            try:
                messages = decode_packet(data)
            except OscDecodeError:
                continue
            for m in messages:
                if m.address == "/affetto/error" and m.args:
                    code = str(m.args[0])
                    refused[code] = refused.get(code, 0) + 1

    start = time.perf_counter()
    queue.put(("started", start))
    while not stop.is_set():
        wait = start + sent * period - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        sock.sendto(bundles[sent % len(bundles)], target)
        sent += 1
        drain()
    wall = time.perf_counter() - start
    end = time.monotonic() + 0.5  # the server's last replies land here, not on a closed port
    while time.monotonic() < end:
        drain()
        time.sleep(0.01)
    sock.close()
    messages = sent * FLOOD_BUNDLE
    queue.put(
        ("done", {"bundles": sent, "messages": messages, "per_s": round(messages / wall), "refused": refused})
    )


class _Changes:
    """One measured client's emotion changes: when each was sent, and when its ``transition``
    arrived (in order: a session's immediate changes land in the order they were sent)."""

    def __init__(self) -> None:
        self.name = ""
        self.sent: deque[float] = deque()
        self.latencies_s: list[float] = []
        self.beats = 0
        self.errors: list[str] = []
        self.measuring = False

    def transition(self, op: str, now: float) -> None:
        if op == "emotion" and self.sent:
            t = self.sent.popleft()
            if self.measuring:
                self.latencies_s.append(now - t)

    def result(self) -> dict[str, Any]:
        return {"name": self.name, "latencies_s": self.latencies_s, "unanswered": len(self.sent),
                "beats": self.beats, "errors": self.errors[:3]}  # fmt: skip


def _emotion(rng: random.Random) -> dict[str, Any]:
    return {"op": "emotion", "valence": round(rng.uniform(-1, 1), 3),
            "arousal": round(rng.uniform(-1, 1), 3), "sync": "immediate"}  # fmt: skip


class _WsClient:
    """A measured WebSocket session (its own connection)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.changes = _Changes()
        self.hello: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.reader = asyncio.create_task(self.read())

    @classmethod
    async def open(cls, url: str) -> _WsClient:
        from websockets.asyncio.client import connect

        client = cls(await connect(url, max_size=None))
        await client.ws.send(json.dumps({"op": "hello"}))
        client.changes.name = await asyncio.wait_for(client.hello, 30)
        await client.ws.send(json.dumps({"op": "state", "name": "combat", "sync": "immediate"}))
        await client.ws.send(json.dumps({"op": "subscribe"}))
        return client

    async def read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        c = self.changes
        try:
            async for raw in self.ws:
                now = time.perf_counter()
                msg = json.loads(raw)
                event = msg.get("event")
                if event == "transition":
                    c.transition(str(msg.get("op")), now)
                elif event == "beat":
                    c.beats += 1
                elif event == "hello" and not self.hello.done():
                    self.hello.set_result(str(msg["session"]))
                elif event == "error":
                    c.errors.append(f"{msg.get('code')}: {msg.get('message')}")
        except ConnectionClosed:
            pass

    async def change(self, rng: random.Random) -> None:
        self.changes.sent.append(time.perf_counter())
        await self.ws.send(json.dumps(_emotion(rng)))

    async def close(self) -> None:
        await self.ws.close()
        await self.reader


class _OscClient(asyncio.DatagramProtocol):
    """The measured OSC session: a socket of its own that subscribed from itself."""

    def __init__(self, server: tuple[str, int]) -> None:
        self.server = server
        self.changes = _Changes()
        self.transport: asyncio.DatagramTransport | None = None
        loop = asyncio.get_running_loop()
        self.hello: asyncio.Future[str] = loop.create_future()
        self.confirmed: asyncio.Future[None] = loop.create_future()
        self.last_rx = time.perf_counter()

    @classmethod
    async def open(cls, port: int) -> _OscClient:
        loop = asyncio.get_running_loop()
        target = ("127.0.0.1", port)
        _, client = await loop.create_datagram_endpoint(lambda: cls(target), local_addr=("127.0.0.1", 0))
        client.send("/affetto/subscribe")  # an address of its own, with its own session
        await asyncio.wait_for(client.confirmed, 30)  # the port proved it receives: events start
        client.send("/affetto/hello")
        client.changes.name = await asyncio.wait_for(client.hello, 30)
        client.send("/affetto/state", "combat", "immediate")
        return client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram endpoint's transport

    def send(self, address: str, *args: Any) -> None:
        assert self.transport is not None
        self.transport.sendto(encode_message(address, list(args)), self.server)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        now = self.last_rx = time.perf_counter()
        try:
            messages = decode_packet(data)
        except OscDecodeError:
            return
        c = self.changes
        for m in messages:
            if m.address == "/affetto/transition" and m.args:
                c.transition(str(m.args[0]), now)
            elif m.address == "/affetto/beat":
                c.beats += 1
            elif m.address == "/affetto/hello" and m.args and not self.hello.done():
                self.hello.set_result(str(m.args[0]))
            elif m.address == "/affetto/challenge" and m.args:  # prove the port, as the bindings do
                self.send("/affetto/confirm", str(m.args[0]))
                if not self.confirmed.done():
                    self.confirmed.set_result(None)
            elif m.address == "/affetto/error":
                c.errors.append(": ".join(str(a) for a in m.args))

    async def change(self, rng: random.Random) -> None:
        e = _emotion(rng)
        self.changes.sent.append(time.perf_counter())
        self.send("/affetto/emotion", e["valence"], e["arousal"], "immediate")

    async def close(self) -> None:
        """Unsubscribe, and close once the events in flight have come (the server must not send to
        a closed port)."""
        self.send("/affetto/unsubscribe")
        deadline = time.perf_counter() + 3.0
        while time.perf_counter() < deadline and time.perf_counter() - self.last_rx < 0.3:
            await asyncio.sleep(0.05)
        assert self.transport is not None
        self.transport.close()


async def _changes_loop(client: _WsClient | _OscClient, rng: random.Random, end: float) -> None:
    client.changes.measuring = True
    await asyncio.sleep(rng.uniform(0.0, CHANGE_EVERY_S))  # the sessions' changes spread out
    while time.perf_counter() < end:
        await client.change(rng)
        await asyncio.sleep(CHANGE_EVERY_S * rng.uniform(0.8, 1.2))
    deadline = time.perf_counter() + 2.0
    while client.changes.sent and time.perf_counter() < deadline:  # the last transitions
        await asyncio.sleep(0.01)


async def _new_session(url: str) -> dict[str, Any]:
    """Open a fresh WebSocket session and subscribe; the seconds from the first try until its
    first beat (a ``busy`` refusal, the server at capacity, is tried again 0.25 s later)."""
    from websockets.asyncio.client import connect

    t0 = time.perf_counter()
    refused = 0
    while time.perf_counter() - t0 < 30:
        async with connect(url, max_size=None) as ws:
            await ws.send(json.dumps({"op": "subscribe"}))
            while True:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if msg.get("event") == "beat":
                    return {"start_s": time.perf_counter() - t0, "refused": refused}
                if msg.get("event") == "error" and msg.get("code") == "busy":
                    refused += 1
                    break
        await asyncio.sleep(0.25)
    return {"start_s": None, "refused": refused}


async def _new_sessions(url: str, count: int, start: float, seconds: float) -> list[dict[str, Any]]:
    out = []
    for k in range(1, count + 1):
        await asyncio.sleep(max(0.0, start + k * seconds / (count + 1) - time.perf_counter()))
        out.append(await _new_session(url))
    return out


async def _clients_run(
    ws_port: int, osc_port: int, sessions: int, seconds: float, go: Any, queue: Any
) -> dict[str, Any]:
    url = f"ws://127.0.0.1:{ws_port}"
    clients: list[_WsClient | _OscClient] = [await _WsClient.open(url) for _ in range(sessions)]
    clients.append(await _OscClient.open(osc_port))
    queue.put(("ready", [c.changes.name for c in clients]))
    while not go.is_set():
        await asyncio.sleep(0.01)
    start = time.perf_counter()
    end = start + seconds
    rng = random.Random(7)
    loops = [_changes_loop(c, random.Random(rng.random()), end) for c in clients]
    probes = _new_sessions(url, max(1, round(seconds / 4)), start, seconds)
    *_, started = await asyncio.gather(*loops, probes)
    for c in clients:
        await c.close()
    return {"clients": [c.changes.result() for c in clients], "new_sessions": started}


def _clients(ws_port: int, osc_port: int, sessions: int, seconds: float, go: Any, queue: Any) -> None:
    """The measured sessions' client process (see the module docstring)."""
    queue.put(("result", asyncio.run(_clients_run(ws_port, osc_port, sessions, seconds, go, queue))))


async def _get(queue: Any, timeout_s: float, *procs: Any) -> Any:
    """The next item of a multiprocessing queue, without blocking the loop.

    Raises:
        RuntimeError: one of ``procs`` (the processes that would put it) has died first, or
            nothing came within ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return queue.get_nowait()
        except Empty:
            pass
        dead = [p for p in procs if not p.is_alive()]
        if dead:
            try:
                return queue.get(timeout=1.0)  # put just before it exited
            except Empty:
                raise RuntimeError(f"the {dead[0].name} process exited ({dead[0].exitcode})") from None
        if time.monotonic() > deadline:
            raise RuntimeError(f"no answer within {timeout_s:g} s")
        await asyncio.sleep(0.02)


def _lateness(timings: list[tuple[Lateness, float]], stalls: list[tuple[float, float]]) -> dict[str, Any]:
    """The events of these sessions' timings (each with its clock origin, perf_counter s)."""
    samples = [x for t, _ in timings for x in t.samples_s]
    late_log = [(due + t0, sent + t0) for t, t0 in timings for due, sent in t.late_log]
    return {
        "events": sum(t.events for t, _ in timings),
        "late": sum(t.late for t, _ in timings),
        **_quantiles_ms(samples),
        "late_outside_machine_stalls": _outside(late_log, stalls),
    }


async def _flood_run(seconds: float, sessions: int, flood: bool, late_ms: float) -> dict[str, Any]:
    from engine.model.composer import Composer
    from engine.server.transports import AffettoServer, ServerSettings
    from engine.sessions.host import SessionHost

    composer = Composer(max_streams=sessions + 16, intra_op_threads=1, precision="int8")  # as affetto serve
    errors: list[str] = []
    host = SessionHost(composer, late_threshold_s=late_ms / 1000, on_error=errors.append)
    settings = ServerSettings(osc_port=0, ws_port=0)
    server = AffettoServer(host, settings)
    await server.start()
    ctx = mp.get_context("spawn")
    queue: Any = ctx.Queue()
    flood_q: Any = ctx.Queue()
    probe_q: Any = ctx.Queue()
    go, stop = ctx.Event(), ctx.Event()
    procs = []
    try:
        clients = ctx.Process(
            target=_clients, args=(server.ws_port, server.osc_port, sessions, seconds, go, queue)
        )
        procs.append(clients)
        clients.start()
        _, names = await _get(queue, 120, clients)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(host.sessions[n].events_sent > 0 for n in names):
            await asyncio.sleep(0.1)  # until every measured session is playing
        await asyncio.sleep(2.0)  # and past its first bars
        probe = ctx.Process(
            name="stall probe", target=_stall_probe, args=(seconds + 3.0, late_ms / 1000, probe_q)
        )
        procs.append(probe)
        probe.start()
        if flood:
            flooder = ctx.Process(
                name="flooder", target=_flooder, args=(server.osc_port, settings.rate_per_s, stop, flood_q)
            )
            procs.append(flooder)
            flooder.start()
            await _get(flood_q, 120, flooder)
        await asyncio.sleep(1.0)  # the flood in full swing, the probe's interpreter started
        measured = [host.sessions[n] for n in names]
        for s in measured:
            s.timing = Lateness(host.late_threshold_s, keep=_KEEP, log=_KEEP)
        applied0, packets0 = host.requests_applied, server.osc_packets_received
        cpu0, wall0 = time.process_time(), time.perf_counter()
        go.set()
        _, got = await _get(queue, seconds + 120, clients)
        cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
        applied, packets = host.requests_applied - applied0, server.osc_packets_received - packets0
        stop.set()
        flooded = (await _get(flood_q, 30, flooder))[1] if flood else None
        machine = await _get(probe_q, 60, probe)
        for p in procs:
            p.join(timeout=10)
    finally:
        stop.set()
        go.set()
        for p in procs:
            if p.is_alive():
                p.kill()
        await server.close()
    stalls = machine.pop("stalls")
    machine["stalls_over_1ms"] = len(stalls)
    *ws, osc = got["clients"]
    every = [x for c in got["clients"] for x in c["latencies_s"]]
    latency = {
        "sync": "immediate", "target_ms": CHANGE_TARGET_MS, **_quantiles_ms(every),
        "websocket": _quantiles_ms([x for c in ws for x in c["latencies_s"]]),
        "osc": _quantiles_ms(osc["latencies_s"]),
        "unanswered": sum(c["unanswered"] for c in got["clients"]),
    }  # fmt: skip
    lateness = {"target_p99_ms": BEAT_TARGET_MS, "sessions": len(measured),
                **_lateness([(s.timing, s.t0) for s in measured], stalls)}  # fmt: skip
    tries = got["new_sessions"]
    starts = [t["start_s"] for t in tries if t["start_s"] is not None]
    out: dict[str, Any] = {
        "flood": flood, "seconds": seconds, "sessions": sessions, "osc_sessions": 1,
        "budget_per_s": settings.rate_per_s, "flooder": flooded,
        "change_latency": latency, "lateness": lateness, "machine": machine,
        "new_session_start": {**_quantiles_ms(starts), "tries_refused_busy": sum(t["refused"] for t in tries),
                              "never_started": sum(t["start_s"] is None for t in tries)},
        "server": {"cpu_cores": round(cpu, 2), "requests_applied": applied, "osc_packets": packets,
                   "errors": len(errors), "first_errors": errors[:5]},
        "client_errors": [e for c in got["clients"] for e in c["errors"]][:5],
        "beats_received": sum(c["beats"] for c in got["clients"]),
    }  # fmt: skip
    out["meets_targets"] = {  # p99 of each (the max is reported beside it)
        "change_latency_p99": bool(every) and latency["p99_ms"] <= CHANGE_TARGET_MS,
        "lateness_p99": lateness.get("p99_ms", 0.0) <= BEAT_TARGET_MS,
    }
    return out


def under_flood(
    seconds: float = 20.0, sessions: int = 8, *, flood: bool = True, late_ms: float = 5.0
) -> dict[str, Any]:
    """Change latency, the other sessions' lateness and a new session's start while one client
    floods the server at its message budget (``flood=False``: the same without the flooder)."""
    return asyncio.run(_flood_run(seconds, sessions, flood, late_ms))
