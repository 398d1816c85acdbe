"""Timing and harmony bar features (engine.recognizer.features), tempo maps from files, and the
recognizer hearing tempo: the same notes played faster score higher arousal."""

from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pytest

from engine.recognizer import features as R
from engine.recognizer.emotion_recognizer import EmotionRecognizer, default_recognizer_dir
from engine.tokens.codec import quantize, write_notes_midi
from engine.tokens.midi_file import bar_seconds, read_midi
from engine.tokens.vocab import Note

TEMPO = R.TIME_FEATURE_NAMES.index("log_tempo")
NPS = R.TIME_FEATURE_NAMES.index("notes_per_second")
ONSETS = R.TIME_FEATURE_NAMES.index("onsets_per_second")
DUR = R.TIME_FEATURE_NAMES.index("log_duration_s")
H = {name: i for i, name in enumerate(R.HARMONY_FEATURE_NAMES)}


def _chords(chords: list[tuple[int, ...]], steps: int = 16) -> list[Note]:
    """One chord per 4/4 bar (whole notes)."""
    return [Note(i * steps, p, steps, 76) for i, chord in enumerate(chords) for p in chord]


def _eighths(bars: int) -> list[Note]:
    """Eighth notes on C–G, 8 per 4/4 bar."""
    return [Note(2 * k, 60 + (k % 8), 2, 80) for k in range(8 * bars)]


def test_time_features_scale_with_tempo() -> None:
    notes, beats = _eighths(4), [4] * 4
    slow = R.time_features(notes, beats, R.bar_seconds_at(beats, 60.0))
    fast = R.time_features(notes, beats, R.bar_seconds_at(beats, 120.0))
    np.testing.assert_allclose(slow[:, TEMPO], -1.0)  # log2(60 / 120)
    np.testing.assert_allclose(fast[:, TEMPO], 0.0)
    np.testing.assert_allclose(slow[:, NPS], np.log1p(2.0))  # 2 notes a beat, a beat a second
    np.testing.assert_allclose(fast[:, NPS], np.log1p(4.0))
    np.testing.assert_allclose(fast[:, ONSETS], fast[:, NPS])  # one note per onset
    np.testing.assert_allclose(slow[:, DUR], -1.0)  # an eighth at 60 BPM lasts 0.5 s
    np.testing.assert_allclose(fast[:, DUR], -2.0)
    # a bar twice as long in seconds halves its own rate (window 0)
    varied = R.time_features(notes, beats, [2.0, 4.0, 2.0, 2.0], window=0)
    np.testing.assert_allclose(varied[:, NPS], np.log1p([4.0, 2.0, 4.0, 4.0]))


def test_time_features_edges() -> None:
    assert R.time_features([], [4, 4], [2.0, 2.0]).shape == (2, len(R.TIME_FEATURE_NAMES))
    assert R.time_features([], [], []).shape == (0, len(R.TIME_FEATURE_NAMES))
    with pytest.raises(ValueError, match="one entry per bar"):
        R.time_features(_eighths(2), [4, 4], [2.0])
    with pytest.raises(ValueError, match="> 0"):
        R.time_features(_eighths(2), [4, 4], [2.0, 0.0])
    with pytest.raises(ValueError, match="onsets"):
        R.time_features([Note(32, 60, 2, 80)], [4, 4], [2.0, 2.0])
    with pytest.raises(ValueError, match="tempo_bpm"):
        R.bar_seconds_at([4], 0.0)


