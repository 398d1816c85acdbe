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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from engine.checks import MAX_NAME_CHARS, check_choice, check_int, check_real, check_text, check_unit
from engine.music.config import MAX_SEEK_PER_S, SYNC_POINTS
from engine.server.osc_codec import OscArg, OscDecodeError, OscMessage, decode_packet, encode_message

PROTOCOL_VERSION: Final = 1
OSC_PREFIX: Final = "/affetto/"
MAX_JSON_BYTES: Final = 64 * 1024
MAX_TEXT_CHARS: Final = 10_000
MAX_THEME_NOTES: Final = 64
MAX_OUTPUTS: Final = 8
MAX_NONCE_CHARS: Final = 64
ERROR_CODES: Final = (
    "bad_message",
    "unknown_op",
    "bad_argument",
    "rate_limited",
    "unauthorized",
    "unsupported",
    "busy",
    "not_playing",
)
TRANSPORT_ACTIONS: Final = ("start", "stop", "pause", "resume", "tempo", "seed", "sync")
#: the longest fade (``volume`` and ``transport stop``), in seconds
MAX_FADE_S: Final = 60.0


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


def _checked(op: str, rid: Any, check: Callable[[], Any]) -> Any:
    """``check()``, its TypeError/ValueError (see :mod:`engine.checks`) as a bad_argument."""
    try:
        return check()
    except (TypeError, ValueError) as exc:
        raise _bad(op, str(exc), rid) from None


def _number(op: str, name: str, value: object, low: float, high: float, rid: Any = None) -> float:
    return float(_checked(op, rid, lambda: check_real(name, value, low, high)))


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


#: a field's check: (op, field, value, request id) -> the checked value (raises ProtocolError)
FieldCheck = Callable[[str, str, object, Any], Any]


def _unit(op: str, key: str, value: object, rid: Any) -> float:
    return float(_checked(op, rid, lambda: check_unit(key, value)))


def _seek(op: str, key: str, value: object, rid: Any) -> float:
    return float(_checked(op, rid, lambda: check_real(key, value, 0.0, MAX_SEEK_PER_S, low_open=True)))


def _sync(op: str, key: str, value: object, rid: Any) -> str:
    return str(_checked(op, rid, lambda: check_choice(key, value, SYNC_POINTS)))


def _text(max_chars: int) -> FieldCheck:
    def check(op: str, key: str, value: object, rid: Any) -> str:
        return str(_checked(op, rid, lambda: check_text(key, value, max_chars)))

    return check


def _param_value(op: str, key: str, value: object, rid: Any) -> float:
    return _number(op, key, value, -1e9, 1e9, rid)


def _action(op: str, key: str, value: object, rid: Any) -> str:
    return str(_checked(op, rid, lambda: check_choice(key, value, TRANSPORT_ACTIONS)))


def _as_given(op: str, key: str, value: object, rid: Any) -> object:
    return value  # checked with the rest of the op (see OpSpec.finish)


def _level(op: str, key: str, value: object, rid: Any) -> float:
    return _number(op, key, value, 0.0, 1.0, rid)


def _fade(op: str, key: str, value: object, rid: Any) -> float:
    return _number(op, key, value, 0.0, MAX_FADE_S, rid)


def _port(op: str, key: str, value: object, rid: Any) -> int:
    return int(_checked(op, rid, lambda: check_int(key, value, 1, 65535)))


def _notes(op: str, key: str, value: object, rid: Any) -> list[tuple[float, int, float, int]]:
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


def _outputs(op: str, key: str, value: object, rid: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_OUTPUTS:
        raise _bad(op, f'outputs must be a list of at most {MAX_OUTPUTS} output names, e.g. ["audio"]', rid)
    name = _text(MAX_NAME_CHARS)
    return [name(op, f"output {i}", v, rid) for i, v in enumerate(value)]


def _transport_value(args: dict[str, Any], rid: Any) -> dict[str, Any]:
    op, action, value = "transport", args["action"], args.get("value")
    if action == "stop":
        args["value"] = None if value is None else _fade(op, "stop fade_s", value, rid)
    elif action in ("start", "pause", "resume"):
        if value is not None:
            raise _bad(op, f"transport {action} takes no value, got {_show(value)}", rid)
        args["value"] = None
    elif action == "tempo":
        if value is None:
            raise _bad(op, "transport tempo needs a value: BPM in [20, 400], or 0 to follow arousal", rid)
        v = _number(op, "tempo value", value, 0.0, 400.0, rid)
        if 0 < v < 20:
            raise _bad(op, f"tempo must be 0 (follow arousal) or in [20, 400] BPM, got {_show(value)}", rid)
        args["value"] = v
    elif action == "seed":
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())  # not inf/NaN
        if isinstance(value, bool) or not whole or not 0 <= value < 2**63:  # type: ignore[operator]
            raise _bad(op, f"seed must be an integer in 0..2**63-1, got {_show(value)}", rid)
        args["value"] = int(value)  # type: ignore[arg-type]
    else:  # sync
        args["value"] = _sync(op, "sync", value, rid)
    return args


