"""A real ``affetto serve`` subprocess for the tests that drive it from outside (the bindings'
clients, the control surface in a browser), and the tools they need.

A test that needs a program skips when it is missing, but fails instead when the variable that
requires its part is set (CI sets them: ``AFFETTO_REQUIRE_BINDINGS=1`` for the bindings'
compilers and runtimes, ``AFFETTO_REQUIRE_BROWSER=1`` for Chromium and Playwright).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

from engine.server.osc_codec import OscDecodeError, decode_packet, encode_message

ROOT = Path(__file__).resolve().parents[1]
SERVER_START_S = 120.0  # loading the model on a slow CI machine
APT_HINT = {
    "mcs": "mono-mcs",
    "mono": "mono-runtime",
    "node": "nodejs>=20",
    "oscsend": "liblo-tools",
    "oscsendfile": "liblo-tools",
    "oscdump": "liblo-tools",
    "g++": "g++",
    "chromium": "chromium",
}


def required(variable: str) -> bool:
    """Whether ``variable`` (e.g. AFFETTO_REQUIRE_BINDINGS) asks for failures, not skips."""
    return os.environ.get(variable) == "1"


def missing_part(reason: str, variable: str) -> None:
    """Skip with ``reason``, or fail with it when ``variable`` is 1."""
    if required(variable):
        pytest.fail(f"{variable}=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def require_tools(*tools: str, variable: str = "AFFETTO_REQUIRE_BINDINGS") -> None:
    """Skip (or, when ``variable`` is 1, fail) unless every tool is on PATH."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        packages = sorted({APT_HINT.get(tool, tool) for tool in missing})
        missing_part(f"{', '.join(missing)} not found (apt-get install {' '.join(packages)})", variable)


def free_port(kind: int) -> int:
    """A port the OS reports free for ``kind`` (SOCK_DGRAM or SOCK_STREAM) on loopback."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ----------------------------------------------------------------------------------- server
@dataclass
class Server:
    osc_port: int
    ws_port: int
    log: Path

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"


def _osc_status(sock: socket.socket, port: int) -> bool:
    """Whether the OSC port answers /affetto/status within 0.5 s."""
    sock.sendto(encode_message("/affetto/status"), ("127.0.0.1", port))
    try:
        data, _ = sock.recvfrom(65536)
        return any(m.address == "/affetto/status" for m in decode_packet(data))
    except (TimeoutError, ConnectionRefusedError, OscDecodeError):
        return False


def _ws_status(url: str) -> bool:
    """Whether the WebSocket port answers {"op": "status"}."""
    try:
        with connect(url, open_timeout=1.0, close_timeout=1.0) as ws:
            ws.send(json.dumps({"op": "status", "id": 1}))
            reply = json.loads(ws.recv(timeout=1.0))
            return bool(reply.get("event") == "status")
    except (OSError, TimeoutError, WebSocketException):
        return False


@contextlib.contextmanager
def serve(log_dir: Path, idle_timeout_s: float, extra_args: Sequence[str] = ()) -> Iterator[Server]:
    """``affetto serve`` on free ports (and ``extra_args``), ready once both ports answer a
    status request; stopped with SIGINT (it must exit 0)."""
    osc_port, ws_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
    log = log_dir / "serve.log"
    cmd = [sys.executable, "-m", "engine.cli", "serve", "--osc-port", str(osc_port)]
    cmd += ["--ws-port", str(ws_port), "--idle-timeout", str(idle_timeout_s), *extra_args]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    srv = Server(osc_port, ws_port, log)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.settimeout(0.5)
            deadline = time.monotonic() + SERVER_START_S
            osc_ok = ws_ok = False
            while not (osc_ok and ws_ok):
                if proc.poll() is not None:
                    pytest.fail(f"affetto serve exited: {proc.returncode}\n{log.read_text()}", pytrace=False)
                if time.monotonic() > deadline:
                    pytest.fail(f"affetto serve not ready in {SERVER_START_S:g} s:\n{log.read_text()}")
                osc_ok = osc_ok or _osc_status(probe, osc_port)
                ws_ok = ws_ok or _ws_status(srv.ws_url)
                if not (osc_ok and ws_ok):
                    time.sleep(0.2)
        yield srv
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, f"affetto serve exited with {proc.returncode}:\n{log.read_text()}"


def node_command() -> list[str]:
    """``node`` with a global WebSocket: Node 20/21 need --experimental-websocket, 22+ have it."""
    require_tools("node")
    version = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout
    major = int(version.strip().lstrip("v").split(".")[0])
    if major < 20:
        reason = f"node {version.strip()} is too old (the web binding needs Node >= 20)"
        missing_part(reason, "AFFETTO_REQUIRE_BINDINGS")
    has_global = subprocess.run(["node", "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)"])
    return ["node"] if has_global.returncode == 0 else ["node", "--experimental-websocket"]