def test_harmony_features_read_chords() -> None:
    major = R.harmony_features(_chords([(60, 64, 67), (65, 69, 72), (67, 71, 74), (60, 64, 67)]), [4] * 4)
    minor = R.harmony_features(_chords([(60, 63, 67), (65, 68, 72), (67, 70, 74), (60, 63, 67)]), [4] * 4)
    np.testing.assert_allclose(major[:, H["major_triads"]], 1.0)
    np.testing.assert_allclose(major[:, H["minor_triads"]], 0.0)
    np.testing.assert_allclose(minor[:, H["minor_triads"]], 1.0)
    np.testing.assert_allclose(minor[:, H["major_triads"]], 0.0)
    assert major[0, H["key_major"]] == 1.0 and minor[0, H["key_major"]] == 0.0
    assert major[:, H["major_beats"]].mean() > minor[:, H["major_beats"]].mean()
    # a triad's three pairs: a minor third, a major third, a fourth (the fifth's class)
    np.testing.assert_allclose(major[:, [H["ic3"], H["ic4"], H["ic5"]]], 1 / 3)
    diminished = R.harmony_features(_chords([(59, 62, 65)] * 2), [4] * 2)
    np.testing.assert_allclose(diminished[:, H["diminished_triads"]], 1.0)
    np.testing.assert_allclose(diminished[:, H["ic6"]], 1 / 3)  # B–F, counted once
    cluster = R.harmony_features(_chords([(60, 61, 62)] * 2), [4] * 2)
    np.testing.assert_allclose(cluster[:, H["ic1"]], 2 / 3)
    np.testing.assert_allclose(cluster[:, : H["ic1"]], 0.0)  # a chord beat with no triad


def test_harmony_features_edges() -> None:
    assert not R.harmony_features([], [4, 4]).any()
    # a held note sounds in every beat it overlaps, past its own bar
    held = R.harmony_features(
        [Note(0, 60, 32, 80), Note(16, 64, 16, 80), Note(16, 67, 16, 80)], [4, 4], window=0
    )
    np.testing.assert_allclose(held[:, H["major_triads"]], [0.0, 1.0])
    with pytest.raises(ValueError, match="window"):
        R.harmony_features([], [4], window=-1)


def _file_with_tempos(path: Path, tempos: list[tuple[int, float]], tpb: int = 480) -> None:
    """Whole-note middle Cs for 4 bars of 4/4, with set_tempo (tick, bpm) events."""
    track = mido.MidiTrack()
    events = [(t, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))) for t, bpm in tempos]
    for bar in range(4):
        events.append((bar * 4 * tpb, mido.Message("note_on", note=60, velocity=80)))
        events.append(((bar + 1) * 4 * tpb - 1, mido.Message("note_off", note=60)))
    now = 0
    for tick, msg in sorted(events, key=lambda e: e[0]):
        track.append(msg.copy(time=tick - now))
        now = tick
    mido.MidiFile(ticks_per_beat=tpb, tracks=[track]).save(path)


def test_bar_seconds_follow_the_tempo_map(tmp_path: Path) -> None:
    path = tmp_path / "tempos.mid"
    _file_with_tempos(path, [(0, 60.0), (6 * 480, 120.0)])  # doubles halfway through bar 2
    parsed = read_midi(path)
    assert parsed.tempos == [(0, 1_000_000), (2880, 500_000)]
    np.testing.assert_allclose(bar_seconds(parsed, quantize(parsed)[1]), [4.0, 3.0, 2.0, 2.0])
    plain = tmp_path / "plain.mid"
    _file_with_tempos(plain, [])
    np.testing.assert_allclose(bar_seconds(read_midi(plain), [4, 4]), [2.0, 2.0])  # 120 BPM default


@pytest.mark.skipif(
    not (default_recognizer_dir() / "manifest.json").is_file(), reason="no shipped recognizer"
)
def test_recognizer_hears_tempo(tmp_path: Path) -> None:
    recognizer = EmotionRecognizer.load(intra_op_threads=1)
    notes, beats = _eighths(8), [4] * 8
    arousal = {}
    for bpm in (60.0, 180.0):
        path = tmp_path / f"{bpm:g}.mid"
        write_notes_midi(path, notes, beats, tempo_bpm=bpm)
        from_file = recognizer.classify_file(path)
        # the file keeps its tempo in whole microseconds per beat (180 BPM: 333333 us)
        stored_bpm = 60e6 / mido.bpm2tempo(bpm)
        given = recognizer.classify_notes(*quantize(read_midi(path)), tempo_bpm=stored_bpm)
        np.testing.assert_allclose(from_file.bars, given.bars, atol=1e-6)
        arousal[bpm] = from_file.arousal
    assert arousal[180.0] > arousal[60.0] + 0.2
    with pytest.raises(ValueError, match="entries"):
        recognizer.classify_many([(notes, beats)], bar_seconds=[None, None])
