"""The one progress line of the long commands (``compose``, ``score``): written to a terminal's
stderr, rewritten in place at most every :data:`PROGRESS_INTERVAL_S` (and at the end)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final, TextIO

#: the progress line is rewritten at most this often (s)
PROGRESS_INTERVAL_S: Final = 0.1


class ProgressLine:
    """``describe(done, total) (3.1 s)`` on ``stream``; :meth:`close` ends the line.

    Args:
        stream: where to write; nothing is written unless it is a terminal.
        describe: ``(done, total) -> text``, e.g. ``composing: 12/256 bars``.
    """

    def __init__(self, stream: TextIO, describe: Callable[[float, float], str]) -> None:
        self.stream = stream
        self.describe = describe
        self.tty = stream.isatty()
        self.started = time.perf_counter()
        self._shown_at = -float("inf")
        self._shown = False

    def __call__(self, done: float, total: float) -> None:
        now = time.perf_counter()
        if not self.tty or (done < total and now - self._shown_at < PROGRESS_INTERVAL_S):
            return
        self._shown_at = now
        self._shown = True
        self.stream.write(f"\r{self.describe(done, total)} ({now - self.started:.1f} s)")
        self.stream.flush()

    def close(self) -> None:
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()
