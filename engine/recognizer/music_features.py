"""Valence/arousal per bar from musical features: a small ridge regressor, numpy only.

Used by :mod:`models.corpus` to give unlabelled music (VGMIDI unlabelled, POP909) a per-bar
(valence, arousal) conditioning target, and reusable at runtime or evaluation time to describe
what a generated piece sounds like (the features need only quantized notes and the bar layout,
e.g. from :func:`engine.tokens.codec.decode_tokens`).

Features, per bar, over a centred window of ``2 * window + 1`` bars (cut at the piece edges):

* ``notes_per_beat`` — ``log1p`` of note onsets per quarter-note beat (density, chord thickness).
* ``onsets_per_beat`` — distinct onset positions per beat (rhythmic activity).
* ``velocity`` — mean MIDI velocity / 127 (loudness).
* ``pitch_mean`` — mean pitch in octaves from middle C ((pitch - 60) / 12).
* ``pitch_spread`` — standard deviation of pitch, in octaves (register width).
* ``log_duration`` — mean log2 note duration in beats (legato vs staccato articulation).
* ``mode`` — major-vs-minor score: the highest Pearson correlation of the duration-weighted
  pitch-class histogram with the 12 rotations of the Krumhansl–Kessler major profile, minus the
  highest with the 12 minor rotations (in [-2, 2]; > 0 sounds major).
* ``piece_mode`` — the same score over the whole piece (a stable key estimate).

Why these: in the music-psychology literature (Gabrielsson & Lindström 2010, "The role of
structure in the musical expression of emotions"; Juslin & Laukka 2004) arousal/activity goes
with tempo and note density, loudness and staccato articulation, while valence goes mostly with
major vs minor mode and with higher register. EMOPIA (Hung et al., ISMIR 2021) reports the same
for symbolic piano: note density, length and velocity separate arousal, key mode separates
valence. Tempo itself is not in the token vocabulary (the engine sets it), so density per beat
stands in for it. Key profiles: Krumhansl & Kessler (1982), see :mod:`engine.music.keys`.

The regressor is a ridge regression (closed form, intercept not penalized) on standardized
features, fitted separately for valence and arousal on labelled bars; predictions are clipped
to [-1, 1]. All numbers are plain floats: the fitted model round-trips through
:meth:`RidgeLabelModel.to_dict` / :meth:`RidgeLabelModel.from_dict` (json-able).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from engine.music.keys import mode_score
from engine.tokens import vocab as V

FEATURE_NAMES: Final = (
    "notes_per_beat",
    "onsets_per_beat",
    "velocity",
    "pitch_mean",
    "pitch_spread",
    "log_duration",
    "mode",
    "piece_mode",
)
NUM_FEATURES: Final = len(FEATURE_NAMES)
TARGET_NAMES: Final = ("valence", "arousal")
DEFAULT_WINDOW: Final = 2  # bars on each side of the centre bar


def window_sum(values: np.ndarray, window: int) -> np.ndarray:
    """Sum of ``values`` (first axis = bars) over bars ``b - window .. b + window``, cut at edges."""
    num_bars = values.shape[0]
    padded = np.concatenate([np.zeros((1, *values.shape[1:])), np.cumsum(values, axis=0)])
    idx = np.arange(num_bars)
    hi = np.minimum(idx + window + 1, num_bars)
    lo = np.maximum(idx - window, 0)
    out: np.ndarray = padded[hi] - padded[lo]
    return out


def bar_features(
    notes: Sequence[V.Note], bar_beats: Sequence[int], *, window: int = DEFAULT_WINDOW
) -> np.ndarray:
    """Musical features of each bar, over a centred window of bars (see module docstring).

    Args:
        notes: quantized notes (onsets in sixteenth steps from the start of the piece), as
            returned by :func:`engine.tokens.codec.quantize` or :func:`engine.tokens.codec.decode_tokens`.
        bar_beats: length of each bar in quarter-note beats; bars are contiguous from step 0.
        window: bars on each side of the centre bar included in its features (>= 0).

    Returns:
        float64[len(bar_beats), NUM_FEATURES], columns in FEATURE_NAMES order. A window without
        notes gets zero density and the piece's mean velocity, pitch, spread and duration.

    Raises:
        ValueError: ``window`` is negative, or a note starts at or after the end of the last bar.
    """
    if window < 0:
        raise ValueError(f"window must be >= 0, got {window}")
    num_bars = len(bar_beats)
    feats = np.zeros((num_bars, NUM_FEATURES), dtype=np.float64)
    if num_bars == 0:
        return feats
    beats = np.asarray(bar_beats, dtype=np.float64)
    bar_edges = np.concatenate([[0], np.cumsum(np.asarray(bar_beats, dtype=np.int64) * V.STEPS_PER_BEAT)])
    if not notes:
        return feats
    onset = np.fromiter((n.onset_step for n in notes), dtype=np.int64, count=len(notes))
    pitch = np.fromiter((n.pitch for n in notes), dtype=np.float64, count=len(notes))
    dur = np.fromiter((n.duration_steps for n in notes), dtype=np.float64, count=len(notes))
    vel = np.fromiter((n.velocity for n in notes), dtype=np.float64, count=len(notes))
    if onset.min() < 0 or onset.max() >= bar_edges[-1]:
        raise ValueError(f"note onsets must lie in steps 0..{bar_edges[-1] - 1} of the bar layout")
    bar = np.searchsorted(bar_edges, onset, side="right") - 1
    octaves = (pitch - 60.0) / 12.0
    log_dur = np.log2(dur / V.STEPS_PER_BEAT)

    def per_bar(weights: np.ndarray | None) -> np.ndarray:
        return np.bincount(bar, weights=weights, minlength=num_bars).astype(np.float64)

    distinct = np.unique(onset)
    onsets_per_bar = np.bincount(
        np.searchsorted(bar_edges, distinct, side="right") - 1, minlength=num_bars
    ).astype(np.float64)
    sums = np.stack(
        [
            per_bar(None),
            onsets_per_bar,
            per_bar(vel),
            per_bar(octaves),
            per_bar(octaves**2),
            per_bar(log_dur),
            beats,
        ],
        axis=1,
    )
    count, n_onsets, s_vel, s_oct, s_oct2, s_logdur, n_beats = window_sum(sums, window).T
    hist_bar = np.bincount(
        bar * 12 + pitch.astype(np.int64) % 12, weights=dur, minlength=num_bars * 12
    ).reshape(num_bars, 12)
    hist = window_sum(hist_bar, window)

    has = count > 0
    safe = np.where(has, count, 1.0)
    mean_oct = s_oct / safe
    spread = np.sqrt(np.maximum(s_oct2 / safe - mean_oct**2, 0.0))
    piece_spread = float(octaves.std())
    feats[:, 0] = np.log1p(count / n_beats)
    feats[:, 1] = n_onsets / n_beats
    feats[:, 2] = np.where(has, s_vel / safe, vel.mean()) / 127.0
    feats[:, 3] = np.where(has, mean_oct, octaves.mean())
    feats[:, 4] = np.where(has, spread, piece_spread)
    feats[:, 5] = np.where(has, s_logdur / safe, log_dur.mean())
    feats[:, 6] = mode_score(hist)
    feats[:, 7] = float(mode_score(hist_bar.sum(axis=0)))
    return feats


@dataclass(frozen=True)
class RidgeLabelModel:
    """Linear map from standardized bar features to (valence, arousal), clipped to [-1, 1].

    Attributes:
        feature_names: names of the feature columns (FEATURE_NAMES at fit time).
        mean: float64[F], feature means on the fitting bars.
        std: float64[F], feature standard deviations on the fitting bars (1 where constant).
        coef: float64[2, F], weights on standardized features for (valence, arousal).
        intercept: float64[2].
        alpha: ridge penalty used (on standardized features, unnormalized sum of squares).
        window: bars on each side used by :func:`bar_features` for this model.
    """

    feature_names: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    alpha: float
    window: int = DEFAULT_WINDOW

    def predict(self, features: np.ndarray) -> np.ndarray:
        """(valence, arousal) per row of ``features`` (float[N, F]) as float64[N, 2] in [-1, 1]."""
        z = (np.asarray(features, dtype=np.float64) - self.mean) / self.std
        out: np.ndarray = np.clip(z @ self.coef.T + self.intercept, -1.0, 1.0)
        return out

    def predict_notes(self, notes: Sequence[V.Note], bar_beats: Sequence[int]) -> np.ndarray:
        """(valence, arousal) of each bar of a quantized piece, float64[len(bar_beats), 2]."""
        return self.predict(bar_features(notes, bar_beats, window=self.window))

    def to_dict(self) -> dict[str, Any]:
        """A json-able description of the model (inverse: :meth:`from_dict`)."""
        return {
            "kind": "ridge",
            "feature_names": list(self.feature_names),
            "targets": list(TARGET_NAMES),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept.tolist(),
            "alpha": self.alpha,
            "window": self.window,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RidgeLabelModel:
        """Rebuild a model from :meth:`to_dict` output.

        Raises:
            ValueError: the feature names differ from this module's FEATURE_NAMES.
        """
        names = tuple(data["feature_names"])
        if names != FEATURE_NAMES:
            raise ValueError(f"label model uses features {names}, this code computes {FEATURE_NAMES}")
        return cls(
            feature_names=names,
            mean=np.asarray(data["mean"], dtype=np.float64),
            std=np.asarray(data["std"], dtype=np.float64),
            coef=np.asarray(data["coef"], dtype=np.float64).reshape(len(TARGET_NAMES), len(names)),
            intercept=np.asarray(data["intercept"], dtype=np.float64),
            alpha=float(data["alpha"]),
            window=int(data["window"]),
        )


def fit_ridge(
    features: np.ndarray,
    targets: np.ndarray,
    *,
    alpha: float = 10.0,
    sample_weight: np.ndarray | None = None,
    window: int = DEFAULT_WINDOW,
) -> RidgeLabelModel:
    """Fit ridge regressions of valence and arousal on bar features (closed form).

    Works with any number of rows >= 1: the penalty keeps the system well-posed, so a tiny
    corpus gives a weak (shrunk towards the mean) but valid model.

    Args:
        features: float[N, F] bar features (:func:`bar_features`).
        targets: float[N, 2] (valence, arousal) in [-1, 1].
        alpha: ridge penalty on the standardized weights (> 0), in units of weighted rows.
        sample_weight: float[N] >= 0 row weights (None: all 1); normalized to sum to N.
        window: the feature window the features were computed with (recorded in the model).

    Raises:
        ValueError: shapes disagree, no rows, or ``alpha`` is not positive.
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    if (
        x.ndim != 2
        or x.shape[1] != NUM_FEATURES
        or y.shape != (x.shape[0], len(TARGET_NAMES))
        or x.shape[0] == 0
    ):
        raise ValueError(
            f"need features [N, {NUM_FEATURES}] and targets [N, 2] with N >= 1, got {x.shape} and {y.shape}"
        )
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    n = x.shape[0]
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (n,) or (w < 0).any() or w.sum() <= 0:
        raise ValueError("sample_weight must be [N], non-negative, with a positive sum")
    w = w * (n / w.sum())
    mean = (w[:, None] * x).sum(axis=0) / n
    std = np.sqrt((w[:, None] * (x - mean) ** 2).sum(axis=0) / n)
    std = np.where(std < 1e-9, 1.0, std)
    z = (x - mean) / std
    y_mean = (w[:, None] * y).sum(axis=0) / n
    gram = z.T @ (w[:, None] * z) + alpha * np.eye(x.shape[1])
    coef = np.linalg.solve(gram, z.T @ (w[:, None] * (y - y_mean))).T  # [2, F]
    # z is centred under the weights, so the unpenalized intercept is the weighted target mean.
    return RidgeLabelModel(FEATURE_NAMES, mean, std, coef, y_mean, float(alpha), window)
