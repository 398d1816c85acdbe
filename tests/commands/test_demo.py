"""``affetto demo``: the README's main job, rendered to files (no speakers needed)."""

from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pytest

from engine.cli import main
from engine.outputs.recorders import read_wav


def test_demo_out_writes_wav_and_one_track_per_layer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    for state in ("explore", "danger", "combat", "victory", "sorrow"):
        assert f" {state} " in out  # the timeline shows every state of the scene
    assert "» leitmotif hero" in out and "» stinger hit" in out
    audio, rate = read_wav(tmp_path / "a" / "demo.wav")
    assert rate == 48_000 and audio.shape[1] == 2 and 60 < audio.shape[0] / rate < 120
    for start in range(0, audio.shape[0] - rate, 10 * rate):  # never silent for long, never clipping
        assert np.sqrt(np.mean(audio[start : start + 10 * rate] ** 2)) > 10 ** (-45 / 20)
    assert np.abs(audio).max() < 0.99
    mid = mido.MidiFile(tmp_path / "a" / "demo.mid")
    names = [next(m.name for m in t if m.type == "track_name") for t in mid.tracks]
    assert names == ["affetto", "melody", "harmony", "bass", "stingers", "drums"]
    channels = [{m.channel for m in t if m.type == "note_on"} for t in mid.tracks[1:]]
    assert channels == [{0}, {1}, {2}, {3}, {9}]
    # the same seed gives the same music
    assert main(["demo", "--out", str(tmp_path / "b"), "--quiet"]) == 0
    assert (tmp_path / "a" / "demo.mid").read_bytes() == (tmp_path / "b" / "demo.mid").read_bytes()


def test_demo_without_audio_writes_files_here_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--device", "no-such-device-anywhere", "--quiet", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "no audio output" in out and "writing demo.wav and demo.mid here" in out
    assert (tmp_path / "demo.wav").stat().st_size > 1_000_000 and (tmp_path / "demo.mid").is_file()


def test_demo_reports_an_unwritable_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["demo", "--out", str(blocker / "sub"), "--quiet"]) == 1
    assert "cannot create" in capsys.readouterr().err
