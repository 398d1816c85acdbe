"""A held-out emotion judge: the measure of what the engine plays, apart from the recognizer.

The engine's own emotion recognizer is also what steering steers by, so it flatters steering.
This judge shares nothing with it: its features are descriptors by tools we did not write
(music21's key analysis, muspy) and plain note statistics, its model two L2-regularised
logistic regressions (valence sign, arousal sign) fitted here, in seconds, on listener-labelled
pieces of the corpus's *train* split (EMOPIA clips, VGMIDI labelled pieces), and it reports its
own accuracy on the pieces of the val and test splits, which neither it nor the composer saw.

Features of a 16-bar excerpt (from its first note): notes per second (log), mean and spread of
velocity and pitch, mean duration in seconds, tempo, music21's mode and its key correlation,
the pitch-class histogram relative to music21's tonic, muspy's pitch-class entropy, scale
consistency, polyphony and empty-beat rate.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from engine.tokens import vocab as V

EXCERPT_BARS: Final = 16
_RIDGE: Final = 1.0  # L2 weight of the logistic regressions (standardised features)


@dataclass(frozen=True)
class Piece:
    """Notes on the sixteenth grid (onsets from the excerpt's start) and the tempo they play at."""

    notes: list[V.Note]
    tempo_bpm: float


def tonic_shares(notes: Sequence[V.Note], tonic_pc: int) -> np.ndarray:
    """float64[12]: each pitch class's share of ``notes`` (counted, not timed), tonic first."""
    histogram = np.zeros(12)
    for n in notes:
        histogram[(n.pitch - tonic_pc) % 12] += 1
    out: np.ndarray = histogram / histogram.sum()
    return out


def features(piece: Piece) -> np.ndarray:
    """The judge's feature vector of one piece (float64)."""
    import muspy

    from engine.bench.form import music21_key, muspy_music

    notes = piece.notes
    step_s = 60.0 / piece.tempo_bpm / V.STEPS_PER_BEAT
    span_s = max(
        (max(n.onset_step + n.duration_steps for n in notes) - min(n.onset_step for n in notes)) * step_s, 1.0
    )
    key = music21_key(notes)
    histogram = tonic_shares(notes, key.tonic.pitchClass)
    music = muspy_music(notes)
    pitches = np.asarray([n.pitch for n in notes], dtype=np.float64)
    velocities = np.asarray([n.velocity for n in notes], dtype=np.float64)
    stats = [
        math.log(len(notes) / span_s),
        velocities.mean(),
        velocities.std(),
        pitches.mean(),
        pitches.std(),
        float(np.mean([n.duration_steps for n in notes])) * step_s,
        piece.tempo_bpm,
        float(key.mode == "major"),
        float(key.correlationCoefficient),
        float(muspy.pitch_class_entropy(music)),
        float(muspy.scale_consistency(music)),
        float(muspy.polyphony(music)),
        float(muspy.empty_beat_rate(music)),
    ]
    return np.asarray([*stats, *histogram], dtype=np.float64)


def file_piece(path: Path) -> Piece | None:
    """The first 16 bars (from the first note) of a MIDI file; None if it has no notes."""
    from engine.tokens.codec import quantize
    from engine.tokens.midi_file import MidiFileError, read_midi

    try:
        parsed = read_midi(path)
        notes, bar_beats = quantize(parsed)
    except MidiFileError:
        return None
    if not notes:
        return None
    tempo = 60e6 / parsed.tempos[0][1] if parsed.tempos else 120.0
    first = notes[0].onset_step
    end = first + sum(bar_beats[:EXCERPT_BARS]) * V.STEPS_PER_BEAT
    kept = [
        V.Note(n.onset_step - first, n.pitch, n.duration_steps, n.velocity)
        for n in notes
        if n.onset_step < end
    ]
    return Piece(kept, tempo)


@dataclass
class _Logistic:
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray  # bias last

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray) -> _Logistic:
        """Newton's method on the L2-regularised log-loss (y in {0, 1})."""
        mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
        z = np.hstack([(x - mean) / scale, np.ones((x.shape[0], 1))])
        w = np.zeros(z.shape[1])
        ridge = np.full(z.shape[1], _RIDGE)
        ridge[-1] = 0.0
        for _ in range(50):
            p = 1.0 / (1.0 + np.exp(-z @ w))
            grad = z.T @ (p - y) + ridge * w
            hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(ridge)
            step = np.linalg.solve(hess, grad)
            w -= step
            if np.abs(step).max() < 1e-8:
                break
        return cls(mean, scale, w)

    def positive(self, x: np.ndarray) -> np.ndarray:
        z = np.hstack([(x - self.mean) / self.scale, np.ones((x.shape[0], 1))])
        out: np.ndarray = z @ self.weights > 0
        return out


