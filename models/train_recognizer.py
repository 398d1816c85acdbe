"""Fit the emotion recognizer (:mod:`engine.emotion_recognizer`) and write ``models/recognizer/``.

One command (a few minutes on 2 cores; the encoder features are cached)::

    python -m models.train_recognizer [--corpus data/corpus.npz] [--out models/recognizer]

Steps:

1. The labelled pieces of the corpus (VGMIDI labelled: per-bar listener curves; EMOPIA: the
   clip's quadrant as (±0.75, ±0.75)) are streamed through the shipped composer with the
   conditioning fixed at (0, 0); the top-layer LSTM states are averaged per bar
   (:func:`engine.emotion_recognizer.encode_bars`), and the musical bar features of
   :mod:`engine.music_features` are computed. Cached in ``data/recognizer_features.npz``.
2. Ridge regressions (closed form) of per-bar valence and arousal, each labelled source
   weighing the same in total and each piece the same within its source. The feature blocks
   and the penalty are chosen by grouped 5-fold cross-validation on the *train* split.
3. Evaluation on the held-out pieces (val + test splits, never fitted on) and, for steadier
   numbers, grouped 5-fold cross-validation over all labelled pieces. A piece's prediction is
   the mean of its bars'. VGMIDI pieces are scored against the per-piece labels of
   ``vgmidi/labelled/labels.csv`` and against the sign of the mean listener curve; EMOPIA clips
   by quadrant (4 classes) and by the signs of valence and arousal.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from engine import vocab as V
from engine.codec import decode_tokens
from engine.emotion_recognizer import (
    FEATURE_BLOCKS,
    KIND,
    MANIFEST_NAME,
    WEIGHTS_NAME,
    encode_bars,
    quadrant,
)
from engine.model_artifact import default_model_dir, load_artifact
from engine.music_features import DEFAULT_WINDOW, bar_features
from models.corpus import (
    DEFAULT_DATA_DIR,
    EMOPIA,
    LABEL_CURVES,
    LABEL_QUADRANT,
    TRAIN,
    VGMIDI_LABELLED,
    emopia_group,
    load_corpus,
    vgmidi_group,
)

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS: Final = REPO_ROOT / "data" / "corpus.npz"
DEFAULT_CACHE: Final = REPO_ROOT / "data" / "recognizer_features.npz"
DEFAULT_OUT: Final = REPO_ROOT / "models" / "recognizer"
ALPHAS: Final = (10.0, 100.0, 1000.0, 3000.0, 10000.0, 30000.0, 100000.0)
#: Standardized musical features are scaled by this (penalized 100x less than encoder features).
MUSIC_SCALE: Final = 10.0
CANDIDATE_BLOCKS: Final = (("h",), ("h", "c"), ("h", "music"), ("h", "c", "music"))
FOLDS: Final = 5
HIDDEN_BLOCKS: Final = ("h", "c")


def _log(message: str) -> None:
    print(f"[recognizer] {message}", file=sys.stderr, flush=True)


def _fold(group: str, salt: str) -> int:
    return int(hashlib.sha1(f"{salt}:{group}".encode()).hexdigest()[:12], 16) % FOLDS


# ------------------------------------------------------------------------------------ features


def _bar_index(tokens: np.ndarray) -> np.ndarray:
    """Bar of each token of a BOS ... EOS piece (BOS: bar 0), as engine.codec.encode_notes gives."""
    is_bar = (tokens >= V.BAR_OFFSET) & (tokens < V.POS_OFFSET)
    return np.maximum(np.cumsum(is_bar) - 1, 0).astype(np.int64)


def extract(corpus_path: Path, cache: Path, batch: int, threads: int) -> dict[str, np.ndarray]:
    """Features, targets and bookkeeping of every labelled piece (cached in ``cache``)."""
    if cache.is_file():
        _log(f"using cached features {cache}")
        with np.load(cache, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    corpus = load_corpus(corpus_path)
    labelled = np.flatnonzero(np.isin(corpus.label_source, (LABEL_CURVES, LABEL_QUADRANT)))
    _log(f"{labelled.size} labelled pieces; encoding with the composer (cond fixed at 0, 0)")
    pieces, targets, music = [], [], []
    for i in labelled:
        tokens, cond = corpus.piece(int(i))
        bars = _bar_index(tokens)
        pieces.append((tokens, bars))
        starts = np.flatnonzero((tokens >= V.BAR_OFFSET) & (tokens < V.POS_OFFSET))
        targets.append(cond[starts].astype(np.float32))
        notes, beats = decode_tokens(tokens)
        music.append(bar_features(notes, beats, window=DEFAULT_WINDOW).astype(np.float32))
    artifact = load_artifact(default_model_dir(), intra_op_threads=threads)
    t0 = time.time()
    encodings = encode_bars(
        artifact, pieces, batch=batch, progress=lambda d, n: _log(f"  encoded {d}/{n} pieces")
    )
    _log(f"encoded {sum(len(p[0]) for p in pieces)} tokens in {time.time() - t0:.0f} s")
    counts = np.asarray([e.h.shape[0] for e in encodings])
    assert all(t.shape[0] == n == m.shape[0] for t, n, m in zip(targets, counts, music, strict=True))
    names = corpus.piece_names[labelled]
    sources = corpus.source[labelled]
    groups = [
        vgmidi_group(Path(str(n)).name) if s == VGMIDI_LABELLED else emopia_group(Path(str(n)).name)
        for n, s in zip(names, sources, strict=True)
    ]
    data = {
        "h": np.concatenate([e.h for e in encodings]),
        "c": np.concatenate([e.c for e in encodings]),
        "music": np.concatenate(music),
        "targets": np.concatenate(targets),
        "bar_offsets": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        "names": names,
        "sources": sources,
        "splits": corpus.split[labelled],
        "groups": np.asarray(groups),
    }
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **data)  # type: ignore[arg-type]
    _log(f"cached features in {cache}")
    return data


# ---------------------------------------------------------------------------------------- ridge


class _Design:
    """Bar features of a block set with per-bar piece ids and weights."""

    def __init__(self, data: dict[str, np.ndarray], blocks: Sequence[str], music_scale: float = 1.0) -> None:
        self.x = np.concatenate([data[b].astype(np.float64) for b in blocks], axis=1)
        # Standardized columns are multiplied by ``scale``: a column scaled by s is penalized
        # as if alpha were alpha / s**2 (the few musical features against ~1000 encoder ones).
        self.scale = np.concatenate(
            [np.full(data[b].shape[1], music_scale if b == "music" else 1.0) for b in blocks]
        )
        self.y = data["targets"].astype(np.float64)
        offsets = data["bar_offsets"]
        self.piece = np.repeat(np.arange(offsets.size - 1), np.diff(offsets))
        sources = data["sources"]
        bars = np.diff(offsets).astype(np.float64)
        # Each source weighs the same in total, each piece the same within its source.
        piece_w = np.zeros(sources.size)
        for s in np.unique(sources):
            m = sources == s
            piece_w[m] = 1.0 / m.sum()
        self.w = (piece_w / bars)[self.piece]


def _fit_path(design: _Design, pieces: np.ndarray, alphas: Sequence[float]) -> list[dict[str, np.ndarray]]:
    """Ridge fits on the bars of ``pieces`` for every alpha (one eigendecomposition)."""
    rows = np.isin(design.piece, pieces)
    x, y, w = design.x[rows], design.y[rows], design.w[rows]
    n = x.shape[0]
    w = w * (n / w.sum())
    mean = (w[:, None] * x).sum(axis=0) / n
    std = np.sqrt((w[:, None] * (x - mean) ** 2).sum(axis=0) / n)
    std = np.where(std < 1e-9, 1.0, std) / design.scale
    z = (x - mean) / std
    y_mean = (w[:, None] * y).sum(axis=0) / n
    gram = z.T @ (w[:, None] * z)
    rhs = z.T @ (w[:, None] * (y - y_mean))
    evals, evecs = np.linalg.eigh(gram)
    proj = evecs.T @ rhs
    out = []
    for alpha in alphas:
        coef = (evecs @ (proj / (evals + alpha)[:, None])).T  # [2, F]
        out.append({"mean": mean, "std": std, "coef": coef, "intercept": y_mean, "alpha": np.asarray(alpha)})
    return out


def _predict(model: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.clip(
        (x - model["mean"]) / model["std"] @ model["coef"].T + model["intercept"], -1, 1
    )
    return out


def _piece_means(design: _Design, pred: np.ndarray, pieces: np.ndarray) -> np.ndarray:
    """Mean predicted (valence, arousal) of each of ``pieces`` (pred: per bar of all pieces)."""
    sums = np.zeros((design.piece.max() + 1, 2))
    np.add.at(sums, design.piece, pred)
    counts = np.bincount(design.piece, minlength=sums.shape[0])[:, None]
    means: np.ndarray = (sums / counts)[pieces]
    return means


# ---------------------------------------------------------------------------------------- scores


def _vgmidi_labels(data_dir: Path) -> dict[str, tuple[int, int]]:
    path = data_dir / "vgmidi" / "labelled" / "labels.csv"
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as f:
        return {row["file"]: (int(row["valence"]), int(row["arousal"])) for row in csv.DictReader(f)}


def _scores(
    data: dict[str, np.ndarray],
    pieces: np.ndarray,
    means: np.ndarray,
    truth_means: np.ndarray,
    csv_labels: dict[str, tuple[int, int]],
) -> dict[str, Any]:
    """Per-piece accuracies of predicted piece means ``means`` (rows match ``pieces``)."""
    src = data["sources"][pieces]
    out: dict[str, Any] = {}
    vg = src == VGMIDI_LABELLED
    if vg.any():
        pm, tm = means[vg], truth_means[vg]
        entry: dict[str, Any] = {"pieces": int(vg.sum())}
        for j, name in enumerate(("valence", "arousal")):
            signed = tm[:, j] != 0
            entry[f"{name}_sign_acc_curve"] = float((np.sign(pm[signed, j]) == np.sign(tm[signed, j])).mean())
        names = [Path(str(n)).name for n in data["names"][pieces][vg]]
        have = np.asarray([n in csv_labels for n in names])
        if have.any():
            lab = np.asarray([csv_labels[n] for n, h in zip(names, have, strict=True) if h], dtype=np.float64)
            for j, name in enumerate(("valence", "arousal")):
                entry[f"{name}_sign_acc_labels_csv"] = float(
                    (np.sign(pm[have, j]) == np.sign(lab[:, j])).mean()
                )
            entry["labels_csv_pieces"] = int(have.sum())
        out["vgmidi"] = entry
    em = src == EMOPIA
    if em.any():
        pm, tm = means[em], truth_means[em]
        pq = np.asarray([quadrant(v, a) for v, a in pm])
        tq = np.asarray([quadrant(v, a) for v, a in tm])
        confusion = np.zeros((4, 4), dtype=np.int64)
        np.add.at(confusion, (tq - 1, pq - 1), 1)
        out["emopia"] = {
            "pieces": int(em.sum()),
            "quadrant_acc": float((pq == tq).mean()),
            "valence_sign_acc": float((np.sign(pm[:, 0]) == np.sign(tm[:, 0])).mean()),
            "arousal_sign_acc": float((np.sign(pm[:, 1]) == np.sign(tm[:, 1])).mean()),
            "confusion_true_rows_pred_cols": confusion.tolist(),
        }
    return out


def _criterion(s: dict[str, Any]) -> float:
    """Selection score: mean of VGMIDI valence/arousal sign accuracy and EMOPIA 4Q accuracy."""
    vg = s.get("vgmidi", {})
    parts = [vg.get("valence_sign_acc_curve", 0.0), vg.get("arousal_sign_acc_curve", 0.0)]
    return float(np.mean(parts) + s.get("emopia", {}).get("quadrant_acc", 0.0)) / 2


def _cross_validate(
    design: _Design,
    data: dict[str, np.ndarray],
    pieces: np.ndarray,
    salt: str,
    alphas: Sequence[float],
    truth: np.ndarray,
    csv_labels: dict[str, tuple[int, int]],
) -> list[dict[str, Any]]:
    """Grouped k-fold CV over ``pieces``: scores for each alpha."""
    folds = np.asarray([_fold(str(data["groups"][p]), salt) for p in pieces])
    means = [np.zeros((pieces.size, 2)) for _ in alphas]
    for k in range(FOLDS):
        held = pieces[folds == k]
        fits = _fit_path(design, pieces[folds != k], alphas)
        rows = np.isin(design.piece, held)
        for a, model in enumerate(fits):
            pred = np.zeros((design.piece.size, 2))
            pred[rows] = _predict(model, design.x[rows])
            means[a][folds == k] = _piece_means(design, pred, held)
    return [_scores(data, pieces, m, truth[pieces], csv_labels) for m in means]


# ------------------------------------------------------------------------------------------ main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m models.train_recognizer", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA_DIR, help="data dir (for VGMIDI labels.csv)"
    )
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    t0 = time.time()
    data = extract(args.corpus, args.cache, args.batch, args.threads)
    csv_labels = _vgmidi_labels(args.data)
    offsets = data["bar_offsets"]
    num_pieces = offsets.size - 1
    piece_of_bar = np.repeat(np.arange(num_pieces), np.diff(offsets))
    truth = np.zeros((num_pieces, 2))
    np.add.at(truth, piece_of_bar, data["targets"].astype(np.float64))
    truth /= np.diff(offsets)[:, None]
    train = np.flatnonzero(data["splits"] == TRAIN)
    held = np.flatnonzero(data["splits"] != TRAIN)
    everything = np.arange(num_pieces)

    # Model selection: grouped CV on the train split only.
    best: tuple[float, tuple[str, ...], float] | None = None
    blocks: tuple[str, ...]
    selection: list[dict[str, Any]] = []
    for blocks in CANDIDATE_BLOCKS:
        design = _Design(data, blocks, MUSIC_SCALE)
        for alpha, s in zip(
            ALPHAS, _cross_validate(design, data, train, "sel", ALPHAS, truth, csv_labels), strict=True
        ):
            score = _criterion(s)
            selection.append({"blocks": list(blocks), "alpha": alpha, "score": score, **s})
            _log(f"cv-train {'+'.join(blocks):>10} alpha {alpha:>7g}: score {score:.3f} {json.dumps(s)}")
            if best is None or score > best[0]:
                best = (score, blocks, alpha)
    assert best is not None
    _, blocks, alpha = best
    _log(f"chosen: blocks {blocks}, alpha {alpha:g}")
    design = _Design(data, blocks, MUSIC_SCALE)
    model = _fit_path(design, train, [alpha])[0]
    pred = _predict(model, design.x)
    held_scores = _scores(data, held, _piece_means(design, pred, held), truth[held], csv_labels)
    train_scores = _scores(data, train, _piece_means(design, pred, train), truth[train], csv_labels)
    cv_all = _cross_validate(design, data, everything, "all", [alpha], truth, csv_labels)[0]
    _log(f"held-out (val+test): {json.dumps(held_scores)}")
    _log(f"cv{FOLDS} all labelled: {json.dumps(cv_all)}")

    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out / WEIGHTS_NAME,
        mean=model["mean"].astype(np.float32),
        std=model["std"].astype(np.float32),
        coef=model["coef"].astype(np.float32),
        intercept=model["intercept"].astype(np.float32),
    )
    composer_manifest = json.loads((default_model_dir() / "manifest.json").read_text(encoding="utf-8"))
    manifest = {
        "kind": KIND,
        "weights": WEIGHTS_NAME,
        "vocab_version": V.VOCAB_VERSION,
        "targets": ["valence", "arousal"],
        "features": {
            "blocks": list(blocks),
            "known_blocks": list(FEATURE_BLOCKS),
            "encoder": "shipped composer (models/composer), cond fixed at (0, 0); per-bar mean of the "
            "top LSTM layer's h / c after each token of the bar (BOS in bar 0, EOS in the last)",
            "hidden_size": int(composer_manifest["hidden_size"]),
            "composer_training_step": composer_manifest.get("training", {}).get("step"),
            "music_window": DEFAULT_WINDOW,
            "music_scale": MUSIC_SCALE,
        },
        "fit": {
            "model": "ridge per target on standardized features (closed form); piece = mean of its bars",
            "alpha": alpha,
            "weighting": "each labelled source weighs the same in total, each piece the same within it",
            "targets": "VGMIDI: per-bar mean listener curve; EMOPIA: quadrant as (±0.75, ±0.75)",
            "train_pieces": int(train.size),
            "selection": f"grouped {FOLDS}-fold CV on the train split over blocks {CANDIDATE_BLOCKS} "
            f"and alpha {ALPHAS}; score = mean(VGMIDI V/A sign acc (curve)) averaged with EMOPIA 4Q acc",
        },
        "metrics": {
            "held_out_val_test": held_scores,
            f"cv{FOLDS}_all_labelled": cv_all,
            "train_fit": train_scores,
            "selection_cv_train": selection,
        },
        "command": "python -m models.train_recognizer",
    }
    (args.out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    size = sum(p.stat().st_size for p in args.out.iterdir())
    _log(f"wrote {args.out} ({size / 1e6:.2f} MB) in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
