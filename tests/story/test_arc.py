"""The arc: scenes change when the evidence does, not on a line or two; live follows offline."""

from __future__ import annotations

import numpy as np
import pytest

from engine.story.arc import ArcConfig, LiveArc, build_arc, scene_emotion


def _story(seconds_per_line: float = 3.0, noise: float = 0.15, seed: int = 0):
    """Ten minutes of lines: +V-A for 5 min, then -V+A, with noisy evidence and odd lines."""
    t = np.arange(0.0, 600.0, seconds_per_line)
    rng = np.random.default_rng(seed)
    pv = np.where(t < 300, 0.8, 0.2) + rng.normal(0, noise, len(t))
    pa = np.where(t < 300, 0.25, 0.75) + rng.normal(0, noise, len(t))
    # a few single lines that say the opposite (a joke in a fight)
    for i in (20, 60, 130, 170):
        pv[i], pa[i] = 1 - pv[i], 1 - pa[i]
    return t, np.clip(pv, 0, 1), np.clip(pa, 0, 1)


def test_one_change_where_the_story_changes_and_none_for_odd_lines() -> None:
    t, pv, pa = _story()
    arc = build_arc(t, t + 3, pv, pa)
    assert [s.quadrant for s in arc.scenes] == ["+V-A", "-V+A"]
    assert abs(arc.scenes[1].start_s - 300) <= 6
    assert len(arc.line_scenes) == len(t)
    assert arc.scenes[0].valence > 0 > arc.scenes[1].valence
    assert arc.scenes[1].arousal > 0 > arc.scenes[0].arousal


def test_no_scene_is_shorter_than_the_minimum() -> None:
    t = np.arange(0.0, 120.0, 2.0)
    pv = np.where((t > 40) & (t < 52), 0.99, 0.05)  # 12 s of strong contrary evidence
    pa = np.full(len(t), 0.2)
    arc = build_arc(t, t + 2, pv, pa, ArcConfig(min_scene_s=30.0, evidence_weight=1.0))
    assert all(s.end_s - s.start_s >= 28 or i == len(arc.scenes) - 1 for i, s in enumerate(arc.scenes))
    assert len(arc.scenes) == 1


def test_live_changes_once_shortly_after_the_story_does() -> None:
    t, pv, pa = _story()
    live = LiveArc()
    changes = [(x, d.scene.quadrant) for x, p, q in zip(t, pv, pa, strict=True)
               for d in [live.add(x, x + 3, p, q)] if d.changed]  # fmt: skip
    assert changes[0] == (0.0, "+V-A")
    assert len(changes) == 2
    at, quadrant = changes[1]
    assert quadrant == "-V+A" and 300 <= at <= 360  # ~14 lines of clear evidence


def test_live_input_is_checked() -> None:
    live = LiveArc()
    live.add(10.0, 12.0, 0.5, 0.5)
    with pytest.raises(ValueError, match="before the last"):
        live.add(5.0, 6.0, 0.5, 0.5)
    with pytest.raises(ValueError, match="finite"):
        live.add(float("nan"), 1.0, 0.5, 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        live.add(20.0, 21.0, 1.5, 0.5)


def test_offline_input_is_checked() -> None:
    with pytest.raises(ValueError, match="one entry per line"):
        build_arc([0.0, 1.0], [1.0], [0.5, 0.5], [0.5, 0.5])
    with pytest.raises(ValueError, match="order"):
        build_arc([1.0, 0.0], [2.0, 1.0], [0.5, 0.5], [0.5, 0.5])
    assert build_arc([], [], [], []).scenes == []
    with pytest.raises(ValueError, match="min_scene_s"):
        ArcConfig(min_scene_s=-1)


def test_a_tense_scene_asks_for_tension() -> None:
    t, pv, pa = _story()
    arc = build_arc(t, t + 3, pv, pa)
    calm, fight = (scene_emotion(s) for s in arc.scenes)
    assert fight.tension > 0.5 > calm.tension
