"""Build the training corpus: every MIDI file tokenized, with a (valence, arousal) per token.

One reproducible command (about a minute on 2 cores)::

    python -m models.corpus [--data ../shared/data] [--out data/corpus.npz] [--workers 2]

Sources (layout of the data directory, see ``shared/data/README.md``; a missing one is skipped
with a message):

============================  =====================================  ===================
source                        files                                  conditioning labels
============================  =====================================  ===================
``vgmidi_labelled``           ``vgmidi/labelled/midi/*.mid``         ``vgmidi_curves``
``vgmidi_unlabelled``         ``vgmidi/unlabelled/midi/*.mid``       ``features_ridge``
``emopia``                    ``emopia/midi/*.mid``                  ``emopia_quadrant``
``pop909``                    ``pop909/NNN/NNN.mid``                 ``features_ridge``
============================  =====================================  ===================

Labels are one (valence, arousal) pair in [-1, 1] per bar; every token gets its bar's pair.

* ``vgmidi_curves``: ``vgmidi/labelled/annotations.json`` holds each listener's curve, one value
  per measure; listeners are averaged per measure and bar ``b`` takes measure
  ``min(b, measures - 1)`` (a few files have one value more than ``measures``; extra values are
  ignored).
* ``emopia_quadrant``: the clip's quadrant from ``emopia/labels.csv`` as (±0.75, ±0.75)
  (Q1 +V+A, Q2 -V+A, Q3 -V-A, Q4 +V-A), constant over the clip.
* ``features_ridge``: :mod:`engine.recognizer.music_features` — a ridge regression from windowed bar
  features (density, loudness, register, articulation, Krumhansl–Kessler mode) fitted on the
  labelled bars of the *train* split. Its held-out metrics (val split, and 5-fold grouped
  cross-validation on train) are printed and stored in ``meta_json["label_fit"]``.

Splits are by piece, deterministic: ``sha1(group key)`` → 90 % train / 5 % val / 5 % test. The
group key joins files that are the same music: EMOPIA clips of one song (``Qn_<song id>_<k>``),
VGMIDI variants such as ``... Happy`` / ``... Sad`` (trailing mood word or number stripped, shared
by the labelled and unlabelled sets), POP909 by song number.

No transposition is stored: training augments on the fly with
:func:`engine.tokens.vocab.transpose_tokens`.

Output (``np.savez_compressed``), keys:

* ``tokens`` int16[N], all pieces concatenated, each ``BOS ... EOS``;
* ``cond`` float16[N, 2], (valence, arousal) of each token's bar;
* ``offsets`` int64[P + 1], piece ``i`` is ``tokens[offsets[i]:offsets[i + 1]]``;
* ``split`` int8[P] (``split_names``: train, val, test); ``source`` int8[P] (``source_names``);
  ``label_source`` int8[P] (``label_source_names``); ``piece_names`` str[P] (path relative to
  the data directory);
* ``vocab_version`` str (:data:`engine.tokens.vocab.VOCAB_VERSION`);
* ``label_coef`` float64[2, F], ``label_intercept`` float64[2], ``feature_mean`` /
  ``feature_std`` float64[F], ``feature_names`` str[F]: the fitted label model;
* ``meta_json`` str: counts per source and split, token counts, label-fit metrics, label model.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import multiprocessing
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from engine.recognizer.music_features import (
    DEFAULT_WINDOW,
    FEATURE_NAMES,
    TARGET_NAMES,
    RidgeLabelModel,
    bar_features,
    fit_ridge,
)
from engine.tokens import vocab as V
from engine.tokens.codec import encode_notes, quantize
from engine.tokens.midi_file import MidiFileError, read_midi

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR: Final = REPO_ROOT.parent / "shared" / "data"
DEFAULT_OUT: Final = REPO_ROOT / "data" / "corpus.npz"

SOURCE_NAMES: Final = ("vgmidi_labelled", "vgmidi_unlabelled", "emopia", "pop909")
VGMIDI_LABELLED, VGMIDI_UNLABELLED, EMOPIA, POP909 = range(4)
LABEL_SOURCE_NAMES: Final = ("vgmidi_curves", "emopia_quadrant", "features_ridge")
LABEL_CURVES, LABEL_QUADRANT, LABEL_RIDGE = range(3)
SPLIT_NAMES: Final = ("train", "val", "test")
TRAIN, VAL, TEST = range(3)
SPLIT_FRACTIONS: Final = (0.90, 0.05, 0.05)

#: |valence| = |arousal| given to an EMOPIA clip by its quadrant.
EMOPIA_MAGNITUDE: Final = 0.75
#: Quadrant → (sign of valence, sign of arousal).
QUADRANT_SIGNS: Final = {1: (1.0, 1.0), 2: (-1.0, 1.0), 3: (-1.0, -1.0), 4: (1.0, -1.0)}
#: Ridge penalty of the label model (standardized features; ~10 rows' worth of evidence).
RIDGE_ALPHA: Final = 10.0
CV_FOLDS: Final = 5
PROGRESS_EVERY: Final = 100


@dataclass(frozen=True)
class PieceFile:
    """One MIDI file of the corpus, before encoding.

    Attributes:
        source: index into SOURCE_NAMES.
        name: path relative to the data directory (unique; stored as the piece name).
        path: absolute path of the file.
        group: split key; files sharing it are the same music and share a split.
        split: index into SPLIT_NAMES (from ``group``).
    """

    source: int
    name: str
    path: Path
    group: str
    split: int


@dataclass
class Corpus:
    """The training corpus (see the module docstring for the meaning of each field).

    Attributes:
        tokens: int16[N].
        cond: float16[N, 2], (valence, arousal) per token, in [-1, 1].
        offsets: int64[P + 1].
        split: int8[P], index into ``split_names``.
        source: int8[P], index into ``source_names``.
        label_source: int8[P], index into ``label_source_names``.
        piece_names: str[P].
        source_names, label_source_names, split_names: str arrays.
        vocab_version: token vocabulary the tokens use.
        meta: counts, metrics and the label model (json-able dict).
        label_model: the fitted feature → (valence, arousal) model, None when none was fitted.
    """

    tokens: np.ndarray
    cond: np.ndarray
    offsets: np.ndarray
    split: np.ndarray
    source: np.ndarray
    label_source: np.ndarray
    piece_names: np.ndarray
    source_names: np.ndarray = field(default_factory=lambda: np.asarray(SOURCE_NAMES))
    label_source_names: np.ndarray = field(default_factory=lambda: np.asarray(LABEL_SOURCE_NAMES))
    split_names: np.ndarray = field(default_factory=lambda: np.asarray(SPLIT_NAMES))
    vocab_version: str = V.VOCAB_VERSION
    meta: dict[str, Any] = field(default_factory=dict)
    label_model: RidgeLabelModel | None = None

    @property
    def num_pieces(self) -> int:
        return int(self.offsets.shape[0] - 1)

    def piece(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Tokens (int16[T]) and conditioning (float16[T, 2]) of piece ``i`` (views, not copies).

        Raises:
            IndexError: ``i`` is not a piece index.
        """
        if not -self.num_pieces <= i < self.num_pieces:
            raise IndexError(f"piece index {i} out of range for {self.num_pieces} pieces")
        i %= self.num_pieces
        lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
        return self.tokens[lo:hi], self.cond[lo:hi]

    def pieces_in(self, split: str) -> np.ndarray:
        """Indices (int64) of the pieces in split ``split`` ("train", "val" or "test").

        Raises:
            ValueError: unknown split name.
        """
        names = [str(s) for s in self.split_names]
        if split not in names:
            raise ValueError(f"split must be one of {names}, got {split!r}")
        return np.flatnonzero(self.split == names.index(split))


