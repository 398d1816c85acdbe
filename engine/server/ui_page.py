"""``affetto serve --ui``: the control surface's page over HTTP (static files from the package).

The page (``engine/ui/``) speaks only the WebSocket protocol (bindings/PROTOCOL.md), through the
web binding (``affetto.js``, the same file as ``bindings/web/affetto.js``). This server only hands
out its files: GET (and HEAD) of a fixed set of paths, read once at start, plus ``config.json``,
which tells the page the WebSocket port. HTTP is parsed by ``websockets`` (its limits: request
line and headers at most 8 KiB each, 128 headers, 10 s to send them); every connection is closed
after one answer.

Security: like the WebSocket, the page is on loopback by default; bound beyond it, the page
(``/``) is served only with the server's token (``/?token=...``, which the page passes on to the
WebSocket). The other files are the package's own, the same for everyone.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from http import HTTPStatus
from importlib import resources
from typing import Final
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from engine.server.protocol import PROTOCOL_VERSION, event_json

#: path -> (file in engine/ui, content type); "/" is the page
UI_FILES: Final = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/ui.css": ("ui.css", "text/css; charset=utf-8"),
    "/ui.js": ("ui.js", "text/javascript; charset=utf-8"),
    "/views.js": ("views.js", "text/javascript; charset=utf-8"),
    "/synth.js": ("synth.js", "text/javascript; charset=utf-8"),
    "/affetto.js": ("affetto.js", "text/javascript; charset=utf-8"),
}
#: the page loads only its own files and talks only WebSocket (to the server's port)
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def read_ui_files() -> dict[str, tuple[bytes, str]]:
    """The page's files from the package: path -> (bytes, content type).

    Raises:
        FileNotFoundError: a file is missing from the package (a broken install).
    """
    root = resources.files("engine.ui")
    return {path: ((root / name).read_bytes(), kind) for path, (name, kind) in UI_FILES.items()}


@dataclass
class PageServer:
    """Serves the control surface's page (see the module docstring).

    Args:
        bind: the address to listen on (the server's).
        port: the TCP port (0: pick a free one).
        ws_port: the WebSocket port the page connects to.
        token: the server's token; required in the page's URL when ``token_required``.
        token_required: bound beyond loopback.
    """

    bind: str
    port: int
    ws_port: int
    token: str | None = None
    token_required: bool = False

    def __post_init__(self) -> None:
        self._files = read_ui_files()
        config = {"ws_port": self.ws_port, "version": PROTOCOL_VERSION, "token_required": self.token_required}
        self._files["/config.json"] = (event_json(config).encode(), "application/json")
        self._server: Server | None = None

    async def start(self) -> None:
        """Listen (raises OSError if the port is in use)."""
        self._server = await serve(
            self._never_called, self.bind, self.port, process_request=self._answer, server_header=None
        )

    @property
    def bound_port(self) -> int:
        assert self._server is not None
        return int(next(iter(self._server.sockets)).getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _never_called(self, ws: ServerConnection) -> None:  # every request is answered over HTTP
        await ws.close(1008, "this port serves the page; the WebSocket is on its own port")

    def _answer(self, connection: ServerConnection, request: Request) -> Response:
        """The answer to one GET: a file, 401 without the token, 404 for anything else."""
        url = urlsplit(request.path)
        path = "/" if url.path in ("", "/index.html") else url.path
        found = self._files.get(path)
        if found is None:
            return _response(
                HTTPStatus.NOT_FOUND, b"not found: the page is at /\n", "text/plain; charset=utf-8"
            )
        if path == "/" and self.token_required:
            given = parse_qs(url.query).get("token", [""])[0].encode()
            expected = (self.token or "").encode()
            if not expected or not hmac.compare_digest(given, expected):
                body = b"this server is beyond loopback: open the page with /?token=<the server's token>\n"
                return _response(HTTPStatus.UNAUTHORIZED, body, "text/plain; charset=utf-8")
        body, kind = found
        return _response(HTTPStatus.OK, body, kind)


def _response(status: HTTPStatus, body: bytes, kind: str) -> Response:
    headers = Headers(
        [
            ("Content-Type", kind),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
            ("Connection", "close"),
        ]
    )
    return Response(status.value, status.phrase, headers, body)
