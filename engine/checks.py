"""Argument checks, mido-style: one small check per field, at the boundary.

Every check takes the field's name and the value, returns the value in its canonical type, and
raises ``TypeError`` (wrong type; bool is never a number) or ``ValueError`` (out of range, NaN,
infinite), naming the field and the allowed range. Domain checks (a tempo, a sync point, a
temperature) live with their domain and are built from these; all are called ``check_*``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Final

#: the longest name of a state, stinger, leitmotif, parameter, output, session or profile
MAX_NAME_CHARS: Final = 64
#: most candidates per steered bar (engine.model.steering; 0 and 1 mean no steering)
MAX_STEER: Final = 32
#: sessions a server steers at once by default (engine.sessions.host.SessionHost's max_steered)
DEFAULT_MAX_STEERED: Final = 16


def check_int(name: str, value: object, low: int, high: int) -> int:
    """``value`` as an int in ``low..high`` (Python and numpy integers).

    Raises:
        TypeError: not an integer.
        ValueError: outside ``low..high``.
    """
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int in {low}..{high}, got {type(value).__name__}")
    number = int(value)
    if not low <= number <= high:
        raise ValueError(f"{name} must be in {low}..{high}, got {number}")
    return number


def check_real(name: str, value: object, low: float, high: float, *, low_open: bool = False) -> float:
    """``value`` as a finite float in ``[low, high]`` (``(low, high]`` with ``low_open``).

    Raises:
        TypeError: not a real number.
        ValueError: NaN, infinite, too large for a float, or out of range.
    """
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number in {interval}, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(f"{name} must be a finite number in {interval}, got a number too large") from None
    inside = low < number <= high if low_open else low <= number <= high
    if not (math.isfinite(number) and inside):
        raise ValueError(f"{name} must be in {interval}, got {_show(value)}")
    return number


def check_finite(name: str, value: object) -> float:
    """``value`` as a finite float (any size a float holds).

    Raises:
        TypeError: not a real number.
        ValueError: NaN, infinite or too large for a float.
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a finite number, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(f"{name} must be a finite number, got a number too large") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {_show(value)}")
    return number


def check_unit(name: str, value: object) -> float:
    """``value`` as a float in [-1, 1] (valence, arousal, tension).

    Raises:
        TypeError: not a real number.
        ValueError: NaN, infinite or outside [-1, 1].
    """
    return check_real(name, value, -1.0, 1.0)


def check_positive(name: str, value: object) -> float:
    """``value`` as a finite float > 0 (a temperature, a tempo, ...).

    Raises:
        TypeError: not a real number.
        ValueError: not finite or not > 0.
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a finite number > 0, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(f"{name} must be a finite number > 0, got a number too large") from None
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {_show(value)}")
    return number


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``.

    Raises:
        TypeError: not a string.
        ValueError: not one of ``choices``.
    """
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {', '.join(choices)}, got {type(value).__name__}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {_show(value)}")
    return value


def check_text(name: str, value: object, max_chars: int = MAX_NAME_CHARS) -> str:
    """``value`` as a non-empty string of at most ``max_chars`` characters.

    Raises:
        TypeError: not a string.
        ValueError: empty or too long.
    """
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string of 1..{max_chars} characters, got {type(value).__name__}")
    if not 1 <= len(value) <= max_chars:
        raise ValueError(
            f"{name} must be a non-empty string of at most {max_chars} characters, got {len(value)}"
        )
    return value


def _show(value: object) -> str:
    """A short repr for a message (long values are cut)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_steer(value: object) -> int:
    """``value`` as a candidate count per steered bar in 0..MAX_STEER (0 and 1: no steering).

    Raises:
        TypeError: not an int.
        ValueError: outside 0..MAX_STEER.
    """
    return check_int("steer", value, 0, MAX_STEER)