# --------------------------------------------------------------------------------------- splits


def split_of(group: str) -> int:
    """Deterministic split of a group key: sha1 → uniform in [0, 1) → train / val / test."""
    u = int(hashlib.sha1(group.encode("utf-8")).hexdigest()[:12], 16) / 16**12
    if u < SPLIT_FRACTIONS[0]:
        return TRAIN
    return VAL if u < SPLIT_FRACTIONS[0] + SPLIT_FRACTIONS[1] else TEST


def _cv_fold(group: str) -> int:
    """Cross-validation fold of a group key (independent of the split hash)."""
    return int(hashlib.sha1(f"cv:{group}".encode()).hexdigest()[:12], 16) % CV_FOLDS


_VGMIDI_VARIANT = re.compile(r"\s+(happy|sad|\d+)$", re.IGNORECASE)


def vgmidi_group(file_name: str) -> str:
    """Group key of a VGMIDI file: its stem without a trailing mood word or number.

    ``"... Boggys Igloo Happy.mid"`` and ``"... Boggys Igloo Sad.mid"`` share ``vgmidi:... Boggys
    Igloo`` (the same piece arranged in two moods), so they share a split.
    """
    return "vgmidi:" + _VGMIDI_VARIANT.sub("", Path(file_name).stem).lower()


