"""Bar features and the ridge label model (numpy only, synthetic notes)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest

from engine.recognizer import music_features as E
from engine.tokens.vocab import Note

MODE = E.FEATURE_NAMES.index("mode")
PIECE_MODE = E.FEATURE_NAMES.index("piece_mode")
DENSITY = E.FEATURE_NAMES.index("notes_per_beat")
ONSETS = E.FEATURE_NAMES.index("onsets_per_beat")
VELOCITY = E.FEATURE_NAMES.index("velocity")
PITCH = E.FEATURE_NAMES.index("pitch_mean")


def _chords(chords: Sequence[Sequence[int]], steps: int = 16, velocity: int = 76) -> list[Note]:
    """One chord per 4/4 bar (whole notes)."""
    return [Note(i * steps, p, steps, velocity) for i, chord in enumerate(chords) for p in chord]


def _scale(pitches: list[int], tonic_steps: int = 8) -> list[Note]:
    """Eighth notes with a held tonic at the start and end (one 4/4 bar per 8 notes)."""
    notes = [Note(0, pitches[0], tonic_steps, 76)]
    step = tonic_steps
    for p in [*pitches[1:], pitches[0] + 12]:
        notes.append(Note(step, p, 2, 76))
        step += 2
    notes.append(Note(step, pitches[0], tonic_steps, 76))
    return notes


C_MAJOR_TRIADS = [(60, 64, 67), (60, 65, 69), (59, 62, 67), (60, 64, 67)]  # I IV V I
C_MINOR_TRIADS = [(60, 63, 67), (60, 65, 68), (59, 62, 67), (60, 63, 67)]  # i iv V i
C_MAJOR_SCALE = [60, 62, 64, 65, 67, 69, 71]
C_MINOR_SCALE = [60, 62, 63, 65, 67, 68, 70]


def test_mode_score_prefers_major_for_c_major() -> None:
    major = E.bar_features(_chords(C_MAJOR_TRIADS), [4] * 4)
    minor = E.bar_features(_chords(C_MINOR_TRIADS), [4] * 4)
    assert (major[:, MODE] > minor[:, MODE]).all()
    assert major[0, PIECE_MODE] > 0 > minor[0, PIECE_MODE]
    bars = [4] * 3
    assert (
        E.bar_features(_scale(C_MAJOR_SCALE), bars)[0, PIECE_MODE]
        > E.bar_features(_scale(C_MINOR_SCALE), bars)[0, PIECE_MODE]
    )


def test_density_rises_with_more_notes() -> None:
    sparse = [Note(s, 60, 4, 80) for s in range(0, 64, 8)]  # one note every two beats
    dense = [Note(s, 60, 2, 80) for s in range(0, 64, 2)]
    chords = [Note(s, p, 2, 80) for s in range(0, 64, 2) for p in (60, 64, 67)]
    f_sparse, f_dense, f_chords = (E.bar_features(n, [4] * 4) for n in (sparse, dense, chords))
    assert (f_dense[:, DENSITY] > f_sparse[:, DENSITY]).all()
    assert (f_chords[:, DENSITY] > f_dense[:, DENSITY]).all()
    assert np.allclose(f_dense[:, ONSETS], 2.0) and np.allclose(f_sparse[:, ONSETS], 0.5)
    assert np.allclose(f_chords[:, ONSETS], f_dense[:, ONSETS])  # chord thickness is not rhythm


def test_window_is_centred_and_silent_bars_get_piece_means() -> None:
    loud = [Note(0, 72, 4, 120)]
    soft = [Note(16 * 4, 48, 4, 40)]
    feats = E.bar_features(loud + soft, [4] * 5, window=0)
    assert feats[0, VELOCITY] == pytest.approx(120 / 127) and feats[4, VELOCITY] == pytest.approx(40 / 127)
    assert feats[2, DENSITY] == 0.0 and feats[2, VELOCITY] == pytest.approx(80 / 127)
    wide = E.bar_features(loud + soft, [4] * 5, window=2)
    assert wide[2, VELOCITY] == pytest.approx(80 / 127)  # both notes within 2 bars of bar 2
    assert wide[0, PITCH] == pytest.approx(1.0)  # bar 4 is 4 bars away: only the C5
    assert E.bar_features([], [4, 4]).shape == (2, E.NUM_FEATURES)
    with pytest.raises(ValueError):
        E.bar_features([Note(16, 60, 4, 80)], [4])  # after the last bar
    with pytest.raises(ValueError):
        E.bar_features(loud, [4], window=-1)


def test_ridge_recovers_a_linear_map_and_clips() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, E.NUM_FEATURES))
    y = np.stack([0.3 * x[:, 6] + 0.1, -0.2 * x[:, 0]], axis=1)
    model = E.fit_ridge(x, y, alpha=1e-3)
    assert np.allclose(model.predict(x), np.clip(y, -1, 1), atol=1e-3)
    assert (np.abs(model.predict(100 * x)) <= 1.0).all()
    again = E.RidgeLabelModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert np.allclose(again.predict(x), model.predict(x))


def test_ridge_handles_a_single_row_and_bad_input() -> None:
    x = np.ones((1, E.NUM_FEATURES))
    model = E.fit_ridge(x, np.asarray([[0.5, -0.5]]))
    assert np.allclose(model.predict(x), [[0.5, -0.5]])
    notes = _chords(C_MAJOR_TRIADS)
    assert model.predict_notes(notes, [4] * 4).shape == (4, 2)
    with pytest.raises(ValueError):
        E.fit_ridge(np.ones((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError):
        E.fit_ridge(x, np.zeros((1, 2)), alpha=0.0)
    with pytest.raises(ValueError):
        E.RidgeLabelModel.from_dict({**model.to_dict(), "feature_names": ["a"]})
