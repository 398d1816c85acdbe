"""Music emotion recognition: valence and arousal scores in [-1, 1] per bar and per piece (torch-free).

The shipped composer (:mod:`engine.model.artifact`) serves as a frozen encoder: each piece's
tokens are streamed through its ONNX step graph with the conditioning fixed at (0, 0) (so the
features never see a label), and the top LSTM layer's hidden and cell states after each token
are averaged per bar. They are joined with bar features computed from the notes: musical
(:mod:`engine.recognizer.music_features`), timing in seconds and harmony (:mod:`engine.recognizer.features`).
Timing needs each bar's length in seconds: a file's tempo map (:meth:`EmotionRecognizer.classify_file`),
a given tempo, or 120 BPM. A linear (ridge) read-out, fitted by ``python -m models.train_recognizer``
and shipped in ``models/recognizer/`` (``recognizer.npz`` + ``manifest.json``), maps each bar's
features to (valence, arousal), clipped to [-1, 1]; a piece's values are the mean over its bars.
The shipped read-out is fitted on whole pieces (mean bar features) against soft signs of their
labels (EMOPIA: ±1; VGMIDI: the mean listener curve ×4, clipped) and scaled so a piece's value
reads as its expected sign: the sign is the prediction and the size how sure it is (typical
pieces: |valence| ~0.4, |arousal| ~0.7), not a calibrated
valence or arousal level. Being linear, it scores single bars alike; a bar's value is noisier
than a piece's. Quadrants follow the signs: 1 +V+A, 2 −V+A, 3 −V−A, 4 +V−A.

:func:`extract_bar_features` runs many pieces at once (padded batches of similar length), which
is what training and bulk evaluation use.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

import models
from engine.model.artifact import Manifest, ModelArtifact, load_artifact
from engine.recognizer.features import (
    DEFAULT_TEMPO_BPM,
    HARMONY_FEATURE_NAMES,
    TIME_FEATURE_NAMES,
    bar_seconds_at,
    harmony_features,
    time_features,
)
from engine.recognizer.music_features import FEATURE_NAMES as MUSIC_FEATURE_NAMES
from engine.recognizer.music_features import bar_features
from engine.tokens import midi_file
from engine.tokens import vocab as V
from engine.tokens.codec import encode_notes, quantize

MANIFEST_NAME: Final = "manifest.json"
WEIGHTS_NAME: Final = "recognizer.npz"
KIND: Final = "affetto-emotion-recognizer"
#: Feature blocks a recognizer may use, in the order they are concatenated.
FEATURE_BLOCKS: Final = ("h", "c", "music", "time", "harmony")
#: Blocks computed from the notes (the others are the composer's states), and their widths.
NOTE_BLOCK_WIDTHS: Final = {
    "music": len(MUSIC_FEATURE_NAMES),
    "time": len(TIME_FEATURE_NAMES),
    "harmony": len(HARMONY_FEATURE_NAMES),
}
DEFAULT_BATCH: Final = 64


def default_recognizer_dir() -> Path:
    """The shipped recognizer directory, ``<models package>/recognizer``."""
    return Path(models.__file__).resolve().parent / "recognizer"


def quadrant(valence: float, arousal: float) -> int:
    """Russell quadrant of a (valence, arousal) pair: 1 +V+A, 2 −V+A, 3 −V−A, 4 +V−A (0 counts as +)."""
    if arousal >= 0:
        return 1 if valence >= 0 else 2
    return 4 if valence >= 0 else 3


@dataclass(frozen=True)
class BarEncoding:
    """Encoder states of one piece, averaged per bar.

    Attributes:
        h: float32[bars, H], mean top-layer hidden state over each bar's tokens.
        c: float32[bars, H], the same for the cell state.
    """

    h: np.ndarray
    c: np.ndarray


def encode_bars(
    artifact: ModelArtifact,
    pieces: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    batch: int = DEFAULT_BATCH,
    progress: Callable[[int, int], None] | None = None,
) -> list[BarEncoding]:
    """Stream many pieces through the composer step graph; per-bar mean of the top-layer states.

    Args:
        artifact: the loaded composer.
        pieces: (tokens int[T], bar_index int[T]) per piece, as :class:`engine.tokens.codec.Encoded` holds
            them (tokens start at BOS; bars numbered from 0, non-decreasing).
        batch: pieces stepped together; pieces are sorted by length so padding stays small.
        progress: called with (pieces done, pieces total) after each batch.

    Returns:
        One :class:`BarEncoding` per piece, in input order, with ``bar_index.max() + 1`` bars.

    Raises:
        ValueError: a piece is empty or its arrays differ in length, or ``batch`` < 1.
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    lengths = []
    for tokens, bars in pieces:
        if len(tokens) == 0 or len(tokens) != len(bars):
            raise ValueError("each piece needs tokens and bar_index of the same, non-zero length")
        lengths.append(len(tokens))
    num_layers = artifact.manifest.num_layers
    hidden = artifact.manifest.hidden_size
    order = np.argsort(np.asarray(lengths), kind="stable")
    results: list[BarEncoding | None] = [None] * len(pieces)
    done = 0
    for start in range(0, len(order), batch):
        chosen = order[start : start + batch]
        b = len(chosen)
        steps = max(lengths[i] for i in chosen)
        tok = np.full((b, steps), V.PAD, dtype=np.int64)
        row = np.zeros((b, steps), dtype=np.int64)  # row of the per-bar sums (last row: padding)
        bar_counts = [int(np.asarray(pieces[i][1]).max()) + 1 for i in chosen]
        offsets = np.concatenate([[0], np.cumsum(bar_counts)])
        dummy = int(offsets[-1])
        for k, i in enumerate(chosen):
            t, bi = pieces[i]
            n = len(t)
            tok[k, :n] = np.asarray(t, dtype=np.int64)
            row[k, :n] = offsets[k] + np.asarray(bi, dtype=np.int64)
            row[k, n:] = dummy
        sums_h = np.zeros((dummy + 1, hidden), dtype=np.float64)
        sums_c = np.zeros((dummy + 1, hidden), dtype=np.float64)
        counts = np.zeros(dummy + 1, dtype=np.float64)
        cond = np.zeros((b, 2), dtype=np.float32)
        h = np.zeros((num_layers, b, hidden), dtype=np.float32)
        c = np.zeros((num_layers, b, hidden), dtype=np.float32)
        for t in range(steps):
            _, h, c = artifact.session.run(None, {"token": tok[:, t], "cond": cond, "h": h, "c": c})
            r = row[:, t]  # distinct rows except padding, which all land in the dummy row
            sums_h[r] += h[-1]
            sums_c[r] += c[-1]
            counts[r] += 1
        means_h = (sums_h / np.maximum(counts, 1)[:, None]).astype(np.float32)
        means_c = (sums_c / np.maximum(counts, 1)[:, None]).astype(np.float32)
        for k, i in enumerate(chosen):
            lo, hi = int(offsets[k]), int(offsets[k + 1])
            results[i] = BarEncoding(means_h[lo:hi], means_c[lo:hi])
        done += b
        if progress is not None:
            progress(done, len(pieces))
    return [r for r in results if r is not None]