def emopia_group(file_name: str) -> str:
    """Group key of an EMOPIA clip ``Q<n>_<song id>_<clip>.mid`` (song ids may hold ``_``).

    Raises:
        ValueError: the name does not follow that pattern.
    """
    match = re.fullmatch(r"Q[1-4]_(.+)_\d+", Path(file_name).stem)
    if match is None:
        raise ValueError(f"EMOPIA clip name {file_name!r} is not Q<n>_<song id>_<clip>.mid")
    return "emopia:" + match.group(1)


# ------------------------------------------------------------------------------------- discovery


@dataclass
class _Sources:
    files: list[PieceFile]
    annotations: dict[str, dict[str, Any]]  # VGMIDI file name → curves
    quadrants: dict[str, int]  # EMOPIA file name → quadrant 1..4


def discover(data_dir: Path, log: Callable[[str], None]) -> _Sources:
    """List the corpus files under ``data_dir`` with their labels (missing sources skipped).

    Raises:
        FileNotFoundError: ``data_dir`` does not exist.
        ValueError: an EMOPIA label is malformed.
    """
    if not data_dir.is_dir():
        raise FileNotFoundError(f"data directory {data_dir} does not exist")
    files: list[PieceFile] = []
    annotations: dict[str, dict[str, Any]] = {}
    quadrants: dict[str, int] = {}

    def add(source: int, path: Path, group: str) -> None:
        name = path.relative_to(data_dir).as_posix()
        files.append(PieceFile(source, name, path, group, split_of(group)))

    labelled = data_dir / "vgmidi" / "labelled"
    ann_path = labelled / "annotations.json"
    if (labelled / "midi").is_dir() and ann_path.is_file():
        with ann_path.open(encoding="utf-8") as f:
            annotations = json.load(f)
        unmatched = 0
        for path in sorted((labelled / "midi").glob("*.mid")):
            if path.name in annotations:
                add(VGMIDI_LABELLED, path, vgmidi_group(path.name))
            else:
                unmatched += 1
        if unmatched:
            log(f"warning: {unmatched} vgmidi labelled files have no annotations entry; skipped")
    else:
        log(f"skipping vgmidi_labelled: {labelled}/midi or annotations.json missing")

    unlabelled = data_dir / "vgmidi" / "unlabelled" / "midi"
    if unlabelled.is_dir():
        for path in sorted(unlabelled.glob("*.mid")):
            add(VGMIDI_UNLABELLED, path, vgmidi_group(path.name))
    else:
        log(f"skipping vgmidi_unlabelled: {unlabelled} missing")

    emopia = data_dir / "emopia"
    if (emopia / "midi").is_dir() and (emopia / "labels.csv").is_file():
        with (emopia / "labels.csv").open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                quadrant = int(row["quadrant"])
                if quadrant not in QUADRANT_SIGNS:
                    raise ValueError(f"emopia/labels.csv: quadrant {quadrant} for {row['file']} not in 1..4")
                quadrants[row["file"]] = quadrant
        unmatched = 0
        for path in sorted((emopia / "midi").glob("*.mid")):
            if path.name in quadrants:
                add(EMOPIA, path, emopia_group(path.name))
            else:
                unmatched += 1
        if unmatched:
            log(f"warning: {unmatched} emopia clips have no labels.csv row; skipped")
    else:
        log(f"skipping emopia: {emopia}/midi or labels.csv missing")

    pop909 = data_dir / "pop909"
    if pop909.is_dir():
        for song in sorted(p for p in pop909.iterdir() if p.is_dir()):
            path = song / f"{song.name}.mid"
            if path.is_file():
                add(POP909, path, f"pop909:{song.name}")
    else:
        log(f"skipping pop909: {pop909} missing")
    return _Sources(files, annotations, quadrants)


