"""The windows of lines a scene head reads: one implementation for training and run time.

A scene head reads a line's scene from a window of lines around it: a live head the line and
the ``k - 1`` lines before it (:func:`context_windows`), a read-ahead head those and also the
line and the ``k - 1`` after it (:func:`ahead_windows`). Each window row holds a line's
embedding and its own valence/arousal estimate; rows before a text's start or past its end are
zeros (a head is trained to read them as "no line here").

Training (:mod:`models.train_text_emotion`) and the runtime (:mod:`engine.story.text_model`) both
call these functions, so a head is read exactly as it was taught. Torch-free.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _check(emb: np.ndarray, va: np.ndarray, k: int) -> int:
    if emb.ndim != 2 or va.shape != (emb.shape[0], 2):
        raise ValueError(f"emb must be (N, D) and va (N, 2), got {emb.shape} and {va.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1 line, got {k}")
    return int(emb.shape[0])


def _gather(
    emb: np.ndarray, va: np.ndarray, rows: np.ndarray, offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Lines ``rows[b] + offsets[j]`` as (B, K, D) and (B, K, 2) float32, zeros outside the text."""
    n = emb.shape[0]
    idx = rows[:, None] + offsets[None, :]  # (B, K)
    if n == 0:
        return np.zeros((*idx.shape, emb.shape[1]), np.float32), np.zeros((*idx.shape, 2), np.float32)
    inside = ((idx >= 0) & (idx < n))[:, :, None]
    safe = np.clip(idx, 0, n - 1)
    we = np.where(inside, emb[safe], 0.0).astype(np.float32)
    wv = np.where(inside, va[safe], 0.0).astype(np.float32)
    return we, wv


def _rows(n: int, rows: Sequence[int] | np.ndarray | None) -> np.ndarray:
    r = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64).reshape(-1)
    if r.size and (r.min() < 0 or r.max() >= n):
        raise ValueError(f"rows must be line indices 0..{n - 1}")
    return r


def context_windows(
    emb: np.ndarray, va: np.ndarray, k: int, rows: Sequence[int] | np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per line, the line and the ``k - 1`` before it, oldest first (zeros before the start).

    Args:
        emb: (N, D) the text's line embeddings, in order.
        va: (N, 2) the lines' own valence/arousal estimates.
        k: lines per window (>= 1).
        rows: the lines to window (default: every line).

    Returns:
        (B, k, D) and (B, k, 2) float32; window ``b``'s last row is line ``rows[b]``.

    Raises:
        ValueError: shapes that do not match, ``k`` < 1, a row outside the text.
    """
    n = _check(emb, va, k)
    return _gather(emb, va, _rows(n, rows), np.arange(-(k - 1), 1))


def ahead_windows(
    emb: np.ndarray, va: np.ndarray, k: int, rows: Sequence[int] | np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per line, the line and the ``k - 1`` after it, the farthest first and the line itself last
    (zeros past the end): :func:`context_windows` of the text read backwards.

    Args, Returns and Raises as :func:`context_windows`.
    """
    n = _check(emb, va, k)
    return _gather(emb, va, _rows(n, rows), np.arange(k - 1, -1, -1))
