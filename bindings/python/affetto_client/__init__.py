"""Python clients for ``affetto serve`` (see bindings/PROTOCOL.md).

* :class:`AffettoClient`: WebSocket (asyncio). Each operation awaits its ``ok`` reply and raises
  :class:`AffettoError` on an ``error`` event (the server checks every argument and says what
  it allows); events (beat, bar, transition, note, volume, ...) go to handlers registered with
  :meth:`AffettoClient.on`, the notes of the ``notes`` output to :meth:`AffettoClient.on_note`
  as :class:`Note` objects, and the readings of story text (:meth:`AffettoClient.text`) to
  :meth:`AffettoClient.on_text` as :class:`TextEvent` objects.
* :class:`OscClient`: OSC over UDP with python-osc, for tools that prefer fire-and-forget; one
  socket sends the operations and receives the events: :meth:`OscClient.subscribe` asks the
  server to send them back to it and :meth:`OscClient.poll` returns those received
  (:meth:`Note.from_osc` and :meth:`TextEvent.from_osc` read the typed ones).

Example::

    async with AffettoClient("ws://127.0.0.1:9001") as music:
        music.on("beat", lambda e: print("downbeat!") if e["downbeat"] else None)
        music.on_note(lambda n: synth.play(n.pitch, n.velocity) if n.is_on else synth.stop(n.pitch))
        await music.subscribe()
        await music.output("notes")  # the session's notes come to on_note, for the game's own synth
        await music.state("combat")
        await music.emotion(-0.4, 0.9, sync="bar")
        await music.volume(0.3, fade_s=2.0, layer="drums")
        music.on_text(lambda t: print(f"scene {t.scene}" + (" (new)" if t.changed else "")))
        await music.text("The wolf howled.")  # ok now; its TextEvent once the line is read
"""

from __future__ import annotations

import asyncio
import itertools
import json
import select
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

#: the output every server has: the session's notes as ``note`` events (``output(NOTES)``)
NOTES = "notes"


@dataclass(frozen=True)
class Note:
    """One note-on or note-off of a session, from its ``notes`` output.

    Attributes:
        channel: the layer's MIDI channel, 0..15.
        pitch: MIDI pitch, 0..127.
        velocity: 1..127 for a note-on, 0 for a note-off.
        layer: the profile layer it belongs to (``"stinger"`` for a stinger's notes).
        time_s: when it sounds on the session's clock (the beat events' clock: seconds of music).
        session: the session's name ("" over OSC, which does not carry it).
    """

    channel: int
    pitch: int
    velocity: int
    layer: str
    time_s: float
    session: str = ""

    @property
    def is_on(self) -> bool:
        return self.velocity > 0

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> Note:
        """From a WebSocket ``note`` event."""
        return cls(
            int(event["channel"]), int(event["pitch"]), int(event["velocity"]), str(event["layer"]),
            float(event["time_s"]), str(event.get("session", "")),
        )  # fmt: skip

    @classmethod
    def from_osc(cls, args: Sequence[Any]) -> Note:
        """From the arguments of an ``/affetto/note`` message (channel, pitch, velocity, time_s, layer)."""
        channel, pitch, velocity, time_s, layer = args[:5]
        return cls(int(channel), int(pitch), int(velocity), str(layer), float(time_s))


#: the quadrants a scene of the story arc is in (``TextEvent.scene``)
SCENES = ("+V+A", "-V+A", "-V-A", "+V-A")


@dataclass(frozen=True)
class TextEvent:
    """The reading of one line of story text (the ``text`` event answering :meth:`AffettoClient.text`
    or :meth:`OscClient.text`), sent to the client that sent the line.

    Attributes:
        valence, arousal: the line's own emotion, each in [-1, 1].
        confidence: how sure the model is of them, in (0, 1].
        scene_valence, scene_arousal: the session's story arc after this line (its scene), in [-1, 1].
        scene: the scene's quadrant, one of :data:`SCENES` (``"-V+A"``: negative valence, high arousal).
        changed: this line began a new scene: the session's emotion moves to the scene's at ``sync``
            (the profile's transition sync point), and a ``transition`` event follows for subscribers.
        sync: where the change lands (``"bar"``, ...); None when not changed, and over OSC.
        time_s: seconds since the session's first line (None over OSC, which does not carry it).
        session: the session's name ("" over OSC).
        id: the request's id (WebSocket), None without one.
    """

    valence: float
    arousal: float
    confidence: float
    scene_valence: float
    scene_arousal: float
    scene: str
    changed: bool
    sync: str | None = None
    time_s: float | None = None
    session: str = ""
    id: Any = None

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> TextEvent:
        """From a WebSocket ``text`` event."""
        sync, time_s = event.get("sync"), event.get("time_s")
        return cls(
            float(event["valence"]), float(event["arousal"]), float(event["confidence"]),
            float(event["scene_valence"]), float(event["scene_arousal"]), str(event["scene"]),
            bool(event["changed"]), None if sync is None else str(sync),
            None if time_s is None else float(time_s), str(event.get("session", "")), event.get("id"),
        )  # fmt: skip

    @classmethod
    def from_osc(cls, args: Sequence[Any]) -> TextEvent:
        """From the arguments of an ``/affetto/text`` event (valence, arousal, confidence,
        scene_valence, scene_arousal, changed (1 or 0), scene)."""
        valence, arousal, confidence, scene_valence, scene_arousal, changed, scene = args[:7]
        return cls(
            float(valence), float(arousal), float(confidence), float(scene_valence), float(scene_arousal),
            str(scene), bool(changed),
        )  # fmt: skip


