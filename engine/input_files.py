"""Files the user names on the command line (a MIDI file, an arc, a profile): one way to open them.

Every reader of such a file goes through :func:`read_input_file`, so that each one refuses the
same things the same way, in one line that starts with the path:

* what is not a regular file, by its type, before it is opened (``os.stat``): a directory, a
  FIFO (opening one for reading blocks until a writer comes), a socket or a device
  (``/dev/zero`` never ends);
* a file larger than the reader's limit, whatever ``stat`` says: at most ``max_bytes + 1``
  bytes are ever read (``/proc`` files report a size of 0, a file may grow while it is read).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class InputFileError(ValueError):
    """An input file is missing, not a regular file, unreadable or too large (the message starts
    with the path)."""


def _kind(mode: int) -> str | None:
    """What a file that is not a regular file is, for messages; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def _refuse(path: Path, mode: int, what: str) -> None:
    kind = _kind(mode)
    if kind is not None:
        article = "an" if what[:1].lower() in "aeiou" else "a"
        raise InputFileError(f"{path} is {kind}, not {article} {what}")


def check_input_file(path: str | os.PathLike[str], what: str) -> None:
    """Check that ``path`` names a regular file, without opening it (a cheap early check).

    Args:
        path: the file the user named.
        what: what it should be, for messages ("MIDI file", "profile").

    Raises:
        InputFileError: missing, unreachable, or a directory, FIFO, socket or device.
    """
    p = Path(path)
    try:
        mode = os.stat(p).st_mode
    except FileNotFoundError as exc:
        raise InputFileError(f"{p}: cannot read (no such file)") from exc
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        raise InputFileError(f"{p}: cannot read ({getattr(exc, 'strerror', None) or exc})") from exc
    _refuse(p, mode, what)


def read_input_file(path: str | os.PathLike[str], what: str, max_bytes: int, *, allowed: str = "") -> bytes:
    """The bytes of a regular file the user named, at most ``max_bytes`` of them.

    The file's type is checked before it is opened and again on the open file (so a FIFO put in
    its place in between does not block either: it is opened without waiting for a writer).

    Args:
        path: the file.
        what: what it should be, for messages ("MIDI file", "profile").
        max_bytes: the most bytes it may have; at most one more is read.
        allowed: the limit in words for the message (default: "at most MAX_BYTES bytes").

    Raises:
        InputFileError: missing, not a regular file (directory, FIFO, socket, device),
            unreadable, or larger than ``max_bytes``; the message starts with the path.
    """
    p = Path(path)
    check_input_file(p, what)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(p, flags)
    except FileNotFoundError as exc:
        raise InputFileError(f"{p}: cannot read (no such file)") from exc
    except OSError as exc:
        raise InputFileError(f"{p}: cannot read ({exc.strerror or exc})") from exc
    try:
        with os.fdopen(fd, "rb") as f:
            _refuse(p, os.fstat(f.fileno()).st_mode, what)
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise InputFileError(f"{p}: cannot read ({exc.strerror or exc})") from exc
    if len(data) > max_bytes:
        raise InputFileError(f"{p}: too large (allowed: {allowed or f'at most {max_bytes} bytes'})")
    return data
