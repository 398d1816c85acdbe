"""`affetto analyze-text` on the real model and the project's example story."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from engine.cli import main
from engine.story.analysis import reads_ahead
from engine.story.text_model import default_text_model_dir

STORY = Path(__file__).resolve().parents[2] / "examples" / "stories" / "the_lighthouse.srt"
pytestmark = pytest.mark.skipif(
    not (default_text_model_dir() / "manifest.json").is_file(), reason="no shipped text model"
)


def test_analyze_text_json_gives_every_line_and_scenes_that_cover_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["analyze-text", str(STORY), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    lines, scenes = out["lines"], out["scenes"]
    assert len(lines) == 52
    assert all(line["end_s"] > line["start_s"] for line in lines)
    assert all(
        -1 <= line[k] <= 1 for line in lines for k in ("valence", "arousal", "scene_valence", "scene_arousal")
    )
    # the scenes follow one another and cover every line once
    assert scenes[0]["first_line"] == 0 and scenes[-1]["last_line"] == len(lines) - 1
    assert all(b["first_line"] == a["last_line"] + 1 for a, b in itertools.pairwise(scenes))
    for i, line in enumerate(lines):
        scene = scenes[line["scene"]]
        assert scene["first_line"] <= i <= scene["last_line"]
        assert (line["scene_valence"], line["scene_arousal"]) == (scene["valence"], scene["arousal"])
    # the story's storm is heard as danger
    storm = next(i for i, line in enumerate(lines) if line["text"].startswith("Mara grabbed the rail"))
    assert scenes[lines[storm]["scene"]]["quadrant"] == "-V+A"


def test_long_transcripts_are_read_ahead_and_short_stories_as_live() -> None:
    """A 35-minute episode (803 lines, 240 s scenes) has ~90 lines a scene against the 32-line
    window; the example story (52 lines in 190 s, 30 s scenes) ~8."""
    assert reads_ahead(803, 2136.0, 240.0, 32)
    assert not reads_ahead(52, 190.0, 30.0, 32)
    assert not reads_ahead(0, 0.0, 30.0, 32)
    assert not reads_ahead(10, float("nan"), 30.0, 32)