# ------------------------------------------------------------------------------ the op table
@dataclass(frozen=True)
class OpSpec:
    """One operation of the protocol: its fields and how OSC carries them.

    Attributes:
        fields: field name -> (its check, whether it is required).
        osc_args: the fields in OSC argument order (trailing ones may be left out).
        osc_forms: other OSC argument orders, tried in turn when ``osc_args`` does not fit
            (``/affetto/emotion f f s``: valence, arousal, sync).
        osc_list: OSC carries one list field as all its arguments (``/affetto/output a b``).
        finish: checks across fields, after each field's own (returns the args).
    """

    fields: dict[str, tuple[FieldCheck, bool]]
    osc_args: tuple[str, ...] = ()
    osc_forms: tuple[tuple[str, ...], ...] = ()
    osc_list: str | None = None
    finish: Callable[[dict[str, Any], Any], dict[str, Any]] | None = None


_NAME: Final = _text(MAX_NAME_CHARS)
_SYNC: Final = (_sync, False)
#: every operation of the protocol (bindings/PROTOCOL.md); adding one is an entry here, its
#: handling (engine.sessions.ops for music, engine.server.transports for connection ops) and
#: the clients' method
OP_TABLE: Final[dict[str, OpSpec]] = {
    "hello": OpSpec({"session": (_NAME, False), "token": (_text(256), False)}, ("token",)),
    "emotion": OpSpec(
        {
            "valence": (_unit, True),
            "arousal": (_unit, True),
            "tension": (_unit, False),
            "sync": _SYNC,
            "seek_per_s": (_seek, False),
        },
        ("valence", "arousal", "tension", "sync"),
        osc_forms=(("valence", "arousal", "sync"),),
    ),
    "state": OpSpec({"name": (_NAME, True), "sync": _SYNC}, ("name", "sync")),
    "param": OpSpec({"name": (_NAME, True), "value": (_param_value, True)}, ("name", "value")),
    "stinger": OpSpec({"name": (_NAME, True)}, ("name",)),
    "leitmotif": OpSpec({"name": (_NAME, True), "notes": (_notes, False), "sync": _SYNC}, ("name", "sync")),
    "transport": OpSpec(
        {"action": (_action, True), "value": (_as_given, False)}, ("action", "value"), finish=_transport_value
    ),
    "volume": OpSpec(
        {"level": (_level, True), "fade_s": (_fade, False), "layer": (_NAME, False)},
        ("level", "fade_s", "layer"),
        osc_forms=(("level", "layer", "fade_s"),),
    ),
    "subscribe": OpSpec({"port": (_port, False)}, ("port",)),
    # OSC: the subscriber proves it receives (the challenge's nonce, echoed); WebSocket: ok, a no-op
    "confirm": OpSpec({"nonce": (_text(MAX_NONCE_CHARS), True)}, ("nonce",)),
    "unsubscribe": OpSpec({}),
    "session": OpSpec({"name": (_NAME, True)}, ("name",)),
    "output": OpSpec({"outputs": (_outputs, True)}, osc_list="outputs"),
    "text": OpSpec({"text": (_text(MAX_TEXT_CHARS), True)}, ("text",)),
    "status": OpSpec({}),
    "sessions": OpSpec({}),  # the sessions open on the server (answered with a ``sessions`` event)
}
OPS: Final = tuple(OP_TABLE)


