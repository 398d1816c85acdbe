"""Beats ↔ seconds under tempo changes."""

from __future__ import annotations

import numpy as np
import pytest

from engine.music.tempo_map import TempoMap


def test_constant_tempo() -> None:
    tm = TempoMap(120.0)
    assert tm.seconds(4.0) == pytest.approx(2.0)
    assert tm.beat(3.0) == pytest.approx(6.0)


def test_changes_and_inverse() -> None:
    tm = TempoMap(120.0)
    tm.set_tempo(4.0, 60.0)  # 2 s of 120 BPM, then 1 s per beat
    tm.set_tempo(8.0, 240.0)
    assert tm.seconds(6.0) == pytest.approx(4.0)
    assert tm.seconds(10.0) == pytest.approx(6.5)
    beats = np.linspace(0, 20, 81)
    times = tm.seconds_many(beats)
    assert np.all(np.diff(times) > 0)
    assert [tm.beat(t) for t in times] == pytest.approx(beats.tolist())
    assert tm.tempo_at(7.9) == 60.0 and tm.tempo_at(8.0) == 240.0


def test_truncate_drops_changes_from_the_beat() -> None:
    tm = TempoMap(100.0)
    for bar in range(1, 300):  # past the preallocated capacity
        tm.set_tempo(4.0 * bar, 100.0 + bar % 7)
    tm.truncate(8.0)
    assert [s[0] for s in tm.segments] == [0.0, 4.0]
    tm.set_tempo(8.0, 150.0)
    assert tm.tempo_at(9.0) == 150.0


def test_validation() -> None:
    with pytest.raises(ValueError, match=r"\[20, 400\]"):
        TempoMap(1000.0)
    with pytest.raises(TypeError):
        TempoMap("fast")  # type: ignore[arg-type]
    tm = TempoMap(120.0)
    tm.set_tempo(8.0, 100.0)
    with pytest.raises(ValueError, match="beat order"):
        tm.set_tempo(4.0, 90.0)
    with pytest.raises(ValueError):
        tm.set_tempo(12.0, float("nan"))
