"""Live audio output: a PortAudio (sounddevice) callback stream that pulls blocks from a renderer.

The stream's callback calls ``render(out)`` with PortAudio's ``(frames, channels)`` float32
output buffer; ``render`` (e.g. the synth's ``process``) must fill it in place without blocking.
The callback itself allocates nothing and never blocks: if ``render`` raises, the block is
silenced, the failure counted (:attr:`AudioOutput.render_errors`, part of
:attr:`AudioOutput.xruns`) and the first exception kept for :meth:`AudioOutput.stop` to raise as
:class:`AudioRenderError`; the stream keeps running.

sounddevice is imported lazily: without the PortAudio library, importing this module still
works and every entry point reports :class:`AudioUnavailable` (or ``audio_available`` returns
``(False, reason)``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import ModuleType, TracebackType
from typing import Any

import numpy as np

from engine.checks import check_int

__all__ = [
    "AudioOutput",
    "AudioRenderError",
    "AudioUnavailable",
    "audio_available",
    "rescan_devices",
]

MIN_SAMPLE_RATE_HZ = 8_000
MAX_SAMPLE_RATE_HZ = 384_000
MIN_BLOCK_FRAMES = 16
MAX_BLOCK_FRAMES = 8_192
MAX_CHANNELS = 64
DTYPE = "float32"


class AudioUnavailable(RuntimeError):
    """No usable audio output: PortAudio missing, no such device/host API, or it cannot open."""


class AudioRenderError(RuntimeError):
    """The render callback raised while the stream ran (the first exception is the ``__cause__``)."""


_sd_lock = threading.Lock()


def _sounddevice() -> ModuleType:
    """Import sounddevice, turning a missing PortAudio library into :class:`AudioUnavailable`.

    Raises:
        AudioUnavailable: sounddevice is not installed or PortAudio cannot be loaded.
    """
    try:
        import sounddevice
    except ImportError as exc:
        raise AudioUnavailable(f"the sounddevice package is not installed ({exc})") from exc
    except OSError as exc:  # sounddevice raises OSError when the PortAudio library is missing
        raise AudioUnavailable(
            f"the PortAudio library cannot be loaded ({exc}); install it (Debian/Ubuntu: "
            "apt-get install libportaudio2, macOS: brew install portaudio)"
        ) from exc
    return sounddevice


def rescan_devices() -> None:
    """Re-initialise PortAudio so it sees host APIs/devices that appeared since import.

    PortAudio scans devices once, when sounddevice is imported: a JACK server started later
    (e.g. by the test suite) is invisible until this is called. Close every stream first.

    Raises:
        AudioUnavailable: PortAudio is missing.
    """
    sd = _sounddevice()
    with _sd_lock:
        # sounddevice documents _terminate()/_initialize() as the way to re-scan devices.
        sd._terminate()
        sd._initialize()


def _check_device_args(device: object, hostapi: object) -> None:
    if device is not None and (isinstance(device, bool) or not isinstance(device, (str, int))):
        raise TypeError(f"device must be a name (str), an index (int) or None, got {type(device).__name__}")
    if hostapi is not None and not isinstance(hostapi, str):
        raise TypeError(f"hostapi must be a string ('jack', 'alsa', …) or None, got {type(hostapi).__name__}")


def _norm(text: str) -> str:
    return "".join(text.casefold().split())


def _output_devices(sd: ModuleType, hostapi: str | None) -> tuple[list[dict[str, Any]], str]:
    """Output-capable devices (with ``index``), restricted to ``hostapi`` if given, and a label.

    Raises:
        AudioUnavailable: the host API does not exist here (the message lists those that do).
    """
    try:
        apis = list(sd.query_hostapis())
        devices = list(sd.query_devices())
    except sd.PortAudioError as exc:
        raise AudioUnavailable(f"PortAudio cannot list devices: {exc}") from exc
    allowed = set(range(len(apis)))
    label = "any host API"
    if hostapi is not None:
        wanted = _norm(hostapi)
        allowed = {i for i, api in enumerate(apis) if wanted in _norm(api["name"])}
        if not allowed:
            names = [api["name"] for api in apis]
            raise AudioUnavailable(
                f"audio host API {hostapi!r} is not available (PortAudio has: {names}); for JACK, "
                "start the server before importing sounddevice or call rescan_devices()"
            )
        label = " / ".join(apis[i]["name"] for i in sorted(allowed))
    outputs = [
        {**dict(dev), "index": i, "hostapi_name": apis[dev["hostapi"]]["name"]}
        for i, dev in enumerate(devices)
        if dev["max_output_channels"] > 0 and dev["hostapi"] in allowed
    ]
    return outputs, label


def _describe(outputs: list[dict[str, Any]]) -> str:
    if not outputs:
        return "none"
    return ", ".join(f"[{d['index']}] {d['name']!r} ({d['hostapi_name']})" for d in outputs)


def _resolve_device(sd: ModuleType, device: str | int | None, hostapi: str | None) -> dict[str, Any]:
    """Find the output device: index, exact name, then unique case-insensitive substring.

    Raises:
        AudioUnavailable: no output device, no such device, or an ambiguous name.
    """
    outputs, label = _output_devices(sd, hostapi)
    if not outputs:
        raise AudioUnavailable(f"no audio output device on {label} (no sound card / server running?)")
    if device is None:
        if hostapi is not None:
            api = sd.query_hostapis(outputs[0]["hostapi"])
            default = api["default_output_device"]
            return next((d for d in outputs if d["index"] == default), outputs[0])
        default = sd.default.device[1]
        default = default if isinstance(default, int) and default >= 0 else -1
        if default < 0:
            raise AudioUnavailable(f"no default audio output device; outputs: {_describe(outputs)}")
        found = [d for d in outputs if d["index"] == default]
        if not found:
            raise AudioUnavailable(f"default device {default} is no output; outputs: {_describe(outputs)}")
        return found[0]
    if isinstance(device, int):
        found = [d for d in outputs if d["index"] == device]
        if not found:
            raise AudioUnavailable(
                f"audio device {device} is not an output device on {label}; outputs: {_describe(outputs)}"
            )
        return found[0]
    exact = [d for d in outputs if d["name"] == device]
    hits = exact or [d for d in outputs if _norm(device) in _norm(d["name"])]
    if not hits:
        raise AudioUnavailable(
            f"no audio output device matches {device!r} on {label}; outputs: {_describe(outputs)}"
        )
    if len(hits) > 1:
        raise AudioUnavailable(f"audio device name {device!r} is ambiguous: {_describe(hits)}; pass hostapi=")
    return hits[0]


def audio_available(
    device: str | int | None = None,
    *,
    hostapi: str | None = None,
    sample_rate_hz: int = 48_000,
    channels: int = 2,
) -> tuple[bool, str]:
    """Whether an output device can be used, and why (not), without opening a stream.

    Args:
        device: device name (exact, else unique case-insensitive substring), index, or None
            for the default output device.
        hostapi: restrict to a PortAudio host API (``"jack"``, ``"alsa"``, ``"coreaudio"``,
            ``"wasapi"``, …; case-insensitive substring), or None.
        sample_rate_hz: sample rate to check, in Hz.
        channels: output channels to check.

    Returns:
        ``(True, "device description")`` or ``(False, reason)``.

    Raises:
        TypeError: an argument has the wrong type.
        ValueError: ``sample_rate_hz`` or ``channels`` is out of range.
    """
    _check_device_args(device, hostapi)
    rate = check_int("sample_rate_hz", sample_rate_hz, MIN_SAMPLE_RATE_HZ, MAX_SAMPLE_RATE_HZ)
    channels = check_int("channels", channels, 1, MAX_CHANNELS)
    try:
        sd = _sounddevice()
        dev = _resolve_device(sd, device, hostapi)
    except AudioUnavailable as exc:
        return False, str(exc)
    try:
        sd.check_output_settings(device=dev["index"], channels=channels, dtype=DTYPE, samplerate=rate)
    except (sd.PortAudioError, ValueError) as exc:
        where = f"[{dev['index']}] {dev['name']!r} ({dev['hostapi_name']})"
        return False, f"audio device {where} cannot run at {rate} Hz x {channels} ch: {exc}"
    return True, f"[{dev['index']}] {dev['name']!r} on {dev['hostapi_name']}"


class AudioOutput:
    """A callback-driven PortAudio output stream fed by ``render``.

    The stream is opened here (so a bad device fails at construction) and started by
    :meth:`start`.

    Args:
        render: ``render(out)`` fills ``out``, a ``(frames, channels)`` float32 array, in place;
            called from PortAudio's audio thread, it must not block.
        sample_rate_hz: sample rate in Hz (8000..384000); must match the device (JACK: the
            server's rate).
        block_frames: frames per callback (16..8192).
        device: output device name (exact, else unique case-insensitive substring), index, or
            None for the default output (of ``hostapi`` if given).
        channels: output channels (1..64).
        hostapi: PortAudio host API to use (``"jack"``, ``"alsa"``, ``"coreaudio"``,
            ``"wasapi"``, …; case-insensitive substring), or None for any.

    Raises:
        TypeError: an argument has the wrong type (``render`` not callable, …).
        ValueError: a number is out of range.
        AudioUnavailable: PortAudio is missing, there is no such output device or host API, or
            the device cannot open at this rate / block size / channel count.
    """

    def __init__(
        self,
        render: Callable[[np.ndarray], None],
        *,
        sample_rate_hz: int = 48_000,
        block_frames: int = 256,
        device: str | int | None = None,
        channels: int = 2,
        hostapi: str | None = None,
    ) -> None:
        if not callable(render):
            raise TypeError(f"render must be callable as render(out), got {type(render).__name__}")
        _check_device_args(device, hostapi)
        self._sample_rate_hz = check_int(
            "sample_rate_hz", sample_rate_hz, MIN_SAMPLE_RATE_HZ, MAX_SAMPLE_RATE_HZ
        )
        self._block_frames = check_int("block_frames", block_frames, MIN_BLOCK_FRAMES, MAX_BLOCK_FRAMES)
        self._channels = check_int("channels", channels, 1, MAX_CHANNELS)
        self._render = render
        self._underflows = 0
        self._render_errors = 0
        self._render_error: BaseException | None = None
        self._frames_rendered = 0
        self._lock = threading.Lock()  # guards the stream handle (start/stop/close), never the callback
        sd = _sounddevice()
        self._sd = sd
        dev = _resolve_device(sd, device, hostapi)
        self._device_index: int = dev["index"]
        self._device_name = f"{dev['name']} ({dev['hostapi_name']})"
        if self._channels > dev["max_output_channels"]:
            raise AudioUnavailable(
                f"audio device {self._device_name} has {dev['max_output_channels']} output channels, "
                f"{self._channels} requested"
            )
        try:
            self._stream: Any = sd.OutputStream(
                samplerate=self._sample_rate_hz,
                blocksize=self._block_frames,
                device=self._device_index,
                channels=self._channels,
                dtype=DTYPE,
                callback=self._callback,
                prime_output_buffers_using_stream_callback=True,
            )
        except (sd.PortAudioError, ValueError) as exc:
            raise AudioUnavailable(
                f"audio device {self._device_name} cannot open at {self._sample_rate_hz} Hz, "
                f"{self._block_frames} frames/block, {self._channels} ch: {exc}"
            ) from exc

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        """PortAudio's audio-thread callback: render, count underflows, contain render failures."""
        if status and status.output_underflow:
            self._underflows += 1
        try:
            self._render(outdata)
        except Exception as exc:  # never let a render bug kill the stream: silence, count, keep it
            outdata.fill(0.0)
            self._render_errors += 1
            if self._render_error is None:
                self._render_error = exc
        self._frames_rendered += frames

    @property
    def xruns(self) -> int:
        """Output underflows reported by PortAudio plus blocks where ``render`` raised."""
        return self._underflows + self._render_errors

    @property
    def underflows(self) -> int:
        """Output underflows reported in PortAudio's callback status."""
        return self._underflows

    @property
    def render_errors(self) -> int:
        """Blocks where ``render`` raised (each was played as silence)."""
        return self._render_errors

    @property
    def render_error(self) -> BaseException | None:
        """The first exception ``render`` raised and :meth:`stop` has not reported yet, or None."""
        return self._render_error

    @property
    def latency_s(self) -> float:
        """The stream's output latency in seconds, as PortAudio reports it (0.0 once closed)."""
        stream = self._stream
        return float(stream.latency) if stream is not None else 0.0

    @property
    def frames_rendered(self) -> int:
        """Frames delivered to PortAudio since construction (silenced blocks included)."""
        return self._frames_rendered

    @property
    def running(self) -> bool:
        """True while the stream is started and active."""
        stream = self._stream
        return bool(stream is not None and stream.active)

    @property
    def sample_rate_hz(self) -> int:
        """The stream's sample rate in Hz."""
        return self._sample_rate_hz

    @property
    def block_frames(self) -> int:
        """Frames per callback."""
        return self._block_frames

    @property
    def device_name(self) -> str:
        """The output device, as ``"name (host API)"``."""
        return self._device_name

    def start(self) -> None:
        """Start pulling audio from ``render`` (no-op if already running).

        Raises:
            RuntimeError: the output is closed.
            AudioUnavailable: PortAudio cannot start the stream (device gone, server stopped).
        """
        with self._lock:
            if self._stream is None:
                raise RuntimeError("AudioOutput is closed; create a new one")
            if self._stream.active:
                return
            try:
                self._stream.start()
            except self._sd.PortAudioError as exc:
                raise AudioUnavailable(f"audio device {self._device_name} cannot start: {exc}") from exc

    def stop(self) -> None:
        """Stop the stream (waits for queued blocks to play), then report render failures.

        Raises:
            AudioRenderError: ``render`` raised since the last report; the stream was still
                stopped. Its ``__cause__`` is the first exception.
        """
        with self._lock:
            stream = self._stream
            if stream is not None and not stream.stopped:
                try:
                    stream.stop()
                except self._sd.PortAudioError as exc:
                    raise AudioUnavailable(f"audio device {self._device_name} failed to stop: {exc}") from exc
        self._raise_render_error()

    def close(self) -> None:
        """Stop and release the stream; idempotent.

        Raises:
            AudioRenderError: ``render`` raised and :meth:`stop` did not report it yet.
        """
        self._release()
        self._raise_render_error()

    def _release(self) -> None:
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.close(ignore_errors=True)
            except self._sd.PortAudioError as exc:
                raise AudioUnavailable(f"audio device {self._device_name} failed to close: {exc}") from exc

    def _raise_render_error(self) -> None:
        error, count = self._render_error, self._render_errors
        if error is None:
            return
        self._render_error = None
        raise AudioRenderError(
            f"render raised in {count} block(s) so far (played as silence); "
            f"first: {type(error).__name__}: {error}"
        ) from error

    def __enter__(self) -> AudioOutput:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:  # don't mask the exception in flight with a render report
            self._release()

    def __repr__(self) -> str:
        state = "closed" if self._stream is None else ("running" if self.running else "stopped")
        return (
            f"AudioOutput({self._device_name!r}, {self._sample_rate_hz} Hz, {self._block_frames} frames, "
            f"{self._channels} ch, {state}, xruns={self.xruns})"
        )
