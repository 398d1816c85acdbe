"""Scoring: each scene's first downbeat lands on its start time, through the real conductor."""

from __future__ import annotations

import json
from pathlib import Path

import mido
import numpy as np
import pytest

from engine.model.composer import Composer
from engine.music.config import ConductorConfig
from engine.story.analysis import AnalysedLine, StoryAnalysis
from engine.story.arc import Scene, scene_emotion
from engine.story.score import plan_score, score_story


def _scene(start: float, end: float, v: float, a: float, first: int, last: int) -> Scene:
    return Scene(start, end, first, last, v > 0, a > 0, v, a)


SCENES = [
    _scene(0.0, 47.3, 0.7, -0.6, 0, 9),
    _scene(47.3, 81.9, -0.8, 0.8, 10, 19),
    _scene(81.9, 123.4, -0.6, -0.7, 20, 29),
    _scene(123.4, 160.0, 0.9, 0.7, 30, 39),
]


def test_the_fitted_tempo_puts_each_scene_on_a_downbeat_at_its_time() -> None:
    plan = plan_score(SCENES, 160.0)
    beats = [p.beat for p in plan.sync_points]
    assert beats[0] == 0 and all(b % 4 == 0 for b in beats)
    # seconds of each downbeat under the fitted tempi
    t = 0.0
    for p, nxt in zip(plan.sync_points, plan.sync_points[1:], strict=False):
        t += p.bars * 4 * 60 / p.tempo_bpm
        assert t == pytest.approx(nxt.target_s, abs=1e-9)
    # each fitted tempo stays near what its scene's arousal asks for (within half a bar's worth)
    cfg = ConductorConfig()
    for p, s in zip(plan.sync_points[:-1], SCENES, strict=False):
        wanted = cfg.tempo_for(scene_emotion(s))
        assert abs(p.tempo_bpm - wanted) / wanted < 0.5 / p.bars + 1e-9
    # the changes are given half a bar early and land on the bar line
    assert all(c.sync == "bar" for c in plan.cues)
    assert sorted({c.beat + 2 for c in plan.cues}) == beats[1:]
    # the music lasts past the text (and its tail)
    assert sum(p.bars * 4 * 60 / p.tempo_bpm for p in plan.sync_points) >= 160.0 + 2.0
    assert plan.end_beat == sum(p.bars * 4 for p in plan.sync_points)


def test_a_scene_too_short_for_a_bar_is_refused() -> None:
    with pytest.raises(ValueError, match="too short"):
        plan_score(
            [_scene(0, 1, 0.5, 0.5, 0, 0), _scene(0.3, 5, -0.5, 0.5, 1, 1), _scene(0.6, 9, 0.5, -0.5, 2, 2)],
            10,
        )
    with pytest.raises(ValueError, match="at least one scene"):
        plan_score([], 10.0)


def _analysis() -> StoryAnalysis:
    lines = []
    for i, s in enumerate(SCENES):
        for k in range(10):
            t = s.start_s + k * (s.end_s - s.start_s) / 10
            lines.append(
                AnalysedLine(t, t + 2, f"line {i}.{k}", s.valence, s.arousal, 0.8, s.valence, s.arousal, i)
            )
    return StoryAnalysis(lines, SCENES, "test")


def test_a_rendered_score_lands_its_scene_changes_on_their_cues(tmp_path: Path, composer: Composer) -> None:
    result = score_story(_analysis(), tmp_path, composer, seed=3, audio=True, plot=True)
    assert max(result.alignment_errors_s) < 0.001
    cues = json.loads((tmp_path / "cues.json").read_text())
    assert [round(s["start_s"], 1) for s in cues["scenes"]][1:] == [47.3, 81.9, 123.4]
    assert all(s["error_ms"] < 1 for s in cues["scenes"])
    midi = mido.MidiFile(str(tmp_path / "score.mid"))
    names = [t.name for t in midi.tracks]
    assert "melody" in names and "bass" in names
    # the tempo map is in the file, and the changes landed on the planned bar lines
    assert [m.type for m in midi.tracks[0]].count("set_tempo") >= 2
    plan = plan_score(SCENES, 160.0)
    assert [s["bar"] for s in cues["scenes"]] == [round(p.beat / 4) for p in plan.sync_points]
    from engine.outputs.recorders import read_wav

    audio, rate = read_wav(tmp_path / "score.wav")
    assert audio.shape[0] / rate == pytest.approx(result.duration_s, abs=0.1)
    assert float(np.abs(audio).max()) > 0.01
    assert (tmp_path / "arc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*partial*"))


def test_a_failed_score_leaves_nothing_half_written(
    tmp_path: Path, composer: Composer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.story.plot as plot

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(plot, "plot_arc", broken)
    with pytest.raises(OSError, match="No space"):
        score_story(_analysis(), tmp_path, composer, seed=3, audio=False, plot=True)
    assert list(tmp_path.iterdir()) == []