# -------------------------------------------------------------------------------------- encoding


@dataclass(frozen=True)
class _EncodedPiece:
    tokens: np.ndarray  # int16[T]
    bar_index: np.ndarray  # int32[T]
    bar_beats: list[int]
    features: np.ndarray  # float64[B, F]


def _encode_one(path: str) -> _EncodedPiece | str:
    """Encode one file and compute its bar features; a MidiFileError becomes its message."""
    try:
        notes, bars = quantize(read_midi(path))
    except MidiFileError as exc:
        return str(exc)
    encoded = encode_notes(notes, bars)
    features = bar_features(notes, bars, window=DEFAULT_WINDOW)
    return _EncodedPiece(encoded.tokens, encoded.bar_index, encoded.bar_beats, features)


def _encode_all(paths: Sequence[str], workers: int) -> Iterator[_EncodedPiece | str]:
    if workers <= 1:
        yield from map(_encode_one, paths)
        return
    with multiprocessing.Pool(workers) as pool:
        yield from pool.imap(_encode_one, paths, chunksize=4)


# ---------------------------------------------------------------------------------------- labels


def curve_targets(entry: dict[str, Any], num_bars: int) -> np.ndarray:
    """Per-bar (valence, arousal) from a VGMIDI annotations entry, float64[num_bars, 2].

    Listeners are averaged per measure (curves longer than ``measures`` are cut, shorter ones
    count where they have values); bar ``b`` takes measure ``min(b, measures - 1)``.

    Raises:
        ValueError: the entry has no measures or no listener values for some measure.
    """
    measures = int(entry["measures"])
    if measures < 1:
        raise ValueError("annotations entry has no measures")
    out = np.zeros((measures, len(TARGET_NAMES)))
    for j, target in enumerate(TARGET_NAMES):
        total = np.zeros(measures)
        count = np.zeros(measures)
        for curve in entry[target]:
            values = np.asarray(curve[:measures], dtype=np.float64)
            total[: values.size] += values
            count[: values.size] += 1
        if (count == 0).any():
            raise ValueError(f"annotations entry has measures without any {target} value")
        out[:, j] = total / count
    return out[np.minimum(np.arange(num_bars), measures - 1)]


def quadrant_targets(quadrant: int, num_bars: int) -> np.ndarray:
    """Constant per-bar (valence, arousal) of an EMOPIA quadrant, float64[num_bars, 2]."""
    signs = np.asarray(QUADRANT_SIGNS[quadrant])
    return np.tile(EMOPIA_MAGNITUDE * signs, (num_bars, 1))


