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


def test_forgotten_changes_go_when_full_and_the_beats_after_stay_exact() -> None:
    """A live session changes tempo at every bar for days: with ``forget_before`` trailing the
    music, the map keeps its size (it never grows) and stays exact from the forgotten beat on."""
    kept, whole = TempoMap(100.0, capacity=16), TempoMap(100.0, capacity=16)
    for bar in range(1, 4000):
        tempo = 60.0 + (bar * 37) % 200
        kept.set_tempo(4.0 * bar, tempo)
        whole.set_tempo(4.0 * bar, tempo)
        kept.forget_before(4.0 * (bar - 5))
        assert len(kept) <= 16 and kept.capacity == 16
        for beat in (4.0 * (bar - 5), 4.0 * bar - 1.5, 4.0 * bar + 0.25, 4.0 * bar + 40.0):
            t = whole.seconds(beat)
            assert kept.seconds(beat) == t and kept.beat(t) == whole.beat(t)
            assert kept.tempo_at(beat) == whole.tempo_at(beat)
    assert len(whole) == 4000 and whole.capacity >= 4000  # never told to forget: a segment per change
    assert kept.segments == whole.segments[-len(kept) :]
    beats = np.linspace(4.0 * 3994, 4.0 * 4010, 65)
    np.testing.assert_array_equal(kept.seconds_many(beats), whole.seconds_many(beats))
    kept.truncate(4.0 * 3998)  # a cut still drops the changes from its beat
    assert kept.segments[-1][0] == 4.0 * 3997
    kept.set_tempo(4.0 * 3998, 90.0)
    assert kept.tempo_at(4.0 * 3999) == 90.0


def test_forgetting_keeps_more_when_the_window_needs_it() -> None:
    tm = TempoMap(100.0, capacity=4)
    tm.forget_before(8.0)  # the changes after beat 8 are all kept: the arrays grow
    for bar in range(1, 20):
        tm.set_tempo(4.0 * bar, 100.0 + bar)
    assert [s[0] for s in tm.segments] == [4.0 * bar for bar in range(2, 20)]
    assert tm.capacity == 32 and tm.seconds(8.0) == pytest.approx(2.4 + 60.0 / 101.0 * 4.0)