@dataclass
class Judge:
    """Valence and arousal sign of a piece, fitted on listener-labelled train-split pieces."""

    valence: _Logistic
    arousal: _Logistic
    #: accuracy on the held-out (val + test split) labelled pieces: quadrant, valence, arousal
    held_out: dict[str, float]
    pieces: dict[str, int]

    def judge(self, pieces: Sequence[Piece]) -> tuple[np.ndarray, np.ndarray]:
        """(valence > 0, arousal > 0) per piece (bool arrays)."""
        x = np.stack([features(p) for p in pieces])
        return self.valence.positive(x), self.arousal.positive(x)


def labelled_pieces(data_dir: Path) -> list[tuple[Path, int, int, str]]:
    """(file, valence sign, arousal sign, group key) of every listener-labelled piece."""
    from models.corpus import emopia_group, vgmidi_group  # torch-free

    out: list[tuple[Path, int, int, str]] = []
    signs = {1: (1, 1), 2: (-1, 1), 3: (-1, -1), 4: (1, -1)}
    with open(data_dir / "emopia" / "labels.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            v, a = signs[int(row["quadrant"])]
            out.append((data_dir / "emopia" / "midi" / row["file"], v, a, emopia_group(row["file"])))
    with open(data_dir / "vgmidi" / "labelled" / "labels.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            path = data_dir / "vgmidi" / "labelled" / "midi" / row["file"]
            out.append((path, int(row["valence"]), int(row["arousal"]), vgmidi_group(row["file"])))
    return out


def fit_judge(data_dir: Path) -> Judge:
    """Fit the judge on the train split and measure it on the held-out splits.

    Raises:
        FileNotFoundError: the labels of EMOPIA or VGMIDI are not under ``data_dir``.
    """
    from models.corpus import SPLIT_NAMES, split_of  # torch-free

    train = SPLIT_NAMES.index("train")
    rows: list[tuple[np.ndarray, int, int, bool]] = []
    for path, v, a, group in labelled_pieces(data_dir):
        piece = file_piece(path)
        if piece is not None and len(piece.notes) >= 8:
            rows.append((features(piece), v, a, split_of(group) == train))
    x = np.stack([r[0] for r in rows])
    pos_v = np.asarray([r[1] > 0 for r in rows], dtype=np.float64)
    pos_a = np.asarray([r[2] > 0 for r in rows], dtype=np.float64)
    fit = np.asarray([r[3] for r in rows])
    valence, arousal = _Logistic.fit(x[fit], pos_v[fit]), _Logistic.fit(x[fit], pos_a[fit])
    held = ~fit
    pv, pa = valence.positive(x[held]), arousal.positive(x[held])
    held_out = accuracy(pv, pa, pos_v[held] > 0, pos_a[held] > 0)
    return Judge(valence, arousal, held_out, {"train": int(fit.sum()), "held_out": int(held.sum())})


def accuracy(
    valence: np.ndarray, arousal: np.ndarray, true_valence: np.ndarray, true_arousal: np.ndarray
) -> dict[str, float]:
    """Shares of pieces judged right: quadrant (both signs), valence sign, arousal sign."""
    right_v, right_a = valence == true_valence, arousal == true_arousal
    return {
        "quadrant": float(np.mean(right_v & right_a)),
        "valence": float(np.mean(right_v)),
        "arousal": float(np.mean(right_a)),
    }
