"""The protocol parsers raise only ProtocolError (OscDecodeError for the bare codec), whatever
arrives: random bytes, mutated valid packets, random JSON."""

from __future__ import annotations

import contextlib
import json
import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.server.osc_codec import OscDecodeError, decode_packet, encode_message
from engine.server.protocol import (
    ERROR_CODES,
    OP_TABLE,
    OSC_PREFIX,
    TRANSPORT_ACTIONS,
    ProtocolError,
    parse_json,
    parse_osc_packet,
)

ADDRESSES = st.sampled_from(
    ["/affetto/emotion", "/affetto/state", "/affetto/param", "/affetto/stinger", "/affetto/transport",
     "/affetto/subscribe", "/affetto/session", "/affetto/text", "/affetto/status", "/affetto/nope", "/x"]
)  # fmt: skip
ARGS = st.lists(
    st.one_of(
        st.integers(-(2**40), 2**40), st.floats(allow_nan=True, allow_infinity=True, width=32),
        st.text(max_size=80), st.binary(max_size=40), st.booleans(), st.none(),
    ),
    max_size=6,
)  # fmt: skip


@settings(max_examples=1500, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes(data: bytes) -> None:
    _requests, errors = parse_osc_packet(data)
    assert all(e.code in ERROR_CODES for e in errors)
    with contextlib.suppress(OscDecodeError):
        decode_packet(data)


@settings(max_examples=1500, deadline=None)
@given(ADDRESSES, ARGS, st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=4))
def test_mutated_valid_packets(address: str, args: list, flips: list[tuple[int, int]]) -> None:
    data = bytearray(encode_message(address, args))
    for pos, value in flips:
        if data:
            data[pos % len(data)] = value
    requests, _errors = parse_osc_packet(bytes(data))
    for request in requests:
        for value in request.args.values():
            if isinstance(value, float):
                assert value == value and abs(value) != float("inf")  # only finite numbers get through


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(ADDRESSES, ARGS), min_size=1, max_size=5), st.integers(0, 3))
def test_bundles(messages: list, depth: int) -> None:
    packet = b"".join(
        struct.pack(">i", len(m)) + m for m in (encode_message(a, args) for a, args in messages)
    )
    data = b"#bundle\x00" + b"\x00" * 8 + packet
    for _ in range(depth):
        data = b"#bundle\x00" + b"\x00" * 8 + struct.pack(">i", len(data)) + data
    requests, errors = parse_osc_packet(data)
    assert len(requests) + len(errors) >= 1


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30)),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
OP_NAMES = st.sampled_from(["emotion", "state", "param", "stinger", "leitmotif", "transport", "subscribe",
                            "session", "text", "status", "sessions", "hello", "bogus"])  # fmt: skip
FIELD_NAMES = st.sampled_from(
    ["valence", "arousal", "tension", "sync", "seek_per_s", "name", "value", "action", "notes", "port",
     "text", "token", "session", "id", "extra"]
)  # fmt: skip


@settings(max_examples=1500, deadline=None)
@given(OP_NAMES, st.dictionaries(FIELD_NAMES, JSON_VALUES, max_size=6))
def test_structured_json(op: str, fields: dict) -> None:
    text = json.dumps({"op": op, **fields})
    try:
        request = parse_json(text)
    except ProtocolError as err:
        assert err.code in ERROR_CODES and err.message
        return
    assert request.op == op


@settings(max_examples=1500, deadline=None)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: b.decode("latin-1"))))
def test_random_text(text: str) -> None:
    try:
        parse_json(text)
    except ProtocolError as err:
        assert err.code in ERROR_CODES


def test_deep_nesting_and_size_limits() -> None:
    for text in ("[" * 100_000, '{"op": "status", "x": ' + "[" * 5000 + "]" * 5000 + "}", "x" * 70_000):
        try:
            parse_json(text)
        except ProtocolError as err:
            assert err.code in ("bad_message", "bad_argument")


