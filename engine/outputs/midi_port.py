"""Live MIDI output: a virtual port (or an existing one) that DAWs and game synths listen to.

Built on mido's rtmidi backend (python-rtmidi). The engine's timer thread calls
:meth:`MidiPortOutput.send_bytes` with one complete raw MIDI message per call; the hot path
validates the bytes and hands them straight to rtmidi's ``send_message`` (no ``mido.Message``
per event). :meth:`MidiPortOutput.close` may come from another thread: a lock guards only the
port handle and is never held while sleeping.

APIs (``api=`` or the ``AFFETTO_MIDI_API`` environment variable): ``"alsa"``, ``"jack"``,
``"coremidi"``, ``"winmm"``. With neither, every API compiled into python-rtmidi is tried in
rtmidi's preference order (Linux: ALSA, then JACK) and the first that initialises is used, so a
Linux box without ``/dev/snd/seq`` but with a running JACK server still works.

Port names as other programs see them (what :attr:`MidiPortOutput.name` returns for a virtual
port named ``affetto``): JACK ``affetto:affetto`` (the client gets the port's name; JACK
renames a second client ``affetto-01``), ALSA ``affetto:affetto 128:0``, CoreMIDI ``affetto``.

JACK caveat: python-rtmidi holds the GIL while it creates or deletes its JACK client, and JACK
then waits for every running client's cycle. If this process also runs a PortAudio JACK stream
with a Python callback (:class:`engine.outputs.audio_stream.AudioOutput`), that callback waits for the
GIL until jackd's client timeout: each open/close stalls ~0.5-1 s and causes xruns. Open the
MIDI port before ``AudioOutput.start()`` and close it after ``AudioOutput.stop()``; sending
while audio runs is fine.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Final

__all__ = [
    "API_NAMES",
    "MidiPortError",
    "MidiPortNotFound",
    "MidiPortOutput",
    "find_output_port",
    "list_output_ports",
]

#: Our API names -> mido/rtmidi API names.
API_NAMES: dict[str, str] = {
    "alsa": "LINUX_ALSA",
    "jack": "UNIX_JACK",
    "coremidi": "MACOSX_CORE",
    "winmm": "WINDOWS_MM",
}
API_ENV = "AFFETTO_MIDI_API"
NUM_CHANNELS = 16
CC_SUSTAIN = 64
CC_ALL_NOTES_OFF = 123

# Length of a complete message by status byte (0 = not a valid status for a single message,
# -1 = system exclusive, variable length up to 0xF7).
_MESSAGE_LENGTH: list[int] = [0] * 128 + [0] * 128
for _status in range(0x80, 0xF0):
    _MESSAGE_LENGTH[_status] = 2 if 0xC0 <= _status <= 0xDF else 3
_MESSAGE_LENGTH[0xF0] = -1  # sysex: F0 data... F7
_MESSAGE_LENGTH[0xF1] = 2  # MTC quarter frame
_MESSAGE_LENGTH[0xF2] = 3  # song position pointer
_MESSAGE_LENGTH[0xF3] = 2  # song select
_MESSAGE_LENGTH[0xF6] = 1  # tune request
for _status in (0xF8, 0xFA, 0xFB, 0xFC, 0xFE, 0xFF):  # clock, start, continue, stop, sensing, reset
    _MESSAGE_LENGTH[_status] = 1
del _status


#: How long :meth:`MidiPortOutput.close` waits for a JACK port to deliver its last messages.
CLOSE_FLUSH_S: Final = 0.05


class MidiPortError(RuntimeError):
    """A MIDI port cannot be listed, opened or used (the message says why and what exists)."""


class MidiPortNotFound(MidiPortError):
    """No existing MIDI output port matches the name asked for (the message lists those there are)."""


def _backend_names() -> list[str]:
    """The rtmidi API names compiled into python-rtmidi (e.g. ``["LINUX_ALSA", "UNIX_JACK"]``).

    Raises:
        MidiPortError: mido or python-rtmidi is not installed or cannot load.
    """
    try:
        import mido.backends.rtmidi as mido_rtmidi
    except ImportError as exc:
        raise MidiPortError(
            f"the rtmidi MIDI backend is unavailable ({exc}); install python-rtmidi "
            "(and, on Linux, libasound2 / libjack)"
        ) from exc
    return list(mido_rtmidi.get_api_names())


def _resolve_api(api: str | None) -> str | None:
    """Map our API name (or ``AFFETTO_MIDI_API``) to mido's, or None when neither is given.

    Raises:
        TypeError: ``api`` is not a string or None.
        MidiPortError: the API name is unknown or not compiled into python-rtmidi.
    """
    if api is not None and not isinstance(api, str):
        raise TypeError(f"api must be a string or None, got {type(api).__name__}")
    source = "api"
    if api is None:
        api = os.environ.get(API_ENV) or None
        source = API_ENV
        if api is None:
            return None
    key = api.strip().lower()
    if key not in API_NAMES:
        raise MidiPortError(f"{source}={api!r} is not a known MIDI API; use one of {sorted(API_NAMES)}")
    compiled = _backend_names()
    if API_NAMES[key] not in compiled:
        ours = sorted(k for k, v in API_NAMES.items() if v in compiled)
        raise MidiPortError(f"MIDI API {key!r} is not compiled into python-rtmidi here (available: {ours})")
    return API_NAMES[key]


def _candidate_apis(api: str | None) -> list[str]:
    """The mido API names to try in order: the requested one, else every compiled API in
    python-rtmidi's preference order (ALSA before JACK on Linux, as rtmidi's own default)."""
    resolved = _resolve_api(api)
    if resolved is not None:
        return [resolved]
    return _backend_names()


def _api_label(mido_api: str) -> str:
    for ours, theirs in API_NAMES.items():
        if theirs == mido_api:
            return ours
    return mido_api.lower()


def _backend(mido_api: str) -> Any:
    import mido

    return mido.Backend(f"mido.backends.rtmidi/{mido_api}", load=True)


def _with_fallback(api: str | None, action: Callable[[Any, str], Any]) -> tuple[Any, str]:
    """Run ``action(backend, mido_api)`` on the first API that initialises.

    Returns:
        ``(result, mido_api)``.

    Raises:
        MidiPortError: no API could be initialised (every API's reason is listed).
    """
    failures: list[str] = []
    for mido_api in _candidate_apis(api):
        try:
            return action(_backend(mido_api), mido_api), mido_api
        except MidiPortError:
            raise
        except (OSError, RuntimeError, ValueError) as exc:  # rtmidi.SystemError is an OSError
            failures.append(f"{_api_label(mido_api)}: {exc}".strip())
    hint = " (is the JACK server running / does /dev/snd/seq exist?)"
    raise MidiPortError("no MIDI API could be initialised: " + "; ".join(failures) + hint)


def list_output_ports(api: str | None = None) -> list[str]:
    """Names of the existing MIDI output destinations (synths, DAW inputs, hardware).

    Args:
        api: ``"alsa"``, ``"jack"``, ``"coremidi"``, ``"winmm"``, or None for
            ``AFFETTO_MIDI_API`` / the first compiled API that initialises.

    Returns:
        Port names as accepted by ``MidiPortOutput(name, virtual=False)``.

    Raises:
        TypeError: ``api`` is not a string or None.
        MidiPortError: the API is unknown or unavailable, or no MIDI backend works here.
    """
    names, _ = _with_fallback(api, lambda backend, _api: list(backend.get_output_names()))
    return list(names)


def find_output_port(name: str, api: str | None = None) -> str:
    """The existing MIDI output port ``name`` designates, as :class:`MidiPortOutput` matches it
    (``virtual=False``): the port called exactly ``name``, else the one port whose name contains it
    (case-insensitive).

    Args:
        name: a port name or a part of one.
        api: as :func:`list_output_ports`.

    Returns:
        The port's full name.

    Raises:
        TypeError: ``name`` is not a string (or ``api`` not a string/None).
        MidiPortNotFound: no port matches (the message lists the available ones).
        MidiPortError: several ports match, or no MIDI backend works here.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")

    def find(backend: Any, mido_api: str) -> str:
        return _existing(name, list(backend.get_output_names()), mido_api)

    found, _ = _with_fallback(api, find)
    return str(found)


def _existing(name: str, available: Sequence[str], mido_api: str) -> str:
    """The port of ``available`` that ``name`` designates (see :func:`find_output_port`).

    Raises:
        MidiPortNotFound: none matches.
        MidiPortError: several do.
    """
    match = _match_port(name, available)
    if match is None:
        listed = ", ".join(repr(port) for port in available) or "none"
        raise MidiPortNotFound(
            f"no MIDI output port matches {name!r} on {_api_label(mido_api)}; available: {listed}"
        )
    return match


class _SourceLister:
    """One rtmidi input client that lists sources (other programs' outputs, our virtual ports).

    Used to learn the name other programs see for a new virtual port: list before and after
    opening it. A single client keeps JACK graph changes to a minimum.
    """

    def __init__(self, mido_api: str) -> None:
        self._midi_in: Any = None
        try:
            import rtmidi

            self._midi_in = rtmidi.MidiIn(rtapi=getattr(rtmidi, f"API_{mido_api}"))
        except (ImportError, AttributeError, OSError, RuntimeError):
            self._midi_in = None  # naming falls back to the requested name

    def names(self) -> list[str]:
        """Current source names ([] if this API cannot list them)."""
        if self._midi_in is None:
            return []
        try:
            return list(self._midi_in.get_ports())
        except (OSError, RuntimeError):
            return []

    def close(self) -> None:
        if self._midi_in is not None:
            self._midi_in.delete()
            self._midi_in = None


def _match_port(name: str, available: Sequence[str]) -> str | None:
    """The port ``name`` designates: exact match, else the unique case-insensitive substring match.

    Raises:
        MidiPortError: several ports contain ``name`` and none equals it.
    """
    if name in available:
        return name
    needle = name.casefold()
    hits = [port for port in available if needle in port.casefold()]
    if len(hits) > 1:
        raise MidiPortError(f"MIDI port name {name!r} is ambiguous; it matches {hits}")
    return hits[0] if hits else None


def _to_message(data: bytes | bytearray | memoryview | Sequence[int]) -> bytes:
    """Validate one complete MIDI message and return it as bytes.

    Raises:
        TypeError: ``data`` is not bytes or a sequence of integers.
        ValueError: a byte is outside 0..255, the status byte is not 0x80..0xFF (or is undefined),
            a data byte is outside 0..127, or the length does not fit the status.
    """
    if isinstance(data, bytes):
        msg = data
    elif isinstance(data, (bytearray, memoryview)):
        msg = bytes(data)
    elif isinstance(data, Sequence) and not isinstance(data, str):
        try:
            msg = bytes(data)
        except ValueError as exc:
            raise ValueError(f"MIDI bytes must be in 0..255, got {list(data)!r}") from exc
        except TypeError as exc:
            raise TypeError(f"MIDI bytes must be integers, got {list(data)!r}") from exc
    else:
        raise TypeError(f"MIDI message must be bytes or a sequence of ints, got {type(data).__name__}")
    if not msg:
        raise ValueError("MIDI message is empty; expected a status byte in 0x80..0xFF and its data")
    status = msg[0]
    if status < 0x80:
        raise ValueError(
            f"status byte must be in 0x80..0xFF, got 0x{status:02X} (running status is not accepted)"
        )
    expected = _MESSAGE_LENGTH[status]
    if expected == 0:
        raise ValueError(f"status byte 0x{status:02X} is undefined or cannot start a message")
    if expected > 0:
        if len(msg) != expected:
            raise ValueError(f"status 0x{status:02X} takes {expected} bytes, got {len(msg)}: {msg.hex(' ')}")
        if expected > 1 and max(msg[1:]) > 0x7F:
            raise ValueError(f"data bytes must be in 0..127, got {list(msg[1:])}")
        return msg
    # System exclusive: F0, data bytes 0..127, F7.
    if len(msg) < 2 or msg[-1] != 0xF7:
        raise ValueError("system exclusive message must start with 0xF0 and end with 0xF7")
    if len(msg) > 2 and max(msg[1:-1]) > 0x7F:
        raise ValueError("system exclusive data bytes must be in 0..127")
    return msg


def _raw_sender(port: Any) -> Callable[[bytes], None]:
    """The cheapest way to send raw bytes on a mido rtmidi port.

    mido's rtmidi ``Output`` wraps a ``rtmidi.MidiOut`` whose ``send_message`` takes raw bytes;
    using it skips a ``mido.Message`` per event. Should a mido version not expose it, fall back
    to mido's public ``send`` (parses the bytes into a ``mido.Message`` first).
    """
    raw_send = getattr(getattr(port, "_rt", None), "send_message", None)
    if callable(raw_send):
        return raw_send

    import mido

    def send_via_mido(msg: bytes) -> None:
        port.send(mido.Message.from_bytes(msg))

    return send_via_mido


class MidiPortOutput:
    """A live MIDI output port.

    Args:
        name: the virtual port's name (``virtual=True``), or the existing port to open: exact
            name first, then a case-insensitive substring (must be unique).
        virtual: True creates a virtual output port called ``name`` that other programs connect
            to; False opens an existing port; None opens an existing port if one matches ``name``,
            else creates a virtual one.
        api: ``"alsa"``, ``"jack"``, ``"coremidi"``, ``"winmm"``, or None for
            ``AFFETTO_MIDI_API`` / the first compiled API that initialises.

    Raises:
        TypeError: ``name`` is not a string, ``virtual`` not a bool/None, ``api`` not a string/None.
        ValueError: ``name`` is empty.
        MidiPortNotFound: ``virtual=False`` and no port matches ``name`` (the message lists the
            available ones).
        MidiPortError: no MIDI backend, unknown/unavailable API, several ports match, virtual
            ports unsupported (Windows MM), or the port fails to open.
    """

    def __init__(self, name: str = "affetto", *, virtual: bool | None = None, api: str | None = None) -> None:
        if not isinstance(name, str):
            raise TypeError(f"name must be a string, got {type(name).__name__}")
        if not name.strip():
            raise ValueError("name must be a non-empty port name")
        if virtual is not None and not isinstance(virtual, bool):
            raise TypeError(f"virtual must be True, False or None, got {virtual!r}")
        self._lock = threading.Lock()
        self._port: Any = None
        self._send: Callable[[bytes], None] | None = None
        self._virtual = False
        self._name = name
        port, mido_api = _with_fallback(
            api, lambda backend, mido_api: self._open(backend, mido_api, name, virtual)
        )
        self._api = _api_label(mido_api)
        with self._lock:
            self._port = port
            self._send = _raw_sender(port)

    def _open(self, backend: Any, mido_api: str, name: str, virtual: bool | None) -> Any:
        """Open the port on one backend (called by the API fallback loop)."""
        if virtual is False:
            match = _existing(name, list(backend.get_output_names()), mido_api)
            self._virtual = False
            self._name = match
            return backend.open_output(match)
        if virtual is None:
            found = _match_port(name, list(backend.get_output_names()))
            if found is not None:
                self._virtual = False
                self._name = found
                return backend.open_output(found)
        if mido_api == "WINDOWS_MM":
            raise MidiPortError(
                f"virtual MIDI ports are not supported by Windows MM and no existing port matches {name!r} "
                f"(see list_output_ports('winmm')); create one with loopMIDI and open it by name"
            )
        lister = _SourceLister(mido_api)
        try:
            before = set(lister.names())
            port = backend.open_output(name, virtual=True, client_name=name)
            new = [source for source in lister.names() if source not in before and name in source]
        finally:
            lister.close()
        self._virtual = True
        self._name = new[0] if len(new) == 1 else name
        return port

    @property
    def name(self) -> str:
        """The real port name (for a virtual port, as other programs list it, e.g. ``affetto:affetto``)."""
        return self._name

    @property
    def api(self) -> str:
        """The MIDI API in use: ``"alsa"``, ``"jack"``, ``"coremidi"`` or ``"winmm"``."""
        return self._api

    @property
    def virtual(self) -> bool:
        """True if this is a virtual port we created, False if we opened an existing port."""
        return self._virtual

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._port is None

    def send_bytes(self, data: bytes | bytearray | memoryview | Sequence[int]) -> None:
        """Send one complete MIDI message now (non-blocking).

        Args:
            data: raw bytes of one message: channel voice (note on/off 0x8n/0x9n, poly
                pressure 0xAn, CC 0xBn, program change 0xCn, channel pressure 0xDn, pitch bend
                0xEn), system common (0xF1, 0xF2, 0xF3, 0xF6), real-time (0xF8 clock, 0xFA start,
                0xFB continue, 0xFC stop, 0xFE, 0xFF) or a complete sysex 0xF0 … 0xF7.

        Raises:
            TypeError: ``data`` is not bytes or a sequence of ints.
            ValueError: bad status byte, data byte outside 0..127, or wrong length.
            MidiPortError: the port is closed or the backend rejects the message.
        """
        msg = _to_message(data)
        with self._lock:
            send = self._send
            if self._port is None or send is None:
                raise MidiPortError(f"MIDI port {self._name!r} is closed")
            try:
                send(msg)
            except (OSError, RuntimeError, ValueError) as exc:
                raise MidiPortError(f"MIDI port {self._name!r} failed to send {msg.hex(' ')}: {exc}") from exc

    def all_notes_off(self) -> None:
        """Release everything: sustain off (CC 64 = 0) then All Notes Off (CC 123) on all 16 channels.

        Raises:
            MidiPortError: the port is closed or the backend fails.
        """
        for channel in range(NUM_CHANNELS):
            self.send_bytes(bytes((0xB0 | channel, CC_SUSTAIN, 0)))
            self.send_bytes(bytes((0xB0 | channel, CC_ALL_NOTES_OFF, 0)))

    def close(self) -> None:
        """Send :meth:`all_notes_off` and close the port. Idempotent and safe from any thread.

        Raises:
            MidiPortError: the backend fails while closing (the port is released anyway).
        """
        with self._lock:
            port, send = self._port, self._send
            self._port = None
            self._send = None
        if port is None or send is None:
            return
        try:
            for channel in range(NUM_CHANNELS):
                send(bytes((0xB0 | channel, CC_SUSTAIN, 0)))
                send(bytes((0xB0 | channel, CC_ALL_NOTES_OFF, 0)))
        except (OSError, RuntimeError, ValueError) as exc:
            port.close()
            raise MidiPortError(f"MIDI port {self._name!r}: all-notes-off on close failed: {exc}") from exc
        if self._api == "jack":
            # rtmidi's JACK port hands messages over at the next process cycle; closing the client
            # first would drop the all-notes-off. A few periods (<= 21 ms at 1024 frames) cover it.
            time.sleep(CLOSE_FLUSH_S)
        try:
            port.close()
        except (OSError, RuntimeError) as exc:
            raise MidiPortError(f"MIDI port {self._name!r} failed to close: {exc}") from exc

    def __enter__(self) -> MidiPortOutput:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        kind = "virtual" if self._virtual else "existing"
        return f"MidiPortOutput({self._name!r}, {kind}, api={getattr(self, '_api', '?')!r}, {state})"
