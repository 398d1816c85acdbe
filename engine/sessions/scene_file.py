"""Scripted arcs in YAML: a list of cues at beats, for ``affetto play --arc FILE``.

Example::

    end_beat: 64            # the music stops here (optional: play until interrupted)
    start_state: explore    # optional (default explore)
    cues:
      - {beat: 14, op: state, name: danger}
      - {beat: 30, op: emotion, valence: -0.6, arousal: 0.9, tension: 0.8, sync: bar, seek_per_s: 1.0}
      - {beat: 32, op: stinger, name: hit}
      - {beat: 40, op: tempo, tempo_bpm: 150}

A cue's fields (see :class:`engine.sessions.ops.Cue`)::

    beat: 14          # required: when it arrives, in quarter notes from the start, 0..1e6
    op: state         # required: state | emotion | stinger | leitmotif | tempo
    name: danger      # the state, stinger or leitmotif (1..64 characters)
    valence: -0.6     # for emotion: valence and arousal in [-1, 1] (default 0),
    arousal: 0.9      #   tension in [-1, 1] or null (default: keep the current one)
    tension: 0.8
    tempo_bpm: 150    # for tempo: 20..400, or null to follow arousal again
    sync: bar         # immediate | beat | bar | phrase, or null for the op's default
    seek_per_s: 1.0   # for emotion: (0, 100] emotion units per second, or null to jump

Only plain YAML data is read (by :mod:`engine.sessions.yaml_source`: no tags, no anchors or
aliases, no code, at most MAX_SCENE_CHARS characters), and every mistake is reported as
``FILE:LINE: where: what is wrong (allowed: ...)``, where is the cue and the field
(``cues[2].valence``, counting from 0).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from engine.checks import MAX_NAME_CHARS
from engine.music.config import MAX_SEEK_PER_S, SYNC_POINTS
from engine.music.tempo_map import MAX_TEMPO_BPM, MIN_TEMPO_BPM
from engine.sessions.ops import MUSIC_OPS, Cue
from engine.sessions.yaml_source import (
    Format,
    Node,
    SourceError,
    choice,
    mapping,
    name,
    number,
    parse_yaml,
    read_yaml_file,
    sequence,
)

MAX_CUES: Final = 100_000
MAX_BEAT: Final = 1_000_000.0
#: the largest arc file read (about 100 characters for each of MAX_CUES cues)
MAX_SCENE_CHARS: Final = 10_000_000
_TOP_KEYS: Final = ("cues", "end_beat", "start_state")
_CUE_EXAMPLE: Final = "{beat: 8, op: state, name: combat}"


class SceneFileError(SourceError):
    """A scene file cannot be read or is not a valid scene (the message says where and why)."""


_FORMAT: Final = Format("arc file", SceneFileError, MAX_SCENE_CHARS, f"a mapping with {', '.join(_TOP_KEYS)}")


@dataclass(frozen=True)
class Scene:
    """A scripted arc.

    Attributes:
        cues: the cues, in file order.
        end_beat: where the music stops; None: play until interrupted.
        start_state: the state the music starts in.
    """

    cues: tuple[Cue, ...]
    end_beat: float | None
    start_state: str


def load_scene(path: str | os.PathLike[str]) -> Scene:
    """Read a scene file (see the module docstring).

    Args:
        path: a YAML file, UTF-8.

    Raises:
        SceneFileError: missing, not a regular file (a directory, FIFO or device), unreadable,
            not UTF-8, too large, not plain YAML data, or a cue or field is invalid; the
            message is ``PATH:LINE: where: what is wrong (allowed: ...)``.
    """
    p = Path(path)
    root = parse_yaml(read_yaml_file(p, _FORMAT), str(p), _FORMAT)
    items = mapping(root, _TOP_KEYS)
    cues: tuple[Cue, ...] = ()
    if "cues" in items and items["cues"].value is not None:
        cues = tuple(_cue(node) for node in sequence(items["cues"], f"cues like {_CUE_EXAMPLE}", 0, MAX_CUES))
    end_beat = None
    if "end_beat" in items and items["end_beat"].value is not None:
        end_beat = number(items["end_beat"], 0.0, MAX_BEAT, open_lo=True, allowed="a number in (0, 1000000]")
    start_state = name(items["start_state"], "state name") if "start_state" in items else "explore"
    return Scene(cues, end_beat, start_state)


def _optional(read: Callable[[Node], Any]) -> Callable[[Node], Any]:
    """``read``, or None for a null value."""
    return lambda node: None if node.value is None else read(node)


def _unit(node: Node) -> float:
    return number(node, -1.0, 1.0)


def _seek(node: Node) -> float:
    allowed = f"a number in (0, {MAX_SEEK_PER_S:g}] or null"
    return number(node, 0.0, MAX_SEEK_PER_S, open_lo=True, allowed=allowed)


#: one check per field, in the order of Cue's fields; those that default to None accept null
_CUE_FIELDS: Final[dict[str, Callable[[Node], Any]]] = {
    "beat": lambda node: number(node, 0.0, MAX_BEAT, allowed="a number in [0, 1000000]"),
    "op": lambda node: choice(node, tuple(MUSIC_OPS), "cue op"),
    "name": _optional(lambda node: name(node, "name", MAX_NAME_CHARS)),
    "valence": _unit,
    "arousal": _unit,
    "tension": _optional(_unit),
    "tempo_bpm": _optional(lambda node: number(node, MIN_TEMPO_BPM, MAX_TEMPO_BPM)),
    "sync": _optional(lambda node: choice(node, SYNC_POINTS, "sync point")),
    "seek_per_s": _optional(_seek),
}


def _cue(node: Node) -> Cue:
    items = mapping(node, tuple(_CUE_FIELDS), ("beat", "op"), example=_CUE_EXAMPLE)
    values = {key: _CUE_FIELDS[key](child) for key, child in items.items()}
    try:
        return Cue(**values)
    except (TypeError, ValueError) as exc:  # a rule across fields (a state cue needs a name)
        raise node.error(str(exc)) from exc