# --- every field of every op in the op table, with hostile values of every JSON type and OSC tag ---
#: a valid value for every field the protocol has (a new field must get one: see the test below)
VALID: dict[str, object] = {
    "valence": 0.5, "arousal": -0.2, "tension": 0.1, "sync": "bar", "seek_per_s": 1.0, "name": "combat",
    "value": 0.5, "notes": [[0, 60, 1, 90]], "action": "tempo", "port": 9100, "session": "s1",
    "token": "secret", "outputs": ["midi"], "text": "The wind rose.", "level": 0.5, "fade_s": 2.0,
    "layer": "drums", "nonce": "5f2c9a1e0b7d4c36",
}  # fmt: skip
HOSTILE_JSON: list[object] = [
    10**400, -(10**400), 2**63, 1e308, -1e308, 1e-320, 0, -1, 1.5, True, False, None, "", "x" * 100_000,
    "\udcff", [], [[]], [None] * 70, {}, {"a": 1},
]  # fmt: skip
HOSTILE_JSON_TEXT = ["1e400", "-1e400", "1" + "0" * 500, "-0.0"]
_MAX_D = struct.pack(">d", 1.7976931348623157e308)
HOSTILE_OSC: list[tuple[str, bytes]] = [
    ("d", struct.pack(">d", float("inf"))), ("d", struct.pack(">d", float("nan"))), ("d", _MAX_D),
    ("f", struct.pack(">f", float("nan"))), ("f", struct.pack(">f", float("-inf"))),
    ("h", struct.pack(">q", 2**63 - 1)), ("h", struct.pack(">q", -(2**63))),
    ("i", struct.pack(">i", 2**31 - 1)), ("i", struct.pack(">i", -(2**31))),
    ("s", b"\x00\x00\x00\x00"), ("s", b"\xff\xfe\x00\x00"), ("s", b"x" * 1000 + b"\x00" * 4),
    ("b", struct.pack(">i", 3) + b"abc\x00"), ("T", b""), ("F", b""), ("N", b""), ("I", b""),
]  # fmt: skip


def _osc(address: str, tagged: list[tuple[str, bytes]]) -> bytes:
    def string(s: bytes) -> bytes:
        return s + b"\x00" * (4 - len(s) % 4)

    return (
        string(address.encode())
        + string(("," + "".join(t for t, _ in tagged)).encode())
        + b"".join(payload for _, payload in tagged)
    )


def _valid_osc(value: object) -> tuple[str, bytes]:
    if isinstance(value, str):
        data = value.encode()
        return "s", data + b"\x00" * (4 - len(data) % 4)
    if isinstance(value, int):
        return "i", struct.pack(">i", value)
    return "f", struct.pack(">f", float(value))  # type: ignore[arg-type]


def _only_finite(request: object) -> None:
    for value in getattr(request, "args", {}).values():
        if isinstance(value, float):
            assert math.isfinite(value), request


def test_every_field_has_a_valid_sample() -> None:
    fields = {name for spec in OP_TABLE.values() for name in spec.fields}
    assert fields <= set(VALID), f"give the new field(s) a valid sample: {sorted(fields - set(VALID))}"


def _bases(op: str) -> list[dict[str, object]]:
    """The op's required fields with valid values (one per transport action: each checks its value)."""
    spec = OP_TABLE[op]
    required = {k: VALID[k] for k, (_, needed) in spec.fields.items() if needed}
    if op == "transport":
        return [{**required, "action": action} for action in TRANSPORT_ACTIONS]
    return [required]


@pytest.mark.parametrize("op", sorted(OP_TABLE))
def test_every_json_field_refuses_hostile_values_with_a_protocol_error(op: str) -> None:
    spec = OP_TABLE[op]
    for base, field in [(base, field) for base in _bases(op) for field in [*spec.fields, "id"]]:
        texts = [json.dumps({"op": op, **base, field: v}) for v in HOSTILE_JSON]
        prefix = json.dumps({"op": op, **base})[:-1]
        texts += [f'{prefix}, "{field}": {raw}}}' for raw in HOSTILE_JSON_TEXT]
        for text in texts:
            try:
                request = parse_json(text)
            except ProtocolError as err:
                assert err.code in ("bad_argument", "bad_message") and err.message, (text[:80], err)
                continue
            _only_finite(request)
            json.dumps(request.request_id, allow_nan=False)  # the reply can carry its id back


@pytest.mark.parametrize("op", sorted(OP_TABLE))
def test_every_osc_argument_refuses_every_type_tag_with_a_protocol_error(op: str) -> None:
    spec = OP_TABLE[op]
    forms = [(spec.osc_list,)] if spec.osc_list else [spec.osc_args, *spec.osc_forms]
    cases = [(b, p, k) for b in _bases(op) for p in forms for k in range(len(p) + 1)]  # and one too many
    for base, positions, k in cases:
        prefix = [
            _valid_osc(base.get(name, VALID[name]) if name != "outputs" else "midi") for name in positions[:k]
        ]
        for tagged in HOSTILE_OSC:
            requests, errors = parse_osc_packet(_osc(OSC_PREFIX + op, [*prefix, tagged]))
            assert all(e.code in ERROR_CODES and e.message for e in errors)
            for request in requests:
                _only_finite(request)
