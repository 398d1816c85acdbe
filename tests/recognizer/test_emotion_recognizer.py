"""The emotion recognizer (engine.recognizer) and ``affetto classify`` on real EMOPIA clips."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from engine.recognizer.emotion_recognizer import EmotionRecognizer, default_recognizer_dir, quadrant
from engine.tokens.codec import quantize
from engine.tokens.midi_file import read_midi

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CLIPS = sorted(FIXTURES.glob("Q*.mid"))

pytestmark = pytest.mark.skipif(
    not (default_recognizer_dir() / "manifest.json").is_file(), reason="no shipped recognizer"
)


@pytest.fixture(scope="module")
def recognizer() -> EmotionRecognizer:
    return EmotionRecognizer.load(intra_op_threads=1)


def test_quadrant_follows_signs() -> None:
    assert [quadrant(0.5, 0.5), quadrant(-0.5, 0.5), quadrant(-0.5, -0.5), quadrant(0.5, -0.5)] == [
        1,
        2,
        3,
        4,
    ]


def test_classify_many_matches_files(recognizer: EmotionRecognizer) -> None:
    pieces = [quantize(read_midi(p)) for p in CLIPS]
    batched = recognizer.classify_many(pieces, batch=4)  # two padded batches of mixed lengths
    assert len(batched) == len(CLIPS)
    for path, (_notes, beats), result in zip(CLIPS, pieces, batched, strict=True):
        assert result.bars.shape == (len(beats), 2)
        assert np.all(np.abs(result.bars) <= 1.0)
        assert -1.0 <= result.valence <= 1.0 and -1.0 <= result.arousal <= 1.0
        assert np.allclose([result.valence, result.arousal], result.bars.mean(axis=0))
        assert result.quadrant == quadrant(result.valence, result.arousal)
        assert result.bar_quadrants == [quadrant(v, a) for v, a in result.bars]
        single = recognizer.classify_file(path)
        np.testing.assert_allclose(single.bars, result.bars, atol=1e-4)
    # Robust on these clips: high-arousal quadrants (Q1, Q2) score higher arousal than Q3.
    arousal = {p.name[:2]: [] for p in CLIPS}  # type: dict[str, list[float]]
    for p, r in zip(CLIPS, batched, strict=True):
        arousal[p.name[:2]].append(r.arousal)
    assert min(np.mean(arousal["Q1"]), np.mean(arousal["Q2"])) > np.mean(arousal["Q3"])


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    clip = CLIPS[0]
    assert main(["classify", str(clip), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["file"] == str(clip)
    assert out["quadrant"] == quadrant(out["valence"], out["arousal"])
    assert out["num_bars"] == len(out["bars"]) == len(quantize(read_midi(clip))[1])
    for bar in out["bars"]:
        assert -1 <= bar["valence"] <= 1 and -1 <= bar["arousal"] <= 1
        assert bar["quadrant"] == quadrant(bar["valence"], bar["arousal"])


def test_cli_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["classify", str(CLIPS[-1])]) == 0
    out = capsys.readouterr().out
    assert "valence" in out and "quadrant Q" in out and "bar    0:" in out


def test_cli_text_numbers_bars_as_json_does(capsys: pytest.CaptureFixture[str]) -> None:
    """One convention everywhere (JSON, text, the demo's timeline): bar 0 is the first bar."""
    clip = CLIPS[0]
    assert main(["classify", str(clip), "--json"]) == 0
    bars = json.loads(capsys.readouterr().out)["bars"]
    assert main(["classify", str(clip)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("  bar ")]
    assert [int(row[1].rstrip(":")) for row in rows] == [bar["bar"] for bar in bars]
    assert bars[0]["bar"] == 0
    assert [float(row[3]) for row in rows] == pytest.approx([bar["valence"] for bar in bars], abs=0.006)


def test_cli_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"not a midi file")
    assert main(["classify", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("affetto classify: error:") and "not a readable MIDI file" in err
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert main(["classify", str(tmp_path / "missing.mid")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_missing_or_broken_recognizer_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(FileNotFoundError, match="no recognizer here"):
        EmotionRecognizer.load(tmp_path)
    assert main(["classify", str(CLIPS[0]), "--model", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert "no recognizer here" in err and "Traceback" not in err
    broken = tmp_path / "broken"
    shutil.copytree(default_recognizer_dir(), broken)
    (broken / "recognizer.npz").unlink()
    with pytest.raises(FileNotFoundError, match="weights missing"):
        EmotionRecognizer.load(broken)


def test_refuses_a_read_out_fitted_on_another_composer(tmp_path: Path) -> None:
    shipped = json.loads((default_recognizer_dir() / "manifest.json").read_text())
    assert shipped["features"]["composer_onnx_sha256"]  # the shipped read-out names its composer
    other = tmp_path / "other"
    shutil.copytree(default_recognizer_dir(), other)
    shipped["features"]["composer_onnx_sha256"] = "0" * 64
    (other / "manifest.json").write_text(json.dumps(shipped))
    with pytest.raises(ValueError, match="fitted on another composer's states"):
        EmotionRecognizer.load(other, intra_op_threads=1)
