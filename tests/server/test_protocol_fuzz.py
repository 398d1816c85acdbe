"""The protocol parsers raise only ProtocolError (OscDecodeError for the bare codec), whatever
arrives: random bytes, mutated valid packets, random JSON."""

from __future__ import annotations

import contextlib
import json
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.server.osc_codec import OscDecodeError, decode_packet, encode_message
from engine.server.protocol import ERROR_CODES, ProtocolError, parse_json, parse_osc_packet

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
                            "session", "text", "status", "hello", "bogus"])  # fmt: skip
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
