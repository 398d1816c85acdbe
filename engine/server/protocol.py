"""The game-facing protocol, pure: OSC messages or JSON text in, requests out; events out as
OSC packets or JSON (see bindings/PROTOCOL.md, the reference every binding follows).

Nothing here does I/O. Parsing raises only :class:`ProtocolError` (a ValueError with an error
``code`` from :data:`ERROR_CODES`), whatever the input: the parsers are fuzzed to prove it.
Each operation's arguments are checked one field at a time (type, finiteness, range), with the
allowed range in the message.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Final

from engine.music.config import SYNC_POINTS
from engine.server.osc_codec import OscArg, OscDecodeError, OscMessage, decode_packet, encode_message

PROTOCOL_VERSION: Final = 1
OSC_PREFIX: Final = "/affetto/"
MAX_JSON_BYTES: Final = 64 * 1024
MAX_NAME_CHARS: Final = 64
MAX_TEXT_CHARS: Final = 10_000
MAX_THEME_NOTES: Final = 64
MAX_OUTPUTS: Final = 8
ERROR_CODES: Final = (
    "bad_message",
    "unknown_op",
    "bad_argument",
    "rate_limited",
    "unauthorized",
    "unsupported",
    "busy",
)
OPS: Final = (
    "hello",
    "emotion",
    "state",
    "param",
    "stinger",
    "leitmotif",
    "transport",
    "subscribe",
    "unsubscribe",
    "session",
    "output",
    "text",
    "status",
)
TRANSPORT_ACTIONS: Final = ("start", "stop", "tempo", "seed", "sync")


class ProtocolError(ValueError):
    """A message that cannot be applied; ``code`` is one of ERROR_CODES."""

    def __init__(self, code: str, message: str, op: str | None = None, request_id: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.op = op
        self.request_id = request_id

    def event(self) -> dict[str, Any]:
        """The error event for the client."""
        out: dict[str, Any] = {"event": "error", "code": self.code, "message": self.message}
        if self.op is not None:
            out["op"] = self.op
        if self.request_id is not None:
            out["id"] = self.request_id
        return out


@dataclass(frozen=True)
class Request:
    """One validated operation (``args`` hold only documented, checked fields)."""

    op: str
    args: dict[str, Any] = field(default_factory=dict)
    request_id: Any = None


# ----------------------------------------------------------------------------- field checks
def _bad(op: str, message: str, rid: Any = None) -> ProtocolError:
    return ProtocolError("bad_argument", message, op, rid)


def _number(op: str, name: str, value: object, low: float, high: float, rid: Any = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(op, f"{name} must be a number in [{low:g}, {high:g}], got {_show(value)}", rid)
    v = float(value)
    if not math.isfinite(v) or not low <= v <= high:
        raise _bad(op, f"{name} must be a finite number in [{low:g}, {high:g}], got {_show(value)}", rid)
    return v


def _name(op: str, key: str, value: object, rid: Any = None, limit: int = MAX_NAME_CHARS) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise _bad(
            op, f"{key} must be a non-empty string of at most {limit} characters, got {_show(value)}", rid
        )
    return value


def _sync(op: str, value: object, rid: Any = None) -> str:
    if value not in SYNC_POINTS:
        raise _bad(op, f"sync must be one of {', '.join(SYNC_POINTS)}, got {_show(value)}", rid)
    return str(value)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# ---------------------------------------------------------------------------- op schemas
def _check(op: str, raw: dict[str, Any], rid: Any) -> dict[str, Any]:
    """Validate the fields of one op (already unpacked from JSON or OSC)."""
    allowed = _FIELDS[op]
    extra = sorted(set(raw) - set(allowed))
    if extra:
        raise _bad(op, f"unknown field(s) {extra} for {op}; allowed: {sorted(allowed)}", rid)
    missing = sorted(k for k, required in allowed.items() if required and k not in raw)
    if missing:
        raise _bad(op, f"{op} needs {', '.join(missing)}", rid)
    args: dict[str, Any] = {}
    for key, value in raw.items():
        if value is None and not allowed[key]:
            continue  # an optional field given as null: absent
        if key in ("valence", "arousal", "tension"):
            args[key] = _number(op, key, value, -1.0, 1.0, rid)
        elif key == "seek_per_s":
            args[key] = _number(op, key, value, 1e-6, 100.0, rid)
        elif key == "sync":
            args[key] = _sync(op, value, rid)
        elif key == "value" and op == "param":
            args[key] = _number(op, key, value, -1e9, 1e9, rid)
        elif key == "text":
            args[key] = _name(op, key, value, rid, MAX_TEXT_CHARS)
        elif key == "token":
            args[key] = _name(op, key, value, rid, 256)
        elif key in ("name", "session"):
            args[key] = _name(op, key, value, rid)
        elif key == "action":
            if value not in TRANSPORT_ACTIONS:
                raise _bad(
                    op, f"action must be one of {', '.join(TRANSPORT_ACTIONS)}, got {_show(value)}", rid
                )
            args[key] = value
        elif key == "value":  # transport's value, checked with its action below
            args[key] = value
        elif key == "port":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
                raise _bad(op, f"port must be an integer in 1..65535, got {_show(value)}", rid)
            args[key] = value
        elif key == "notes":
            args[key] = _notes(op, value, rid)
        elif key == "outputs":
            args[key] = _outputs(op, value, rid)
    if op == "transport":
        args["value"] = _transport_value(args["action"], args.get("value"), rid)
    return args


def _notes(op: str, value: object, rid: Any) -> list[tuple[float, int, float, int]]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_THEME_NOTES:
        raise _bad(
            op,
            f"notes must be a list of 1..{MAX_THEME_NOTES} [onset_beats, pitch, duration_beats, velocity]",
            rid,
        )
    out = []
    for i, note in enumerate(value):
        if not isinstance(note, list) or len(note) != 4:
            raise _bad(
                op, f"note {i} must be [onset_beats, pitch, duration_beats, velocity], got {_show(note)}", rid
            )
        onset = _number(op, f"note {i} onset_beats", note[0], 0.0, 16.0 - 1e-9, rid)
        pitch = _number(op, f"note {i} pitch", note[1], 0, 127, rid)
        dur = _number(op, f"note {i} duration_beats", note[2], 1e-3, 16.0, rid)
        vel = _number(op, f"note {i} velocity", note[3], 1, 127, rid)
        if pitch != int(pitch) or vel != int(vel):
            raise _bad(op, f"note {i} pitch and velocity must be integers", rid)
        out.append((onset, int(pitch), dur, int(vel)))
    return out


def _outputs(op: str, value: object, rid: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_OUTPUTS:
        raise _bad(op, f'outputs must be a list of at most {MAX_OUTPUTS} output names, e.g. ["audio"]', rid)
    return [_name(op, f"output {i}", v, rid) for i, v in enumerate(value)]


def _transport_value(action: str, value: object, rid: Any) -> Any:
    op = "transport"
    if action in ("start", "stop"):
        if value is not None:
            raise _bad(op, f"transport {action} takes no value, got {_show(value)}", rid)
        return None
    if action == "tempo":
        if value is None:
            raise _bad(op, "transport tempo needs a value: BPM in [20, 400], or 0 to follow arousal", rid)
        v = _number(op, "tempo value", value, 0.0, 400.0, rid)
        if 0 < v < 20:
            raise _bad(op, f"tempo must be 0 (follow arousal) or in [20, 400] BPM, got {_show(value)}", rid)
        return v
    if action == "seed":
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or value != int(value)
            or not 0 <= value < 2**63
        ):
            raise _bad(op, f"seed must be an integer in 0..2**63-1, got {_show(value)}", rid)
        return int(value)
    return _sync(op, value, rid)  # sync


_FIELDS: Final[dict[str, dict[str, bool]]] = {  # op -> field -> required
    "hello": {"session": False, "token": False},
    "emotion": {"valence": True, "arousal": True, "tension": False, "sync": False, "seek_per_s": False},
    "state": {"name": True, "sync": False},
    "param": {"name": True, "value": True},
    "stinger": {"name": True},
    "leitmotif": {"name": True, "notes": False, "sync": False},
    "transport": {"action": True, "value": False},
    "subscribe": {"port": False},
    "unsubscribe": {},
    "session": {"name": True},
    "output": {"outputs": True},
    "text": {"text": True},
    "status": {},
}


# -------------------------------------------------------------------------------- JSON in
def parse_json(data: str | bytes, *, max_bytes: int = MAX_JSON_BYTES) -> Request:
    """One WebSocket text message → a validated request.

    Raises:
        ProtocolError: bad_message (not a JSON object, too big), unknown_op, bad_argument.
    """
    size = len(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    if size > max_bytes:
        raise ProtocolError("bad_message", f"message of {size} bytes exceeds the limit of {max_bytes}")
    try:
        obj = json.loads(data, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ProtocolError("bad_message", f"not valid JSON: {str(exc)[:80]}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("bad_message", 'a message must be a JSON object like {"op": "status"}')
    rid = obj.pop("id", None)
    if rid is not None and (isinstance(rid, dict | list) or (isinstance(rid, str) and len(rid) > 64)):
        raise ProtocolError("bad_message", "id must be a number or a string of at most 64 characters")
    op = obj.pop("op", None)
    if not isinstance(op, str) or op not in _FIELDS:
        raise ProtocolError("unknown_op", f"op must be one of {', '.join(OPS)}, got {_show(op)}", None, rid)
    return Request(op, _check(op, obj, rid), rid)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed")


# --------------------------------------------------------------------------------- OSC in
#: address suffix -> the op's fields in OSC argument order (the rest optional, in order)
_OSC_ARGS: Final[dict[str, tuple[str, ...]]] = {
    "emotion": ("valence", "arousal", "tension", "sync"),
    "state": ("name", "sync"),
    "param": ("name", "value"),
    "stinger": ("name",),
    "leitmotif": ("name", "sync"),
    "transport": ("action", "value"),
    "subscribe": ("port",),
    "unsubscribe": (),
    "session": ("name",),
    "output": (),  # /affetto/output [<name s> ...]: every argument is an output name
    "text": ("text",),
    "status": (),
    "hello": ("token",),
}


def parse_osc(message: OscMessage) -> Request:
    """One decoded OSC message → a validated request.

    Raises:
        ProtocolError: unknown_op (an address outside /affetto/<op>) or bad_argument.
    """
    address = message.address
    op = address[len(OSC_PREFIX) :] if address.startswith(OSC_PREFIX) else ""
    if op not in _OSC_ARGS:
        raise ProtocolError(
            "unknown_op", f"unknown OSC address {_show(address)}; see /affetto/<op> in the reference"
        )
    names = _OSC_ARGS[op]
    if op == "output":
        return Request(op, _check(op, {"outputs": list(message.args)}, None))
    if len(message.args) > len(names):
        raise _bad(
            op,
            f"{address} takes at most {len(names)} arguments ({', '.join(names)}), got {len(message.args)}",
        )
    raw: dict[str, Any] = {}
    for key, value in zip(names, message.args, strict=False):
        raw[key] = value  # blobs, nil and booleans fail the field checks with a message
    return Request(op, _check(op, raw, None))


def parse_osc_packet(data: bytes) -> tuple[list[Request], list[ProtocolError]]:
    """All requests of one UDP packet, and the errors of the messages that were not valid.

    A malformed packet yields one bad_message error; within a bundle each message stands alone.
    """
    try:
        messages = decode_packet(data)
    except OscDecodeError as exc:
        return [], [ProtocolError("bad_message", str(exc))]
    requests: list[Request] = []
    errors: list[ProtocolError] = []
    for msg in messages:
        try:
            requests.append(parse_osc(msg))
        except ProtocolError as exc:
            errors.append(exc)
    return requests, errors


# ------------------------------------------------------------------------------ events out
#: event -> its OSC arguments: (field, type) with type i (int32), f (float32) or s (string)
_OSC_EVENT_FIELDS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "beat": (("bar", "i"), ("beat", "i"), ("tempo_bpm", "f"), ("time_s", "f")),
    "bar": (
        ("bar", "i"),
        ("state", "s"),
        ("valence", "f"),
        ("arousal", "f"),
        ("tension", "f"),
        ("tempo_bpm", "f"),
    ),
    "transition": (("op", "s"), ("beat", "f")),
    "status": (
        ("session", "s"),
        ("state", "s"),
        ("valence", "f"),
        ("arousal", "f"),
        ("tension", "f"),
        ("tempo_bpm", "f"),
        ("bar", "i"),
    ),
    "error": (("code", "s"), ("message", "s")),
    "note": (("channel", "i"), ("pitch", "i"), ("velocity", "i"), ("time_s", "f"), ("layer", "s")),
}


def event_json(event: dict[str, Any]) -> str:
    """An event as a WebSocket text message."""
    return json.dumps(event, separators=(",", ":"), allow_nan=False)


def event_osc(event: dict[str, Any]) -> bytes | None:
    """An event as an OSC message (``/affetto/<event>`` with the reference's arguments); None
    for events that have no OSC form (``ok``, ``hello``)."""
    fields = _OSC_EVENT_FIELDS.get(str(event.get("event")))
    if fields is None:
        return None
    args: list[OscArg] = []
    for key, kind in fields:
        value = event.get(key)
        if kind == "i":
            args.append(int(value) if isinstance(value, int | float) else 0)
        elif kind == "f":
            args.append(float(value) if isinstance(value, int | float) else 0.0)
        else:
            args.append("" if value is None else str(value)[:1000])
    return encode_message(OSC_PREFIX + str(event["event"]), args)
