"""Python clients for ``affetto serve`` (see bindings/PROTOCOL.md).

* :class:`AffettoClient`: WebSocket (asyncio). Each operation awaits its ``ok`` reply and raises
  :class:`AffettoError` on an ``error`` event; events (beat, bar, transition, ...) go to
  handlers registered with :meth:`AffettoClient.on`.
* :class:`OscClient`: OSC over UDP with python-osc, for tools that prefer fire-and-forget;
  :meth:`OscClient.subscribe` opens a local port and :meth:`OscClient.poll` returns the events
  received there.

Example::

    async with AffettoClient("ws://127.0.0.1:9001") as music:
        music.on("beat", lambda e: print("downbeat!") if e["downbeat"] else None)
        await music.subscribe()
        await music.state("combat")
        await music.emotion(-0.4, 0.9, sync="bar")
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect


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
        """Connect and say hello; returns the hello event (session name, states, stingers)."""
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
        """Call ``handler(event_dict)`` for every event of this kind (beat, bar, transition, error, ...)."""
        self._handlers.setdefault(event, []).append(handler)

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
        return await self.request("transport", action=action, value=value)

    async def session(self, name: str) -> dict[str, Any]:
        return await self.request("session", name=name)

    async def subscribe(self) -> dict[str, Any]:
        return await self.request("subscribe")

    async def output(self, *names: str) -> dict[str, Any]:
        """Play this session into the server's outputs ``names`` ("audio", "midi"); none: silent."""
        return await self.request("output", outputs=list(names))

    async def status(self) -> dict[str, Any]:
        return await self.request("status")

    async def _read(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            event = json.loads(message)
            rid = event.get("id")
            future = self._pending.get(rid) if isinstance(rid, int) else None
            if future is not None and not future.done():
                future.set_result(event)
                continue
            for handler in self._handlers.get(str(event.get("event")), []):
                handler(event)


class OscClient:
    """Fire-and-forget OSC client (python-osc: ``pip install 'affetto[client]'``). One UDP
    socket: a session of its own on the server.

    Args:
        host, port: the server's OSC address.

    Raises:
        ModuleNotFoundError: python-osc is not installed.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 9000) -> None:
        from pythonosc.udp_client import SimpleUDPClient  # the WebSocket client works without it

        self._udp = SimpleUDPClient(host, port)
        self._listen: socket.socket | None = None

    def send(self, op: str, *args: Any) -> None:
        """Send ``/affetto/<op>`` with ``args`` (ints, floats, strings)."""
        self._udp.send_message(f"/affetto/{op}", list(args))

    def emotion(self, valence: float, arousal: float, tension: float | None = None) -> None:
        self.send("emotion", float(valence), float(arousal), *([] if tension is None else [float(tension)]))

    def state(self, name: str) -> None:
        self.send("state", name)

    def stinger(self, name: str) -> None:
        self.send("stinger", name)

    def output(self, *names: str) -> None:
        """Play this session into the server's outputs ``names`` ("audio", "midi"); none: silent."""
        self.send("output", *names)

    def subscribe(self) -> int:
        """Open a local port, ask the server to send events there; returns the port."""
        if self._listen is None:
            self._listen = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._listen.bind(("127.0.0.1", 0))
            self._listen.setblocking(False)
        port = int(self._listen.getsockname()[1])
        self.send("subscribe", port)
        return port

    def poll(self) -> list[tuple[str, list[Any]]]:
        """Events received since the last poll, as (address, arguments)."""
        from pythonosc.osc_message import OscMessage

        out: list[tuple[str, list[Any]]] = []
        while self._listen is not None:
            try:
                data = self._listen.recv(65536)
            except BlockingIOError:
                break
            msg = OscMessage(data)
            out.append((msg.address, list(msg.params)))
        return out

    def close(self) -> None:
        if self._listen is not None:
            self._listen.close()
            self._listen = None
