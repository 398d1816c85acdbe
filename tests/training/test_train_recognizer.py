"""``python -m models.train_recognizer`` on synthetic cached features: the piece-level recipe."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.model.artifact import default_model_dir, load_manifest
from engine.recognizer.emotion_recognizer import NOTE_BLOCK_WIDTHS, EmotionRecognizer, composer_fingerprint
from models import train_recognizer as T
from models.corpus import EMOPIA, TEST, TRAIN, VAL, VGMIDI_LABELLED

pytestmark = pytest.mark.skipif(
    not (default_model_dir() / "manifest.json").is_file(), reason="no shipped composer"
)


def _synthetic(seed: int = 0) -> dict[str, np.ndarray]:
    """Features shaped like the real cache: a piece's valence sign shows in h[:, :32], its arousal
    sign in its notes per second, each bar noisy; VGMIDI pieces carry small curve values."""
    rng = np.random.default_rng(seed)
    hidden = int(json.loads((default_model_dir() / "manifest.json").read_text())["hidden_size"])
    sources = np.asarray([VGMIDI_LABELLED] * 60 + [EMOPIA] * 140)
    signs = rng.choice([-1.0, 1.0], size=(sources.size, 2))
    bars = rng.integers(3, 7, size=sources.size)
    h = rng.normal(size=(bars.sum(), hidden)).astype(np.float32)
    c = rng.normal(size=(bars.sum(), hidden)).astype(np.float32)
    notes = {b: rng.normal(size=(bars.sum(), w)).astype(np.float32) for b, w in NOTE_BLOCK_WIDTHS.items()}
    piece = np.repeat(np.arange(sources.size), bars)
    h[:, :32] += signs[piece, 0, None]
    notes["time"][:, 1] += 1.5 * signs[piece, 1]
    size = np.where(sources == EMOPIA, 0.75, 0.3)[piece, None]
    targets = (size * signs[piece]).astype(np.float32)
    splits = rng.choice([TRAIN, TRAIN, TRAIN, TRAIN, VAL, TEST], size=sources.size)
    return {
        "h": h,
        "c": c,
        **notes,
        "targets": targets,
        "bar_offsets": np.concatenate([[0], np.cumsum(bars)]).astype(np.int64),
        "names": np.asarray([f"piece{i}.mid" for i in range(sources.size)]),
        "sources": sources,
        "splits": splits,
        "groups": np.asarray([f"g{i // 2}" for i in range(sources.size)]),  # pairs share a group
        "composer_sha256": np.asarray(composer_fingerprint(load_manifest(default_model_dir()))),
    }


def test_piece_ridge_scores_bars_linearly() -> None:
    data = _synthetic()
    design = T._Design(data, T.BLOCKS, T.NOTE_SCALE)
    assert design.x.shape == (200, design.bar_x.shape[1]) and set(np.unique(design.y)) == {-1.0, 1.0}
    model = T._fit_path(design, np.arange(150), [100.0])[0]
    # linear: the mean of a piece's bar scores is the score of its mean features
    bar_scores = T._score(model, design.bar_x)
    means = np.stack([bar_scores[design.piece == p].mean(axis=0) for p in range(200)])
    np.testing.assert_allclose(means, T._score(model, design.x), atol=1e-9)
    # the SVD path equals the normal equations (weighted, centred) for every alpha
    x, y, w = design.x[:150], design.y[:150], design.w[:150] * (150 / design.w[:150].sum())
    z = (x - model["mean"]) / model["std"]
    for fit in T._fit_path(design, np.arange(150), [1.0, 1e4]):
        gram = z.T @ (w[:, None] * z) + float(fit["alpha"]) * np.eye(z.shape[1])
        coef = np.linalg.solve(gram, z.T @ (w[:, None] * (y - fit["intercept"])))
        np.testing.assert_allclose(fit["coef"], coef.T, atol=1e-8)
    # calibration only rescales: every sign stays, and a perfect score needs no stretching
    scale = T._calibration(T._score(model, design.x), design.y, design.w)
    assert np.all(scale > 0)
    np.testing.assert_allclose(T._calibration(design.y * 0.5, design.y, design.w), [2.0, 2.0])
    # out-of-fold scores never see their own fold's labels (whole groups are held out together)
    pieces = np.arange(200)
    problem = T._Problem(design, data, {})
    before = T._out_of_fold(problem, pieces, "all", [10.0])
    fold0 = np.asarray([T._fold(str(g), "all") for g in data["groups"]]) == 0
    assert 0 < fold0.sum() < 200
    design.y[fold0] *= -1
    after = T._out_of_fold(problem, pieces, "all", [10.0])
    np.testing.assert_allclose(after[0, fold0], before[0, fold0], atol=1e-9)
    assert not np.allclose(after[0, ~fold0], before[0, ~fold0])


def test_listener_curves_are_soft_targets() -> None:
    data = _synthetic()
    offsets = data["bar_offsets"]
    # the first VGMIDI piece's listeners barely lean positive, the second's lean clearly negative
    data["targets"][offsets[0] : offsets[1]] = [0.05, -0.02]
    data["targets"][offsets[1] : offsets[2]] = [-0.6, 0.3]
    design = T._Design(data, T.BLOCKS, T.NOTE_SCALE, curve_gain=3.0)
    np.testing.assert_allclose(design.y[0], [0.15, -0.06], atol=1e-6)
    np.testing.assert_allclose(design.y[1], [-1.0, 0.9], atol=1e-6)
    np.testing.assert_array_equal(design.sign[:2], [[1.0, -1.0], [-1.0, 1.0]])
    emopia = data["sources"] == EMOPIA
    np.testing.assert_array_equal(design.y[emopia], design.sign[emopia])  # quadrants stay ±1
    assert set(np.unique(design.sign)) == {-1.0, 1.0}
    # without a gain every target is a sign
    np.testing.assert_array_equal(T._Design(data, T.BLOCKS, T.NOTE_SCALE).y, design.sign)
    # accuracy on clear pieces leaves out the pieces listeners barely agree on
    truth = np.add.reduceat(data["targets"].astype(np.float64), offsets[:-1]) / np.diff(offsets)[:, None]
    np.testing.assert_allclose(design.truth, truth)
    pieces = np.flatnonzero(data["sources"] == VGMIDI_LABELLED)
    wrong_on_first = truth[pieces].copy()
    wrong_on_first[0] *= -1
    scores = T._Problem(design, data, {}).scores(pieces, wrong_on_first)["vgmidi"]
    assert scores["valence_clear_pieces"] == pieces.size - 1
    assert scores["valence_sign_acc_clear_curve"] == 1.0
    assert scores["valence_sign_acc_curve"] == pytest.approx(1 - 1 / pieces.size)


def test_train_writes_a_loadable_recognizer(tmp_path: Path) -> None:
    data = _synthetic()
    cache = tmp_path / "features.npz"
    np.savez(cache, **data)  # type: ignore[arg-type]
    out = tmp_path / "recognizer"
    assert T.main(["--cache", str(cache), "--out", str(out), "--data", str(tmp_path), "--splits", "2"]) == 0
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    fit, metrics = manifest["fit"], manifest["metrics"]
    assert fit["alpha"] in T.ALPHAS and all(s > 0 for s in fit["readout_scale"])
    assert manifest["features"]["blocks"] == list(T.BLOCKS)
    assert manifest["features"]["composer_onnx_sha256"] == str(data["composer_sha256"])
    held, cv = metrics["held_out_val_test"], metrics["cv5_all_labelled"]
    assert metrics["cv5_all_labelled_over_splits"]["splits"] == 2
    assert len(cv["folds"]) == T.FOLDS and all(f["alpha"] in T.ALPHAS for f in cv["folds"])
    assert held["vgmidi"]["pieces"] + held["emopia"]["pieces"] == int((data["splits"] != TRAIN).sum())
    # the planted signal is found on pieces never fitted on
    for scores in (held, cv):
        assert scores["vgmidi"]["valence_sign_acc_curve"] >= 0.9
        assert scores["vgmidi"]["arousal_sign_acc_curve"] >= 0.9
        assert scores["emopia"]["quadrant_acc"] >= 0.85
    # the engine applies the weights per bar exactly as training evaluated them
    recognizer = EmotionRecognizer.load(out, intra_op_threads=1)
    design = T._Design(data, T.BLOCKS, T.NOTE_SCALE)
    with np.load(out / "recognizer.npz") as z:
        model = {k: z[k].astype(np.float64) for k in z.files}
    rows = design.bar_x[:50]
    got = recognizer.predict_features(rows)
    np.testing.assert_allclose(got, T._predict(model, rows), atol=1e-9)
    assert np.all(np.abs(got) <= 1.0)


def test_a_cache_of_another_composers_states_is_not_used(tmp_path: Path) -> None:
    data = _synthetic()
    cache = tmp_path / "features.npz"
    np.savez(cache, **data)  # type: ignore[arg-type]
    shipped = str(data["composer_sha256"])
    cached = T._cached(cache, shipped)
    assert cached is not None and np.array_equal(cached["h"], data["h"])
    assert T._cached(cache, "0" * 64) is None  # the composer changed: encode again
    del data["composer_sha256"]
    np.savez(cache, **data)  # type: ignore[arg-type]
    assert T._cached(cache, shipped) is None  # unmarked caches predate the check
    assert T._cached(tmp_path / "none.npz", shipped) is None
