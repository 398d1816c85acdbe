"""The control surface (``affetto serve --ui``) in a real browser against a real ``affetto serve``:
Playwright (npm, ``tests/ui/package.json``) drives Debian's headless Chromium through
tests/ui/control_surface.mjs, which reads what the page did back over the protocol with a second
client. Skipped without Chromium, Node.js >= 20 or Playwright (``npm ci --prefix tests/ui``);
failed instead under ``AFFETTO_REQUIRE_BROWSER=1`` (CI sets it)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from served import free_port, missing_part, node_command, serve

HERE = Path(__file__).resolve().parent
VARIABLE = "AFFETTO_REQUIRE_BROWSER"
TEXT_MODEL = HERE.parents[1] / "models" / "text_emotion" / "manifest.json"


def chromium() -> str:
    """The Chromium to drive (``AFFETTO_CHROMIUM``, else ``chromium`` on PATH)."""
    path = os.environ.get("AFFETTO_CHROMIUM") or shutil.which("chromium")
    if not path:
        missing_part("chromium not found (apt-get install chromium)", VARIABLE)
    if not (HERE / "node_modules" / "playwright-core").is_dir():
        missing_part("Playwright is not installed (npm ci --prefix tests/ui)", VARIABLE)
    return str(path)


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One visit of the page, start to end (control_surface.mjs), and what it observed."""
    browser = chromium()
    node = node_command()
    out = tmp_path_factory.mktemp("ui")
    ui_port = free_port(socket.SOCK_STREAM)
    with serve(out, idle_timeout_s=30.0, extra_args=["--ui", "--ui-port", str(ui_port)]) as server:
        cmd = [
            *node,
            str(HERE / "control_surface.mjs"),
            f"http://127.0.0.1:{ui_port}/",
            server.ws_url,
            str(out),
        ]
        env = {**os.environ, "AFFETTO_CHROMIUM": browser}
        proc = subprocess.run(
            cmd, cwd=HERE, capture_output=True, text=True, timeout=180, env=env, check=False
        )
        assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        result["screenshot"] = out / "control_surface.png"
        result["serveLog"] = server.log
        yield result


def test_the_page_connects_and_shows_its_session(observed: dict[str, Any]) -> None:
    assert observed["consoleErrors"] == [] and observed["errors"] == []
    session = observed["session"]
    assert observed["shownSession"] == f"{session} · default"
    assert observed["listed"] == [session]  # the protocol lists the session the page opened
    assert observed["shownState"] == "explore"
    load = observed["load"]
    assert load["files"] == 7 and load["bytes"] < 200_000  # the page, its css, 4 modules, config


def test_the_beat_lamp_follows_the_beats(observed: dict[str, Any]) -> None:
    lamp = observed["lamp"]
    assert lamp["beats"] >= 3  # 3 s at 99 BPM
    assert lamp["on"] > 0 and lamp["beat"] > lamp["on"]  # downbeats lit, other beats dimmer
    bar, beat = (int(x) for x in lamp["position"].split(":"))
    assert bar >= 1 and 1 <= beat <= 4


def test_the_pad_and_keys_move_the_sessions_emotion(observed: dict[str, Any]) -> None:
    assert observed["padStatus"]["valence"] == pytest.approx(-0.8, abs=0.02)
    assert observed["padStatus"]["arousal"] == pytest.approx(0.8, abs=0.02)
    assert observed["keyDelta"] == pytest.approx(0.1, abs=1e-6)
    moves = observed["padToNote"]
    assert len(moves) >= 3 and all(m["arrivalMs"] >= 0 for m in moves)
    assert all(m["soundMs"] is not None and m["soundMs"] >= m["arrivalMs"] - 1 for m in moves[1:])


def test_a_state_button_lands_at_its_sync_point(observed: dict[str, Any]) -> None:
    assert observed["stateLanded"] % 4 == 0  # sync bar: a downbeat
    assert observed["stateStatus"] == "combat" and observed["stateShown"] == "combat"


def test_the_piano_roll_receives_and_draws_notes_and_the_browser_hears_them(observed: dict[str, Any]) -> None:
    roll = observed["roll"]
    assert roll["received"] > 20 and roll["litPixels"] > 500
    # combat brings the drums in; the pitched layers are bands of one stream (issue 15): some of them
    assert "drums" in roll["layers"] and len(roll["layers"]) >= 3
    # the live Web Audio graph is not silent while notes arrive (listened to for up to 10 s)
    heard = f"{observed['notesHeard']} notes in {observed['liveListenS']} s; the server's log ends:\n"
    heard += observed["serveLog"].read_text()[-2000:]
    assert observed["notesHeard"] > 0 and observed["liveLevelMax"] > 1e-3, heard
    assert observed["offlineRms"] > 1e-3  # the synth, rendered by an OfflineAudioContext


def test_typed_text_yields_a_text_event(observed: dict[str, Any]) -> None:
    if not TEXT_MODEL.is_file():
        pytest.skip("no text emotion model (models/text_emotion)")
    text = observed["text"]
    assert text["event"] == "text" and text["scene"] in ("+V+A", "-V+A", "-V-A", "+V-A")
    assert -1 <= text["valence"] <= 1 and -1 <= text["arousal"] <= 1
    assert observed["textShown"].startswith("The wolves closed in") and "scene" in observed["textShown"]


def test_no_note_is_left_hanging_on_the_page(observed: dict[str, Any]) -> None:
    """Every note the roll (and the synth: the same note events) still holds began moments ago:
    after pad moves at ``immediate`` (which cut sounding notes) every note-off arrived."""
    assert all(n["heldS"] < 6.0 for n in observed["held"]), observed["held"]


def test_sessions_open_from_the_page_are_listed_and_joined(observed: dict[str, Any]) -> None:
    assert sorted(observed["bothListed"]) == sorted([observed["session"], "stage-2"])
    png = observed["screenshot"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
