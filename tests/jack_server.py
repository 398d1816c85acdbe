"""JACK test infrastructure: real MIDI and audio ports without a sound card.

* :class:`JackServer` starts ``jackd`` headless (dummy driver, monitor ports on, real-time
  scheduling where permitted) under a unique server name and exports ``JACK_DEFAULT_SERVER``
  (plus ``JACK_NO_START_SERVER=1``) in ``os.environ`` while it runs, so rtmidi, PortAudio and
  the JACK tools started from this process talk to it.
* :class:`MidiCapture` runs a python-rtmidi JACK input client in a subprocess, connected to a
  MIDI output port, and returns its events as ``(time_s, bytes)``; ``time_s`` is CLOCK_MONOTONIC
  (``time.monotonic()``) taken in the JACK cycle that delivers the event. rtmidi's JACK output
  delivers each message at the start of the next JACK period, so arrival times are quantised to
  ``period_frames`` (10.7 ms at 512 frames / 48 kHz).
* :class:`AudioCapture` runs ``jack_rec`` on audio output ports (by default the dummy driver's
  ``system:monitor_1/2``, which carry exactly what reaches ``system:playback_1/2``, one period
  late) and returns the samples as float32. The driver fills a monitor port only while it is
  connected, so the first ``period_frames`` frames of a monitor recording are always silent.

Needs Debian's ``jackd2`` package (jackd, jack_lsp, jack_connect, jack_rec) and python-rtmidi
built with JACK support (the PyPI wheel is).
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import wave
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import numpy as np

__all__ = [
    "JACK_TOOLS",
    "AudioCapture",
    "JackError",
    "JackServer",
    "MidiCapture",
    "gc_paused",
    "jack_available",
    "measure_without_glitches",
]

#: Programs this module runs (all in Debian's jackd2 package).
JACK_TOOLS = ("jackd", "jack_lsp", "jack_connect", "jack_rec")
MONITOR_PORTS = ("system:monitor_1", "system:monitor_2")
PLAYBACK_PORTS = ("system:playback_1", "system:playback_2")
_POLL_S = 0.02
T = TypeVar("T")
_XRUN_CLIENT = re.compile(r"JackEngine::XRun: client = (\S+) was not finished")


class JackError(RuntimeError):
    """The JACK server or a JACK tool failed (the message carries its output)."""


def jack_available() -> tuple[bool, str]:
    """Whether the JACK server and tools are installed.

    Returns:
        ``(True, "path to jackd")`` or ``(False, reason naming the missing programs)``.
    """
    missing = [tool for tool in JACK_TOOLS if shutil.which(tool) is None]
    if missing:
        return False, f"JACK not installed: {', '.join(missing)} not on PATH (apt-get install jackd2)"
    return True, str(shutil.which("jackd"))


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class JackServer:
    """A headless ``jackd`` (dummy driver) under a unique name, as a context manager.

    Args:
        name: server name; default ``affetto-<8 random hex digits>``.
        sample_rate_hz: the dummy driver's rate in Hz.
        period_frames: frames per JACK period (the dummy driver paces periods in real time).
            512 by default: on a virtual machine even a SCHED_FIFO thread on an idle host wakes
            up to ~8 ms late now and then (``cyclictest -p 80 -i 1000``: max 7.6 ms here), which
            at 256-frame (5.3 ms) periods is an xrun that the code under test did not cause.
        start_timeout_s: how long to wait for the server to accept clients, in seconds.
        realtime: run jackd and its clients' process threads with SCHED_FIFO (``--realtime``),
            so other processes on a busy machine cannot make them miss periods (xruns). Where
            real-time scheduling is not permitted jackd says so in its log and runs normally.

    Raises:
        ValueError: a number is out of range, or ``name`` is empty, longer than 63 characters or
            exactly 24 (libjack 1.9.21 aborts every client of such a server).
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        sample_rate_hz: int = 48_000,
        period_frames: int = 512,
        start_timeout_s: float = 10.0,
        realtime: bool = True,
    ) -> None:
        if not 8_000 <= sample_rate_hz <= 192_000:
            raise ValueError(f"sample_rate_hz must be in 8000..192000, got {sample_rate_hz}")
        if period_frames < 16 or period_frames & (period_frames - 1):
            raise ValueError(f"period_frames must be a power of two >= 16, got {period_frames}")
        if name is not None and (not 0 < len(name) <= 63 or len(name) == 24):
            # libjack 1.9.21 (Debian 12) aborts every client of a server whose name is exactly
            # 24 characters long (malloc assertion in jack_client_open).
            raise ValueError(f"name must be 1..63 characters and not 24 (libjack bug), got {name!r}")
        self.name = name or f"affetto-{uuid.uuid4().hex[:8]}"
        self.sample_rate_hz = sample_rate_hz
        self.period_frames = period_frames
        self.start_timeout_s = start_timeout_s
        self.realtime = realtime
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None
        self._saved_env: dict[str, str | None] = {}

    @property
    def period_s(self) -> float:
        """One JACK period in seconds."""
        return self.period_frames / self.sample_rate_hz

    @property
    def running(self) -> bool:
        """True while our jackd process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def log(self) -> str:
        """jackd's output so far."""
        if self._log_path is None or not self._log_path.exists():
            return ""
        return self._log_path.read_text(errors="replace")

    def log_mark(self) -> int:
        """A position in jackd's log, for :meth:`glitches_since`."""
        return len(self.log())

    def glitches_since(self, mark: int) -> list[str]:
        """Server-side xruns logged since ``mark``: the late client's name, ``"driver"`` for the
        dummy driver's own thread waking late (the machine, not a client)."""
        culprits = []
        for line in self.log()[mark:].splitlines():
            match = _XRUN_CLIENT.search(line)
            if match:
                culprits.append(match.group(1))
            elif "JackTimedDriver::Process XRun" in line:
                culprits.append("driver")
        return culprits

    def start(self) -> JackServer:
        """Start jackd and wait until it accepts clients; export its name in ``os.environ``.

        Returns:
            self.

        Raises:
            JackError: jackd is missing, exits, or does not become ready in ``start_timeout_s``.
        """
        if self._proc is not None:
            return self
        ok, reason = jack_available()
        if not ok:
            raise JackError(reason)
        fd, log_name = tempfile.mkstemp(prefix=f"{self.name}-", suffix=".log")
        self._log_path = Path(log_name)
        cmd = [
            "jackd", *(["--realtime", "--realtime-priority", "70"] if self.realtime else ["--no-realtime"]),
            "--name", self.name,
            "-d", "dummy", "--rate", str(self.sample_rate_hz), "--period", str(self.period_frames),
            "--monitor", "--capture", "2", "--playback", "2",
        ]  # fmt: skip
        env = {**os.environ, "JACK_NO_AUDIO_RESERVATION": "1"}
        with os.fdopen(fd, "wb") as log:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
        atexit.register(self.stop)
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise JackError(f"jackd exited with {code} on start: {' '.join(cmd)}\n{_tail(self.log())}")
            probe = subprocess.run(
                ["jack_lsp", "--server", self.name],
                capture_output=True,
                text=True,
                env=self.env(),
                check=False,
            )
            if probe.returncode == 0 and PLAYBACK_PORTS[0] in probe.stdout.split():
                break
            if time.monotonic() > deadline:
                self.stop()
                raise JackError(
                    f"jackd not ready after {self.start_timeout_s} s; jack_lsp said: "
                    f"{_tail(probe.stderr, 3)}\njackd said: {_tail(self.log())}"
                )
            time.sleep(_POLL_S)
        for key, value in (("JACK_DEFAULT_SERVER", self.name), ("JACK_NO_START_SERVER", "1")):
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value
        self._rescan_portaudio()
        return self

    def stop(self) -> None:
        """Restore the environment, let PortAudio drop its JACK client, stop jackd. Idempotent.

        jackd gets SIGTERM, then SIGKILL after 5 s. Close every stream/port on this server first.
        """
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        had_env, self._saved_env = bool(self._saved_env), {}
        proc, self._proc = self._proc, None
        if had_env:
            self._rescan_portaudio()
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
            atexit.unregister(self.stop)
        if self._log_path is not None:
            self._log_path.unlink(missing_ok=True)
            self._log_path = None

    @staticmethod
    def _rescan_portaudio() -> None:
        """PortAudio scans host APIs once: refresh it if sounddevice is already imported."""
        if "sounddevice" not in sys.modules:
            return
        from engine.outputs.audio_stream import rescan_devices

        rescan_devices()

    def env(self) -> dict[str, str]:
        """An environment for subprocesses that must use this server."""
        return {**os.environ, "JACK_DEFAULT_SERVER": self.name, "JACK_NO_START_SERVER": "1"}

    def _run(self, *args: str) -> str:
        result = subprocess.run(list(args), capture_output=True, text=True, env=self.env(), check=False)
        if result.returncode != 0:
            raise JackError(
                f"{' '.join(args)} failed ({result.returncode}): {_tail(result.stderr + result.stdout)}"
            )
        return result.stdout

    def ports(self, *filters: str) -> list[str]:
        """Port names (``client:port``) containing every filter string (``jack_lsp``)."""
        out = self._run("jack_lsp", "--server", self.name, *filters)
        return [line.strip() for line in out.splitlines() if line.strip()]

    def port_types(self) -> dict[str, str]:
        """Port name -> type (``"32 bit float mono audio"`` or ``"8 bit raw midi"``)."""
        lines = self._run("jack_lsp", "--server", self.name, "--type").splitlines()
        return {name.strip(): kind.strip() for name, kind in zip(lines[::2], lines[1::2], strict=False)}

    def connections(self) -> dict[str, list[str]]:
        """Port name -> the ports it is connected to (``jack_lsp -c``)."""
        result: dict[str, list[str]] = {}
        current = ""
        for line in self._run("jack_lsp", "--server", self.name, "--connections").splitlines():
            if line[:1].isspace():
                result[current].append(line.strip())
            elif line.strip():
                current = line.strip()
                result[current] = []
        return result

    def connect(self, source: str, destination: str) -> None:
        """Connect an output port to an input port.

        Raises:
            JackError: a port does not exist or the connection fails.
        """
        self._run("jack_connect", "--server", self.name, source, destination)

    def settle(self) -> None:
        """Sleep three periods: a connection or new port is live in the process cycle only after
        the server has swapped in the new graph, which ``jack_connect`` returning does not imply."""
        time.sleep(max(0.01, 3 * self.period_s))

    def wait_for_port(self, name: str, timeout_s: float = 5.0) -> None:
        """Wait until a port called ``name`` exists.

        Raises:
            JackError: it does not appear in ``timeout_s`` seconds (lists the ports that exist).
        """
        deadline = time.monotonic() + timeout_s
        while name not in self.ports():
            if time.monotonic() > deadline:
                raise JackError(f"JACK port {name!r} did not appear in {timeout_s} s; ports: {self.ports()}")
            time.sleep(_POLL_S)

    def __enter__(self) -> JackServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        mode = "realtime" if self.realtime else "non-realtime"
        frames = f"{self.sample_rate_hz} Hz, {self.period_frames} frames"
        return f"JackServer({self.name!r}, {frames}, {mode}, {state})"