def note_features(
    blocks: Sequence[str],
    notes: Sequence[V.Note],
    bar_beats: Sequence[int],
    bar_seconds: Sequence[float] | np.ndarray,
    *,
    window: int,
) -> dict[str, np.ndarray]:
    """The note-computed blocks among ``blocks`` for one piece, each float64[bars, width].

    Args:
        blocks: feature blocks of a recognizer (encoder blocks are skipped).
        notes, bar_beats: the quantized piece.
        bar_seconds: each bar's length in seconds (for the "time" block).
        window: bars on each side of the centre bar.
    """
    out: dict[str, np.ndarray] = {}
    if "music" in blocks:
        out["music"] = bar_features(notes, bar_beats, window=window)
    if "time" in blocks:
        out["time"] = time_features(notes, bar_beats, bar_seconds, window=window)
    if "harmony" in blocks:
        out["harmony"] = harmony_features(notes, bar_beats, window=window)
    return out


def assemble_features(
    blocks: Sequence[str], encoding: BarEncoding, notes: Mapping[str, np.ndarray]
) -> np.ndarray:
    """Concatenate the named feature blocks of one piece into float64[bars, F].

    Args:
        blocks: block names, in order.
        encoding: the composer's states per bar ("h", "c").
        notes: the note-computed blocks by name (see :func:`note_features`).

    Raises:
        ValueError: unknown block, or a note block asked for and not given.
    """
    parts: list[np.ndarray] = []
    for name in blocks:
        if name == "h":
            parts.append(encoding.h)
        elif name == "c":
            parts.append(encoding.c)
        elif name in NOTE_BLOCK_WIDTHS:
            if name not in notes:
                raise ValueError(f"feature block {name!r} needs its features of the notes")
            parts.append(notes[name])
        else:
            raise ValueError(f"unknown feature block {name!r}; known: {FEATURE_BLOCKS}")
    return np.concatenate([np.asarray(p, dtype=np.float64) for p in parts], axis=1)


