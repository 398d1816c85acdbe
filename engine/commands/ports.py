"""The MIDI port options of ``play``, ``demo``, ``serve`` and ``bench server``.

``--midi-port NAME`` opens an existing port only: the one called NAME, else the one port whose
name contains NAME (case-insensitive, :func:`engine.outputs.midi_port.find_output_port`); a miss
is one line listing the ports there are. ``--virtual-port NAME`` creates a virtual port called
NAME for a DAW or a synth to connect to. The two exclude each other.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from engine.commands import CommandError

VIRTUAL_HINT = "--virtual-port NAME creates a new port instead"


@dataclass(frozen=True)
class PortChoice:
    """The MIDI port a command was asked for."""

    name: str
    virtual: bool


def add_port_options(parser: Any, *, virtual_default: str | None = None) -> None:
    """Add ``--midi-port`` and ``--virtual-port`` (exclusive) to ``parser`` (a parser or group).

    Args:
        virtual_default: the virtual port made when neither is given (None: no port).
    """
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--midi-port", metavar="NAME", default=None,
        help="send live MIDI to this existing port (its name, or a part of it); a miss lists the ports",
    )  # fmt: skip
    default = f" (default {virtual_default!r})" if virtual_default is not None else ""
    group.add_argument(
        "--virtual-port", metavar="NAME", default=virtual_default,
        help=f"create a virtual MIDI port NAME for a DAW or synth to connect to{default}",
    )  # fmt: skip


def port_choice(args: argparse.Namespace) -> PortChoice | None:
    """The port ``args`` asks for (``--midi-port`` before a defaulted ``--virtual-port``), or None."""
    if args.midi_port is not None:
        return PortChoice(args.midi_port, virtual=False)
    if args.virtual_port is not None:
        return PortChoice(args.virtual_port, virtual=True)
    return None


def port_error(exc: Exception) -> CommandError:
    """A CommandError for a port that cannot be opened; a miss says how to create one instead."""
    from engine.outputs.midi_port import MidiPortNotFound

    return CommandError(f"{exc}; {VIRTUAL_HINT}" if isinstance(exc, MidiPortNotFound) else str(exc))


def check_existing(choice: PortChoice | None, api: str | None) -> None:
    """Fail early (before a model loads) when ``choice`` is an existing port that is not there.

    Raises:
        CommandError: no existing port matches (the ports there are are listed), several do, or
            no MIDI backend works here.
    """
    from engine.outputs.midi_port import MidiPortError, find_output_port

    if choice is None or choice.virtual:
        return
    try:
        find_output_port(choice.name, api)
    except MidiPortError as exc:
        raise port_error(exc) from exc


def checked_port_name(choice: PortChoice, api: str | None) -> str:
    """The name to hand to an output that opens an existing port if one matches, else a virtual
    one (:class:`engine.sessions.live_rig.LiveRig`, which takes no flag), so that it does what
    ``choice`` says: an existing port's full name, or a virtual port's name that no existing port
    matches.

    Raises:
        CommandError: no existing port matches (the ports there are are listed), or one matches
            the virtual port's name (it would be opened instead), or no MIDI backend works here.
    """
    from engine.outputs.midi_port import MidiPortError, MidiPortNotFound, find_output_port

    try:
        existing = find_output_port(choice.name, api)
    except MidiPortNotFound as exc:
        if choice.virtual:
            return choice.name
        raise port_error(exc) from exc
    except MidiPortError as exc:
        raise CommandError(str(exc)) from exc
    if choice.virtual:
        raise CommandError(
            f"the MIDI port {existing!r} matches the virtual port name {choice.name!r}; open it with "
            "--midi-port or name the virtual port differently"
        )
    return existing