# The capture client, run as ``python -c`` in its own process (no GIL shared with the test):
# a python-rtmidi JACK input port; every message is stamped with time.monotonic() inside the
# JACK process cycle that delivers it, queued, and printed as "<seconds> <hex bytes>" by the
# main thread. "ready" is printed once the client is active and its port exists.
_MIDI_CAPTURE_SCRIPT = """
import signal, sys, threading, time
import rtmidi

pending, lock, wake, stop = [], threading.Lock(), threading.Event(), threading.Event()

def on_message(event, data):
    stamp = time.monotonic()
    with lock:
        pending.append((stamp, event[0]))
    wake.set()

signal.signal(signal.SIGINT, lambda *args: stop.set())
midi_in = rtmidi.MidiIn(rtapi=rtmidi.API_UNIX_JACK, name=sys.argv[1])
midi_in.ignore_types(sysex=False, timing=False, active_sense=False)
midi_in.set_callback(on_message)
midi_in.open_virtual_port("input")
print("ready", flush=True)
while True:
    wake.wait(0.05)
    wake.clear()
    with lock:
        batch = pending[:]
        pending.clear()
    for stamp, msg in batch:
        sys.stdout.write(f"{stamp:.6f} {bytes(msg).hex()}\\n")
    sys.stdout.flush()
    if stop.is_set() and not batch:
        break
midi_in.cancel_callback()
midi_in.delete()
"""


def _parse_capture_line(line: str) -> tuple[float, bytes] | None:
    """``"12.345678 903c64"`` -> ``(12.345678, b"\\x90\\x3c\\x64")``; None for other lines."""
    stamp, _, data = line.strip().partition(" ")
    try:
        return float(stamp), bytes.fromhex(data)
    except ValueError:
        return None


class MidiCapture:
    """A JACK MIDI input client (python-rtmidi, in a subprocess) listening to an output port.

    ``jack_midi_dump`` is not used: it registers its port, then ``mlockall``s a ~400 MB ring
    buffer, and only then activates, so nothing tells when it starts listening and events sent
    in between are silently lost. This client prints "ready" once it is active.

    Event times are ``time.monotonic()`` of the capture process, taken in the JACK cycle that
    delivers the event (CLOCK_MONOTONIC: comparable with ``time.monotonic()`` in the test).

    Args:
        server: the running :class:`JackServer`.
        source: MIDI output port to connect (e.g. ``"affetto:affetto"``), or None to connect
            later with :meth:`connect`.
        client_name: the capture's JACK client name (its port is ``<client_name>:input``).
    """

    def __init__(
        self, server: JackServer, source: str | None = None, *, client_name: str | None = None
    ) -> None:
        self.server = server
        self.source = source
        self.client_name = client_name or f"midicap-{uuid.uuid4().hex[:6]}"
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._events: list[tuple[float, bytes]] = []
        self._cond = threading.Condition()
        self._ready = threading.Event()
        self.other_lines: list[str] = []  # anything that is not an event (library warnings)

    @property
    def input_port(self) -> str:
        """The capture's JACK input port."""
        return f"{self.client_name}:input"

    def start(self, timeout_s: float = 10.0) -> MidiCapture:
        """Start the capture client, wait until it listens, connect ``source`` if given.

        Raises:
            JackError: the client does not start, or the connection fails.
        """
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _MIDI_CAPTURE_SCRIPT, self.client_name],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            env=self.server.env(),
        )
        self._reader = threading.Thread(target=self._read, name="MidiCapture reader", daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout_s
        while not self._ready.wait(0.05):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise JackError(f"MIDI capture client did not start: {_tail(''.join(self.other_lines))}")
        try:
            if self.source is not None:
                self.connect(self.source)
        except JackError:
            self.stop()
            raise
        return self

    def connect(self, source: str) -> None:
        """Connect a MIDI output port to the capture; returns once the connection carries events."""
        self.server.connect(source, self.input_port)
        self.server.settle()

    def _read(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        for line in proc.stdout:
            if line.strip() == "ready":
                self._ready.set()
                continue
            parsed = _parse_capture_line(line)
            if parsed is None:
                self.other_lines.append(line)
                continue
            with self._cond:
                self._events.append(parsed)
                self._cond.notify_all()

    @property
    def events(self) -> list[tuple[float, bytes]]:
        """Events received so far: ``(time_s, message bytes)``, ``time_s`` on CLOCK_MONOTONIC."""
        with self._cond:
            return list(self._events)

    def wait_for(self, count: int, timeout_s: float = 5.0) -> list[tuple[float, bytes]]:
        """Wait until at least ``count`` events arrived (or the timeout); return all events."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while len(self._events) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return list(self._events)

    def wait_quiet(self, quiet_s: float = 0.2, timeout_s: float = 5.0) -> list[tuple[float, bytes]]:
        """Wait until no event arrived for ``quiet_s`` seconds (or the timeout); return all events."""
        deadline = time.monotonic() + timeout_s
        seen = -1
        while time.monotonic() < deadline:
            now = len(self.events)
            if now == seen:
                break
            seen = now
            time.sleep(quiet_s)
        return self.events

    def stop(self) -> None:
        """Stop the client (SIGINT: it prints what is queued and closes; SIGKILL after 5 s). Idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self._reader is not None:
            self._reader.join(timeout=5)
            self._reader = None

    def __enter__(self) -> MidiCapture:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class AudioCapture:
    """``jack_rec`` recording audio output ports to a 32-bit wav; a context manager.

    Recording starts once ``jack_rec`` is connected (``start`` / ``__enter__`` wait for that);
    :meth:`wait` (called by ``__exit__`` too) waits for the end and loads the samples.

    Args:
        server: the running :class:`JackServer`.
        ports: audio output ports to record, one wav channel each; default the dummy driver's
            monitor ports (what reaches ``system:playback_1/2``).
        duration_s: seconds to record; ``jack_rec`` takes whole seconds, so this is rounded up.
        path: the wav file; default a temporary file removed after loading.
    """

    def __init__(
        self,
        server: JackServer,
        ports: Sequence[str] = MONITOR_PORTS,
        *,
        duration_s: float = 1.0,
        path: str | os.PathLike[str] | None = None,
    ) -> None:
        if not ports:
            raise ValueError("ports must name at least one JACK audio output port")
        if not 0 < duration_s <= 600:
            raise ValueError(f"duration_s must be in (0, 600], got {duration_s}")
        self.server = server
        self.ports = list(ports)
        self.duration_s = math.ceil(duration_s)
        self._keep = path is not None
        self.path = (
            Path(path) if path is not None else Path(tempfile.mkdtemp(prefix="jackrec-")) / "capture.wav"
        )
        self._proc: subprocess.Popen[str] | None = None
        self._samples: np.ndarray | None = None

    def start(self) -> AudioCapture:
        """Start ``jack_rec`` and wait until it is connected to every port (recording has begun).

        Raises:
            JackError: a port does not exist, or jack_rec fails to start or connect.
        """
        missing = [port for port in self.ports if port not in self.server.ports()]
        if missing:
            raise JackError(f"cannot record {missing}: no such JACK ports; ports: {self.server.ports()}")
        self._proc = subprocess.Popen(
            ["jack_rec", "-f", str(self.path), "-d", str(self.duration_s), "-b", "32", *self.ports],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.server.env(),
        )
        deadline = time.monotonic() + 5.0
        while True:
            links = self.server.connections()
            if all(any(peer.startswith("jackrec") for peer in links.get(port, [])) for port in self.ports):
                self.server.settle()
                return self
            if self._proc.poll() is not None or time.monotonic() > deadline:
                output = self._finish()
                raise JackError(f"jack_rec did not start recording {self.ports}: {_tail(output)}")
            time.sleep(_POLL_S)

    def _finish(self, timeout_s: float = 10.0) -> str:
        proc, self._proc = self._proc, None
        if proc is None:
            return ""
        try:
            output, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate(timeout=5)
        return output or ""

    def wait(self, timeout_s: float | None = None) -> np.ndarray:
        """Wait for the recording to end and return it.

        Args:
            timeout_s: seconds to wait; default the duration plus 10 s.

        Returns:
            ``(frames, len(ports))`` float32 samples in [-1, 1].

        Raises:
            JackError: jack_rec failed or wrote no readable wav.
        """
        if self._samples is not None:
            return self._samples
        output = self._finish(timeout_s if timeout_s is not None else self.duration_s + 10.0)
        try:
            with wave.open(str(self.path), "rb") as wav:
                width, channels, frames = wav.getsampwidth(), wav.getnchannels(), wav.getnframes()
                raw = wav.readframes(frames)
        except (OSError, EOFError, wave.Error) as exc:
            raise JackError(
                f"jack_rec wrote no readable wav at {self.path} ({exc}): {_tail(output)}"
            ) from exc
        finally:
            if not self._keep:
                with contextlib.suppress(OSError):
                    self.path.unlink()
                    self.path.parent.rmdir()
        if width != 4:
            raise JackError(f"expected 32-bit PCM from jack_rec -b 32, got {8 * width}-bit")
        data = np.frombuffer(raw, dtype="<i4").reshape(-1, channels)
        self._samples = (data / 2.0**31).astype(np.float32)
        return self._samples

    def __enter__(self) -> AudioCapture:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.wait()
        else:
            proc, self._proc = self._proc, None
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # closes its JACK client (the wav is abandoned)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)


def measure_without_glitches(
    server: JackServer,
    measure: Callable[[], T],
    *,
    ours: str = "",
    attempts: int = 5,
    pause_s: float = 1.0,
) -> T:
    """Run a timing measurement until the JACK server logs no xrun during it.

    On a shared machine (a CI host whose neighbours steal its CPUs) the whole machine can stall:
    the dummy driver's real-time thread then wakes late, or every client misses the same period.
    JACK reports an xrun to every client and may drop that period's data, so the measurement
    proves nothing either way: it is repeated after ``pause_s`` (stalls come in bursts).

    Args:
        server: the server.
        measure: performs one measurement and returns its result (asserting nothing yet).
        ours: client-name prefix of the code under test (e.g. ``"PortAudio"``): if only that
            client was late, fail at once instead of retrying.
        attempts: how many measurements to try.
        pause_s: seconds to wait after a stalled attempt before the next.

    Returns:
        The first result measured without a server-side xrun.

    Raises:
        AssertionError: the client under test alone missed a period.
        pytest.skip.Exception: every attempt was a machine-wide stall (the driver or another
            client late as well): timing cannot be measured on this machine right now. The
            reason names what was late in each attempt.
    """
    import pytest

    stalls: list[list[str]] = []
    for attempt in range(attempts):
        mark = server.log_mark()
        result = measure()
        glitches = server.glitches_since(mark)
        if not glitches:
            return result
        late_ours = [name for name in glitches if ours and name.startswith(ours)]
        # ours alone late: our fault. The driver (or another client) late too: the machine stalled
        # everyone, which says nothing about our code: measure again once the burst has passed.
        assert not late_ours or len(late_ours) < len(glitches), (
            f"the client under test missed a JACK period: {glitches}"
        )
        stalls.append(sorted(set(glitches)))
        if attempt + 1 < attempts:
            time.sleep(pause_s)
    pytest.skip(f"the machine stalled JACK in all {attempts} attempts (late in each: {stalls})")


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Collect, then keep Python's cyclic GC off for a timing-critical section.

    In a pytest process a generation-2 collection takes 10-20 ms, holding the GIL: the PortAudio
    callback thread waits for it (an xrun at 5-10 ms periods) and a timed send loop stalls.
    """
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextlib.contextmanager
def jack_server_or_skip(required: bool) -> Iterator[JackServer]:
    """A started :class:`JackServer`, or ``pytest.skip`` (``pytest.fail`` if ``required``) with the reason."""
    import pytest

    ok, reason = jack_available()
    if ok:
        try:
            server = JackServer().start()
        except JackError as exc:
            ok, reason = False, f"jackd failed to start: {exc}"
    if not ok:
        if required:
            pytest.fail(f"AFFETTO_REQUIRE_JACK=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    try:
        yield server
    finally:
        server.stop()
