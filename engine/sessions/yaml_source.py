"""Strict YAML for hand-written data files (profiles, arcs): plain data, each value with its line.

A file is read (by :func:`engine.input_files.read_input_file`: a regular file, never more than
its size limit, whatever ``stat`` says) with a safe loader that also refuses tags, anchors and
aliases (no shared nodes, no alias bombs), duplicate keys, mapping keys that are not plain
names, control characters, numbers written with more than MAX_NUMBER_CHARS characters and
oversized input, and reads ``1e3`` and ``2.5E-2`` as numbers. The result is a tree of
:class:`Node` values that know their line and their path in the document
(``params.health.range[1]``), so that the field readers below, one small check per field
(mido-style, built on :mod:`engine.checks`), report every mistake as ``FILE:LINE: where: what
is wrong (allowed: ...)``: one line, at most MAX_MESSAGE_CHARS characters, each value it shows
cut to MAX_SHOWN_CHARS.

Each kind of file describes itself with a :class:`Format` (what it is called, its error class,
its size limit), then walks the tree with the readers (as :mod:`engine.sessions.scene_file` and
:mod:`engine.sessions.profile_file` do)::

    ARC = Format("arc file", SceneFileError, MAX_SCENE_CHARS, "a mapping with cues, end_beat, start_state")
    root = parse_yaml(read_yaml_file(path, ARC), str(path), ARC)
    items = mapping(root, ("cues", "end_beat", "start_state"))
    end_beat = number(items["end_beat"], 0.0, 1e6, open_lo=True)   # FILE:LINE: end_beat: ... (allowed: ...)
"""

from __future__ import annotations

import math
import os
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from engine.checks import MAX_NAME_CHARS, check_choice, check_int, check_real, check_text
from engine.input_files import InputFileError, read_input_file

#: the longest free text (a description) a field holds
MAX_TEXT_CHARS: Final = 10_000
#: the longest number, as written (converting a longer one, like 1:59:59:... in YAML 1.1's base
#: 60, costs time that grows with the square of its length)
MAX_NUMBER_CHARS: Final = 100
#: the most characters of a value (a name, a number, a tag) a message shows
MAX_SHOWN_CHARS: Final = 40
#: the longest message (the allowed values are cut short beyond it)
MAX_MESSAGE_CHARS: Final = 400
#: what YAML refuses in a file (PyYAML's Reader): C0 and C1 controls but tab, newline, carriage
#: return and NEL; DEL; surrogates; U+FFFE and U+FFFF
_NOT_PRINTABLE: Final = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)

_TAG: Final = "tag:yaml.org,2002:"
_SCALAR_TAGS: Final = frozenset(_TAG + t for t in ("str", "int", "float", "bool", "null"))
_NUMBER_TAGS: Final = frozenset((_TAG + "int", _TAG + "float"))


class SourceError(ValueError):
    """A data file cannot be read or is not valid (the message says file, line and what is wrong)."""


@dataclass(frozen=True)
class Format:
    """A kind of YAML data file.

    Attributes:
        kind: what the file is, for messages ("profile", "arc file").
        error: the error raised for its mistakes (a SourceError).
        max_chars: the most characters a file may have.
        root: what its top level must be, for the message of an empty file.
    """

    kind: str
    error: type[SourceError]
    max_chars: int
    root: str


@dataclass(frozen=True)
class Node:
    """A YAML value with where it is: ``line`` where it starts, ``key_line`` where its key is.

    Attributes:
        value: str, int, float, bool or None; a list of Nodes; or a dict of names to Nodes.
        line: the line (from 1) where the value starts.
        key_line: the line of its key (of the item, in a list); the value's own line at the top.
        path: where it is in the document, like ``params.health.range[1]``; "" at the top.
        source: the file name messages start with.
        error_type: the error :meth:`error` makes.
    """

    value: Any  # str | int | float | bool | None | list[Node] | dict[str, Node]
    line: int
    key_line: int
    path: str
    source: str
    error_type: type[SourceError] = field(default=SourceError, compare=False, repr=False)

    def error(self, message: str, *, at_key: bool = False) -> SourceError:
        """The error to raise for this value: ``SOURCE:LINE: path: message``.

        Args:
            message: what is wrong, and what is allowed.
            at_key: name the line of the key rather than that of the value.
        """
        where = f" {clip(self.path, 2 * MAX_SHOWN_CHARS)}:" if self.path else ""
        line = self.key_line if at_key else self.line
        return self.error_type(one_line(f"{self.source}:{line}:{where} {message}"))


