"""The control surface's page server (``affetto serve --ui``) over real HTTP: the package's files,
nothing else, the token rule beyond loopback. (The page itself, in a browser: tests/ui.)"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from engine.model.composer import Composer
from engine.server.transports import AffettoServer, ServerSettings
from engine.server.ui_page import UI_FILES
from engine.sessions.host import SessionHost

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def composer() -> Iterator[Composer]:
    yield Composer(max_streams=2, intra_op_threads=1)


async def get(url: str) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of a GET (urllib, on a thread: the server runs on this loop)."""

    def fetch() -> tuple[int, dict[str, str], bytes]:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    return await asyncio.get_running_loop().run_in_executor(None, fetch)


@pytest_asyncio.fixture
async def loopback(composer: Composer) -> AsyncIterator[AffettoServer]:
    srv = AffettoServer(SessionHost(composer), ServerSettings(osc_port=0, ws_port=0, ui_port=0))
    await srv.start()
    yield srv
    await srv.close()


@pytest.mark.asyncio
async def test_the_page_and_its_files_are_served_and_nothing_else(loopback: AffettoServer) -> None:
    assert loopback.page is not None
    base = f"http://127.0.0.1:{loopback.page.bound_port}"
    status, headers, body = await get(base + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and b"affetto" in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Cache-Control"] == "no-store"
    for path in UI_FILES:
        status, headers, body = await get(base + path)
        assert status == 200 and int(headers["Content-Length"]) == len(body) > 100, path
    # the page's client is the web binding itself (one file, not a copy)
    _, _, client = await get(base + "/affetto.js")
    assert client == (ROOT / "bindings" / "web" / "affetto.js").read_bytes()
    status, headers, body = await get(base + "/config.json")
    assert status == 200 and json.loads(body) == {
        "ws_port": loopback.ws_port,
        "version": 1,
        "token_required": False,
    }
    for path in ("/nope", "/../pyproject.toml", "/%2e%2e/pyproject.toml", "/ui.js/", "/__init__.py"):
        status, _, _ = await get(base + path)
        assert status == 404, path
    status, _, _ = await get(base + "/?token=anything")  # loopback: no token asked, any ignored
    assert status == 200


@pytest.mark.asyncio
async def test_beyond_loopback_the_page_needs_the_token(composer: Composer) -> None:
    settings = ServerSettings(
        bind="0.0.0.0", osc_port=0, ws_port=0, ui_port=0, token="s3cret", osc_allow=("127.0.0.1",)
    )
    srv = AffettoServer(SessionHost(composer), settings)
    await srv.start()
    try:
        assert srv.page is not None
        base = f"http://127.0.0.1:{srv.page.bound_port}"
        for query in ("", "?token=", "?token=wrong", "?tok=s3cret"):
            status, _, body = await get(base + "/" + query)
            assert status == 401 and b"token" in body, query
        status, _, body = await get(base + "/?token=s3cret")
        assert status == 200 and b"<!doctype html>" in body
        status, _, body = await get(base + "/config.json")  # public: the port, no secret
        assert status == 200 and json.loads(body)["token_required"] is True
    finally:
        await srv.close()