def _pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    if a.size < 2 or a.std() < 1e-12 or b.std() < 1e-12:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def label_metrics(
    predictions: Sequence[np.ndarray], targets: Sequence[np.ndarray], constant: np.ndarray
) -> dict[str, Any]:
    """Held-out quality of predicted per-bar labels, for valence and arousal separately.

    Args:
        predictions: float[B_i, 2] per piece, the model's (valence, arousal) per bar.
        targets: float[B_i, 2] per piece, the labels.
        constant: float[2], the prediction of a feature-less model (the training mean), for
            the baseline sign accuracy.

    Returns:
        Per target: ``pieces``, ``bars``; ``sign_accuracy`` — fraction of pieces whose mean
        predicted value has the sign of their mean label (pieces with a mean label of exactly 0
        left out); ``baseline_sign_accuracy`` — the same for the constant prediction;
        ``bar_correlation`` — Pearson correlation over all bars pooled; ``within_piece_correlation``
        — mean over pieces of the within-piece correlation (pieces whose label and prediction
        both vary, over >= 4 bars), None when no piece qualifies.
    """
    out: dict[str, Any] = {}
    for j, target in enumerate(TARGET_NAMES):
        mean_pred = np.asarray([p[:, j].mean() for p in predictions])
        mean_true = np.asarray([t[:, j].mean() for t in targets])
        signed = mean_true != 0
        within = [
            c
            for p, t in zip(predictions, targets, strict=True)
            if p.shape[0] >= 4 and (c := _pearson(p[:, j], t[:, j])) is not None
        ]
        pooled_p = np.concatenate([p[:, j] for p in predictions]) if predictions else np.zeros(0)
        pooled_t = np.concatenate([t[:, j] for t in targets]) if targets else np.zeros(0)
        out[target] = {
            "pieces": len(predictions),
            "bars": int(pooled_t.size),
            "sign_accuracy": float((np.sign(mean_pred) == np.sign(mean_true))[signed].mean())
            if signed.any()
            else None,
            "baseline_sign_accuracy": float((np.sign(constant[j]) == np.sign(mean_true))[signed].mean())
            if signed.any()
            else None,
            "bar_correlation": _pearson(pooled_p, pooled_t),
            "within_piece_correlation": float(np.mean(within)) if within else None,
        }
    return out


@dataclass
class _Labelled:
    """Labelled pieces: features, targets, group key, split, source (one entry per piece)."""

    features: list[np.ndarray] = field(default_factory=list)
    targets: list[np.ndarray] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    splits: list[int] = field(default_factory=list)
    sources: list[int] = field(default_factory=list)

    def select(self, keep: Sequence[bool]) -> _Labelled:
        chosen = [i for i, k in enumerate(keep) if k]
        return _Labelled(
            [self.features[i] for i in chosen],
            [self.targets[i] for i in chosen],
            [self.groups[i] for i in chosen],
            [self.splits[i] for i in chosen],
            [self.sources[i] for i in chosen],
        )


def _fit(data: _Labelled) -> RidgeLabelModel:
    """Ridge fit on all bars of ``data``, each labelled source weighing the same in total."""
    x = np.concatenate(data.features)
    y = np.concatenate(data.targets)
    src = np.concatenate([np.full(f.shape[0], s) for f, s in zip(data.features, data.sources, strict=True)])
    weights = np.zeros(src.size)
    for s in np.unique(src):
        weights[src == s] = 1.0 / (src == s).sum()
    return fit_ridge(x, y, alpha=RIDGE_ALPHA, sample_weight=weights, window=DEFAULT_WINDOW)


def _evaluate(model: RidgeLabelModel, data: _Labelled) -> dict[str, Any]:
    """Metrics overall and per labelled source (label source names as keys)."""
    result: dict[str, Any] = {}
    preds = [model.predict(f) for f in data.features]
    result["all"] = label_metrics(preds, data.targets, model.intercept)
    for s in sorted(set(data.sources)):
        keep = [x == s for x in data.sources]
        sub = data.select(keep)
        result[_LABEL_OF_SOURCE[s]] = label_metrics(
            [p for p, k in zip(preds, keep, strict=True) if k], sub.targets, model.intercept
        )
    return result


_LABEL_OF_SOURCE: Final = {VGMIDI_LABELLED: "vgmidi_curves", EMOPIA: "emopia_quadrant"}