@dataclass(frozen=True)
class Classification:
    """Emotion of one piece.

    Attributes:
        valence, arousal: whole-piece scores in [-1, 1] (mean over bars; the sign is the
            prediction, see the module docstring).
        quadrant: whole-piece quadrant (1 +V+A, 2 −V+A, 3 −V−A, 4 +V−A).
        bars: per bar, (valence, arousal) as float64[bars, 2].
        bar_quadrants: quadrant of each bar.
    """

    valence: float
    arousal: float
    quadrant: int
    bars: np.ndarray
    bar_quadrants: list[int]

    def to_dict(self) -> dict[str, Any]:
        """A json-able description."""
        return {
            "valence": round(self.valence, 4),
            "arousal": round(self.arousal, 4),
            "quadrant": self.quadrant,
            "num_bars": int(self.bars.shape[0]),
            "bars": [
                {"bar": i, "valence": round(float(v), 4), "arousal": round(float(a), 4), "quadrant": q}
                for i, ((v, a), q) in enumerate(zip(self.bars.tolist(), self.bar_quadrants, strict=True))
            ],
        }


def _classification(per_bar: np.ndarray) -> Classification:
    valence, arousal = (float(x) for x in per_bar.mean(axis=0))
    return Classification(
        valence=valence,
        arousal=arousal,
        quadrant=quadrant(valence, arousal),
        bars=per_bar,
        bar_quadrants=[quadrant(float(v), float(a)) for v, a in per_bar],
    )


