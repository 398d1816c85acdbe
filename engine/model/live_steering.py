"""Live steering: a bar of a plain stream chosen among K candidates, a token at a time.

The live engine's steering (``steer`` in a conductor's config). As a bar opens, the conductor
starts a search (:meth:`LiveSteering.start`): the stream's state is copied into K hidden
candidate slots (random numbers from ``default_rng([seed, bar, k])``, as
:mod:`engine.model.steering` does). Each :meth:`LiveSteering.advance` steps every candidate of
every search in flight by one token in one batched composer run, and feeds the recognizer's
encoder the candidates' tokens in one more batched run, so a search costs each composing round
about as much as K plain streams and never holds up the others' music. When every candidate of
a search has sampled the BAR that closes its bar and the recognizer has read it, the candidates
are scored as steered streams' are (:func:`engine.model.steering.choose`) and the winner's
tokens wait in :meth:`LiveSteering.result`. The stream itself does not move: the conductor
feeds the chosen tokens to it (``Composer.force_step``), so it can snapshot and cut inside the
bar as in any other.

The recognizer's context is the bars searched before (kept per stream for ``HISTORY`` bars;
a cut back to a bar line forgets those after it; a bar that was composed otherwise, after a cut
into it or as a theme, is read as the chosen bar, or not at all).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

import numpy as np

from engine.model.artifact import OUTPUTS
from engine.model.steering import EncoderState, Steering, choose

if TYPE_CHECKING:
    from engine.model.composer import Composer

#: encoder states a live-steered stream keeps, one per bar searched (a cut goes back to one)
HISTORY: Final = 4
_OUTPUT_NAMES: Final = list(OUTPUTS)


@dataclass
class _Search:
    """One stream's bar search: its candidates' slots, tokens (the bar's prefix first),
    likelihoods, and the recognizer's encoder state of each (``fed`` tokens read so far)."""

    stream: int
    bars: int  # the stream's bar count as the search began
    slots: np.ndarray  # intp[k]
    encoder: EncoderState
    tokens: list[list[int]]
    prefix: int  # tokens of the bar before the search
    logp_sum: np.ndarray
    sampled: np.ndarray
    running: np.ndarray
    closing: np.ndarray
    fed: np.ndarray
    h: np.ndarray  # (L, k, H)
    c: np.ndarray
    sum_h: np.ndarray  # (k, H) float64
    sum_c: np.ndarray
    count: np.ndarray


class LiveSteering:
    """The live searches of one composer (see the module docstring); driven by one thread."""

    def __init__(self, steering: Steering) -> None:
        self.steering = steering
        self._searches: dict[int, _Search] = {}
        self._done: dict[int, np.ndarray] = {}
        #: each live-steered stream's (bar count, encoder state before that bar), newest last
        self._history: dict[int, list[tuple[int, EncoderState]]] = {}

    def start(self, composer: Composer, stream: int, k: int, prefix: list[int], tempo_bpm: float) -> bool:
        """Begin searching the rest of ``stream``'s bar (``prefix``: its tokens so far, BAR
        first) among ``k`` candidates; False (nothing started) when fewer than ``k`` hidden
        slots are free. A search already running for the stream is replaced."""
        self.cancel(stream)
        slots = self.steering.take_slots(k)
        if slots is None:
            return False
        bars = int(composer._bars[stream])
        history = [(n, e) for n, e in self._history.get(stream, []) if n <= bars]  # a cut forgets
        self._history[stream] = history
        base = history[-1][1] if history else self.steering.new_encoder(tempo_bpm)
        encoder = replace(base, tempo_bpm=float(tempo_bpm))
        self.steering.seed_candidates(composer, np.asarray([stream]), np.asarray([k]), slots)
        self._searches[stream] = _Search(
            stream, bars, slots, encoder, [list(prefix) for _ in range(k)], len(prefix),
            np.zeros(k), np.zeros(k), np.ones(k, dtype=np.bool_), np.zeros(k, dtype=np.int64),
            np.zeros(k, dtype=np.intp),
            np.repeat(encoder.h[:, None], k, axis=1), np.repeat(encoder.c[:, None], k, axis=1),
            np.repeat(encoder.sum_h[None], k, axis=0), np.repeat(encoder.sum_c[None], k, axis=0),
            np.full(k, float(encoder.count)),
        )  # fmt: skip
        return True

    def cancel(self, stream: int) -> None:
        """Drop ``stream``'s search and any result not taken (its slots are free again)."""
        search = self._searches.pop(stream, None)
        if search is not None:
            self.steering.give_slots(search.slots)
        self._done.pop(stream, None)

    def close(self, stream: int) -> None:
        """Forget everything about ``stream`` (it closed)."""
        self.cancel(stream)
        self._history.pop(stream, None)

    def result(self, stream: int) -> np.ndarray | None:
        """The finished search's tokens for ``stream`` (the rest of its bar and the BAR that
        closes it), once; None while it runs (or if none was started)."""
        return self._done.pop(stream, None)

    def advance(self, composer: Composer) -> int:
        """One token for every candidate of every search in flight (and one token read by the
        recognizer for each that has one unread); finishes the searches that are whole.

        Returns:
            candidates stepped.
        """
        if not self._searches:
            return 0
        searches = list(self._searches.values())
        stepped = self._sample(composer, searches)
        self._read(searches)
        for search in searches:
            if not search.running.any() and all(
                f >= len(t) for f, t in zip(search.fed.tolist(), search.tokens, strict=True)
            ):
                self._finish(composer, search)
        return stepped

    def _sample(self, composer: Composer, searches: list[_Search]) -> int:
        refs = [(s, j) for s in searches for j in np.flatnonzero(s.running).tolist()]
        if not refs:
            return 0
        slots = np.asarray([s.slots[j] for s, j in refs], dtype=np.intp)
        logp = np.empty(slots.size)
        tokens, is_bar = composer._advance(slots, logprob=logp)
        for (s, j), token, bar, lp in zip(refs, tokens.tolist(), is_bar.tolist(), logp.tolist(), strict=True):
            s.logp_sum[j] += lp
            s.sampled[j] += 1
            if bar:
                s.closing[j] = token
                s.running[j] = False
            else:
                s.tokens[j].append(token)
        return len(refs)

    def _read(self, searches: list[_Search]) -> None:
        """Feed the recognizer's encoder one unread token of each candidate that has one."""
        refs = [(s, j) for s in searches for j in range(s.slots.size) if s.fed[j] < len(s.tokens[j])]
        if not refs:
            return
        rec = self.steering.recognizer
        assert rec is not None
        token = np.asarray([s.tokens[j][s.fed[j]] for s, j in refs], dtype=np.int64)
        h = np.ascontiguousarray(np.stack([s.h[:, j] for s, j in refs], axis=1))
        c = np.ascontiguousarray(np.stack([s.c[:, j] for s, j in refs], axis=1))
        feed = {"token": token, "cond": np.zeros((token.size, 2), dtype=np.float32), "h": h, "c": c}
        _, h_new, c_new = rec.artifact.session.run(_OUTPUT_NAMES, feed)
        for row, (s, j) in enumerate(refs):
            s.h[:, j] = h_new[:, row]
            s.c[:, j] = c_new[:, row]
            s.sum_h[j] += h_new[-1, row]
            s.sum_c[j] += c_new[-1, row]
            s.count[j] += 1
            s.fed[j] += 1

    def _finish(self, composer: Composer, search: _Search) -> None:
        k = search.slots.size
        encoders = [search.encoder] * k
        emotion = self.steering.judge(encoders, search.tokens, search.sum_h, search.sum_c, search.count)
        # sampled per candidate: its tokens after the prefix, plus the closing BAR
        best = choose(search.logp_sum / search.sampled, emotion, composer._target[search.stream])
        bar_tokens = np.asarray(search.tokens[best], dtype=np.int64)
        after = self.steering.after(search.encoder, search.h[:, best], search.c[:, best], bar_tokens)
        history = self._history.setdefault(search.stream, [])
        history.append((search.bars + 1, after))
        del history[:-HISTORY]
        del self._searches[search.stream]
        self.steering.give_slots(search.slots)
        rest = np.append(bar_tokens[search.prefix :], search.closing[best])
        self._done[search.stream] = rest.astype(np.int64)