def clip(text: str, most: int = MAX_SHOWN_CHARS) -> str:
    """``text`` cut to about ``most`` characters (saying how long it was)."""
    return text if len(text) <= most else f"{text[:most]}... ({len(text)} characters)"


def one_line(message: str, most: int = MAX_MESSAGE_CHARS) -> str:
    """``message`` on one line, cut to about ``most`` characters."""
    flat = " ".join(message.split()) if any(c in message for c in "\r\n\x0b\x0c\x85\u2028\u2029") else message
    return flat if len(flat) <= most else f"{flat[: most - 4]} ..."


# ------------------------------------------------------------------------------ loading
class _Loader(yaml.SafeLoader):
    """A safe loader that refuses anchors and aliases (no shared nodes, no alias bombs) and reads
    ``1e3`` and ``2.5E-2`` as numbers (YAML 1.1 wants a dot and a signed exponent)."""

    def __init__(self, text: str, kind: str) -> None:
        super().__init__(text)
        self.kind = kind

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, f"aliases (*name) are not allowed in {self.kind}s", event.start_mark
            )
        if getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(
                None, None, f"anchors (&name) are not allowed in {self.kind}s", event.start_mark
            )
        return super().compose_node(parent, index)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def read_yaml_file(path: str | os.PathLike[str], fmt: Format) -> str:
    """The text of a data file, for :func:`parse_yaml`.

    Args:
        path: a UTF-8 file.
        fmt: the kind of file (its size limit and error).

    Raises:
        SourceError: (``fmt.error``) missing, not a regular file (a directory, FIFO or device),
            unreadable, far too large or not UTF-8; the message starts with the path.
    """
    p = Path(path)
    try:  # a UTF-8 character is at most 4 bytes; parse_yaml counts the characters
        data = read_input_file(p, fmt.kind, 4 * fmt.max_chars, allowed=f"at most {fmt.max_chars} characters")
    except InputFileError as exc:
        raise fmt.error(one_line(str(exc))) from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise fmt.error(one_line(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})")) from exc


def parse_yaml(text: str, source: str, fmt: Format) -> Node:
    """One YAML document as a tree of Nodes (plain data only).

    Args:
        text: the YAML document.
        source: the name errors start with (a file name).
        fmt: the kind of file (its name, size limit and error).

    Raises:
        SourceError: (``fmt.error``) not text, too large, a control character, empty, not YAML,
            more than one document, or not plain data (tags, anchors, aliases, duplicate keys,
            keys that are not names); the message is ``SOURCE:LINE: what is wrong`` (with the
            column for a control character).
    """
    if not isinstance(text, str):
        raise fmt.error(f"{source}: expected YAML text, got {type(text).__name__}")
    if len(text) > fmt.max_chars:
        raise fmt.error(f"{source}: too large ({len(text)} characters; allowed: at most {fmt.max_chars})")
    bad = _NOT_PRINTABLE.search(text)
    if bad is not None:  # PyYAML's reader would refuse it with a traceback-like message, no line
        at, char = bad.start(), bad.group()
        line, column = text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)
        kind = "control character" if unicodedata.category(char) == "Cc" else "character"
        raise fmt.error(
            f"{source}:{line}:{column}: {kind} {char!r} (U+{ord(char):04X}) is not allowed "
            "(allowed: printable text, tabs and line breaks)"
        )
    try:
        loader = _Loader(text, fmt.kind)
    except yaml.YAMLError as exc:  # the reader's own checks (the search above finds what they do)
        raise fmt.error(
            one_line(f"{source}: not valid YAML ({clip(str(exc), 4 * MAX_SHOWN_CHARS)})")
        ) from exc
    try:
        node = loader.get_single_node()
        if node is None:
            raise fmt.error(f"{source}:1: the {fmt.kind} is empty (allowed: {fmt.root})")
        return _convert(loader, node, source, "", node.start_mark.line + 1, fmt.error)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{mark.line + 1}:" if mark is not None else ""
        what = clip(" ".join(part for part in (exc.context, exc.problem) if part), 4 * MAX_SHOWN_CHARS)
        raise fmt.error(one_line(f"{source}:{where} not valid YAML ({what})")) from exc
    except yaml.YAMLError as exc:
        raise fmt.error(
            one_line(f"{source}: not valid YAML ({clip(str(exc), 4 * MAX_SHOWN_CHARS)})")
        ) from exc
    except RecursionError as exc:
        raise fmt.error(f"{source}: nested too deeply (allowed: a few levels of mappings and lists)") from exc
    finally:
        loader.dispose()