def fit_label_model(
    data: _Labelled, log: Callable[[str], None]
) -> tuple[RidgeLabelModel | None, dict[str, Any]]:
    """Fit the label model on the train pieces; measure it on val and by grouped CV on train."""
    train = data.select([s == TRAIN for s in data.splits])
    if not train.features:
        log("warning: no labelled training pieces; unlabelled pieces get (0, 0)")
        return None, {"note": "no labelled training pieces; no label model"}
    model = _fit(train)
    metrics: dict[str, Any] = {
        "train_pieces": len(train.features),
        "train_bars": int(sum(f.shape[0] for f in train.features)),
        "alpha": RIDGE_ALPHA,
        "source_weighting": "each labelled source weighs the same in total",
    }
    val = data.select([s == VAL for s in data.splits])
    metrics["val"] = _evaluate(model, val) if val.features else None
    folds = [_cv_fold(g) for g in train.groups]
    cv_preds: list[np.ndarray] = [np.zeros(0)] * len(train.features)
    usable = True
    for k in range(CV_FOLDS):
        fit_part = train.select([f != k for f in folds])
        if not fit_part.features:
            usable = False
            break
        fold_model = _fit(fit_part)
        for i, f in enumerate(folds):
            if f == k:
                cv_preds[i] = fold_model.predict(train.features[i])
    if usable and len(set(folds)) > 1:
        cv: dict[str, Any] = {"all": label_metrics(cv_preds, train.targets, model.intercept)}
        for s in sorted(set(train.sources)):
            keep = [x == s for x in train.sources]
            cv[_LABEL_OF_SOURCE[s]] = label_metrics(
                [p for p, k in zip(cv_preds, keep, strict=True) if k],
                [t for t, k in zip(train.targets, keep, strict=True) if k],
                model.intercept,
            )
        metrics[f"cv{CV_FOLDS}_train"] = cv
    else:
        metrics[f"cv{CV_FOLDS}_train"] = None
    return model, metrics


# ------------------------------------------------------------------------------------------ build


def _stderr(message: str) -> None:
    print(f"[corpus] {message}", file=sys.stderr, flush=True)


