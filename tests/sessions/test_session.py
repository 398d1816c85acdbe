"""What a :class:`Session` holds for the local sinks (the ``notes`` output, beats) goes out in time
order, whatever order the composer finished its layers in."""

from __future__ import annotations

from engine.realtime.kinds import BEAT, NOTE_ON
from engine.sessions.profile import DEFAULT_PROFILE, ParamMapper
from engine.sessions.session import Session


def test_rows_taken_early_are_held_in_time_order() -> None:
    s = Session("a", 0, DEFAULT_PROFILE, ParamMapper(DEFAULT_PROFILE))
    drums = [(0.0, NOTE_ON, 9, 36, 100, 0.0), (0.1145, NOTE_ON, 9, 42, 90, 0.0), (0.229, BEAT, 0, 1, 0, 0.0)]
    melody = [(0.0, NOTE_ON, 0, 72, 80, 0.01), (0.1145, NOTE_ON, 0, 74, 80, 0.01)]
    for row in (*drums, *melody):  # the drums of the bar were taken before its melody was composed
        s.hold(row)
    assert [row[0] for row in s.local] == [0.0, 0.0, 0.1145, 0.1145, 0.229]
    assert list(s.local)[:2] == [drums[0], melody[0]]  # at the same time: in the order taken
