"""The first run says it compiles (on stderr), and how long it took; later runs say nothing.

The real compile of everything ``demo`` uses takes about 50 s on a 2-core machine, so the real
cold-cache run here compiles one small module (the output process's ring) through the same code;
the commands' wiring is checked with :func:`engine.realtime.jit.needs_compiling` answering "yes"
(their kernels are then compiled for real, quickly, from the cache).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import engine.realtime.jit
from engine.cli import main

ROOT = Path(__file__).resolve().parents[2]
RING_RUN = """
from engine.commands.first_run import RING_KERNELS, announce_compile
from engine.realtime.row_ring import RowRing

took = announce_compile("test", "the ring", RING_KERNELS, 5, lambda: RowRing(16).close())
print(took is not None)
"""
PORTS = ("--osc-port", "0", "--ws-port", "0")  # serve on any free ports
NOTICE = re.compile(
    r"affetto (\w+): compiling (the synth and scheduler|the scheduler) for this machine "
    r"\(first run only, about (\d+) s\)…\naffetto \1: compiled in \d+ s\n"
)


def test_a_cold_cache_says_it_compiles_and_how_long_then_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CACHE")}
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba")  # empty: nothing is cached

    def run() -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-c", RING_RUN], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        return done

    first = run()
    assert first.stdout == "True\n"  # compiled
    lines = first.stderr.splitlines()
    assert lines[0] == "affetto test: compiling the ring for this machine (first run only, about 5 s)…"
    assert re.fullmatch(r"affetto test: compiled in \d+ s", lines[1]) and len(lines) == 2
    second = run()
    assert second.stdout == "False\n" and second.stderr == ""  # cached: not a word


@pytest.fixture
def cold(monkeypatch: pytest.MonkeyPatch) -> None:
    """:func:`needs_compiling` says the kernels are not cached (they are compiled, from the cache)."""
    monkeypatch.setattr(engine.realtime.jit, "needs_compiling", lambda *modules: True)


@pytest.mark.usefixtures("cold")
def test_demo_says_it_compiles_the_synth_on_stderr_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--out", str(tmp_path), "--quiet"]) == 0
    captured = capsys.readouterr()
    notice = NOTICE.fullmatch(captured.err)
    assert notice is not None, captured.err
    assert notice.groups()[:2] == ("demo", "the synth and scheduler")
    assert captured.out.startswith("wrote ")  # stdout: what it did, as before


@pytest.mark.usefixtures("cold")
def test_serve_compiles_before_it_opens_its_outputs(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["serve", "--virtual-port", "first-run", "--midi-api", "winmm", *PORTS]
    assert main(argv) == 1
    err = capsys.readouterr().err
    notice = NOTICE.match(err)
    assert notice is not None and notice.groups()[:2] == ("serve", "the scheduler"), err
    # then the output process, which cannot open the port here (no Windows MIDI on this machine)
    assert err[notice.end() :].startswith("affetto serve: error: MIDI API 'winmm'"), err


@pytest.mark.usefixtures("cold")
@pytest.mark.parametrize("command", ["serve", "play"])
def test_a_missing_audio_device_is_said_at_once_not_after_compiling(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arc = tmp_path / "arc.yaml"
    arc.write_text("start_state: explore\nend_beat: 4\ncues: []\n")
    argv = {
        "serve": ["serve", "--audio", "--device", "no-such-device-anywhere", *PORTS],
        "play": ["play", "--arc", str(arc), "--device", "no-such-device-anywhere"],
    }[command]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"affetto {command}: error: ") and len(err.splitlines()) == 1, err  # no notice
