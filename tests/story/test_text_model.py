"""The shipped text emotion model, run by ONNX Runtime with the torch-free tokenizer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.story.lines import read_lines
from engine.story.text_model import TextEmotionModel, default_text_model_dir

SHIPPED = default_text_model_dir()
STORY = Path(__file__).resolve().parents[2] / "examples" / "stories" / "the_lighthouse.srt"
pytestmark = pytest.mark.skipif(not (SHIPPED / "manifest.json").is_file(), reason="no shipped text model")


@pytest.fixture(scope="module")
def model() -> TextEmotionModel:
    return TextEmotionModel()


def test_lines_get_their_own_valence_and_arousal(model: TextEmotionModel) -> None:
    texts = [
        "What a wonderful day, I am so happy to see you all!",
        "She wept at the grave of her only son.",
        "Run! The dragon is burning the village, they are all going to die!",
        "The lake was still and quiet in the evening light.",
    ]
    emb, va, confidence = model.encode(texts)
    assert emb.shape == (4, model.hidden) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-3)
    happy, grief, danger, calm = va
    assert happy[0] > 0.2 > -0.2 > grief[0]
    assert danger[0] < 0 and danger[1] > calm[1] + 0.3
    assert np.all((confidence > 0) & (confidence <= 1))


def test_a_whole_text_read_without_the_lines_ahead_reads_as_its_lines_read_live(
    model: TextEmotionModel,
) -> None:
    texts = [f"line {i}: the wolves were closing in on the camp" if i % 3 else "we laughed by the fire"
             for i in range(40)]  # fmt: skip
    whole = model.analyse(texts, read_ahead=False)
    context = model.context()
    live = [context.add(t) for t in texts]
    for a, b in zip(whole, live, strict=True):  # a line reads the same whatever is read beside it
        assert a.p_scene_valence == pytest.approx(b.p_scene_valence, abs=1e-5)
        assert a.p_scene_arousal == pytest.approx(b.p_scene_arousal, abs=1e-5)
        assert a.valence == pytest.approx(b.valence, abs=1e-5)


FIGHT = ["Draw your swords!", "They are charging at us!", "He stabs the orc, blood everywhere.",
         "Roll for initiative.", "The troll smashes the door down!"]  # fmt: skip
CALM = ["We rest at the inn.", "The innkeeper smiles and brings us warm bread.",
        "It is a quiet, peaceful evening.", "We sleep until morning."]  # fmt: skip


def test_a_whole_text_reads_each_line_with_the_lines_after_it(model: TextEmotionModel) -> None:
    """Offline, a line's scene is read from the lines after it too; live, from those before only:
    the example story's storm, with its happy ending after it and without, reads differently
    read ahead (the ending lifts its valence) and the same read live."""
    lines = [line.text for line in read_lines(STORY)]
    storm = slice(9, 21)
    cut = lines[:21]
    with_end, without = model.analyse(lines)[storm], model.analyse(cut)[storm]
    assert (
        np.mean([a.p_scene_valence - b.p_scene_valence for a, b in zip(with_end, without, strict=True)])
        > 0.05
    )
    live_end, live_cut = (
        model.analyse(lines, read_ahead=False)[storm],
        model.analyse(cut, read_ahead=False)[storm],
    )
    for a, b in zip(live_end, live_cut, strict=True):
        assert (a.p_scene_valence, a.p_scene_arousal) == pytest.approx(
            (b.p_scene_valence, b.p_scene_arousal), abs=1e-5
        )
    # the line's own reading does not depend on the head
    assert all(
        a.arousal == pytest.approx(b.arousal, abs=1e-5) for a, b in zip(with_end, live_end, strict=True)
    )


def test_a_model_without_a_read_ahead_head_reads_a_whole_text_as_live(
    model: TextEmotionModel, tmp_path: Path
) -> None:
    """Models exported before the read-ahead head have none in their manifest: they still load,
    and read a whole text as live lines are read."""
    copy = tmp_path / "older"
    shutil.copytree(SHIPPED, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["files"]["read_ahead_head"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    (copy / "read_ahead_head.onnx").unlink()
    older = TextEmotionModel(copy)
    assert older.read_ahead_head is None
    texts = CALM * 2 + FIGHT * 2
    for a, b in zip(older.analyse(texts), model.analyse(texts, read_ahead=False), strict=True):
        assert (a.p_scene_valence, a.p_scene_arousal) == pytest.approx(
            (b.p_scene_valence, b.p_scene_arousal), abs=1e-5
        )


def test_the_context_changes_the_scene_not_the_line(model: TextEmotionModel) -> None:
    fight, calm = FIGHT * 3, CALM * 4
    line = "Okay, what do you do next?"
    after_fight = model.analyse([*fight, line])[-1]
    after_calm = model.analyse([*calm, line])[-1]
    alone = model.analyse([line])[-1]
    # the line's own reading is the same whatever came before; its scene's is not
    assert after_fight.valence == pytest.approx(alone.valence, abs=1e-4)
    assert after_calm.valence == pytest.approx(alone.valence, abs=1e-4)
    assert after_fight.p_scene_arousal > after_calm.p_scene_arousal


def test_the_manifest_records_how_it_was_made_and_measured() -> None:
    manifest = json.loads((SHIPPED / "manifest.json").read_text())
    assert manifest["command"] == "models/make_text_emotion.sh"
    loeo = manifest["metrics"]["call_of_the_wild_leave_one_episode_out"]
    assert len(loeo["folds"]) == 6
    assert manifest["metrics"]["int8"]["shipped"] in ("int8", "fp32")
    size = sum(f.stat().st_size for f in SHIPPED.iterdir())
    assert size <= 100 * 1024 * 1024


def test_a_broken_model_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="manifest"):
        TextEmotionModel(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(SHIPPED, copy)
    (copy / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a text emotion manifest"):
        TextEmotionModel(copy)
    shutil.copy(SHIPPED / "manifest.json", copy / "manifest.json")
    (copy / "read_ahead_head.onnx").unlink()
    with pytest.raises(FileNotFoundError, match=r"read_ahead_head\.onnx: named in"):
        TextEmotionModel(copy)
    (copy / "read_ahead_head.onnx").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="cannot load"):
        TextEmotionModel(copy)
    shutil.copy(SHIPPED / "read_ahead_head.onnx", copy / "read_ahead_head.onnx")
    (copy / "scene_head.onnx").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="cannot load"):
        TextEmotionModel(copy)
    with pytest.raises(ValueError, match="threads"):
        TextEmotionModel(threads=0)
