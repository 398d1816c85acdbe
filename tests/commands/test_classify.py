"""``affetto classify`` on input that is not a MIDI file it can classify: one line, at once, saying
why (the recognizer's results on real clips are in tests/recognizer/test_emotion_recognizer.py)."""

from __future__ import annotations

import time
from pathlib import Path

import mido
import pytest

from engine.cli import main
from engine.recognizer.emotion_recognizer import default_recognizer_dir
from engine.tokens.midi_file import MAX_BEATS


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    err = captured.err
    assert captured.out == "" and "Traceback" not in err and len(err.splitlines()) == 1, err
    return err.strip()


@pytest.mark.skipif(
    not (default_recognizer_dir() / "manifest.json").is_file(), reason="no shipped recognizer"
)
def test_a_file_of_millions_of_bars_is_one_line_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A delta time of 0x0FFFFFFF ticks (the most a file holds, 4 bytes) before the second note: a
    file like this took 37 s and 5.8 GB and died with a MemoryError traceback."""
    path = tmp_path / "gap.mid"
    midi = mido.MidiFile(ticks_per_beat=1)
    midi.tracks.append(
        mido.MidiTrack(
            [
                mido.Message("note_on", note=60, velocity=80, time=0),
                mido.Message("note_off", note=60, time=1),
                mido.Message("note_on", note=62, velocity=80, time=0x0FFFFFFF),
                mido.Message("note_off", note=62, time=1),
            ]
        )
    )
    midi.save(path)
    assert path.stat().st_size < 50
    start = time.monotonic()
    assert main(["classify", str(path)]) == 1
    assert time.monotonic() - start < 30  # the recognizer loads; the file is refused as it is read
    assert _error(capsys) == (
        f"affetto classify: error: {path}: too long: a note starts at beat {0x10000000} "
        f"(allowed: notes starting before beat {MAX_BEATS}, 10000 bars of 4/4)"
    )


def test_what_is_not_a_regular_file_says_what_it_is(
    tmp_path: Path, special_files: list[tuple[Path, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    """Checked before the recognizer loads, without opening the file (a FIFO would block)."""
    for path, kind in special_files:
        why = f"{kind}, not a MIDI file"
        assert main(["classify", str(path), "--model", str(tmp_path / "no-recognizer")]) == 1
        assert _error(capsys) == f"affetto classify: error: {path} {why}"
    assert main(["classify", str(tmp_path / "missing.mid")]) == 1
    assert (
        _error(capsys) == f"affetto classify: error: {tmp_path / 'missing.mid'}: cannot read (no such file)"
    )
