"""Batched token sampling: temperature and top-p (nucleus) under a grammar mask.

One numba kernel call samples the whole batch (no per-row Python; the only allocation is the
nucleus sort). Every row has its own temperature, top-p and uniform random number, so each
stream's choice depends only on its own logits, settings and randomness. Only tokens whose mask
entry is True are ever gathered as candidates, so a masked token can never be chosen, at any
temperature or top-p (NaN or infinite logits included).

Randomness comes from :class:`UniformBank`: one ``numpy.random.Generator`` per stream
(``default_rng(seed)``), read in blocks, one uniform per stream per step — deterministic per
stream whatever else is sampled alongside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np

from engine.checks import check_positive, check_real
from engine.realtime.jit import njit

#: Temperatures are clamped from below to this in the math (argmax-like behaviour, no overflow).
MIN_TEMPERATURE: Final = 1e-6
_BIG: Final = 1e300
_BLOCK: Final = 256  # uniforms drawn per stream at a time


def check_temperature(value: object) -> float:
    """``value`` as a valid temperature, finite and > 0 (see :func:`check_positive`)."""
    return check_positive("temperature", value)


def check_top_p(value: object) -> float:
    """``value`` as a nucleus mass in (0, 1] (see :func:`engine.checks.check_real`)."""
    return check_real("top_p", value, 0.0, 1.0, low_open=True)


MAX_GUIDANCE = 8.0


def check_weight(name: str, value: object, high: float) -> float:
    """``value`` as a guidance or bias weight in [0, ``high``] (see :func:`engine.checks.check_real`)."""
    return check_real(name, value, 0.0, high)


def check_guidance(value: object) -> float:
    """``value`` as a valid guidance weight, in [0, MAX_GUIDANCE] (see :func:`check_weight`)."""
    return check_weight("guidance", value, MAX_GUIDANCE)


@njit(cache=True, nogil=True)
def _sample_rows(
    logits: np.ndarray,
    mask: np.ndarray,
    temperature: np.ndarray,
    top_p: np.ndarray,
    uniforms: np.ndarray,
    out: np.ndarray,
    logprob: np.ndarray,
    probs: np.ndarray,
    tokens: np.ndarray,
) -> int:  # pragma: no cover - numba
    """Sample one allowed token per row into ``out``; returns -1, or the first row allowing nothing.

    ``logprob[b]`` gets the log-probability of the drawn token under the distribution it was
    drawn from (masked, tempered, cut to the nucleus and renormalised).

    Per row: the allowed tokens' logits / temperature (NaN → -inf, +inf → a huge finite value) are
    gathered into ``probs``/``tokens`` (scratch, >= V each), turned into unnormalised
    probabilities relative to their maximum (all allowed at -inf: uniform), optionally cut to
    the nucleus (sorted by probability, ties by token id; keep while the mass before a token is
    < top_p * total), and drawn by inverse CDF with the row's uniform. The drawn token has a
    strictly positive probability, so it is always allowed.
    """
    n, v = logits.shape
    for b in range(n):
        t = max(temperature[b], MIN_TEMPERATURE)
        k = 0
        m = -np.inf
        for j in range(v):
            if mask[b, j]:
                x = np.float64(logits[b, j]) / t
                if x != x:
                    x = -np.inf
                elif x > _BIG:
                    x = _BIG
                probs[k] = x
                tokens[k] = j
                k += 1
                if x > m:
                    m = x
        if k == 0:
            return b
        total = 0.0
        for i in range(k):
            probs[i] = 1.0 if m == -np.inf else np.exp(probs[i] - m)
            total += probs[i]
        u = uniforms[b]
        if top_p[b] < 1.0:
            order = np.argsort(-probs[:k], kind="mergesort")  # stable: ties keep token order
            limit = top_p[b] * total
            kept = 0.0
            count = 0
            for i in range(k):
                if kept >= limit:
                    break
                kept += probs[order[i]]
                count += 1
            x = u * kept
            acc = 0.0
            chosen = tokens[order[0]]
            chosen_p = probs[order[0]]
            for i in range(count):
                p = probs[order[i]]
                if p > 0.0:
                    chosen = tokens[order[i]]
                    chosen_p = p
                    acc += p
                    if x < acc:
                        break
            norm = kept
        else:
            x = u * total
            acc = 0.0
            chosen = tokens[0]
            chosen_p = probs[0]
            for i in range(k):
                p = probs[i]
                if p > 0.0:
                    chosen = tokens[i]
                    chosen_p = p
                    acc += p
                    if x < acc:
                        break
            norm = total
        out[b] = chosen
        logprob[b] = np.log(max(chosen_p, 1e-300)) - np.log(norm)
    return -1


class BatchSampler:
    """Samples one token per row from (B, V) logits; scratch preallocated for ``max_batch`` rows.

    Args:
        max_batch: the most rows one call may hold (>= 1).
        vocab_size: V (>= 1).

    Raises:
        ValueError: a size < 1.
    """

    def __init__(self, max_batch: int, vocab_size: int) -> None:
        if max_batch < 1 or vocab_size < 1:
            raise ValueError(f"max_batch and vocab_size must be >= 1, got {max_batch}, {vocab_size}")
        self.max_batch = max_batch
        self.vocab_size = vocab_size
        self._tokens = np.empty(max_batch, dtype=np.int64)
        self._logprob = np.empty(max_batch, dtype=np.float64)
        self._probs = np.empty(vocab_size, dtype=np.float64)
        self._ids = np.empty(vocab_size, dtype=np.int64)
        self._rows = 0

    def sample(
        self,
        logits: np.ndarray,
        mask: np.ndarray,
        temperature: np.ndarray,
        top_p: np.ndarray,
        uniforms: np.ndarray,
    ) -> np.ndarray:
        """Draw one allowed token per row.

        The hot path: only shapes are checked; ``temperature`` and ``top_p`` must already be
        valid (see :func:`check_temperature`, :func:`check_top_p`, or use
        :func:`sample_tokens`, which checks everything).

        Args:
            logits: float32 or float64 [B, V] unnormalised log-probabilities (NaN/inf tolerated).
            mask: bool[B, V], True where a token may be chosen; each row needs one True.
            temperature: float64[B], > 0 (values below MIN_TEMPERATURE act as MIN_TEMPERATURE).
            top_p: float64[B], in (0, 1]: keep the most likely tokens until their mass reaches it.
            uniforms: float64[B] in [0, 1), one random number per row.

        Returns:
            int64[B] token ids — a view of an internal buffer, overwritten by the next call.
            The tokens' log-probabilities are in :attr:`logprob`.

        Raises:
            ValueError: shapes disagree, B > max_batch, or a row allows no token.
        """
        n = logits.shape[0]
        if logits.shape != (n, self.vocab_size) or mask.shape != logits.shape or n > self.max_batch:
            raise ValueError(
                f"logits and mask must be (B <= {self.max_batch}, {self.vocab_size}), "
                f"got {logits.shape} and {mask.shape}"
            )
        if temperature.shape != (n,) or top_p.shape != (n,) or uniforms.shape != (n,):
            raise ValueError(f"temperature, top_p and uniforms must have shape ({n},)")
        tokens = self._tokens[:n]
        self._rows = n
        bad = _sample_rows(
            logits, mask, temperature, top_p, uniforms, tokens, self._logprob, self._probs, self._ids
        )
        if bad >= 0:
            raise ValueError(f"mask row {bad} allows no token")
        return tokens

    @property
    def logprob(self) -> np.ndarray:
        """float64[B]: log-probability of each token of the last :meth:`sample` under the
        distribution it was drawn from (masked, tempered, nucleus-renormalised); a view."""
        return self._logprob[: self._rows]


def sample_tokens(
    logits: np.ndarray,
    mask: np.ndarray,
    temperature: float | Sequence[float] | np.ndarray,
    top_p: float | Sequence[float] | np.ndarray,
    uniforms: np.ndarray,
) -> np.ndarray:
    """Validate everything and sample one token per row (allocates; for tests and one-offs).

    Args:
        logits: float[B, V].
        mask: bool[B, V], each row with at least one True.
        temperature: > 0, a scalar or float[B].
        top_p: in (0, 1], a scalar or float[B].
        uniforms: float[B] in [0, 1).

    Returns:
        int64[B] tokens (a new array).

    Raises:
        TypeError: a temperature or top_p is not a real number, or mask is not boolean.
        ValueError: a value is out of range, shapes disagree, or a mask row allows nothing.
    """
    logits = np.asarray(logits, dtype=np.float64)
    mask = np.asarray(mask)
    if logits.ndim != 2:
        raise ValueError(f"logits must be 2-D (B, V), got shape {logits.shape}")
    if mask.dtype != np.bool_:
        raise TypeError(f"mask must be boolean, got {mask.dtype}")
    n, vocab = logits.shape
    temps = np.broadcast_to(np.asarray(temperature, dtype=object), (n,))
    tops = np.broadcast_to(np.asarray(top_p, dtype=object), (n,))
    t_arr = np.array([check_temperature(t) for t in temps], dtype=np.float64)
    p_arr = np.array([check_top_p(p) for p in tops], dtype=np.float64)
    u = np.asarray(uniforms, dtype=np.float64)
    if u.shape != (n,) or not ((u >= 0) & (u < 1)).all():
        raise ValueError(f"uniforms must be {n} numbers in [0, 1)")
    if mask.shape != (n, vocab) or not mask.any(axis=1).all():
        raise ValueError(f"mask must be ({n}, {vocab}) with at least one True per row")
    return BatchSampler(max(n, 1), vocab).sample(logits, mask, t_arr, p_arr, u).copy()


class UniformBank:
    """One ``default_rng(seed)`` per slot, handing out one uniform in [0, 1) per slot per draw.

    Uniforms are read from each generator in blocks, so a slot's sequence is exactly
    ``default_rng(seed).random(n)`` no matter which other slots draw alongside it.

    Args:
        slots: number of independent streams (>= 1).
    """

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        self._gens: list[np.random.Generator | None] = [None] * slots
        self._buf = np.empty((slots, _BLOCK), dtype=np.float64)
        self._cursor = np.full(slots, _BLOCK, dtype=np.intp)

    def reset(self, slot: int, seed: int) -> None:
        """Start ``slot`` afresh from ``default_rng(seed)``."""
        self._gens[slot] = np.random.default_rng(seed)
        self._cursor[slot] = _BLOCK

    def draw(self, slots: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Write the next uniform of each of ``slots`` (distinct, all reset) into ``out``; returns it."""
        cursor = self._cursor[slots]
        for i in np.flatnonzero(cursor >= _BLOCK).tolist():
            slot = int(slots[i])
            gen = self._gens[slot]
            if gen is None:
                raise ValueError(f"slot {slot} was never reset with a seed")
            gen.random(out=self._buf[slot])
            cursor[i] = 0
        out[...] = self._buf[slots, cursor]
        self._cursor[slots] = cursor + 1
        return out