class AffettoError(Exception):
    """The server answered an operation with an error event."""

    def __init__(self, event: dict[str, Any]) -> None:
        super().__init__(f"{event.get('code')}: {event.get('message')}")
        self.code = str(event.get("code"))
        self.event = event


class AffettoClient:
    """A WebSocket client (one session per connection unless :meth:`session` joins a named one).

    Args:
        url: e.g. ``ws://127.0.0.1:9001``.
        token: the shared secret, when the server is bound beyond loopback.
        timeout_s: how long an operation waits for its reply.
    """

    def __init__(
        self, url: str = "ws://127.0.0.1:9001", *, token: str | None = None, timeout_s: float = 5.0
    ) -> None:
        self.url = url if token is None else f"{url}{'&' if '?' in url else '?'}token={token}"
        self.timeout_s = timeout_s
        self._ws: ClientConnection | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._handlers: dict[str, list[Callable[[dict[str, Any]], None]]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def connect(self) -> dict[str, Any]:
        """Connect and say hello; returns the hello event (see :meth:`hello`)."""
        self._ws = await connect(self.url)
        self._reader = asyncio.create_task(self._read())
        return await self.request("hello")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self._ws is not None:
            await self._ws.close()

    async def __aenter__(self) -> AffettoClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def on(self, event: str, handler: Callable[[dict[str, Any]], None]) -> None:
        """Call ``handler(event_dict)`` for every event of this kind (beat, bar, transition, note,
        volume, status, text, error, ...; events nobody handles are ignored)."""
        self._handlers.setdefault(event, []).append(handler)

    def on_note(self, handler: Callable[[Note], None]) -> None:
        """Call ``handler(note)`` for every note of the ``notes`` output (``output("notes")``, once
        subscribed): a :class:`Note` with its channel, pitch, velocity (0: off), layer and time."""
        self.on("note", lambda event: handler(Note.from_event(event)))

    def on_text(self, handler: Callable[[TextEvent], None]) -> None:
        """Call ``handler(reading)`` with the :class:`TextEvent` of every line this client sent with
        :meth:`text`, once the server has read it (a few ms after its ``ok``; no subscription needed)."""
        self.on("text", lambda event: handler(TextEvent.from_event(event)))

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send one operation and wait for its reply.

        Raises:
            AffettoError: the server answered with an error.
            TimeoutError: no reply within ``timeout_s``.
            RuntimeError: not connected.
        """
        if self._ws is None:
            raise RuntimeError("not connected: call connect() first")
        rid = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        await self._ws.send(
            json.dumps({"op": op, "id": rid, **{k: v for k, v in fields.items() if v is not None}})
        )
        try:
            reply = await asyncio.wait_for(future, self.timeout_s)
        finally:
            self._pending.pop(rid, None)
        if reply.get("event") == "error":
            raise AffettoError(reply)
        return reply

    async def emotion(
        self, valence: float, arousal: float, tension: float | None = None, *, sync: str | None = None,
        seek_per_s: float | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        return await self.request(
            "emotion", valence=valence, arousal=arousal, tension=tension, sync=sync, seek_per_s=seek_per_s
        )

    async def state(self, name: str, *, sync: str | None = None) -> dict[str, Any]:
        return await self.request("state", name=name, sync=sync)

    async def param(self, name: str, value: float) -> dict[str, Any]:
        return await self.request("param", name=name, value=value)

    async def stinger(self, name: str) -> dict[str, Any]:
        return await self.request("stinger", name=name)

    async def leitmotif(self, name: str, notes: list[list[float]] | None = None) -> dict[str, Any]:
        return await self.request("leitmotif", name=name, notes=notes)

    async def transport(self, action: str, value: Any = None) -> dict[str, Any]:
        """``start``, ``stop`` (value: an optional fade-out, seconds in [0, 60]), ``pause``,
        ``resume``, ``tempo`` (BPM in [20, 400], or 0), ``seed`` (int >= 0), ``sync``."""
        return await self.request("transport", action=action, value=value)

    async def start(self) -> dict[str, Any]:
        """Start the music again from bar 0."""
        return await self.transport("start")

    async def stop(self, fade_s: float | None = None) -> dict[str, Any]:
        """Stop (every note released), after a fade-out of ``fade_s`` seconds in [0, 60] if given."""
        return await self.transport("stop", fade_s)

    async def pause(self) -> dict[str, Any]:
        """Hold the music where it is (sounding notes released)."""
        return await self.transport("pause")

    async def resume(self) -> dict[str, Any]:
        """Go on from where :meth:`pause` held it."""
        return await self.transport("resume")

    async def volume(
        self, level: float, *, fade_s: float | None = None, layer: str | None = None
    ) -> dict[str, Any]:
        """``level`` in [0, 1] (1: the profile's mix, 0: silent) for the session, or for ``layer``;
        ``fade_s`` in [0, 60] moves there over that many seconds (None: at once)."""
        return await self.request("volume", level=level, fade_s=fade_s, layer=layer)

    async def session(self, name: str) -> dict[str, Any]:
        return await self.request("session", name=name)

    async def subscribe(self) -> dict[str, Any]:
        return await self.request("subscribe")

    async def unsubscribe(self) -> dict[str, Any]:
        return await self.request("unsubscribe")

    async def output(self, *names: str) -> dict[str, Any]:
        """Play this session into the outputs ``names`` (``"notes"``: its notes to :meth:`on_note`;
        ``"audio"``, ``"midi"``: the server's devices); none: silent."""
        return await self.request("output", outputs=list(names))

    async def text(self, text: str) -> dict[str, Any]:
        """Send one line of story text (1 to 10,000 characters); returns the ``ok`` reply. Its
        reading comes later as a ``text`` event (:meth:`on_text`, or ``on("text", ...)``), with this
        request's id; a line the server cannot read after all comes as an ``error`` event.

        Raises:
            AffettoError: ``unsupported`` (the server has no text emotion model), ``rate_limited``
                (8 lines of this session are waiting to be read), ``busy`` (256 in all), ...
        """
        return await self.request("text", text=text)

    async def status(self) -> dict[str, Any]:
        """The status event: playing, paused, state, emotion (``valence``...: where it is going;
        ``current_valence``...: where the music is), tempo, bar, key, profile, outputs, params,
        states, stingers, leitmotifs, layers, level, layer_levels."""
        return await self.request("status")

    async def sessions(self) -> dict[str, Any]:
        """The sessions event: the sessions open on the server (``names``, ``profiles`` and
        ``sessions``: name, profile, transport, clients; ``more``: how many were not listed).
        Opens no session; join one with :meth:`session`."""
        return await self.request("sessions")

    async def hello(self, *, token: str | None = None, session: str | None = None) -> dict[str, Any]:
        """The hello event (session, version, states, stingers, params, available_outputs,
        layer_names, profile, leitmotifs, param_ranges, sync); ``session`` joins that named session
        first."""
        return await self.request("hello", token=token, session=session)

    async def _read(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            event = json.loads(message)
            rid = event.get("id")
            # a text event carries its line's id but follows the line's ok: never the reply
            reply = isinstance(rid, int) and event.get("event") != "text"
            future = self._pending.get(rid) if reply else None
            if future is not None and not future.done():
                future.set_result(event)
                continue
            for handler in self._handlers.get(str(event.get("event")), []):
                handler(event)


class OscClient:
    """Fire-and-forget OSC client (python-osc: ``pip install 'affetto[client]'``). One UDP
    socket sends the operations and receives the events; once :meth:`subscribe` d it is a
    client of its own on the server, with a session of its own (before that the server counts
    it as its host's, like any one-shot sender).

    Args:
        host, port: the server's OSC address (an IPv4 address or name).

    Raises:
        ModuleNotFoundError: python-osc is not installed.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 9000) -> None:
        from pythonosc.osc_message_builder import OscMessageBuilder  # the WebSocket client works without it

        self._builder = OscMessageBuilder
        self._server = (socket.gethostbyname(host), port)
        self._sock: socket.socket | None = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("0.0.0.0", 0))
        self._sock.setblocking(False)
        self._kept: list[tuple[str, list[Any]]] = []  # received while :meth:`subscribe` waited
        self._confirmed = False

    @property
    def local_port(self) -> int:
        """The UDP port the operations go from and the events come to."""
        return int(self._open().getsockname()[1])

    def _open(self) -> socket.socket:
        if self._sock is None:
            raise RuntimeError("the OSC client is closed")
        return self._sock

    def send(self, op: str, *args: Any) -> None:
        """Send ``/affetto/<op>`` with ``args`` (ints, floats, strings)."""
        builder = self._builder(f"/affetto/{op}")
        for arg in args:
            builder.add_arg(arg)
        self._open().sendto(builder.build().dgram, self._server)

    def emotion(self, valence: float, arousal: float, tension: float | None = None) -> None:
        self.send("emotion", float(valence), float(arousal), *([] if tension is None else [float(tension)]))

    def state(self, name: str) -> None:
        self.send("state", name)

    def stinger(self, name: str) -> None:
        self.send("stinger", name)

    def output(self, *names: str) -> None:
        """Play this session into the outputs ``names`` (``"notes"``: its notes as ``/affetto/note``
        events, see :meth:`Note.from_osc`; ``"audio"``, ``"midi"``); none: silent."""
        self.send("output", *names)

    def volume(self, level: float, fade_s: float | None = None, layer: str | None = None) -> None:
        """``level`` in [0, 1] for the session, or for ``layer``; over ``fade_s`` seconds in [0, 60]."""
        args: list[float | str] = [float(level)]
        if fade_s is not None:
            args.append(float(fade_s))
        if layer is not None:
            args.append(layer)  # "/affetto/volume f s" when there is no fade
        self.send("volume", *args)

    def transport(self, action: str, value: float | int | str | None = None) -> None:
        """``start``, ``stop`` (value: a fade-out in seconds), ``pause``, ``resume``, ``tempo``,
        ``seed`` (an int), ``sync``."""
        self.send("transport", action, *([] if value is None else [value]))

    def session(self, name: str) -> None:
        self.send("session", name)

    def text(self, text: str) -> None:
        """Send one line of story text (1 to 10,000 characters); its reading comes back to
        :meth:`poll` as ``/affetto/text`` (see :meth:`TextEvent.from_osc`), or an ``/affetto/error``."""
        self.send("text", text)

    def status(self) -> None:
        """Ask for the status (``/affetto/status`` comes back to :meth:`poll`)."""
        self.send("status")

    def sessions(self) -> None:
        """Ask for the sessions open on the server (``/affetto/sessions s:names s:profiles`` comes
        back to :meth:`poll`, each list one comma-separated string)."""
        self.send("sessions")

    def hello(self) -> None:
        """Ask for the hello (``/affetto/hello``: session, version, states, stingers, params,
        available outputs, layer names, each list one comma-separated string)."""
        self.send("hello")

    def subscribe(self, timeout_s: float = 2.0) -> int:
        """Ask the server to send events to this client's socket; returns its port.

        The server sends events only once the socket proves it receives them (it echoes the
        ``/affetto/challenge`` nonce, see PROTOCOL.md): this waits up to ``timeout_s`` for the
        challenge and answers it (:meth:`poll` answers one that comes later). What else arrives
        meanwhile is kept for :meth:`poll`.
        """
        port = self.local_port
        self._confirmed = False
        self.send("subscribe", port)
        deadline = time.monotonic() + timeout_s
        while not self._confirmed and time.monotonic() < deadline:
            select.select([self._open()], [], [], max(0.0, deadline - time.monotonic()))
            self._kept.extend(self._receive())
        return port

    def poll(self) -> list[tuple[str, list[Any]]]:
        """Events received since the last poll, as (address, arguments)."""
        out, self._kept = [*self._kept, *self._receive()], []
        return out

    def _receive(self) -> list[tuple[str, list[Any]]]:
        """What the server sent (a subscription's challenge answered at once, not returned)."""
        from pythonosc.osc_message import OscMessage

        out: list[tuple[str, list[Any]]] = []
        while self._sock is not None:
            try:
                data, sender = self._sock.recvfrom(65536)
            except BlockingIOError:
                break
            if sender[0] != self._server[0]:
                continue  # only the server sends events
            msg = OscMessage(data)
            params = list(msg.params)
            if msg.address == "/affetto/challenge" and len(params) == 1 and isinstance(params[0], str):
                self.send("confirm", params[0])
                self._confirmed = True
                continue
            out.append((msg.address, params))
        return out

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
