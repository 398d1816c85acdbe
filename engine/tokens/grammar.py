"""The token grammar: one state machine used both to validate and to mask sampling.

State of one stream is ``STATE_SIZE`` int32 values (see ``STATE_*``). :func:`advance` moves a state by a
token and reports whether the token was allowed; :func:`fill_masks` writes, for a batch of
states, which tokens may come next. Both are numba-compiled and share the same rules, so a
sequence sampled under the mask always decodes (:func:`engine.tokens.codec.decode_tokens`).

Rules (see :mod:`engine.tokens.vocab` for the token layout):

* ``BOS`` only at the start; then a ``BAR_n``.
* After ``BAR_n``: ``POS_p`` with ``p < 4n``, another bar, or ``EOS``.
* After ``POS_p``: a pitch. After a pitch: a duration. After a duration: a velocity.
* After a velocity: a lower pitch (same onset), a later ``POS`` in the bar, a bar, or ``EOS``.
* Nothing after ``EOS``; ``PAD`` is never allowed.

A bar may carry a **rhythm**: the set of its onset positions, fixed in advance (a bit mask in
``STATE_RHYTHM``, bit ``p`` for ``POS_p``; 0: free), which :func:`set_rhythm` sets right after
the bar opens. Then the bar's onsets are exactly those positions, in order: after the bar or a
velocity the only ``POS`` allowed is the next one in the mask, and the bar may close (a bar
token or ``EOS``) only once every one has been used. Chords are free. A rhythm may fix only the
bar's head (``STATE_FREE_FROM``: the first sixteenth from which onsets are free again; the bar's
length when the rhythm is the whole bar's): once the mask is used, any later position from
there on may follow, or the bar may close. The mask is dropped when the next bar opens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np

from engine.checks import check_int
from engine.realtime.jit import njit
from engine.tokens import vocab as V

# State layout (int32 row).
STATE_PHASE: Final = 0
STATE_BAR_STEPS: Final = 1
STATE_POS: Final = 2
STATE_LAST_PITCH: Final = 3
STATE_RHYTHM: Final = 4
STATE_FREE_FROM: Final = 5
STATE_SIZE: Final = 6

# Phases.
EXPECT_BOS: Final = 0
EXPECT_BAR: Final = 1
AFTER_BAR: Final = 2
AFTER_POS: Final = 3
AFTER_PITCH: Final = 4
AFTER_DUR: Final = 5
AFTER_VEL: Final = 6
ENDED: Final = 7

_BAR0, _POS0, _PITCH0, _DUR0, _VEL0, _END = (
    V.BAR_OFFSET,
    V.POS_OFFSET,
    V.PITCH_OFFSET,
    V.DUR_OFFSET,
    V.VEL_OFFSET,
    V.VOCAB_SIZE,
)
_BAR_BEATS = np.asarray(V.BAR_BEATS, dtype=np.int32)
_SPB = V.STEPS_PER_BEAT


class GrammarError(ValueError):
    """A token sequence breaks the grammar (see module docstring)."""


def new_states(batch: int, *, after_bos: bool = False) -> np.ndarray:
    """Fresh states for ``batch`` streams, expecting BOS (or, with ``after_bos``, a bar)."""
    states = np.zeros((batch, STATE_SIZE), dtype=np.int32)
    states[:, STATE_PHASE] = EXPECT_BAR if after_bos else EXPECT_BOS
    states[:, STATE_POS] = -1
    return states


@njit(cache=True, nogil=True)
def _next_onset(state: np.ndarray) -> int:  # pragma: no cover - numba
    """The first position of the bar's rhythm after its current onset; -1 when none is left."""
    rhythm = state[4]
    for p in range(state[2] + 1, state[1]):
        if (rhythm >> p) & 1:
            return p
    return -1


@njit(cache=True, nogil=True)
def _rhythm_done(state: np.ndarray) -> bool:  # pragma: no cover - numba
    """True when the bar has no rhythm or has used every onset of it."""
    return state[4] == 0 or _next_onset(state) < 0


@njit(cache=True, nogil=True)
def _onset_allowed(state: np.ndarray, p: int) -> bool:  # pragma: no cover - numba
    """With a rhythm set: ``p`` is its next onset, or the rhythm is used and ``p`` is in its free tail."""
    nxt = _next_onset(state)
    return p == nxt or (nxt < 0 and p >= state[5])


@njit(cache=True)
def advance(state: np.ndarray, token: int) -> bool:  # pragma: no cover - numba
    """Move ``state`` (int32[STATE_SIZE], updated in place) by ``token``; False if it is not allowed."""
    phase = state[0]
    if token >= _BAR0 and token < _POS0:
        if (phase == EXPECT_BAR or phase == AFTER_BAR or phase == AFTER_VEL) and _rhythm_done(state):
            state[0] = AFTER_BAR
            state[1] = _BAR_BEATS[token - _BAR0] * _SPB
            state[2] = -1
            state[3] = _END
            state[4] = 0
            state[5] = state[1]
            return True
        return False
    if token >= _POS0 and token < _PITCH0:
        p = token - _POS0
        if (
            (phase == AFTER_BAR or phase == AFTER_VEL)
            and p > state[2]
            and p < state[1]
            and (state[4] == 0 or _onset_allowed(state, p))
        ):
            state[0] = AFTER_POS
            state[2] = p
            state[3] = _END
            return True
        return False
    if token >= _PITCH0 and token < _DUR0:
        if phase == AFTER_POS or (phase == AFTER_VEL and token < state[3]):
            state[0] = AFTER_PITCH
            state[3] = token
            return True
        return False
    if token >= _DUR0 and token < _VEL0:
        if phase == AFTER_PITCH:
            state[0] = AFTER_DUR
            return True
        return False
    if token >= _VEL0 and token < _END:
        if phase == AFTER_DUR:
            state[0] = AFTER_VEL
            return True
        return False
    if token == V.BOS:
        if phase == EXPECT_BOS:
            state[0] = EXPECT_BAR
            return True
        return False
    if token == V.EOS:
        if (phase == AFTER_BAR or phase == AFTER_VEL) and _rhythm_done(state):
            state[0] = ENDED
            return True
        return False
    return False


