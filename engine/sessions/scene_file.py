"""Scripted arcs in YAML: a list of cues at beats, for ``affetto play --arc FILE``.

Example::

    end_beat: 64            # the music stops here (optional: play until interrupted)
    start_state: explore    # optional (default explore)
    cues:
      - {beat: 14, op: state, name: danger}
      - {beat: 30, op: emotion, valence: -0.6, arousal: 0.9, tension: 0.8, sync: bar, seek_per_s: 1.0}
      - {beat: 32, op: stinger, name: hit}
      - {beat: 40, op: tempo, tempo_bpm: 150}

Only plain YAML data is read (no tags, no code). Errors name the file, the cue and the field.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Final

import yaml

from engine.sessions.performance import Cue

MAX_CUES: Final = 100_000
_CUE_FIELDS: Final = {f.name for f in fields(Cue)}


class SceneFileError(ValueError):
    """A scene file cannot be read or is not a valid scene (the message says where and why)."""


@dataclass(frozen=True)
class Scene:
    cues: tuple[Cue, ...]
    end_beat: float | None
    start_state: str


def load_scene(path: str | os.PathLike[str]) -> Scene:
    """Read a scene file (see the module docstring).

    Raises:
        SceneFileError: unreadable, not YAML, or a cue/field is invalid.
    """
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SceneFileError(f"{p}: cannot read ({exc.strerror or exc})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise SceneFileError(f"{p}:{where} not valid YAML ({getattr(exc, 'problem', exc)})") from exc
    if not isinstance(data, dict):
        raise SceneFileError(f"{p}: expected a mapping with 'cues' (and optional 'end_beat', 'start_state')")
    unknown = set(data) - {"cues", "end_beat", "start_state"}
    if unknown:
        raise SceneFileError(f"{p}: unknown keys {sorted(unknown)}; allowed: cues, end_beat, start_state")
    raw = data.get("cues") or []
    if not isinstance(raw, list) or len(raw) > MAX_CUES:
        raise SceneFileError(f"{p}: 'cues' must be a list of at most {MAX_CUES} cues")
    cues = tuple(_cue(p, i, item) for i, item in enumerate(raw))
    end = data.get("end_beat")
    if end is not None and (isinstance(end, bool) or not isinstance(end, int | float) or not 0 < end < 1e6):
        raise SceneFileError(f"{p}: end_beat must be a number in (0, 1e6), got {end!r}")
    start = data.get("start_state", "explore")
    if not isinstance(start, str):
        raise SceneFileError(f"{p}: start_state must be a state name, got {start!r}")
    return Scene(cues, None if end is None else float(end), start)


def _cue(path: Path, index: int, item: Any) -> Cue:
    where = f"{path}: cue {index + 1}"
    if not isinstance(item, dict):
        raise SceneFileError(
            f"{where}: expected a mapping like {{beat: 8, op: state, name: combat}}, got {item!r}"
        )
    unknown = set(item) - _CUE_FIELDS
    if unknown:
        raise SceneFileError(f"{where}: unknown fields {sorted(unknown)}; allowed: {sorted(_CUE_FIELDS)}")
    for name in ("beat", "valence", "arousal", "tension", "tempo_bpm", "seek_per_s"):
        value = item.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise SceneFileError(f"{where}: {name} must be a number, got {value!r}")
    if "beat" not in item or "op" not in item:
        raise SceneFileError(f"{where}: 'beat' and 'op' are required")
    try:
        values: dict[str, Any] = {
            k: float(v) if isinstance(v, int) and not isinstance(v, bool) and k != "name" else v
            for k, v in item.items()
        }
        return Cue(**values)
    except (TypeError, ValueError) as exc:
        raise SceneFileError(f"{where}: {exc}") from exc