def build_corpus(
    data_dir: str | Path = DEFAULT_DATA_DIR,
    *,
    workers: int = 2,
    log: Callable[[str], None] = _stderr,
) -> Corpus:
    """Encode every source under ``data_dir``, label every bar, and assemble the corpus.

    Args:
        data_dir: the data directory (layout in the module docstring).
        workers: encoding processes (1: encode in this process).
        log: receives progress and warning lines.

    Raises:
        FileNotFoundError: ``data_dir`` does not exist.
        ValueError: no file could be encoded, or a label file is malformed.
    """
    data_dir = Path(data_dir).resolve()
    start = time.perf_counter()
    sources = discover(data_dir, log)
    files = sources.files
    log(f"{len(files)} files under {data_dir}; encoding with {workers} worker(s)")

    kept: list[tuple[PieceFile, _EncodedPiece]] = []
    bad = 0
    tokens_so_far = 0
    for n, (piece, result) in enumerate(
        zip(files, _encode_all([str(f.path) for f in files], workers), strict=True), start=1
    ):
        if isinstance(result, str):
            bad += 1
            log(f"warning: skipping {piece.name}: {result}")
        else:
            kept.append((piece, result))
            tokens_so_far += result.tokens.size
        if n % PROGRESS_EVERY == 0 or n == len(files):
            log(f"{n}/{len(files)} files, {tokens_so_far:,} tokens, {time.perf_counter() - start:.1f} s")
    if bad:
        log(f"warning: {bad} unreadable file(s) skipped")
    if not kept:
        raise ValueError(f"no MIDI file under {data_dir} could be encoded")

    # Labels of the labelled pieces (per bar), then the ridge model for the rest.
    bar_labels: list[np.ndarray | None] = []
    label_source: list[int] = []
    labelled = _Labelled()
    for piece, enc in kept:
        num_bars = len(enc.bar_beats)
        targets: np.ndarray | None
        if piece.source == VGMIDI_LABELLED:
            targets = curve_targets(sources.annotations[piece.path.name], num_bars)
            label_source.append(LABEL_CURVES)
        elif piece.source == EMOPIA:
            targets = quadrant_targets(sources.quadrants[piece.path.name], num_bars)
            label_source.append(LABEL_QUADRANT)
        else:
            targets = None
            label_source.append(LABEL_RIDGE)
        bar_labels.append(targets)
        if targets is not None:
            labelled.features.append(enc.features)
            labelled.targets.append(targets)
            labelled.groups.append(piece.group)
            labelled.splits.append(piece.split)
            labelled.sources.append(piece.source)
    model, fit_metrics = fit_label_model(labelled, log)
    for i, (_, enc) in enumerate(kept):
        if bar_labels[i] is None:
            bar_labels[i] = model.predict(enc.features) if model else np.zeros((len(enc.bar_beats), 2))

    lengths = np.asarray([enc.tokens.size for _, enc in kept], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    tokens = np.concatenate([enc.tokens for _, enc in kept]).astype(np.int16)
    filled = [labels for labels in bar_labels if labels is not None]
    assert len(filled) == len(kept)
    cond = np.concatenate(
        [labels[enc.bar_index] for labels, (_, enc) in zip(filled, kept, strict=True)]
    ).astype(np.float16)
    corpus = Corpus(
        tokens=tokens,
        cond=cond,
        offsets=offsets,
        split=np.asarray([p.split for p, _ in kept], dtype=np.int8),
        source=np.asarray([p.source for p, _ in kept], dtype=np.int8),
        label_source=np.asarray(label_source, dtype=np.int8),
        piece_names=np.asarray([p.name for p, _ in kept]),
        label_model=model,
    )
    corpus.meta = _meta(corpus, data_dir, bad, fit_metrics, time.perf_counter() - start)
    _report(corpus.meta, log)
    return corpus


def _meta(
    corpus: Corpus, data_dir: Path, bad: int, fit_metrics: dict[str, Any], seconds: float
) -> dict[str, Any]:
    lengths = np.diff(corpus.offsets)
    counts: dict[str, Any] = {}
    for s, source in enumerate(SOURCE_NAMES):
        counts[source] = {
            split: {
                "pieces": int(((corpus.source == s) & (corpus.split == k)).sum()),
                "tokens": int(lengths[(corpus.source == s) & (corpus.split == k)].sum()),
            }
            for k, split in enumerate(SPLIT_NAMES)
        }
    return {
        "vocab_version": V.VOCAB_VERSION,
        "data_dir": str(data_dir),
        "pieces": corpus.num_pieces,
        "tokens": int(corpus.tokens.size),
        "skipped_files": bad,
        "build_seconds": round(seconds, 1),
        "counts": counts,
        "split_fractions": list(SPLIT_FRACTIONS),
        "split_rule": "sha1(group key) by piece/song; see models/corpus.py",
        "emopia_magnitude": EMOPIA_MAGNITUDE,
        "label_fit": fit_metrics,
        "label_model": corpus.label_model.to_dict() if corpus.label_model else None,
    }


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _report(meta: dict[str, Any], log: Callable[[str], None]) -> None:
    log(f"{meta['pieces']} pieces, {meta['tokens']:,} tokens, {meta['skipped_files']} skipped")
    for source, by_split in meta["counts"].items():
        parts = ", ".join(f"{k} {v['pieces']}/{v['tokens']:,}" for k, v in by_split.items())
        log(f"  {source}: pieces/tokens {parts}")
    fit = meta["label_fit"]
    for part in ("val", f"cv{CV_FOLDS}_train"):
        results = fit.get(part)
        if not results:
            continue
        for group, by_target in results.items():
            for target, m in by_target.items():
                log(
                    f"  label fit [{part}, {group}] {target}: {m['pieces']} pieces, "
                    f"sign acc {_fmt(m['sign_accuracy'])} (constant {_fmt(m['baseline_sign_accuracy'])}), "
                    f"bar r {_fmt(m['bar_correlation'])}, "
                    f"within-piece r {_fmt(m['within_piece_correlation'])}"
                )


# ----------------------------------------------------------------------------------------- files


def save_corpus(corpus: Corpus, path: str | Path) -> None:
    """Write ``corpus`` to ``path`` with ``np.savez_compressed`` (parent folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = corpus.label_model
    num_features = len(FEATURE_NAMES)
    arrays: dict[str, np.ndarray] = {
        "tokens": corpus.tokens.astype(np.int16),
        "cond": corpus.cond.astype(np.float16),
        "offsets": corpus.offsets.astype(np.int64),
        "split": corpus.split.astype(np.int8),
        "source": corpus.source.astype(np.int8),
        "label_source": corpus.label_source.astype(np.int8),
        "piece_names": np.asarray(corpus.piece_names, dtype=str),
        "source_names": np.asarray(corpus.source_names, dtype=str),
        "label_source_names": np.asarray(corpus.label_source_names, dtype=str),
        "split_names": np.asarray(corpus.split_names, dtype=str),
        "vocab_version": np.asarray(corpus.vocab_version),
        "meta_json": np.asarray(json.dumps(corpus.meta)),
        "feature_names": np.asarray(FEATURE_NAMES),
        "label_coef": model.coef if model else np.zeros((2, num_features)),
        "label_intercept": model.intercept if model else np.zeros(2),
        "feature_mean": model.mean if model else np.zeros(num_features),
        "feature_std": model.std if model else np.ones(num_features),
    }
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)  # type: ignore[arg-type]
    tmp.replace(path)


def load_corpus(path: str | Path) -> Corpus:
    """Read a corpus written by :func:`save_corpus`.

    Raises:
        ValueError: the corpus was built with another token vocabulary than
            :data:`engine.tokens.vocab.VOCAB_VERSION` (rebuild it), or its arrays are inconsistent.
        FileNotFoundError: ``path`` does not exist.
    """
    with np.load(path, allow_pickle=False) as z:
        version = str(z["vocab_version"])
        if version != V.VOCAB_VERSION:
            raise ValueError(
                f"{path} was built with vocabulary {version!r} but engine.tokens.vocab is "
                f"{V.VOCAB_VERSION!r}; rebuild it with `python -m models.corpus`"
            )
        meta = json.loads(str(z["meta_json"]))
        model_dict = meta.get("label_model")
        corpus = Corpus(
            tokens=z["tokens"],
            cond=z["cond"],
            offsets=z["offsets"],
            split=z["split"],
            source=z["source"],
            label_source=z["label_source"],
            piece_names=z["piece_names"],
            source_names=z["source_names"],
            label_source_names=z["label_source_names"],
            split_names=z["split_names"] if "split_names" in z.files else np.asarray(SPLIT_NAMES),
            vocab_version=version,
            meta=meta,
            label_model=RidgeLabelModel.from_dict(model_dict) if model_dict else None,
        )
    p = corpus.num_pieces
    if (
        corpus.offsets[0] != 0
        or corpus.offsets[-1] != corpus.tokens.size
        or (np.diff(corpus.offsets) <= 0).any()
        or corpus.cond.shape != (corpus.tokens.size, 2)
        or not corpus.split.shape
        == corpus.source.shape
        == corpus.label_source.shape
        == corpus.piece_names.shape
        == (p,)
    ):
        raise ValueError(f"{path}: inconsistent corpus arrays (offsets, cond or per-piece arrays)")
    return corpus


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: build the corpus and write it; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m models.corpus", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA_DIR, help=f"data directory (default {DEFAULT_DATA_DIR})"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output .npz (default {DEFAULT_OUT})")
    parser.add_argument("--workers", type=int, default=2, help="encoding processes (default 2)")
    args = parser.parse_args(argv)
    corpus = build_corpus(args.data, workers=args.workers)
    save_corpus(corpus, args.out)
    size_mb = args.out.stat().st_size / 1e6
    _stderr(f"wrote {args.out} ({size_mb:.1f} MB) in {corpus.meta['build_seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