@njit(cache=True, nogil=True)
def fill_masks(
    states: np.ndarray, allowed_bars: np.ndarray, allow_eos: bool, out: np.ndarray
) -> None:  # pragma: no cover - numba
    """Write into ``out`` (bool[B, VOCAB_SIZE]) the tokens each state may take next.

    Args:
        states: int32[B, STATE_SIZE] grammar states.
        allowed_bars: bool[len(BAR_BEATS)], which bar lengths may be opened (the engine's meter).
        allow_eos: whether a piece may end.
        out: written in full; no allocation.
    """
    for b in range(states.shape[0]):
        row = out[b]
        row[:] = False
        phase = states[b, 0]
        bar_steps = states[b, 1]
        pos = states[b, 2]
        if phase == EXPECT_BOS:
            row[V.BOS] = True
        elif phase == EXPECT_BAR:
            for k in range(allowed_bars.shape[0]):
                row[_BAR0 + k] = allowed_bars[k]
        elif phase == AFTER_BAR or phase == AFTER_VEL:
            if states[b, 4] == 0:
                for k in range(allowed_bars.shape[0]):
                    row[_BAR0 + k] = allowed_bars[k]
                for p in range(pos + 1, bar_steps):
                    row[_POS0 + p] = True
                row[V.EOS] = allow_eos
            else:
                p = _next_onset(states[b])
                if p < 0:  # every onset of the rhythm is used: the bar may close
                    for k in range(allowed_bars.shape[0]):
                        row[_BAR0 + k] = allowed_bars[k]
                    row[V.EOS] = allow_eos
                    for q in range(max(pos + 1, states[b, 5]), bar_steps):  # a free tail
                        row[_POS0 + q] = True
                else:
                    row[_POS0 + p] = True
            if phase == AFTER_VEL:
                for t in range(_PITCH0, states[b, 3]):
                    row[t] = True
        elif phase == AFTER_POS:
            row[_PITCH0:_DUR0] = True
        elif phase == AFTER_PITCH:
            row[_DUR0:_VEL0] = True
        elif phase == AFTER_DUR:
            row[_VEL0:_END] = True
        # ENDED: nothing allowed.


def all_bars() -> np.ndarray:
    """``allowed_bars`` argument allowing every bar length."""
    return np.ones(len(V.BAR_BEATS), dtype=np.bool_)


def only_bar(beats: int) -> np.ndarray:
    """``allowed_bars`` argument allowing only bars of ``beats`` beats (a fixed meter)."""
    mask = np.zeros(len(V.BAR_BEATS), dtype=np.bool_)
    mask[V.bar_token(beats) - V.BAR_OFFSET] = True
    return mask


def rhythm_mask(positions: Sequence[int], bar_steps: int) -> int:
    """The ``STATE_RHYTHM`` mask of onset ``positions`` in a bar (or a bar's head) of
    ``bar_steps`` sixteenths.

    Raises:
        ValueError: no position, or one outside 0..bar_steps-1.
    """
    mask = 0
    for p in positions:
        if not 0 <= int(p) < bar_steps:
            raise ValueError(f"rhythm positions must be in 0..{bar_steps - 1}, got {p}")
        mask |= 1 << int(p)
    if mask == 0:
        raise ValueError("a rhythm needs at least one onset position")
    return mask


def set_rhythm(state: np.ndarray, positions: Sequence[int] | None, free_from: int | None = None) -> None:
    """Fix the onsets of the bar ``state`` (int32[STATE_SIZE]) has just opened; None frees it.

    Args:
        state: one grammar state, updated in place.
        positions: the onsets (sixteenths from the bar line), or None to free the rest of the bar.
        free_from: None: ``positions`` are the whole bar's onsets. Else the sixteenth (1 .. the
            bar's length) from which onsets are free again: ``positions`` are the onsets before it.
            Ignored when ``positions`` is None.

    Raises:
        TypeError: ``free_from`` is not an int.
        ValueError: a rhythm is given but the bar has had an onset already (or no bar is open),
            ``free_from`` is outside the bar, or a position is not before ``free_from``, or
            outside the bar (:func:`rhythm_mask`).
    """
    if positions is None:
        state[STATE_RHYTHM] = 0
        return
    if state[STATE_PHASE] != AFTER_BAR:
        raise ValueError("a bar's rhythm is set right after the bar opens, before its first onset")
    bar_steps = int(state[STATE_BAR_STEPS])
    free_from = bar_steps if free_from is None else check_int("free_from", free_from, 1, bar_steps)
    state[STATE_RHYTHM] = rhythm_mask(positions, free_from)
    state[STATE_FREE_FROM] = free_from
