"""The Python clients and the simulated-game example against a running server."""

from __future__ import annotations

import asyncio
import importlib.util
import time
from pathlib import Path

import pytest
from affetto_client import AffettoClient, AffettoError, OscClient

from engine.model.composer import Composer
from engine.server.transports import AffettoServer, ServerSettings
from engine.sessions.host import SessionHost
from engine.sessions.profile_file import load_profile

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.asyncio
async def test_clients_and_the_simulated_game() -> None:
    composer = Composer(max_streams=4, intra_op_threads=1)
    profile = load_profile(ROOT / "examples" / "profiles" / "action.yaml")
    server = AffettoServer(SessionHost(composer, profile), ServerSettings(osc_port=0, ws_port=0))
    await server.start()
    try:
        url = f"ws://127.0.0.1:{server.ws_port}"
        async with AffettoClient(url) as music:
            with pytest.raises(AffettoError, match="bad_argument: unknown state"):
                await music.state("boss-fight-9000")
            assert (await music.param("health", 20))["event"] == "ok"
        osc = OscClient("127.0.0.1", server.osc_port)
        osc.subscribe()
        osc.emotion(0.5, 0.5)
        deadline = time.monotonic() + 5
        got: list[tuple[str, list]] = []
        while time.monotonic() < deadline and not any(a == "/affetto/beat" for a, _ in got):
            await asyncio.sleep(0.05)
            got += osc.poll()
        osc.close()
        assert any(a == "/affetto/beat" and len(args) == 4 for a, args in got)
        spec = importlib.util.spec_from_file_location(
            "simulated_game", ROOT / "examples" / "simulated_game.py"
        )
        assert spec is not None and spec.loader is not None
        game = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(game)
        counts = await game.play(url, seconds=6.0)
        assert (
            counts["error"] == 0
            and counts["downbeat"] >= 1
            and counts["beat"] >= 6
            and counts["transition"] >= 1
        )
    finally:
        await server.close()
