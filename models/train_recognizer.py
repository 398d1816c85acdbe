"""Fit the emotion recognizer (:mod:`engine.recognizer.emotion_recognizer`) and write ``models/recognizer/``.

One command (a few minutes on 2 cores; the encoder features are cached)::

    python -m models.train_recognizer [--corpus data/corpus.npz] [--out models/recognizer]

Steps:

1. The labelled pieces of the corpus (VGMIDI labelled: per-bar listener curves; EMOPIA: the
   clip's quadrant as (±0.75, ±0.75)) are streamed through the shipped composer with the
   conditioning fixed at (0, 0); the top-layer LSTM states are averaged per bar
   (:func:`engine.recognizer.emotion_recognizer.encode_bars`), and the musical bar features of
   :mod:`engine.recognizer.music_features` are computed. Cached in ``data/recognizer_features.npz``.
2. A piece-level ridge regression per target (closed form): a piece's features are the mean of
   its bars' (h, c and the note features, standardized; the note ones weighted up), its
   targets a soft sign of its valence and arousal (VGMIDI: the mean listener curve times
   ``CURVE_GAIN``, clipped to [-1, 1]; EMOPIA: the quadrant's signs, ±1); each labelled source
   weighs the same in total and each piece the same within its source. The penalty is chosen by
   grouped 5-fold cross-validation on the *train* split, and the read-out is then multiplied,
   per target, by the least-squares factor from that alpha's out-of-fold scores to the signs
   (±1) of the targets, so an output reads as the expected
   sign (signs unchanged). Being linear, the read-out scores single bars alike: the recognizer
   reads each bar, clips it to [-1, 1], and a piece is the mean of its bars (a piece's unclipped
   score is exactly the score of its mean features).
3. Evaluation on the held-out pieces (val + test splits, never fitted on) and, for steadier
   numbers, nested grouped 5-fold cross-validation over all labelled pieces (alpha and scale
   chosen inside each training fold). Pieces are predicted as at run time (bars clipped, then
   averaged). VGMIDI pieces are scored against the per-piece labels of
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from engine.model.artifact import default_model_dir, load_artifact, load_manifest
from engine.recognizer.emotion_recognizer import (
    FEATURE_BLOCKS,
    KIND,
    MANIFEST_NAME,
    NOTE_BLOCK_WIDTHS,
    WEIGHTS_NAME,
    composer_fingerprint,
    encode_bars,
    note_features,
    quadrant,
)
from engine.recognizer.music_features import DEFAULT_WINDOW
from engine.tokens import vocab as V
from engine.tokens.codec import decode_tokens
from engine.tokens.midi_file import bar_seconds, read_midi
from models.corpus import (
    DEFAULT_DATA_DIR,
    EMOPIA,
    LABEL_CURVES,
    LABEL_QUADRANT,
    TRAIN,
    VGMIDI_LABELLED,
    Corpus,
    emopia_group,
    load_corpus,
    vgmidi_group,
)

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS: Final = REPO_ROOT / "data" / "corpus.npz"
DEFAULT_CACHE: Final = REPO_ROOT / "data" / "recognizer_features.npz"
DEFAULT_OUT: Final = REPO_ROOT / "models" / "recognizer"
ALPHAS: Final = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0, 30000.0, 100000.0)
#: Standardized note features (music, time, harmony) are scaled by this (penalized 100x less than
#: the encoder's).
NOTE_SCALE: Final = 10.0
#: Feature blocks of the read-out.
BLOCKS: Final = ("h", "c", "music", "time", "harmony")
#: A VGMIDI piece's ridge target is its mean listener curve times this, clipped to [-1, 1]: a
#: soft sign, so pieces the listeners barely agree on (|mean| < 1 / gain) pull less than clear ones.
CURVE_GAIN: Final = 4.0
#: A VGMIDI piece is "clear" in valence (arousal) when its mean listener curve is at least this far
#: from 0; accuracy on the clear pieces is reported beside accuracy on all.
CLEAR_CURVE: Final = 0.1
FOLDS: Final = 5


def _log(message: str) -> None:
    print(f"[recognizer] {message}", file=sys.stderr, flush=True)


def _fold(group: str, salt: str) -> int:
    return int(hashlib.sha1(f"{salt}:{group}".encode()).hexdigest()[:12], 16) % FOLDS


# ------------------------------------------------------------------------------------ features


def _bar_index(tokens: np.ndarray) -> np.ndarray:
    """Bar of each token of a BOS ... EOS piece (BOS: bar 0), as engine.tokens.codec.encode_notes gives."""
    is_bar = (tokens >= V.BAR_OFFSET) & (tokens < V.POS_OFFSET)
    return np.maximum(np.cumsum(is_bar) - 1, 0).astype(np.int64)


def extract(
    corpus_path: Path, data_dir: Path, cache: Path, batch: int, threads: int
) -> dict[str, np.ndarray]:
    """Features, targets and bookkeeping of every labelled piece, cached in ``cache``.

    The cache is keyed by the shipped composer's float graph (:func:`composer_fingerprint`): a
    cache of another composer's states is encoded again. The composer's states take minutes; the
    note blocks (music, time, harmony) seconds, and are (re)computed, timing from each source
    file's tempo map, whenever the cache lacks one.
    """
    composer = composer_fingerprint(load_manifest(default_model_dir()))
    data = _cached(cache, composer)
    if data is not None and all(b in data for b in NOTE_BLOCK_WIDTHS):
        return data
    corpus = load_corpus(corpus_path)
    if data is None:
        data = _encode(corpus, batch, threads)
        data["composer_sha256"] = np.asarray(composer)
    _log("computing the note features (music, time, harmony)")
    data.update(_note_blocks(corpus, data_dir, data))
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **data)  # type: ignore[arg-type]
    _log(f"cached features in {cache}")
    return data


def _cached(cache: Path, composer: str) -> dict[str, np.ndarray] | None:
    """The cached features if ``cache`` holds the states of the composer whose float graph hashes
    to ``composer``; None if there is no cache or it holds another composer's (or an unmarked) one."""
    if not cache.is_file():
        return None
    with np.load(cache, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    if str(data.get("composer_sha256", "")) != composer:
        _log(f"{cache} holds another composer's states: encoding again")
        return None
    _log(f"using cached features {cache}")
    return data


def _note_blocks(corpus: Corpus, data_dir: Path, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The note feature blocks of the pieces in ``data`` (bars as cached), each float32[bars, width]."""
    index = {str(name): i for i, name in enumerate(corpus.piece_names)}
    blocks: dict[str, list[np.ndarray]] = {name: [] for name in NOTE_BLOCK_WIDTHS}
    offsets = data["bar_offsets"]
    for p, name in enumerate(data["names"]):
        if str(name) not in index:
            raise ValueError(f"cached piece {name} is not in the corpus; delete the cache")
        notes, beats = decode_tokens(corpus.piece(index[str(name)])[0])
        cached_bars = offsets[p + 1] - offsets[p]
        if len(beats) != cached_bars:
            raise ValueError(f"piece {name} has {len(beats)} bars, the cache {cached_bars}; delete the cache")
        seconds = bar_seconds(read_midi(data_dir / str(name)), beats)
        feats = note_features(tuple(NOTE_BLOCK_WIDTHS), notes, beats, seconds, window=DEFAULT_WINDOW)
        for block, rows in feats.items():
            blocks[block].append(rows.astype(np.float32))
    return {name: np.concatenate(rows) for name, rows in blocks.items()}


def _encode(corpus: Corpus, batch: int, threads: int) -> dict[str, np.ndarray]:
    """The composer's per-bar states of every labelled piece, with targets and bookkeeping."""
    labelled = np.flatnonzero(np.isin(corpus.label_source, (LABEL_CURVES, LABEL_QUADRANT)))
    _log(f"{labelled.size} labelled pieces; encoding with the composer (cond fixed at 0, 0)")
    pieces, targets = [], []
    for i in labelled:
        tokens, cond = corpus.piece(int(i))
        pieces.append((tokens, _bar_index(tokens)))
        starts = np.flatnonzero((tokens >= V.BAR_OFFSET) & (tokens < V.POS_OFFSET))
        targets.append(cond[starts].astype(np.float32))
    artifact = load_artifact(default_model_dir(), intra_op_threads=threads)
    t0 = time.time()
    encodings = encode_bars(
        artifact, pieces, batch=batch, progress=lambda d, n: _log(f"  encoded {d}/{n} pieces")
    )
    _log(f"encoded {sum(len(p[0]) for p in pieces)} tokens in {time.time() - t0:.0f} s")
    counts = np.asarray([e.h.shape[0] for e in encodings])
    assert all(t.shape[0] == n for t, n in zip(targets, counts, strict=True))
    names = corpus.piece_names[labelled]
    sources = corpus.source[labelled]
    groups = [
        vgmidi_group(Path(str(n)).name) if s == VGMIDI_LABELLED else emopia_group(Path(str(n)).name)
        for n, s in zip(names, sources, strict=True)
    ]
    return {
        "h": np.concatenate([e.h for e in encodings]),
        "c": np.concatenate([e.c for e in encodings]),
        "targets": np.concatenate(targets),
        "bar_offsets": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        "names": names,
        "sources": sources,
        "splits": corpus.split[labelled],
        "groups": np.asarray(groups),
    }


# ---------------------------------------------------------------------------------------- ridge


class _Design:
    """Features of every labelled piece (mean of its bars) and of every bar, with targets and weights."""

    def __init__(
        self,
        data: dict[str, np.ndarray],
        blocks: Sequence[str],
        note_scale: float = 1.0,
        curve_gain: float | None = None,
    ) -> None:
        #: float64[bars, F], each bar's features (what the recognizer reads at run time).
        self.bar_x = np.concatenate([data[b].astype(np.float64) for b in blocks], axis=1)
        # Standardized columns are multiplied by ``scale``: a column scaled by s is penalized
        # as if alpha were alpha / s**2 (the few note features against ~1000 encoder ones).
        self.scale = np.concatenate(
            [np.full(data[b].shape[1], note_scale if b in NOTE_BLOCK_WIDTHS else 1.0) for b in blocks]
        )
        offsets = data["bar_offsets"]
        bars = np.diff(offsets)
        self.piece = np.repeat(np.arange(offsets.size - 1), bars)
        #: float64[pieces, F], the mean of each piece's bar features (what the ridge is fitted on).
        self.x = np.add.reduceat(self.bar_x, offsets[:-1], axis=0) / bars[:, None]
        truth = np.zeros((offsets.size - 1, 2))
        np.add.at(truth, self.piece, data["targets"].astype(np.float64))
        truth /= bars[:, None]
        #: float64[pieces, 2], each piece's mean label (valence, arousal).
        self.truth = truth
        #: float64[pieces, 2], the sign (+1 / -1) of each piece's mean valence and arousal.
        self.sign = np.sign(truth)
        sources = data["sources"]
        #: float64[pieces, 2], the ridge targets: the signs, or for listener curves (VGMIDI) with
        #: ``curve_gain``, the soft sign clip(gain * mean curve, -1, 1).
        self.y = self.sign.copy()
        if curve_gain is not None:
            curves = sources == VGMIDI_LABELLED
            self.y[curves] = np.clip(curve_gain * truth[curves], -1.0, 1.0)
        # Each source weighs the same in total, each piece the same within its source.
        self.w = np.zeros(sources.size)
        for s in np.unique(sources):
            m = sources == s
            self.w[m] = 1.0 / m.sum()


def _fit_path(design: _Design, pieces: np.ndarray, alphas: Sequence[float]) -> list[dict[str, np.ndarray]]:
    """Weighted ridge fits on ``pieces`` (their mean features and sign targets) for every alpha.

    One thin SVD of the weighted design serves every alpha (there are about as many pieces as
    features): with ``A = sqrt(W) Z = U S V'``, ``coef = V diag(s / (s² + alpha)) U' sqrt(W) y``.
    """
    x, y, w = design.x[pieces], design.y[pieces], design.w[pieces]
    n = x.shape[0]
    w = w * (n / w.sum())
    mean = (w[:, None] * x).sum(axis=0) / n
    std = np.sqrt((w[:, None] * (x - mean) ** 2).sum(axis=0) / n)
    std = np.where(std < 1e-9, 1.0, std) / design.scale
    z = (x - mean) / std
    y_mean = (w[:, None] * y).sum(axis=0) / n
    root = np.sqrt(w)[:, None]
    u, sv, vt = np.linalg.svd(root * z, full_matrices=False)
    proj = u.T @ (root * (y - y_mean))
    out = []
    for alpha in alphas:
        coef = (vt.T @ (proj * (sv / (sv**2 + alpha))[:, None])).T  # [2, F]
        out.append({"mean": mean, "std": std, "coef": coef, "intercept": y_mean, "alpha": np.asarray(alpha)})
    return out


def _score(model: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The linear read-out of feature rows ``x``, unclipped (float64[N, 2])."""
    out: np.ndarray = (x - model["mean"]) / model["std"] @ model["coef"].T + model["intercept"]
    return out


def _rescaled(model: dict[str, np.ndarray], scale: np.ndarray) -> dict[str, np.ndarray]:
    """``model`` with its read-out multiplied by ``scale`` per target (signs unchanged)."""
    return {**model, "coef": model["coef"] * scale[:, None], "intercept": model["intercept"] * scale}


def _predict(model: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """What ``EmotionRecognizer.predict_features`` (engine.recognizer.emotion_recognizer) returns: clipped."""
    out: np.ndarray = np.clip(_score(model, x), -1, 1)
    return out


def _piece_means(design: _Design, pred: np.ndarray, pieces: np.ndarray) -> np.ndarray:
    """Mean predicted (valence, arousal) of each of ``pieces`` (pred: per bar of all pieces)."""
    sums = np.zeros((design.piece.max() + 1, 2))
    np.add.at(sums, design.piece, pred)
    counts = np.bincount(design.piece, minlength=sums.shape[0])[:, None]
    means: np.ndarray = (sums / counts)[pieces]
    return means


def _run_time(design: _Design, model: dict[str, np.ndarray], pieces: np.ndarray) -> np.ndarray:
    """Piece predictions as the recognizer makes them: each bar read out and clipped, then averaged."""
    rows = np.isin(design.piece, pieces)
    pred = np.zeros((design.piece.size, 2))
    pred[rows] = _predict(model, design.bar_x[rows])
    return _piece_means(design, pred, pieces)


def _calibration(scores: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per target, the factor s > 0 minimizing the weighted squared error of ``s * scores`` to ``y``.

    ``scores`` are out-of-fold piece scores; ridge on ±1 targets shrinks them towards 0, and this
    stretches them back so a piece's output reads as its expected sign (keeping every sign).
    """
    s = (w[:, None] * y * scores).sum(axis=0) / np.maximum((w[:, None] * scores**2).sum(axis=0), 1e-12)
    out: np.ndarray = np.maximum(s, 1e-3)
    return out


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
            clear = np.abs(tm[:, j]) >= CLEAR_CURVE
            if clear.any():
                hits = np.sign(pm[clear, j]) == np.sign(tm[clear, j])
                entry[f"{name}_sign_acc_clear_curve"] = float(hits.mean())
            entry[f"{name}_clear_pieces"] = int(clear.sum())
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


@dataclass(frozen=True)
class _Problem:
    """What the cross-validation shares: the design, the cache's bookkeeping (sources, names,
    groups) and VGMIDI's ``labels.csv`` labels."""

    design: _Design
    data: dict[str, np.ndarray]
    csv_labels: dict[str, tuple[int, int]]

    def folds(self, pieces: np.ndarray, salt: str) -> np.ndarray:
        """The fold of each of ``pieces``: whole groups go to one fold, as ``salt`` hashes them."""
        return np.asarray([_fold(str(self.data["groups"][p]), salt) for p in pieces])

    def scores(self, pieces: np.ndarray, means: np.ndarray) -> dict[str, Any]:
        """:func:`_scores` of predicted piece means ``means`` (rows match ``pieces``)."""
        return _scores(self.data, pieces, means, self.design.truth[pieces], self.csv_labels)


def _out_of_fold(problem: _Problem, pieces: np.ndarray, salt: str, alphas: Sequence[float]) -> np.ndarray:
    """Grouped k-fold CV over ``pieces``: each piece's unclipped score, fitted without its fold.

    Returns float64[alphas, pieces, 2].
    """
    design = problem.design
    folds = problem.folds(pieces, salt)
    out = np.zeros((len(alphas), pieces.size, 2))
    for k in range(FOLDS):
        held = folds == k
        if held.any():
            for a, model in enumerate(_fit_path(design, pieces[~held], alphas)):
                out[a, held] = _score(model, design.x[pieces[held]])
    return out


def _select(
    problem: _Problem, pieces: np.ndarray, salt: str
) -> tuple[float, np.ndarray, list[dict[str, Any]]]:
    """The alpha with the best :func:`_criterion` in grouped CV over ``pieces`` (only), the read-out
    scale fitted on that alpha's out-of-fold scores, and the table of every alpha's CV scores."""
    oof = _out_of_fold(problem, pieces, salt, ALPHAS)
    table = []
    for alpha, pred in zip(ALPHAS, oof, strict=True):
        s = problem.scores(pieces, pred)
        table.append({"alpha": alpha, "score": _criterion(s), **s})
    best = int(np.argmax([row["score"] for row in table]))
    design = problem.design
    return ALPHAS[best], _calibration(oof[best], design.sign[pieces], design.w[pieces]), table


def _fit(
    problem: _Problem, pieces: np.ndarray, salt: str
) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """The shipped recipe on ``pieces`` alone: select alpha and scale by CV, fit, rescale."""
    alpha, scale, table = _select(problem, pieces, salt)
    model = _rescaled(_fit_path(problem.design, pieces, [alpha])[0], scale)
    return {**model, "scale": scale}, table


def _cross_validate(
    problem: _Problem, pieces: np.ndarray, salt: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Grouped k-fold CV of the whole recipe over ``pieces``: alpha and scale are chosen by an
    inner grouped CV inside each training fold, so no held-out fold is ever looked at.

    Returns the scores (pieces predicted as at run time) and each fold's alpha and scale.
    """
    folds = problem.folds(pieces, salt)
    means = np.zeros((pieces.size, 2))
    chosen = []
    for k in range(FOLDS):
        held = folds == k
        model, _ = _fit(problem, pieces[~held], "inner")
        means[held] = _run_time(problem.design, model, pieces[held])
        chosen.append({"alpha": float(model["alpha"]), "scale": [round(float(s), 4) for s in model["scale"]]})
    return problem.scores(pieces, means), chosen


def _over_splits(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean and SD over splits of every accuracy in :func:`_scores` results."""
    out: dict[str, Any] = {"splits": len(rows)}
    for source in ("vgmidi", "emopia"):
        keys = [k for k, v in rows[0].get(source, {}).items() if k.endswith("acc") or "_acc_" in k]
        out[source] = {
            k: {
                "mean": round(float(np.mean([r[source][k] for r in rows])), 4),
                "sd": round(float(np.std([r[source][k] for r in rows])), 4),
            }
            for k in keys
            if isinstance(rows[0][source][k], float)
        }
    return out


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
    parser.add_argument(
        "--splits", type=int, default=10, help="grouped splits the nested CV is repeated over (default 10)"
    )
    args = parser.parse_args(argv)
    t0 = time.time()
    data = extract(args.corpus, args.data, args.cache, args.batch, args.threads)
    design = _Design(data, BLOCKS, NOTE_SCALE, CURVE_GAIN)
    problem = _Problem(design, data, _vgmidi_labels(args.data))
    train = np.flatnonzero(data["splits"] == TRAIN)
    held = np.flatnonzero(data["splits"] != TRAIN)
    everything = np.arange(data["bar_offsets"].size - 1)

    # Model selection: grouped CV on the train split only.
    model, selection = _fit(problem, train, "sel")
    for row in selection:
        _log(f"cv-train alpha {row['alpha']:>7g}: score {row['score']:.3f} {json.dumps(row)}")
    alpha, scale = float(model["alpha"]), model["scale"]
    _log(f"chosen: alpha {alpha:g}, read-out scale (valence, arousal) {scale.round(3).tolist()}")
    held_scores = problem.scores(held, _run_time(design, model, held))
    train_scores = problem.scores(train, _run_time(design, model, train))
    run_time = _run_time(design, model, everything)
    percentiles = np.percentile(np.abs(run_time), [5, 50, 95], axis=0)
    clipping = {
        "bars_clipped_share": float((np.abs(_score(model, design.bar_x)) > 1).mean()),
        "pieces_sign_changed_by_clipping": int(
            (np.sign(run_time) != np.sign(_score(model, design.x))).any(axis=1).sum()
        ),
        "piece_abs_output_percentiles_5_50_95": [[round(float(v), 3) for v in p] for p in percentiles.T],
    }
    _log(f"run-time read-out on all labelled pieces: {json.dumps(clipping)}")
    cv_all, cv_chosen = _cross_validate(problem, everything, "all")
    splits = [_cross_validate(problem, everything, f"split{k}")[0] for k in range(args.splits)]
    repeated = _over_splits(splits)
    _log(f"held-out (val+test): {json.dumps(held_scores)}")
    _log(f"nested cv{FOLDS} over {args.splits} grouped splits: {json.dumps(repeated)}")
    _log(f"cv{FOLDS} all labelled (nested): {json.dumps(cv_all)}; per fold {json.dumps(cv_chosen)}")

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
            "blocks": list(BLOCKS),
            "known_blocks": list(FEATURE_BLOCKS),
            "encoder": "shipped composer (models/composer), cond fixed at (0, 0); per-bar mean of the "
            "top LSTM layer's h / c after each token of the bar (BOS in bar 0, EOS in the last)",
            "hidden_size": int(composer_manifest["hidden_size"]),
            "composer_onnx_sha256": str(data["composer_sha256"]),
            "composer_training_step": composer_manifest.get("training", {}).get("step"),
            "music_window": DEFAULT_WINDOW,
            "note_scale": NOTE_SCALE,
            "timing": "each bar's seconds from the file's tempo map (engine.tokens.midi_file.bar_seconds)",
        },
        "fit": {
            "model": "piece-level ridge per target (closed form) on standardized features: a piece's "
            "features are the mean of its bars'; being linear, the read-out applies to each bar alike "
            "(a piece's unclipped score is the mean of its bars'); at run time each bar's output is "
            "clipped to [-1, 1] and a piece is the mean of its bars",
            "alpha": alpha,
            "readout_scale": [float(s) for s in scale],
            "readout_scale_fit": "per target, the least-squares factor from the out-of-fold scores "
            "of the selection CV to the targets' signs, ±1 (weighted); coef and intercept are multiplied by "
            "it, so outputs read as the expected sign and no sign changes",
            "weighting": "each labelled source weighs the same in total, each piece the same within it",
            "targets": f"soft sign of the piece's label: VGMIDI clip({CURVE_GAIN:g} x its mean listener "
            "curve, -1, 1), EMOPIA the signs of its quadrant's valence / arousal (±1); the read-out "
            "scale is fitted to the signs",
            "clear_pieces": f"VGMIDI '_clear' accuracies count only pieces whose mean listener curve "
            f"is at least {CLEAR_CURVE:g} from 0",
            "train_pieces": int(train.size),
            "selection": f"grouped {FOLDS}-fold CV on the train split over alpha {ALPHAS}; score = "
            "mean(VGMIDI V/A sign acc (curve)) averaged with EMOPIA 4Q acc",
            "run_time_output": clipping,
        },
        "metrics": {
            "held_out_val_test": held_scores,
            f"cv{FOLDS}_all_labelled": {
                **cv_all,
                "protocol": f"grouped {FOLDS}-fold CV of the whole recipe (alpha and scale chosen by an "
                f"inner grouped {FOLDS}-fold CV inside each training fold); pieces predicted as at run time",
                "folds": cv_chosen,
            },
            f"cv{FOLDS}_all_labelled_over_splits": {
                **repeated,
                "protocol": f"the nested grouped {FOLDS}-fold CV above, repeated over differently "
                "salted group-to-fold assignments (salts split0, split1, ...): mean and SD over splits",
            },
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
