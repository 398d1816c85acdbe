"""Scripted scenes (the demo's) and the on-screen timeline that follows a performance."""

from __future__ import annotations

import sys
from typing import Final, TextIO

from engine.music.conductor import BarInfo
from engine.music.keys import key_name
from engine.music.leitmotif import Theme, theme_from_notes
from engine.sessions.ops import Cue

#: The hero's theme: a rising fourth, a turn, a leap to the sixth (two bars of 4/4).
HERO_THEME: Final = (
    (0.0, 67, 1.0, 84),
    (1.0, 72, 1.5, 92),
    (2.5, 71, 0.5, 80),
    (3.0, 72, 1.0, 86),
    (4.0, 76, 1.5, 98),
    (5.5, 74, 0.5, 84),
    (6.0, 72, 2.0, 88),
)


def demo_theme() -> Theme:
    return theme_from_notes("hero", HERO_THEME)


#: the demo steers every bar (live steering, K candidates; one session costs little)
DEMO_STEER: Final = 4

#: explore → danger → combat → victory → sorrow, in beats of 4/4 (about 85 s).
DEMO_CUES: Final = (
    Cue(28.0, "leitmotif", "hero"),  # the hero's theme at bar 8
    Cue(46.0, "state", "danger"),  # creeping in, on the next beat
    Cue(62.5, "state", "combat"),  # lands on bar 16
    Cue(63.5, "stinger", "hit"),
    Cue(94.0, "state", "victory"),  # bar 24
    Cue(95.0, "stinger", "fanfare"),
    Cue(108.0, "state", "sorrow"),  # the next phrase: bar 28
    Cue(124.0, "leitmotif", "hero"),  # the theme again, in minor, slow and soft (bar 32)
)
DEMO_END_BEAT: Final = 140.0


def bar_line(info: BarInfo, time_s: float) -> str:
    """One timeline line for a bar as it starts sounding."""
    e = info.emotion
    minutes, seconds = divmod(max(0.0, time_s), 60.0)
    return (
        f"{int(minutes):2d}:{seconds:04.1f}  bar {info.index:3d}  {info.state or '-':8s} "
        f"V{e.valence:+.2f} A{e.arousal:+.2f} T{e.tension:+.2f}  {info.tempo_bpm:5.1f} bpm  "
        f"{key_name(info.key):9s}  {' '.join(info.layers)}"
    )


class Timeline:
    """Prints a line when each bar starts sounding (:meth:`on_bar`) and when cues land (:meth:`on_cue`)."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def on_bar(self, info: BarInfo, time_s: float) -> None:
        print(bar_line(info, time_s), file=self.out, flush=True)

    def on_cue(self, cue: Cue, beat: float) -> None:
        what = cue.name if cue.name else f"V{cue.valence:+.2f} A{cue.arousal:+.2f}"
        print(f"          » {cue.op} {what} (lands on beat {beat:g})", file=self.out, flush=True)