def _check(op: str, raw: dict[str, Any], rid: Any) -> dict[str, Any]:
    """Validate the fields of one op (already unpacked from JSON or OSC)."""
    spec = OP_TABLE[op]
    allowed = spec.fields
    extra = sorted(set(raw) - set(allowed))
    if extra:
        raise _bad(op, f"unknown field(s) {extra} for {op}; allowed: {sorted(allowed)}", rid)
    missing = sorted(k for k, (_, required) in allowed.items() if required and k not in raw)
    if missing:
        raise _bad(op, f"{op} needs {', '.join(missing)}", rid)
    args: dict[str, Any] = {}
    for key, value in raw.items():
        check, required = allowed[key]
        if value is None and not required:
            continue  # an optional field given as null: absent
        args[key] = check(op, key, value, rid)
    return spec.finish(args, rid) if spec.finish is not None else args


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
    if rid is not None and (
        isinstance(rid, dict | list)
        or (isinstance(rid, str) and len(rid) > 64)
        or (isinstance(rid, float) and not math.isfinite(rid))  # 1e400: no JSON could carry it back
        or (isinstance(rid, int) and not -(2**63) <= rid < 2**63)
    ):
        raise ProtocolError("bad_message", "id must be a finite number or a string of at most 64 characters")
    op = obj.pop("op", None)
    if not isinstance(op, str) or op not in OP_TABLE:
        raise ProtocolError("unknown_op", f"op must be one of {', '.join(OPS)}, got {_show(op)}", None, rid)
    return Request(op, _check(op, obj, rid), rid)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed")


# --------------------------------------------------------------------------------- OSC in
def parse_osc(message: OscMessage) -> Request:
    """One decoded OSC message → a validated request.

    Raises:
        ProtocolError: unknown_op (an address outside /affetto/<op>) or bad_argument.
    """
    address = message.address
    op = address[len(OSC_PREFIX) :] if address.startswith(OSC_PREFIX) else ""
    spec = OP_TABLE.get(op)
    if spec is None:
        raise ProtocolError(
            "unknown_op", f"unknown OSC address {_show(address)}; see /affetto/<op> in the reference"
        )
    if spec.osc_list is not None:
        return Request(op, _check(op, {spec.osc_list: list(message.args)}, None))
    first: ProtocolError | None = None
    for names in (spec.osc_args, *spec.osc_forms):
        try:
            return Request(op, _check(op, _osc_fields(op, address, names, message.args), None))
        except ProtocolError as err:
            first = first or err  # the main form's error is the one reported
    assert first is not None
    raise first


def _osc_fields(op: str, address: str, names: tuple[str, ...], args: tuple[OscArg, ...]) -> dict[str, Any]:
    if len(args) > len(names):
        raise _bad(
            op, f"{address} takes at most {len(names)} arguments ({', '.join(names)}), got {len(args)}"
        )
    return dict(zip(names, args, strict=False))  # blobs, nil and booleans fail the field checks


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
#: event -> its OSC arguments: (field, type) with type i (int32; booleans 0/1), f (float32),
#: s (string) or l (a list of names as one string, comma-separated: profile names have no commas)
_OSC_EVENT_FIELDS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "beat": (("bar", "i"), ("beat", "i"), ("tempo_bpm", "f"), ("time_s", "f")),
    "bar": (
        ("bar", "i"),
        ("state", "s"),
        ("valence", "f"),
        ("arousal", "f"),
        ("tension", "f"),
        ("tempo_bpm", "f"),
        ("key", "s"),
        ("layers", "l"),
        ("time_s", "f"),
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
        ("playing", "i"),
        ("paused", "i"),
        ("key", "s"),
        ("profile", "s"),
        ("outputs", "l"),
        ("params", "l"),
        ("states", "l"),
        ("stingers", "l"),
        ("layers", "l"),
        ("level", "f"),
    ),
    "hello": (
        ("session", "s"),
        ("version", "i"),
        ("states", "l"),
        ("stingers", "l"),
        ("params", "l"),
        ("available_outputs", "l"),
        ("layer_names", "l"),
    ),
    "sessions": (("names", "l"), ("profiles", "l")),
    "error": (("code", "s"), ("message", "s")),
    "challenge": (("nonce", "s"),),
    "note": (("channel", "i"), ("pitch", "i"), ("velocity", "i"), ("time_s", "f"), ("layer", "s")),
    "volume": (("layer", "s"), ("level", "f"), ("fade_s", "f"), ("time_s", "f")),
    "text": (
        ("valence", "f"),
        ("arousal", "f"),
        ("confidence", "f"),
        ("scene_valence", "f"),
        ("scene_arousal", "f"),
        ("changed", "i"),
        ("scene", "s"),
    ),
}


def event_json(event: dict[str, Any]) -> str:
    """An event as a WebSocket text message."""
    return json.dumps(event, separators=(",", ":"), allow_nan=False)


def event_osc(event: dict[str, Any]) -> bytes | None:
    """An event as an OSC message (``/affetto/<event>`` with the reference's arguments); None
    for events that have no OSC form (``ok``)."""
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
        elif kind == "l":
            args.append(",".join(str(v) for v in value)[:1000] if isinstance(value, list | tuple) else "")
        else:
            args.append("" if value is None else str(value)[:1000])
    return encode_message(OSC_PREFIX + str(event["event"]), args)