def _tag_name(tag: str) -> str:
    return clip("!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag)


def _convert(
    loader: _Loader, node: Any, source: str, path: str, key_line: int, error: type[SourceError]
) -> Node:
    line = node.start_mark.line + 1
    here = Node(None, line, key_line, path, source, error)
    if isinstance(node, yaml.ScalarNode):
        if node.tag not in _SCALAR_TAGS:
            raise here.error(
                f"YAML tag {_tag_name(node.tag)} is not allowed "
                "(allowed: plain strings, numbers, booleans, null, lists and mappings; no tags)"
            )
        if node.tag in _NUMBER_TAGS and len(node.value) > MAX_NUMBER_CHARS:
            raise here.error(
                f"a number of {len(node.value)} characters is too long "
                f"(allowed: at most {MAX_NUMBER_CHARS} characters)"
            )
        try:
            value = loader.construct_object(node, deep=True)
        except (ValueError, yaml.YAMLError) as exc:
            raise here.error(f"cannot read {describe(node.value)} as {_tag_name(node.tag)}") from exc
        return Node(value, line, key_line, path, source, error)
    if isinstance(node, yaml.SequenceNode):
        if node.tag != _TAG + "seq":
            raise here.error(f"YAML tag {_tag_name(node.tag)} is not allowed (allowed: plain lists; no tags)")
        items = [
            _convert(loader, item, source, f"{path}[{i}]", item.start_mark.line + 1, error)
            for i, item in enumerate(node.value)
        ]
        return Node(items, line, key_line, path, source, error)
    if node.tag != _TAG + "map":
        raise here.error(f"YAML tag {_tag_name(node.tag)} is not allowed (allowed: plain mappings; no tags)")
    mapping: dict[str, Node] = {}
    for key_node, value_node in node.value:
        k_line = key_node.start_mark.line + 1
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in _SCALAR_TAGS:
            raise Node(None, k_line, k_line, path, source, error).error(
                "mapping keys must be plain names (allowed: a name like health or combat)"
            )
        key = str(key_node.value)
        if key in mapping:
            raise Node(None, k_line, k_line, path, source, error).error(
                f"duplicate key {describe(key)} (first at line {mapping[key].key_line})"
            )
        child = f"{path}.{key}" if path else key
        mapping[key] = _convert(loader, value_node, source, child, k_line, error)
    return Node(mapping, line, key_line, path, source, error)


# ------------------------------------------------------------------------------ field readers
def describe(value: Any) -> str:
    """A value for a message: "a mapping", "a list", or its repr, cut to MAX_SHOWN_CHARS."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str) and len(value) > MAX_SHOWN_CHARS:
        return f"{value[:MAX_SHOWN_CHARS]!r}... ({len(value)} characters)"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        # repr of a very large int is slow, and refused beyond sys.get_int_max_str_digits()
        return f"a whole number of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    return clip(repr(value))


def _listed(names: Sequence[str], most: int = 24) -> str:
    """``names`` joined for an "(allowed: ...)" list, the first ``most`` of them."""
    shown = ", ".join(clip(n) for n in names[:most])
    return shown if len(names) <= most else f"{shown}, ... ({len(names)} in all)"


def mapping(
    node: Node, allowed: Sequence[str], required: Sequence[str] = (), *, example: str = ""
) -> dict[str, Node]:
    """``node``'s items, by key.

    Args:
        node: a mapping.
        allowed: the keys it may have.
        required: the keys it must have.
        example: a short example for the message when ``node`` is not a mapping.

    Raises:
        SourceError: not a mapping, an unknown key or a missing one.
    """
    if not isinstance(node.value, dict):
        hint = f", like {example}" if example else f" with keys {', '.join(allowed)}"
        raise node.error(f"expected a mapping{hint}, got {describe(node.value)}")
    items: dict[str, Node] = node.value
    for key, child in items.items():
        if key not in allowed:
            raise child.error(f"unknown key {describe(key)} (allowed: {', '.join(allowed)})", at_key=True)
    for key in required:
        if key not in items:
            raise node.error(f"missing required key {key!r} (allowed: {', '.join(allowed)})", at_key=True)
    return items


def sequence(node: Node, what: str, lo: int, hi: int) -> list[Node]:
    """``node``'s items.

    Args:
        node: a list.
        what: what the items are, for messages ("notes [onset, degree, duration, velocity]").
        lo, hi: how many items it may have.

    Raises:
        SourceError: not a list, or too few or too many items.
    """
    if not isinstance(node.value, list):
        raise node.error(f"expected a list of {what}, got {describe(node.value)}")
    if not lo <= len(node.value) <= hi:
        raise node.error(f"expected {lo}..{hi} {what}, got {len(node.value)}")
    items: list[Node] = node.value
    return items


def number(node: Node, lo: float, hi: float, *, open_lo: bool = False, allowed: str = "") -> float:
    """``node``'s value as a finite float in ``[lo, hi]`` (``(lo, hi]`` with ``open_lo``).

    Args:
        node: a number (an int or a float; a bool is not a number).
        lo, hi: the range.
        open_lo: ``lo`` itself is out of range.
        allowed: the range in words, for messages (default: "a number in [lo, hi]").

    Raises:
        SourceError: not a number (a quoted one says so), NaN, infinite, or out of range.
    """
    value = node.value
    bounds = allowed or f"a number in {'(' if open_lo else '['}{lo:g}, {hi:g}]"
    try:
        return check_real(node.path, value, lo, hi, low_open=open_lo)
    except TypeError as exc:
        hint = " (write numbers without quotes)" if isinstance(value, str) and _looks_numeric(value) else ""
        raise node.error(f"expected a number, got {describe(value)}{hint} (allowed: {bounds})") from exc
    except ValueError as exc:
        raise node.error(f"{describe(value)} {_why_not_in_range(value)} (allowed: {bounds})") from exc


def _why_not_in_range(value: float) -> str:
    try:
        finite = math.isfinite(float(value))
    except OverflowError:
        return "is too large"
    return "is out of range" if finite else "is not a finite number"


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def integer(node: Node, lo: int, hi: int) -> int:
    """``node``'s value as an int in ``lo..hi``.

    Raises:
        SourceError: not a whole number (a bool is not), or out of range.
    """
    value = node.value
    try:
        return check_int(node.path, value, lo, hi)
    except TypeError as exc:
        raise node.error(f"expected a whole number, got {describe(value)} (allowed: {lo}..{hi})") from exc
    except ValueError as exc:
        raise node.error(f"{describe(value)} is out of range (allowed: {lo}..{hi})") from exc


def choice(node: Node, choices: Sequence[str], what: str) -> str:
    """``node``'s value if it is one of ``choices``.

    Args:
        node: a string.
        choices: the allowed values.
        what: what the value is, for messages ("sync point").

    Raises:
        SourceError: anything else.
    """
    try:
        return check_choice(what, node.value, choices)
    except (TypeError, ValueError) as exc:
        raise node.error(f"unknown {what} {describe(node.value)} (allowed: {_listed(choices)})") from exc


def flag(node: Node) -> bool:
    """``node``'s value if it is ``true`` or ``false``.

    Raises:
        SourceError: anything else (a number, a string, null).
    """
    if not isinstance(node.value, bool):
        raise node.error(f"expected true or false, got {describe(node.value)}")
    return node.value


def free_text(node: Node, max_chars: int = MAX_TEXT_CHARS) -> str:
    """``node``'s value as free text of at most ``max_chars`` characters (may be empty).

    Raises:
        SourceError: not a string, or too long.
    """
    value = node.value
    if value == "":  # free text may be empty; check_text wants at least one character
        return ""
    try:
        return check_text(node.path, value, max_chars)
    except (TypeError, ValueError) as exc:
        raise node.error(f"expected text (at most {max_chars} characters), got {describe(value)}") from exc


def name(node: Node, what: str = "name", max_chars: int = MAX_NAME_CHARS) -> str:
    """``node``'s value as a name: a non-empty string of at most ``max_chars`` characters.

    Args:
        node: a string.
        what: what the name is of, for messages ("state name").
        max_chars: the longest name.

    Raises:
        SourceError: not a string, empty, or too long.
    """
    value = node.value
    try:
        return check_text(node.path, value, max_chars)
    except (TypeError, ValueError) as exc:
        got = f"{len(value)} characters" if isinstance(value, str) and value else describe(value)
        raise node.error(f"expected a {what}, got {got} (allowed: 1..{max_chars} characters)") from exc
