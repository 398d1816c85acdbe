"""OSC 1.0 packets ↔ messages: a small, strict, pure codec (no I/O).

Decoding raises only :class:`OscDecodeError` (a ValueError) for any input, and enforces limits
on packet size, argument count, string length and bundle nesting. Supported argument types:
``i`` int32, ``f`` float32, ``d`` float64, ``h`` int64, ``s``/``S`` string, ``b`` blob,
``T``/``F`` booleans, ``N`` nil, ``I`` impulse. Bundles (``#bundle``) are flattened in order;
their time tags are ignored (messages apply on arrival).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

MAX_PACKET_BYTES: Final = 8192
MAX_ARGS: Final = 32
MAX_BUNDLE_DEPTH: Final = 4
MAX_MESSAGES: Final = 64

OscArg = int | float | str | bytes | bool | None


class OscDecodeError(ValueError):
    """A packet is not valid OSC, or exceeds a limit (the message says which)."""


@dataclass(frozen=True)
class OscMessage:
    address: str
    args: tuple[OscArg, ...]


def _pad4(n: int) -> int:
    return (n + 3) & ~3


def _read_string(data: bytes, pos: int, what: str) -> tuple[str, int]:
    end = data.find(b"\0", pos)
    if end < 0:
        raise OscDecodeError(f"{what} is not NUL-terminated")
    raw = data[pos:end]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise OscDecodeError(f"{what} is not valid UTF-8") from None
    nxt = _pad4(end + 1)
    if nxt > len(data):
        raise OscDecodeError(f"{what} padding runs past the end of the packet")
    return text, nxt


def decode_packet(data: bytes, *, max_bytes: int = MAX_PACKET_BYTES) -> list[OscMessage]:
    """The messages of one OSC packet (a message or a bundle), in order.

    Raises:
        OscDecodeError: malformed, or over a limit (size, arguments, nesting, messages).
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise OscDecodeError(f"an OSC packet must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_bytes:
        raise OscDecodeError(f"packet of {len(data)} bytes exceeds the limit of {max_bytes}")
    out: list[OscMessage] = []
    _decode(data, out, 0)
    return out


def _decode(data: bytes, out: list[OscMessage], depth: int) -> None:
    if len(data) == 0 or len(data) % 4:
        raise OscDecodeError(f"an OSC packet's size must be a positive multiple of 4, got {len(data)}")
    if data.startswith(b"#bundle\0"):
        if depth >= MAX_BUNDLE_DEPTH:
            raise OscDecodeError(f"bundles nested deeper than {MAX_BUNDLE_DEPTH}")
        pos = 16  # "#bundle\0" + 8-byte time tag
        if len(data) < pos:
            raise OscDecodeError("bundle is shorter than its header")
        while pos < len(data):
            if pos + 4 > len(data):
                raise OscDecodeError("bundle element size runs past the end")
            (size,) = struct.unpack_from(">i", data, pos)
            pos += 4
            if size <= 0 or size % 4 or pos + size > len(data):
                raise OscDecodeError(f"bad bundle element size {size}")
            _decode(data[pos : pos + size], out, depth + 1)
            pos += size
        return
    if len(out) >= MAX_MESSAGES:
        raise OscDecodeError(f"more than {MAX_MESSAGES} messages in one packet")
    address, pos = _read_string(data, 0, "address")
    if not address.startswith("/"):
        raise OscDecodeError(f"an OSC address must start with '/', got {address[:64]!r}")
    if pos == len(data):  # no type tag string: OSC 1.0 allows it, meaning no arguments
        out.append(OscMessage(address, ()))
        return
    tags, pos = _read_string(data, pos, "type tag string")
    if not tags.startswith(","):
        raise OscDecodeError("the type tag string must start with ','")
    if len(tags) - 1 > MAX_ARGS:
        raise OscDecodeError(f"more than {MAX_ARGS} arguments")
    args: list[OscArg] = []
    for tag in tags[1:]:
        if tag in "if":
            if pos + 4 > len(data):
                raise OscDecodeError(f"argument '{tag}' runs past the end")
            (value,) = struct.unpack_from(">i" if tag == "i" else ">f", data, pos)
            args.append(value)
            pos += 4
        elif tag in "hd":
            if pos + 8 > len(data):
                raise OscDecodeError(f"argument '{tag}' runs past the end")
            (value,) = struct.unpack_from(">q" if tag == "h" else ">d", data, pos)
            args.append(value)
            pos += 8
        elif tag in "sS":
            text, pos = _read_string(data, pos, "string argument")
            args.append(text)
        elif tag == "b":
            if pos + 4 > len(data):
                raise OscDecodeError("blob size runs past the end")
            (size,) = struct.unpack_from(">i", data, pos)
            pos += 4
            if size < 0 or pos + _pad4(size) > len(data):
                raise OscDecodeError(f"bad blob size {size}")
            args.append(data[pos : pos + size])
            pos += _pad4(size)
        elif tag == "T":
            args.append(True)
        elif tag == "F":
            args.append(False)
        elif tag in "NI":
            args.append(None)
        else:
            raise OscDecodeError(f"unsupported OSC type tag {tag!r}")
    if pos != len(data):
        raise OscDecodeError(f"{len(data) - pos} bytes left after the last argument")
    out.append(OscMessage(address, tuple(args)))


def _encode_string(text: str) -> bytes:
    raw = text.encode("utf-8") + b"\0"
    return raw + b"\0" * (_pad4(len(raw)) - len(raw))


def encode_message(address: str, args: Sequence[OscArg] = ()) -> bytes:
    """One OSC message: int → i (h beyond 32 bits), float → f (d beyond float32), str → s,
    bytes → b, bool → T/F, None → N.

    Raises:
        ValueError: an address without '/', or an unsupported argument type.
    """
    if not address.startswith("/"):
        raise ValueError(f"an OSC address must start with '/', got {address!r}")
    tags = [","]
    payload = []
    for arg in args:
        if isinstance(arg, bool):
            tags.append("T" if arg else "F")
        elif arg is None:
            tags.append("N")
        elif isinstance(arg, int):
            if -(2**31) <= arg < 2**31:
                tags.append("i")
                payload.append(struct.pack(">i", arg))
            else:
                tags.append("h")
                payload.append(struct.pack(">q", arg))
        elif isinstance(arg, float):
            try:
                payload.append(struct.pack(">f", arg))
                tags.append("f")
            except OverflowError:  # beyond float32: send a double
                payload.append(struct.pack(">d", arg))
                tags.append("d")
        elif isinstance(arg, str):
            tags.append("s")
            payload.append(_encode_string(arg))
        elif isinstance(arg, bytes):
            tags.append("b")
            payload.append(struct.pack(">i", len(arg)) + arg + b"\0" * (_pad4(len(arg)) - len(arg)))
        else:
            raise ValueError(f"cannot encode OSC argument of type {type(arg).__name__}")
    return _encode_string(address) + _encode_string("".join(tags)) + b"".join(payload)
