"""``affetto bench soak``: many sessions for a long time under churn; does anything grow or hang?

``sessions`` sessions (default 200) play on one server while their clients do what games do, at
random moments (every ~``change_every_s`` each): emotion, state, param, tempo and stinger
changes; subscribers joining and leaving (WebSocket connections opening and closing: listeners
joining a playing session for a while, a client reconnecting; OSC clients unsubscribing and
subscribing again, proving their port each time); sessions switching to a new name. Every client
takes the ``notes`` output and tracks the notes it heard start and not end, per session.

The server (an :class:`AffettoServer` and its :class:`SessionHost`, as ``affetto serve`` runs
them, on this process's asyncio loop) runs in this process and the clients in processes of their
own: the server's memory and descriptors are this process's own (``/proc/self``), the bench
reads the host directly, and the clients share no GIL with it. Every fourth session is an OSC
client (its own socket, subscribed from itself; at most ``OSC_PER_HOST`` per loopback address,
below the server's limit per host), the others WebSocket connections (from loopback addresses
127.0.1.x, within the server's connections per address). Every ``interval_s``: resident memory
(``/proc/self/statm``), open file descriptors (``/proc/self/fd``), sessions, subscribers, events
sent and late, requests applied, errors. At the end:

* **growth** of memory and descriptors from the first sample (the first interval is the
  warm-up: the model's arenas, the sessions' first bars) to the last, in %;
* **hanging notes**: note-ons a client heard with no note-off by the time it left (it
  unsubscribes, which sends it the note-off of every note it heard start, and waits for them);
  0 expected;
* **internal errors**: every line of the server's error log (what the host reports through
  ``on_error``, which ``affetto serve`` prints), an unhandled exception on the server's loop, an
  error logged by the WebSocket library; 0 expected. The error events the clients got are
  counted by code apart (``busy`` while a new session waits for the server at capacity).

The server's sessions include one per loopback address the OSC clients send from: a host's first
packet opens the host's session (the subscribe from its own socket then opens the client's own),
which idles out after a minute.

Sessions beyond what the server holds (its slots are used, or it refuses new sessions as
``busy`` while its composing is at capacity, for ``JOIN_PATIENCE_S``) are reported; the run goes
on with those it held. A day: ``affetto bench soak --minutes 1440``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import multiprocessing as mp
import os
import random
import socket
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from engine.server.osc_codec import OscDecodeError, decode_packet, encode_message

if TYPE_CHECKING:
    from engine.sessions.profile import Profile

#: OSC clients of their own per loopback address (the server allows 16 per host)
OSC_PER_HOST: Final = 12
#: WebSocket connections per loopback address (the server serves 256 from one)
WS_PER_HOST: Final = 128
#: sessions per client process, and at most this many client processes
SESSIONS_PER_PROCESS: Final = 64
MAX_PROCESSES: Final = 4
#: a client that unsubscribed waits until every note it heard start has ended (the note-offs of
#: its unsubscribe come from the server's clock thread) and it heard nothing for ``QUIET_S``, or
#: ``SETTLE_S`` at most, before it checks its notes
QUIET_S: Final = 0.1
SETTLE_S: Final = 5.0
#: how long a client tries to (re)join while the server refuses it as busy at capacity
JOIN_PATIENCE_S: Final = 60.0
#: the longest gap between one client's requests (an OSC session expires after 60 s of silence)
MAX_GAP_S: Final = 30.0
#: a listener stays this long on average (or 4 changes' time if shorter); listeners come so that
#: about a tenth of the sessions have one (at most a fifth), or every other change if that is sooner
LISTEN_S: Final = 10.0
SYNCS: Final = ("immediate", "beat", "bar", "phrase")


@dataclasses.dataclass
class _Names:
    """What the sessions' profile offers the clients' random changes."""

    states: list[str]
    stingers: list[str]
    params: dict[str, tuple[float, float]]


def _change(rng: random.Random, names: _Names) -> tuple[str, dict[str, Any]]:
    """A random music change: (op, fields)."""
    r = rng.random()
    if r < 0.35:
        fields: dict[str, Any] = {
            "valence": round(rng.uniform(-1, 1), 3),
            "arousal": round(rng.uniform(-1, 1), 3),
        }
        fields.update(tension=round(rng.uniform(-1, 1), 3), sync=rng.choice(SYNCS))
        return "emotion", fields
    if r < 0.55:
        return "state", {"name": rng.choice(names.states), "sync": rng.choice(SYNCS)}
    if r < 0.75 and names.params:
        name = rng.choice(sorted(names.params))
        lo, hi = names.params[name]
        return "param", {"name": name, "value": round(rng.uniform(lo, hi), 3)}
    if r < 0.87:
        return "transport", {"action": "tempo", "value": rng.choice([0.0, round(rng.uniform(60, 180), 1)])}
    return "stinger", {"name": rng.choice(names.stingers)}


def _osc_args(op: str, fields: dict[str, Any]) -> list[Any]:
    if op == "emotion":
        return [fields["valence"], fields["arousal"], fields["tension"], fields["sync"]]
    if op == "state":
        return [fields["name"], fields["sync"]]
    if op == "param":
        return [fields["name"], float(fields["value"])]
    if op == "transport":
        return [fields["action"], float(fields["value"])]
    return [fields["name"]]


class _Heard:
    """The notes one client heard start and not end yet, by (session, channel, pitch) (a note-off
    ends a pitch, as MIDI and the server's ``notes`` output count it)."""

    def __init__(self, stats: Counter[str]) -> None:
        self.sounding: set[tuple[str, int, int]] = set()
        self.stats = stats

    def note(self, session: str, channel: int, pitch: int, velocity: int) -> None:
        key = (session, channel, pitch)
        if velocity:
            self.sounding.add(key)
            self.stats["note_on"] += 1
            return
        self.stats["note_off"] += 1
        if key in self.sounding:
            self.sounding.remove(key)
        else:
            self.stats["note_off_not_heard_on"] += 1  # a listener's note started before it joined

    async def wait(self, last_rx: Callable[[], float]) -> None:
        """Until every note heard has ended and nothing came for ``QUIET_S`` (``SETTLE_S`` at most)."""
        deadline = time.perf_counter() + SETTLE_S
        while time.perf_counter() < deadline and (self.sounding or time.perf_counter() - last_rx() < QUIET_S):
            await asyncio.sleep(0.02)

    def settle(self, hanging: list[str], where: str) -> None:
        """The client has left: what still sounds hangs."""
        self.stats["hanging_notes"] += len(self.sounding)
        hanging.extend(
            f"{s} ch {c} pitch {p} ({where})" for s, c, p in sorted(self.sounding)[: max(0, 5 - len(hanging))]
        )
        self.sounding.clear()


class _Ctx:
    """One client process's shared state."""

    def __init__(self, ws_url: str, osc_port: int, names: _Names, change_every_s: float) -> None:
        self.ws_url, self.osc_port, self.names = ws_url, osc_port, names
        self.change_every_s = change_every_s
        self.stats: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()  # error events by code
        self.hanging: list[str] = []
        self.first_errors: list[str] = []
        self.stop = asyncio.Event()
        self.listening = 0

    async def nap(self, seconds: float) -> bool:
        """Sleep ``seconds``; True if the run is stopping (at once then)."""
        try:
            await asyncio.wait_for(self.stop.wait(), max(0.0, seconds))
        except TimeoutError:
            return False
        return True

    def gap(self, rng: random.Random) -> float:
        return min(MAX_GAP_S, rng.expovariate(1.0 / self.change_every_s))

    def error(self, code: str, message: str) -> None:
        self.errors[code] += 1
        if len(self.first_errors) < 5:
            self.first_errors.append(f"{code}: {message[:160]}")


class _WsLink:
    """One WebSocket connection: replies by id, notes heard, errors counted."""

    def __init__(self, ws: Any, ctx: _Ctx) -> None:
        self.ws, self.ctx = ws, ctx
        self.heard = _Heard(ctx.stats)
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.next_id = 0
        self.last_rx = time.perf_counter()
        self.reader = asyncio.create_task(self._read())
        ctx.stats["ws_opened"] += 1

    @classmethod
    async def open(cls, ctx: _Ctx, local_host: str) -> _WsLink:
        from websockets.asyncio.client import connect

        return cls(await connect(ctx.ws_url, max_size=None, local_addr=(local_host, 0)), ctx)

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for raw in self.ws:
                self.last_rx = time.perf_counter()
                msg = json.loads(raw)
                event = msg.get("event")
                if event == "note":
                    self.heard.note(msg["session"], msg["channel"], msg["pitch"], msg["velocity"])
                    continue
                if event == "beat":
                    self.ctx.stats["beats"] += 1
                    continue
                rid = msg.get("id")
                waiting = self.waiting.pop(rid, None) if isinstance(rid, int) else None
                if waiting is None and event == "error" and rid is None and self.waiting:
                    # an error without the request's id (a busy refusal, say): replies come in
                    # the order of the requests, so it answers the oldest one waiting
                    waiting = self.waiting.pop(next(iter(self.waiting)))
                if waiting is not None:
                    waiting.set_result(msg)
                elif event == "error":
                    self.ctx.error(str(msg.get("code")), str(msg.get("message")))
        except ConnectionClosed:
            pass
        for waiting in self.waiting.values():
            if not waiting.done():
                waiting.set_result({"event": "error", "code": "closed", "message": "connection closed"})

    async def call(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send ``request`` and wait for its reply (or error)."""
        from websockets.exceptions import ConnectionClosed

        self.next_id += 1
        rid = self.next_id
        future = self.waiting[rid] = asyncio.get_running_loop().create_future()
        try:
            await self.ws.send(json.dumps({**request, "id": rid}))
        except ConnectionClosed:
            self.waiting.pop(rid, None)
            return {"event": "error", "code": "closed", "message": "connection closed"}
        try:
            return await asyncio.wait_for(future, 30.0)
        except TimeoutError:
            self.waiting.pop(rid, None)
            return {"event": "error", "code": "timeout", "message": f"no reply to {request['op']} in 30 s"}

    async def leave(self) -> None:
        """Unsubscribe, wait for the note-offs that brings, close; what still sounds hangs."""
        await self.call({"op": "unsubscribe"})
        await self.heard.wait(lambda: self.last_rx)
        await self.close()
        self.heard.settle(self.ctx.hanging, "websocket left")

    async def close(self) -> None:
        await self.ws.close()
        await self.reader
        self.ctx.stats["ws_closed"] += 1


def _reply_error(reply: dict[str, Any]) -> tuple[str, str] | None:
    if reply.get("event") != "error":
        return None
    return str(reply.get("code")), str(reply.get("message"))


class _Actor:
    """One session's client (its loop; see :class:`_WsActor`, :class:`_OscActor`)."""

    def __init__(self, i: int, ctx: _Ctx, local_host: str, seed: int) -> None:
        self.i, self.ctx, self.local_host = i, ctx, local_host
        self.rng = random.Random(seed * 100_003 + i)
        self.name = f"soak-{i}"
        self.generation = 0
        self.held = False
        self.counted = False  # as held or not
        self.changing = False  # switching or reconnecting: no listener joins now
        self.listeners = 0

    async def join(self) -> bool:
        raise NotImplementedError

    async def leave(self) -> None:
        raise NotImplementedError

    async def change(self) -> None:
        raise NotImplementedError

    async def switch(self) -> None:
        raise NotImplementedError

    async def churn(self) -> None:
        """Leave and come back (WebSocket: a new connection; OSC: subscribe again)."""
        raise NotImplementedError

    async def run(self, delay_s: float) -> None:
        """Join, change at random moments until the run stops, leave (an exception is counted as
        a client error: the others go on)."""
        try:
            await self._run(delay_s)
        except Exception as exc:
            self.ctx.error("client", f"{type(self).__name__} {self.i}: {type(exc).__name__}: {exc}")
            self.ctx.stats["lost" if self.counted else "not_held"] += 1
            self.held = False

    async def _run(self, delay_s: float) -> None:
        ctx = self.ctx
        if await ctx.nap(delay_s):
            ctx.stats["not_held"] += 1
            return
        self.held = await self.join()
        ctx.stats["held" if self.held else "not_held"] += 1
        self.counted = True
        while self.held and not await ctx.nap(ctx.gap(self.rng)):
            r = self.rng.random()
            if r < 0.05 and self.listeners == 0:
                self.changing = True
                await self.switch()
                self.changing = False
            elif r < 0.10 and self.listeners == 0:
                self.changing = True
                await self.churn()
                self.changing = False
            else:
                await self.change()
        while self.listeners:
            await asyncio.sleep(0.05)
        if self.held:
            await self.leave()


class _WsActor(_Actor):
    """A WebSocket client: its own connection in its named session."""

    link: _WsLink | None = None

    async def join(self) -> bool:
        """Connect and join the session called ``name`` (created if new), with the notes output,
        subscribed; a ``busy`` refusal is tried again for ``JOIN_PATIENCE_S``."""
        ctx = self.ctx
        start = time.monotonic()
        while time.monotonic() - start < JOIN_PATIENCE_S:
            link = await _WsLink.open(ctx, self.local_host)
            reply = await link.call({"op": "hello", "session": self.name})
            error = _reply_error(reply)
            if error is None:
                for request in ({"op": "output", "outputs": ["notes"]}, {"op": "subscribe"}):
                    error = _reply_error(await link.call(request))
                    if error is not None:
                        ctx.error(*error)
                self.link = link
                return True
            await link.close()
            if error[0] != "busy":
                ctx.error(*error)
                return False
            ctx.stats["join_refused_busy"] += 1
            if "slots" in error[1]:  # every slot in use: not a passing state
                return False
            if await ctx.nap(0.5):
                return False
        return False

    async def leave(self) -> None:
        if self.link is not None:
            await self.link.leave()
            self.link = None

    async def change(self) -> None:
        assert self.link is not None
        op, fields = _change(self.rng, self.ctx.names)
        self.ctx.stats[f"op {op}"] += 1
        error = _reply_error(await self.link.call({"op": op, **fields}))
        if error is not None:
            self.ctx.error(*error)

    async def switch(self) -> None:
        assert self.link is not None
        self.generation += 1
        name = f"soak-{self.i}-{self.generation}"
        error = _reply_error(await self.link.call({"op": "session", "name": name}))
        if error is not None:
            self.ctx.error(*error)
            self.ctx.stats["switch_refused"] += 1
            await self.churn()  # where the connection stands is not known: start again
            return
        self.name = name
        self.ctx.stats["switches"] += 1
        error = _reply_error(await self.link.call({"op": "output", "outputs": ["notes"]}))
        if error is not None:
            self.ctx.error(*error)

    async def churn(self) -> None:
        await self.leave()
        self.ctx.stats["reconnects"] += 1
        if not await self.join():
            self.held = False
            self.ctx.stats["lost"] += 1


class _OscActor(_Actor, asyncio.DatagramProtocol):
    """An OSC client: a socket of its own, subscribed from itself, in its named session."""

    transport: asyncio.DatagramTransport | None = None

    def __init__(self, i: int, ctx: _Ctx, local_host: str, seed: int) -> None:
        super().__init__(i, ctx, local_host, seed)
        self.heard = _Heard(ctx.stats)
        self.last_rx = time.perf_counter()
        self.hello: asyncio.Future[str] | None = None
        self.refused: str | None = None  # a busy refusal's message, while joining
        self.challenged = asyncio.Event()
        self.target = ("127.0.0.1", ctx.osc_port)
        #: OSC note events name no session: one label for all of them (a switch's old session ends,
        #: its note-offs, before the new one's notes come: one clock thread, one socket, in order)
        self.label = f"osc-{i}"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram endpoint's transport

    def send(self, address: str, *args: Any) -> None:
        assert self.transport is not None
        self.transport.sendto(encode_message(address, list(args)), self.target)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.last_rx = time.perf_counter()
        try:
            messages = decode_packet(data)
        except OscDecodeError:
            self.ctx.error("undecodable", repr(data[:40]))
            return
        for m in messages:
            if m.address == "/affetto/note" and len(m.args) >= 3:
                ch, pitch, velocity = (int(a) if isinstance(a, int | float) else 0 for a in m.args[:3])
                self.heard.note(self.label, ch, pitch, velocity)
            elif m.address == "/affetto/beat":
                self.ctx.stats["beats"] += 1
            elif m.address == "/affetto/challenge" and m.args:  # prove the port, as the bindings do
                self.send("/affetto/confirm", str(m.args[0]))
                self.ctx.stats["osc_confirms"] += 1
                self.challenged.set()
            elif m.address == "/affetto/hello" and m.args:
                if self.hello is not None and not self.hello.done():
                    self.hello.set_result(str(m.args[0]))
            elif m.address == "/affetto/error" and len(m.args) >= 2:
                code, message = str(m.args[0]), str(m.args[1])
                if code == "busy" and not self.held:
                    self.refused = message
                else:
                    self.ctx.error(code, message)

    async def _hello(self) -> str | None:
        """Ask for ``hello``; the session's name it answers (None: refused busy, or no answer)."""
        self.hello = asyncio.get_running_loop().create_future()
        self.refused = None
        self.send("/affetto/hello")
        try:
            name = await asyncio.wait_for(self.hello, 10.0)
        except TimeoutError:
            return None
        return None if self.refused is not None else name

    async def join(self) -> bool:
        """Subscribe from its own socket (an OSC client of its own, with a session), then move its
        session to ``name`` with the notes output; a ``busy`` refusal is tried again for
        ``JOIN_PATIENCE_S``."""
        ctx = self.ctx
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(self.local_host, 0))
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        start = time.monotonic()
        while time.monotonic() - start < JOIN_PATIENCE_S:
            if not self.challenged.is_set():  # its own record on the server, subscribed
                self.refused = None
                self.send("/affetto/subscribe")
                deadline = time.monotonic() + 10.0
                while not self.challenged.is_set() and self.refused is None and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
            if self.challenged.is_set():
                self.send("/affetto/session", self.name)
                self.send("/affetto/output", "notes")
                if await self._hello() == self.name:
                    ctx.stats["osc_subscribes"] += 1
                    return True
            ctx.stats["join_refused_busy"] += 1
            if (self.refused is not None and "slots" in self.refused) or await ctx.nap(0.5):
                break
        self.close()
        return False

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    async def unsubscribe(self, where: str) -> None:
        """Unsubscribe and wait for the note-offs that brings; what still sounds hangs."""
        self.send("/affetto/unsubscribe")
        self.ctx.stats["osc_unsubscribes"] += 1
        await self.heard.wait(lambda: self.last_rx)
        self.heard.settle(self.ctx.hanging, where)

    async def leave(self) -> None:
        await self.unsubscribe("osc left")
        self.close()

    async def change(self) -> None:
        op, fields = _change(self.rng, self.ctx.names)
        self.ctx.stats[f"op {op}"] += 1
        self.send(f"/affetto/{op}", *_osc_args(op, fields))

    async def switch(self) -> None:
        self.generation += 1
        name = f"soak-{self.i}-{self.generation}"
        self.send("/affetto/session", name)
        self.send("/affetto/output", "notes")
        self.name = name
        answered = await self._hello()
        if answered != name:
            self.ctx.stats["switch_refused"] += 1
            self.ctx.error("switch", f"after /affetto/session {name}: hello says {answered}")
        else:
            self.ctx.stats["switches"] += 1

    async def churn(self) -> None:
        await self.unsubscribe("osc unsubscribed")
        if await self.ctx.nap(self.rng.uniform(0.5, 3.0)):
            return
        self.send("/affetto/subscribe")  # a new challenge, confirmed in datagram_received
        self.ctx.stats["osc_subscribes"] += 1


async def _listener(ctx: _Ctx, actor: _Actor, rng: random.Random) -> None:
    """A WebSocket connection that joins ``actor``'s session for a while, subscribed."""
    try:
        await _listen(ctx, actor, rng)
    except Exception as exc:
        ctx.error("client", f"listener: {type(exc).__name__}: {exc}")
    finally:
        actor.listeners -= 1
        ctx.listening -= 1


async def _listen(ctx: _Ctx, actor: _Actor, rng: random.Random) -> None:
    link = await _WsLink.open(ctx, actor.local_host if isinstance(actor, _WsActor) else "127.0.1.1")
    error = _reply_error(await link.call({"op": "hello", "session": actor.name}))
    if error is not None:
        ctx.error(*error)
        await link.close()
        return
    error = _reply_error(await link.call({"op": "subscribe"}))
    if error is not None:
        ctx.error(*error)
    ctx.stats["listeners"] += 1
    await ctx.nap(rng.expovariate(1.0 / min(LISTEN_S, 4 * ctx.change_every_s)))
    await link.leave()


async def _listeners(ctx: _Ctx, actors: list[_Actor], rng: random.Random) -> None:
    tasks: set[asyncio.Task[None]] = set()
    most = max(1, len(actors) // 5)
    gap_s = min(10 * LISTEN_S / len(actors), 2 * ctx.change_every_s)  # a tenth of them listened to
    while not await ctx.nap(rng.expovariate(1.0 / gap_s)):
        ready = [a for a in actors if a.held and not a.changing]
        if not ready or ctx.listening >= most:
            continue
        actor = rng.choice(ready)
        actor.listeners += 1
        ctx.listening += 1
        task = asyncio.create_task(_listener(ctx, actor, random.Random(rng.random())))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)


async def _client_main(
    index: int, procs: int, ws_port: int, osc_port: int, sessions: int, names: _Names,
    change_every_s: float, seed: int, stop: Any, queue: Any,
) -> dict[str, Any]:  # fmt: skip
    ctx = _Ctx(f"ws://127.0.0.1:{ws_port}", osc_port, names, change_every_s)
    actors: list[_Actor] = []
    for i in range(index, sessions, procs):
        if i % 4 == 3:
            actors.append(_OscActor(i, ctx, f"127.0.2.{1 + (i // 4) // OSC_PER_HOST % 250}", seed))
        else:
            actors.append(_WsActor(i, ctx, f"127.0.1.{1 + i // WS_PER_HOST % 250}", seed))
    runs = [asyncio.create_task(a.run(0.05 * k)) for k, a in enumerate(actors)]
    while ctx.stats["held"] + ctx.stats["not_held"] < len(actors):
        await asyncio.sleep(0.05)
    queue.put(("ready", index, {"held": ctx.stats["held"], "not_held": ctx.stats["not_held"]}))
    listening = asyncio.create_task(_listeners(ctx, actors, random.Random(seed * 7 + index)))
    while not stop.is_set():
        await asyncio.sleep(0.1)
    ctx.stop.set()
    await asyncio.gather(*runs, listening)
    return {"stats": dict(ctx.stats), "errors": dict(ctx.errors), "hanging": ctx.hanging,
            "first_errors": ctx.first_errors}  # fmt: skip


def _clients(
    index: int, procs: int, ws_port: int, osc_port: int, sessions: int, names: _Names,
    change_every_s: float, seed: int, stop: Any, queue: Any,
) -> None:  # fmt: skip
    """One client process: sessions ``index``, ``index + procs``, ... (see the module docstring)."""
    args = (index, procs, ws_port, osc_port, sessions, names, change_every_s, seed, stop, queue)
    queue.put(("result", index, asyncio.run(_client_main(*args))))


class _ErrorLog(logging.Handler):
    """The server's error log: every line counted, the first ones kept."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0
        self.first: list[str] = []

    def __call__(self, message: str) -> None:
        self.count += 1
        if len(self.first) < 20:
            self.first.append(message)

    def emit(self, record: logging.LogRecord) -> None:
        self(f"{record.name}: {record.getMessage()}")


_CHURN: Final = ("ws_opened", "ws_closed", "reconnects", "listeners", "switches", "switch_refused",
                 "osc_subscribes", "osc_unsubscribes", "osc_confirms", "join_refused_busy",
                 "lost")  # fmt: skip


def _open_fds() -> int:
    return len(os.listdir(f"/proc/{os.getpid()}/fd"))


def _growth_pct(values: list[float]) -> float:
    first, last = values[0], values[-1]
    return round((last - first) / first * 100, 2) if first else 0.0


def _default_profile() -> Profile:
    """The default profile with one game parameter (so the clients' ``param`` changes land)."""
    from engine.sessions.profile import DEFAULT_PROFILE, Param

    danger = Param("danger", (0.0, 1.0), affects=(-0.5, 0.8, 0.8), default=0.0)
    return dataclasses.replace(DEFAULT_PROFILE, name="soak", params={"danger": danger})


async def _soak(
    sessions: int, minutes: float, interval_s: float, max_sessions: int, profile: Profile | None, seed: int,
    change_every_s: float, progress: Callable[[str], None],
) -> dict[str, Any]:  # fmt: skip
    from engine.bench.flood import _get
    from engine.bench.server import _rss_bytes
    from engine.model.composer import Composer
    from engine.server.transports import AffettoServer, ServerSettings
    from engine.sessions.host import SessionHost

    profile = profile or _default_profile()
    cfg = profile.config
    names = _Names(sorted(cfg.states), sorted(cfg.stingers), {n: p.range for n, p in profile.params.items()})
    log = _ErrorLog()
    composer = Composer(max_streams=max_sessions, intra_op_threads=1, precision="int8")  # as affetto serve
    host = SessionHost(composer, profile, on_error=log)
    server = AffettoServer(host, ServerSettings(osc_port=0, ws_port=0))
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, c: log(f"loop: {c.get('message')}: {c.get('exception')!r}"))
    ws_log = logging.getLogger("websockets")
    ws_log.addHandler(log)
    await server.start()
    ctx = mp.get_context("spawn")
    queue: Any = ctx.Queue()
    stop = ctx.Event()
    count = min(MAX_PROCESSES, math.ceil(sessions / SESSIONS_PER_PROCESS))
    procs = [
        ctx.Process(
            name=f"soak clients {k}", target=_clients,
            args=(k, count, server.ws_port, server.osc_port, sessions, names, change_every_s, seed, stop,
                  queue),
        )
        for k in range(count)
    ]  # fmt: skip
    samples: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    try:
        for p in procs:
            p.start()
        held = not_held = 0
        for _ in procs:
            _, _, ready = await _get(queue, 60 + 2 * JOIN_PATIENCE_S + 0.1 * sessions, *procs)
            held, not_held = held + ready["held"], not_held + ready["not_held"]
        progress(
            f"soak: {held} of {sessions} sessions held ({not_held} refused busy), {count} client "
            f"processes; a sample every {interval_s:g} s for {minutes:g} min"
        )
        intervals = max(2, round(minutes * 60 / interval_s))
        start = time.perf_counter()
        events0, late0, applied0 = host.timing.events, host.timing.late, host.requests_applied
        for k in range(1, intervals + 1):
            await asyncio.sleep(max(0.0, start + k * interval_s - time.perf_counter()))
            live = [s for s in list(host.sessions.values()) if not s.closed]
            sample = {
                "t_s": round(time.perf_counter() - start, 1), "rss_mib": round(_rss_bytes() / 2**20, 2),
                "fds": _open_fds(), "sessions": len(live),
                "subscribers": sum(len(s.subscribers) for s in live),
                "events": host.timing.events - events0, "late": host.timing.late - late0,
                "requests_applied": host.requests_applied - applied0, "errors": log.count,
            }  # fmt: skip
            samples.append(sample)
            events0, late0, applied0 = host.timing.events, host.timing.late, host.requests_applied
            progress(
                f"  [{k}/{intervals}] {sample['t_s']:8.1f} s  rss {sample['rss_mib']:8.1f} MiB  "
                f"fds {sample['fds']:4d}  sessions {sample['sessions']:4d}  "
                f"subscribers {sample['subscribers']:4d}  events {sample['events']:7d} "
                f"({sample['late']} late)  requests {sample['requests_applied']:6d}  "
                f"errors {sample['errors']}"
            )
        stop.set()
        for _ in procs:
            _, _, result = await _get(queue, 120 + 2 * JOIN_PATIENCE_S, *procs)
            results.append(result)
        for p in procs:
            p.join(timeout=10)
    finally:
        stop.set()
        for p in procs:
            if p.is_alive():
                p.kill()
        await server.close()
        ws_log.removeHandler(log)
    stats: Counter[str] = Counter()
    client_errors: Counter[str] = Counter()
    hanging: list[str] = []
    first_client_errors: list[str] = []
    for r in results:
        stats.update(r["stats"])
        client_errors.update(r["errors"])
        hanging += r["hanging"]
        first_client_errors += r["first_errors"]
    rss = [s["rss_mib"] for s in samples]
    fds = [s["fds"] for s in samples]
    summary = {
        "sessions_asked": sessions, "sessions_held": held, "sessions_not_held": not_held,
        "client_processes": count, "minutes": minutes, "interval_s": interval_s,
        "rss_mib": {"first": rss[0], "last": rss[-1], "max": max(rss)}, "rss_growth_pct": _growth_pct(rss),
        "fds": {"first": fds[0], "last": fds[-1], "max": max(fds)}, "fds_growth_pct": _growth_pct(fds),
        "hanging_notes": stats["hanging_notes"], "hanging_examples": hanging[:5],
        "notes_heard": {"on": stats["note_on"], "off": stats["note_off"]},
        "internal_errors": log.count, "first_errors": log.first,
        "client_error_events": dict(client_errors),
        "changes": {k.removeprefix("op "): v for k, v in sorted(stats.items()) if k.startswith("op ")},
        "churn": {k: stats[k] for k in _CHURN},
        "events": sum(s["events"] for s in samples), "late_events": sum(s["late"] for s in samples),
        "requests_applied": sum(s["requests_applied"] for s in samples), "beats_heard": stats["beats"],
        "streams_left": len(composer.open_streams),
        "first_client_errors": first_client_errors[:10],
    }  # fmt: skip
    return {"samples": samples, "summary": summary}


def soak(
    sessions: int = 200,
    minutes: float = 30.0,
    interval_s: float = 60.0,
    *,
    max_sessions: int = 256,
    profile: Profile | None = None,
    seed: int = 0,
    change_every_s: float = 4.0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the soak (see the module docstring): ``sessions`` sessions for ``minutes``, a sample
    every ``interval_s`` (at least two); ``progress`` gets a line per interval. Returns the
    samples and the summary.

    Raises:
        ValueError: fewer than two intervals fit in ``minutes``.
    """
    if minutes * 60 < 2 * interval_s:
        raise ValueError(f"{minutes:g} minutes hold fewer than two intervals of {interval_s:g} s")
    return asyncio.run(
        _soak(
            sessions,
            minutes,
            interval_s,
            max_sessions,
            profile,
            seed,
            change_every_s,
            progress or (lambda _: None),
        )
    )


def format_summary(result: dict[str, Any]) -> str:
    """The soak's summary as lines of text."""
    s = result["summary"]
    rss, fds = s["rss_mib"], s["fds"]
    lines = [
        f"sessions: {s['sessions_held']} of {s['sessions_asked']} held "
        f"({s['sessions_not_held']} refused busy)",
        f"memory (RSS): {rss['first']:.1f} MiB after warm-up -> {rss['last']:.1f} MiB "
        f"({s['rss_growth_pct']:+.2f} %), max {rss['max']:.1f} MiB",
        f"open fds: {fds['first']} -> {fds['last']} ({s['fds_growth_pct']:+.2f} %), max {fds['max']}",
        f"hanging notes: {s['hanging_notes']} (of {s['notes_heard']['on']} note-ons heard) (target 0)"
        + "".join(f"\n  {h}" for h in s["hanging_examples"]),
        f"internal errors: {s['internal_errors']} (target 0)"
        + "".join(f"\n  {e}" for e in s["first_errors"]),
        f"error events to clients: {s['client_error_events'] or 'none'}",
        f"changes: {s['changes']}",
        f"churn: {s['churn']}",
        f"events sent: {s['events']} ({s['late_events']} late); requests applied: {s['requests_applied']}; "
        f"composer streams left open: {s['streams_left']}",
    ]
    return "\n".join(lines)
