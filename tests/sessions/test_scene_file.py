"""YAML arcs for ``affetto play --arc``: valid files load, bad ones name the file, cue and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli import main
from engine.sessions.scene_file import SceneFileError, load_scene

GOOD = """
end_beat: 64
start_state: calm
cues:
  - {beat: 14, op: state, name: danger}
  - {beat: 30, op: emotion, valence: -0.6, arousal: 1, tension: 0.8, sync: bar, seek_per_s: 1.0}
  - {beat: 32, op: stinger, name: hit}
  - {beat: 40, op: tempo, tempo_bpm: 150}
"""


def test_a_good_scene_loads(tmp_path: Path) -> None:
    path = tmp_path / "arc.yaml"
    path.write_text(GOOD)
    scene = load_scene(path)
    assert scene.end_beat == 64.0 and scene.start_state == "calm"
    assert [c.op for c in scene.cues] == ["state", "emotion", "stinger", "tempo"]
    assert scene.cues[1].arousal == 1.0 and scene.cues[1].sync == "bar"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cues: [", "line"),
        ("- 1\n- 2", "expected a mapping"),
        ("cues:\n  - {beat: 1, op: explode}", "cue 1: cue op must be one of"),
        ("cues:\n  - {beat: 1, op: state}", "cue 1: a state cue needs a name"),
        ("cues:\n  - {beat: 1, op: emotion, valence: high}", "cue 1: valence must be a number"),
        ("cues:\n  - {op: state, name: x}", "'beat' and 'op' are required"),
        ("cues:\n  - {beat: 1, op: state, name: x, colour: red}", "unknown fields ['colour']"),
        ("cues:\n  - {beat: 1, op: emotion, sync: later}", "sync must be one of"),
        ("end_beat: -3\ncues: []", "end_beat must be a number"),
        ("cues: []\nextra: 1", "unknown keys ['extra']"),
        ("cues:\n  - !!python/object/apply:os.system ['echo hi']", "not valid YAML"),
    ],
)
def test_bad_scenes_say_where_and_why(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SceneFileError, match=None) as info:
        load_scene(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_play_refuses_clearly_without_a_terminal_or_with_a_bad_arc(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["play"]) == 1  # pytest's stdin is not a terminal
    assert "needs a terminal" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("cues:\n  - {beat: 1, op: explode}")
    assert main(["play", "--arc", str(bad)]) == 1
    assert "cue op must be one of" in capsys.readouterr().err
    assert main(["play", "--no-audio"]) == 1
    assert "--no-audio needs --midi-port" in capsys.readouterr().err


def test_the_example_arc_loads_and_plays(tmp_path: Path) -> None:
    from engine.model.composer import Composer
    from engine.sessions.performance import render

    scene = load_scene(Path(__file__).resolve().parents[2] / "examples" / "arc.yaml")
    composer = Composer(max_streams=1, intra_op_threads=1)
    assert scene.end_beat is not None
    r = render(composer, scene.cues, scene.end_beat, seed=1, start_state=scene.start_state, audio=False)
    assert [cue.op for cue, _ in r.landed] == [c.op for c in scene.cues]
    assert {info.state for info in r.bars.values()} >= {"stealth", "danger", "combat", "victory"}