def composer_fingerprint(manifest: Manifest) -> str:
    """SHA-256 (hex) of a composer's float graph: which composer a read-out was fitted on.

    The float graph is hashed whatever precision the composer runs at, so a recognizer fitted on
    the float model also serves its int8 twin (same weights, up to quantization).
    """
    digest = hashlib.sha256()
    with manifest.onnx_path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class EmotionRecognizer:
    """A fitted linear read-out on composer states (see the module docstring).

    Build with :meth:`load`; the composer it reads is the shipped one unless ``composer_dir``
    says otherwise (it must be the composer the read-out was fitted on: the manifest records its
    vocabulary, width and float graph's SHA-256, which are checked).
    """

    def __init__(
        self,
        artifact: ModelArtifact,
        blocks: Sequence[str],
        mean: np.ndarray,
        std: np.ndarray,
        coef: np.ndarray,
        intercept: np.ndarray,
        manifest: dict[str, Any],
        *,
        music_window: int = 2,
    ) -> None:
        self.artifact = artifact
        self.blocks = tuple(blocks)
        self.mean = mean
        self.std = std
        self.coef = coef
        self.intercept = intercept
        self.manifest = manifest
        self.music_window = music_window

    @classmethod
    def load(
        cls,
        dir: str | os.PathLike[str] | None = None,
        *,
        composer_dir: str | os.PathLike[str] | None = None,
        intra_op_threads: int | None = None,
    ) -> EmotionRecognizer:
        """Load a recognizer directory (default :func:`default_recognizer_dir`) and its composer.

        Raises:
            FileNotFoundError: the directory, its manifest or its weights are missing.
            ValueError: the manifest or weights are malformed or do not match the composer.
        """
        directory = Path(dir) if dir is not None else default_recognizer_dir()
        manifest_path = directory / MANIFEST_NAME
        if not manifest_path.is_file():
            raise FileNotFoundError(f"{directory}: no recognizer here ({MANIFEST_NAME} missing)")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{manifest_path}: unreadable manifest ({exc})") from exc
        if not isinstance(manifest, dict) or manifest.get("kind") != KIND:
            raise ValueError(f"{manifest_path}: not a recognizer manifest (kind must be {KIND!r})")
        if manifest.get("vocab_version") != V.VOCAB_VERSION:
            raise ValueError(
                f"{manifest_path}: fitted on vocabulary {manifest.get('vocab_version')!r}, "
                f"engine uses {V.VOCAB_VERSION!r}"
            )
        spec = manifest.get("features")
        if not isinstance(spec, dict):
            raise ValueError(f"{manifest_path}: manifest has no features spec")
        blocks = spec.get("blocks")
        if not isinstance(blocks, list) or not blocks or any(b not in FEATURE_BLOCKS for b in blocks):
            raise ValueError(f"{manifest_path}: features.blocks must list some of {FEATURE_BLOCKS}")
        weights_path = directory / str(manifest.get("weights", WEIGHTS_NAME))
        if not weights_path.is_file():
            raise FileNotFoundError(f"{weights_path}: recognizer weights missing")
        try:
            with np.load(weights_path, allow_pickle=False) as z:
                mean, std = z["mean"].astype(np.float64), z["std"].astype(np.float64)
                coef, intercept = z["coef"].astype(np.float64), z["intercept"].astype(np.float64)
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"{weights_path}: unreadable recognizer weights ({exc})") from exc
        artifact = load_artifact(composer_dir, intra_op_threads=intra_op_threads)
        hidden = artifact.manifest.hidden_size
        width = sum(hidden if b in ("h", "c") else NOTE_BLOCK_WIDTHS[b] for b in blocks)
        if not (mean.shape == std.shape == (width,) and coef.shape == (2, width) and intercept.shape == (2,)):
            raise ValueError(
                f"{weights_path}: weights do not fit features {blocks} of a {hidden}-wide composer "
                f"(mean {mean.shape}, coef {coef.shape})"
            )
        if spec.get("hidden_size") not in (None, hidden):
            raise ValueError(
                f"{manifest_path}: fitted on a {spec['hidden_size']}-wide composer, got {hidden}"
            )
        fitted_on, composer = spec.get("composer_onnx_sha256"), composer_fingerprint(artifact.manifest)
        if fitted_on is not None and fitted_on != composer:
            raise ValueError(
                f"{manifest_path}: fitted on another composer's states (float graph sha256 "
                f"{str(fitted_on)[:12]}…, this composer's {composer[:12]}…); "
                "re-fit it with python -m models.train_recognizer"
            )
        return cls(
            artifact,
            blocks,
            mean,
            std,
            coef,
            intercept,
            manifest,
            music_window=int(spec.get("music_window", 2)),
        )

    # ------------------------------------------------------------------------------ prediction

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        """(valence, arousal) per row of assembled features, float64[N, 2] clipped to [-1, 1]."""
        z = (np.asarray(features, dtype=np.float64) - self.mean) / self.std
        out: np.ndarray = np.clip(z @ self.coef.T + self.intercept, -1.0, 1.0)
        return out

    def classify_many(
        self,
        pieces: Sequence[tuple[Sequence[V.Note], Sequence[int]]],
        *,
        bar_seconds: Sequence[Sequence[float] | np.ndarray | None] | None = None,
        tempo_bpm: float = DEFAULT_TEMPO_BPM,
        batch: int = DEFAULT_BATCH,
    ) -> list[Classification]:
        """Classify many quantized pieces (notes, bar_beats) at once (batched encoder).

        Args:
            pieces: (notes, bar_beats) of each piece, as :func:`engine.tokens.codec.quantize` gives.
            bar_seconds: per piece, how long each bar lasts in seconds (None, or a None entry:
                every bar at ``tempo_bpm``). Timing matters: the same notes played faster
                sound more aroused.
            tempo_bpm: the steady tempo of pieces without ``bar_seconds``, > 0.
            batch: pieces encoded together.

        Raises:
            ValueError: a piece cannot be encoded (notes off the grid or after the last bar),
                ``bar_seconds`` does not match the pieces, or ``tempo_bpm`` is not > 0.
        """
        timing = list(bar_seconds) if bar_seconds is not None else [None] * len(pieces)
        if len(timing) != len(pieces):
            raise ValueError(f"bar_seconds has {len(timing)} entries for {len(pieces)} pieces")
        encoded = [encode_notes(list(notes), list(beats)) for notes, beats in pieces]
        encodings = encode_bars(self.artifact, [(e.tokens, e.bar_index) for e in encoded], batch=batch)
        out = []
        for (notes, beats), seconds, enc in zip(pieces, timing, encodings, strict=True):
            secs = bar_seconds_at(beats, tempo_bpm) if seconds is None else seconds
            blocks = note_features(self.blocks, notes, beats, secs, window=self.music_window)
            out.append(_classification(self.predict_features(assemble_features(self.blocks, enc, blocks))))
        return out

    def classify_notes(
        self,
        notes: Sequence[V.Note],
        bar_beats: Sequence[int],
        *,
        bar_seconds: Sequence[float] | np.ndarray | None = None,
        tempo_bpm: float = DEFAULT_TEMPO_BPM,
    ) -> Classification:
        """Classify one quantized piece (:func:`engine.tokens.codec.quantize`, :meth:`classify_many`)."""
        return self.classify_many([(notes, bar_beats)], bar_seconds=[bar_seconds], tempo_bpm=tempo_bpm)[0]

    def classify_file(self, path: str | os.PathLike[str]) -> Classification:
        """Classify a MIDI file, at its own tempo map.

        Raises:
            engine.tokens.midi_file.MidiFileError: the file is unreadable or has no pitched notes.
        """
        parsed = midi_file.read_midi(path)
        notes, beats = quantize(parsed)
        return self.classify_notes(notes, beats, bar_seconds=midi_file.bar_seconds(parsed, beats))
