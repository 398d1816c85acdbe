"""The one op dispatcher: how a change to a session's music is checked and given to its conductor.

Live (the session host's composing thread, for every client and for ``affetto play``), offline
(:func:`engine.sessions.render.render`) and scripted scenes (:class:`Cue`: ops at beats) all apply their
ops here, so the same op lands the same way whatever sent it. Protocol parsing (the wire form
of each op's fields) is :mod:`engine.server.protocol`'s; this module knows what an op does.

An op's ``args`` are already checked field by field (types, ranges): :func:`check_names` checks
them against the session (the names of its states, stingers, leitmotifs); :func:`apply_op`
applies them and returns the beat the change lands on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

from engine.music.conductor import Conductor
from engine.music.config import ConductorConfig, check_sync

#: the ops that change the music, and the sync point each lands on when none is given
#: (None: the state's own transition)
MUSIC_OPS: Final[dict[str, str | None]] = {
    "emotion": "immediate",
    "state": None,
    "stinger": "beat",
    "leitmotif": "bar",
    "tempo": "bar",
}

_Apply = Callable[[Conductor, float, Mapping[str, Any], Any], float]


def _emotion(c: Conductor, now_s: float, args: Mapping[str, Any], sync: Any) -> float:
    return c.set_emotion(
        now_s,
        args["valence"],
        args["arousal"],
        args.get("tension"),
        sync=sync,
        seek_per_s=args.get("seek_per_s"),
    )


def _state(c: Conductor, now_s: float, args: Mapping[str, Any], sync: Any) -> float:
    return c.set_state(now_s, args["name"], sync=sync, emotion=args.get("emotion"))


def _stinger(c: Conductor, now_s: float, args: Mapping[str, Any], sync: Any) -> float:
    return c.stinger(now_s, args["name"])  # a stinger always lands on the next beat


def _leitmotif(c: Conductor, now_s: float, args: Mapping[str, Any], sync: Any) -> float:
    return c.leitmotif(now_s, args["name"], sync=sync)


def _tempo(c: Conductor, now_s: float, args: Mapping[str, Any], sync: Any) -> float:
    return c.set_tempo(now_s, args.get("tempo_bpm"), sync=sync)


_APPLY: Final[dict[str, _Apply]] = {
    "emotion": _emotion,
    "state": _state,
    "stinger": _stinger,
    "leitmotif": _leitmotif,
    "tempo": _tempo,
}


def apply_op(
    conductor: Conductor,
    now_s: float,
    op: str,
    args: Mapping[str, Any],
    *,
    default_sync: str | None = None,
) -> float:
    """Give one music op to ``conductor`` at engine time ``now_s``; returns the beat it lands on.

    Args:
        conductor: the session's conductor.
        now_s: when the op arrives, on the session's clock (seconds from beat 0).
        op: one of :data:`MUSIC_OPS`.
        args: the op's checked fields (``sync`` among them, or absent).
        default_sync: the session's sync point for emotions without one (None: ``immediate``).

    Raises:
        TypeError, ValueError: the values are out of range or name nothing known.
    """
    apply = _APPLY.get(op)
    if apply is None:
        raise ValueError(f"op must be one of {', '.join(MUSIC_OPS)}, got {op!r}")
    sync = args.get("sync")
    if sync is None:
        sync = (default_sync or MUSIC_OPS[op]) if op == "emotion" else MUSIC_OPS[op]
    return apply(conductor, now_s, args, sync)


def check_names(config: ConductorConfig, op: str, args: Mapping[str, Any], themes: Collection[str]) -> None:
    """Check that ``op`` names what the session has: a state, a stinger, a registered leitmotif.

    Raises:
        ValueError: an unknown name, with the names the session knows.
    """
    name = args.get("name")
    if op == "state" and name not in config.states:
        raise ValueError(f"unknown state {name!r}; states: {sorted(config.states)}")
    if op == "stinger" and name not in config.stingers:
        raise ValueError(f"unknown stinger {name!r}; stingers: {sorted(config.stingers)}")
    if op == "leitmotif" and "notes" not in args and name not in themes:
        raise ValueError(f"unknown leitmotif {name!r}; register it with notes first")


@dataclass(frozen=True)
class Cue:
    """One scripted input, given at a beat of the session.

    Attributes:
        beat: when the input arrives (the playhead's beat); it then lands at its sync point.
        op: "state", "emotion", "stinger", "leitmotif" or "tempo".
        name: the state, stinger or leitmotif name.
        valence, arousal, tension: for "emotion".
        tempo_bpm: for "tempo" (None: follow arousal again).
        sync: sync point (None: the op's default).
        seek_per_s: for "emotion" (None: jump).
    """

    beat: float
    op: str
    name: str | None = None
    valence: float = 0.0
    arousal: float = 0.0
    tension: float | None = None
    tempo_bpm: float | None = None
    sync: str | None = None
    seek_per_s: float | None = None

    def __post_init__(self) -> None:
        if self.op not in MUSIC_OPS:
            raise ValueError(f"cue op must be one of {tuple(MUSIC_OPS)}, got {self.op!r}")
        if not (math.isfinite(self.beat) and self.beat >= 0):
            raise ValueError(f"cue beat must be a finite number >= 0, got {self.beat!r}")
        if self.op in ("state", "stinger", "leitmotif") and not self.name:
            raise ValueError(f"a {self.op} cue needs a name")
        if self.sync is not None:
            check_sync(self.sync)

    @property
    def args(self) -> dict[str, Any]:
        """The cue as the fields of its op (see :func:`engine.sessions.ops.apply_op`)."""
        if self.op == "emotion":
            fields: dict[str, Any] = {
                "valence": self.valence,
                "arousal": self.arousal,
                "tension": self.tension,
            }
            fields["seek_per_s"] = self.seek_per_s
        elif self.op == "tempo":
            fields = {"tempo_bpm": self.tempo_bpm}
        else:
            fields = {"name": self.name}
        return {**fields, "sync": self.sync}


def apply_due_cues(
    conductor: Conductor,
    cues: list[Cue],
    before_s: float,
    on_landed: Callable[[Cue, float], None],
    on_error: Callable[[Cue, Exception], None] | None = None,
) -> None:
    """Give ``conductor`` the cues (sorted by beat) whose beats fall before ``before_s`` (seconds
    on its clock), each at its beat's time, taking them from ``cues``: the one script loop of the
    offline render and of a live session, so both land a script the same way.

    Args:
        on_landed: called with each cue and the beat it landed on.
        on_error: called with a cue the conductor refused and the error (None: raise it).

    Raises:
        TypeError, ValueError: a cue is refused and there is no ``on_error``.
    """
    seconds = conductor.tempo_map.seconds
    while cues and seconds(cues[0].beat) < before_s:
        cue = cues.pop(0)
        try:
            beat = apply_op(conductor, seconds(cue.beat), cue.op, cue.args)
        except (TypeError, ValueError) as err:
            if on_error is None:
                raise
            on_error(cue, err)
            continue
        on_landed(cue, beat)


def script_end_s(conductor: Conductor, end_beat: float) -> float:
    """The last instant of a script's music that ends at ``end_beat`` (session clock): just before
    the beat, so what starts on it (the next bar's downbeat) is not played, live or offline."""
    return math.nextafter(conductor.tempo_map.seconds(end_beat), -math.inf)
