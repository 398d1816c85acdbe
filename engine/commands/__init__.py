"""Subcommands of the ``affetto`` command line (see :mod:`engine.cli`).

Each module in :data:`COMMAND_MODULES` defines ``register(subparsers) -> None``; the parser it
adds sets ``handler=<function(args) -> int>``. A handler reports an expected failure by raising
:class:`CommandError` (printed as one line, exit status 1).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Final

from engine.checks import check_int, check_real

COMMAND_MODULES: Final = (
    "engine.commands.compose",
    "engine.commands.bench",
    "engine.commands.classify",
    "engine.commands.demo",
    "engine.commands.play",
    "engine.commands.serve",
    "engine.commands.story",
)


class CommandError(Exception):
    """A command failed for a reason the user can act on; the message is shown as is."""


def model_error(exc: Exception, model_arg: object) -> CommandError:
    """A CommandError for a model that failed to load, hinting at ``--model`` when none was given."""
    hint = (
        "; no model is installed there yet, pass --model DIR"
        if model_arg is None and isinstance(exc, FileNotFoundError)
        else ""
    )
    return CommandError(f"{exc}{hint}")


def bounded_float(name: str, low: float, high: float, *, low_open: bool = False) -> Callable[[str], float]:
    """An argparse ``type`` accepting finite floats in [low, high] (or (low, high] with ``low_open``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        try:
            return check_real(name, value, low, high, low_open=low_open)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def bounded_int(name: str, low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type`` accepting integers in [low, high] (no upper bound when ``high`` is None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if high is None and value < low:
            raise argparse.ArgumentTypeError(f"{name} must be >= {low}, got {value}")
        try:
            return check_int(name, value, low, high if high is not None else value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse
