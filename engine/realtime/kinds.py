"""The kinds of a timed event row ``(time_s, kind, channel, a, b)``, shared by every stage.

Their order is the tie-break at equal times (NOTE_OFF first, NOTE_ON last).
"""

from __future__ import annotations

from typing import Final

NOTE_OFF: Final = 0  # a = pitch
CLOCK: Final = 1  # MIDI real-time / song position: a = status (0: clock 0xF8), b = song position
#: the CLOCK rows' ``a``: timing clock, Start, Continue, Stop, Song Position Pointer (b: 16ths)
CLOCK_TICK: Final = 0
CLOCK_START: Final = 0xFA
CLOCK_CONTINUE: Final = 0xFB
CLOCK_STOP: Final = 0xFC
SONG_POSITION: Final = 0xF2
CONTROL: Final = 2  # a = controller, b = value
PROGRAM: Final = 3  # a = program, b = voice code (0: the program's; see engine.outputs.gm.voice_code)
BEAT: Final = 4  # a = beat in bar, b = bar index (for listeners; not MIDI)
NOTE_ON: Final = 5  # a = pitch, b = velocity
KIND_NAMES: Final = ("note_off", "clock", "control", "program", "beat", "note_on")
