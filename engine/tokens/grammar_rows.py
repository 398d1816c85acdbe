"""Grammar operations on selected rows of a stream table (numba; one call per batch step).

:mod:`engine.tokens.grammar` works on a batch of states; the composer keeps one state row per stream
slot and steps any subset of them. These kernels gather/advance those rows without a Python
loop per stream.
"""

from __future__ import annotations

import numpy as np

from engine.realtime.jit import njit
from engine.tokens import vocab as V
from engine.tokens.grammar import advance, fill_masks

_BAR0 = V.BAR_OFFSET
_POS0 = V.POS_OFFSET


@njit(cache=True, nogil=True)
def fill_masks_rows(
    states: np.ndarray,
    rows: np.ndarray,
    allowed_bars: np.ndarray,
    allow_eos: bool,
    scratch: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover - numba
    """Write into ``out[:n]`` the next-token masks of ``states[rows]`` (n = len(rows)).

    Args:
        states: int32[S, STATE_SIZE], one grammar state per stream slot.
        rows: int[n], the slots to mask.
        allowed_bars: see :func:`engine.tokens.grammar.fill_masks`.
        allow_eos: see :func:`engine.tokens.grammar.fill_masks`.
        scratch: int32[>= n, STATE_SIZE], overwritten.
        out: bool[>= n, VOCAB_SIZE]; rows 0..n-1 are written.
    """
    n = rows.shape[0]
    for i in range(n):
        scratch[i, :] = states[rows[i]]
    fill_masks(scratch[:n], allowed_bars, allow_eos, out[:n])


@njit(cache=True, nogil=True)
def advance_rows(
    states: np.ndarray, rows: np.ndarray, tokens: np.ndarray, is_bar: np.ndarray
) -> int:  # pragma: no cover
    """Advance ``states[rows[i]]`` by ``tokens[i]``; ``is_bar[i]`` tells whether it opened a bar.

    Returns:
        -1 when every token was allowed, else the index of the first refused one (its state and
        the following rows are left unchanged).
    """
    for i in range(rows.shape[0]):
        token = tokens[i]
        if not advance(states[rows[i]], token):
            return i
        is_bar[i] = token >= _BAR0 and token < _POS0
    return -1
