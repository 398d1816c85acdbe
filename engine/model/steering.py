"""Emotion steering of composer streams: K candidates per bar, kept by the emotion recognizer.

Emotion steering (``steer`` K >= 2, after Bardo Composer's stochastic bi-objective beam search):
:meth:`engine.model.composer.Composer.generate_bars` writes a steered stream one bar at a time.
The stream's state (LSTM h/c, the guidance shadow, grammar state, the BAR token it holds) is
copied into K hidden candidate slots, each with its own random numbers from
``default_rng([seed, bar, k])``, and all candidates of all steered streams are stepped together
until each samples the BAR that closes its bar. Each candidate is scored by

    score = z(mean log-prob) - STEER_WEIGHT * z(distance)

where mean log-prob is the composer's own mean log-probability of the candidate's tokens (closing
BAR included) under the distribution actually sampled from (guidance, key bias, grammar mask,
temperature, and the nucleus renormalised), distance is the Euclidean distance between the
recognizer's (valence, arousal) for the bar and the stream's target, and z() standardises over
the K candidates (so the weight is scale-free; 0 where all candidates tie). The best candidate's
tokens are output and its state is copied back into the stream's slot. The recognizer
(:class:`engine.recognizer.emotion_recognizer.EmotionRecognizer`) reads each candidate bar from a per-stream
encoder state (BOS and the emitted tokens, conditioning (0, 0)) in one batched run, plus the
music features of the stream's last ``music_window`` emitted bars and the candidate (only past
context: the piece-level recognizer centres its window, steering cannot see the future). K <= 1
is plain sampling (identical output). Steered streams produce whole bars only:
:meth:`~engine.model.composer.Composer.step` refuses them.

:class:`Steering` keeps what steering adds to a :class:`~engine.model.composer.Composer` (the
recognizer, each steered stream's encoder state, the hidden candidate slots) and runs the
candidate search on the composer's own slot tables: it copies slots with ``_copy_slots``, steps
candidates with ``_advance`` and reads the stream's seed, bar count, target and held BAR.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np

from engine.model.artifact import OUTPUTS
from engine.recognizer.emotion_recognizer import (
    BarEncoding,
    EmotionRecognizer,
    assemble_features,
    note_features,
)
from engine.recognizer.features import bar_seconds_at
from engine.tokens import codec
from engine.tokens import vocab as V

if TYPE_CHECKING:
    from engine.model.composer import Composer

#: Weight of the (standardised) emotion distance against the (standardised) mean log-prob.
STEER_WEIGHT: Final = 2.0
_OUTPUT_NAMES: Final = list(OUTPUTS)


@dataclass
class EncoderState:
    """A steered stream's recognizer-encoder state: BOS and the emitted tokens fed (cond 0, 0).

    ``h``/``c`` (L, H) hold the state before the current bar's first token; ``sum_h``/``sum_c``/
    ``count`` the top-layer sums of the current bar's tokens fed so far (BOS in bar 0);
    ``recent`` the token arrays of the last emitted bars (note-feature context); ``tempo_bpm``
    the tempo the stream plays at, which the recognizer's timing features hear.
    """

    h: np.ndarray
    c: np.ndarray
    sum_h: np.ndarray
    sum_c: np.ndarray
    count: int
    recent: list[np.ndarray]
    tempo_bpm: float


class Steering:
    """The steered streams of one Composer and their candidate search.

    Args:
        recognizer: the emotion recognizer candidates are scored with; None: the shipped one,
            loaded by :meth:`load_recognizer`.
        base: the first hidden candidate slot (the composer's ``max_streams``).
        rows: hidden candidate slots, ``base .. base + rows - 1``.
    """

    def __init__(self, recognizer: EmotionRecognizer | None, base: int, rows: int) -> None:
        self.recognizer = recognizer
        self._encoders: dict[int, EncoderState] = {}
        #: hidden candidate slots not in use (steered bars and live searches take them)
        self._free: list[int] = list(range(base, base + rows))
        from engine.model.live_steering import LiveSteering  # it builds on this module

        #: live searches (:mod:`engine.model.live_steering`) on this composer's plain streams
        self.live = LiveSteering(self)

    def load_recognizer(self, intra_op_threads: int | None = None) -> None:
        """Load the shipped recognizer unless one is set (before the first steered stream
        opens), with the composer's threads per operator (None: onnxruntime's default)."""
        if self.recognizer is None:
            self.recognizer = EmotionRecognizer.load(intra_op_threads=intra_op_threads)

    def open(self, slot: int, k: int, tempo_bpm: float) -> None:
        """Start ``slot``'s encoder state if it is steered (``k`` > 1; see :meth:`load_recognizer`)."""
        self._encoders.pop(slot, None)
        self.live.close(slot)
        if k > 1:
            self._encoders[slot] = self.new_encoder(tempo_bpm)

    def close(self, slot: int) -> None:
        """Forget ``slot``'s encoder state and cancel its live search."""
        self._encoders.pop(slot, None)
        self.live.close(slot)

    @property
    def free_slots(self) -> int:
        return len(self._free)

    def take_slots(self, n: int) -> np.ndarray | None:
        """``n`` hidden candidate slots (intp[n]), or None if fewer are free."""
        if n > len(self._free):
            return None
        taken, self._free = self._free[:n], self._free[n:]
        return np.asarray(taken, dtype=np.intp)

    def give_slots(self, slots: np.ndarray) -> None:
        """Return slots taken with :meth:`take_slots`."""
        self._free.extend(int(x) for x in slots)

    def new_encoder(self, tempo_bpm: float) -> EncoderState:
        """A fresh encoder state that has read BOS (bar 0's first token, as the recognizer does)."""
        assert self.recognizer is not None
        art = self.recognizer.artifact
        L, H = art.manifest.num_layers, art.manifest.hidden_size
        zeros = np.zeros((L, 1, H), dtype=np.float32)
        feed = {"token": np.full(1, V.BOS, dtype=np.int64), "cond": np.zeros((1, 2), np.float32)}
        _, h, c = art.session.run(_OUTPUT_NAMES, {**feed, "h": zeros, "c": zeros})
        top_h, top_c = h[-1, 0].astype(np.float64), c[-1, 0].astype(np.float64)
        return EncoderState(h[:, 0].copy(), c[:, 0].copy(), top_h, top_c, 1, [], tempo_bpm)

    def generate_bars(self, composer: Composer, ids: np.ndarray, bars: int) -> list[np.ndarray]:
        """``bars`` steered bars for each of ``ids`` (all steered, each holding the BAR that opens
        its next bar); see :meth:`engine.model.composer.Composer.generate_bars`."""
        out: list[list[np.ndarray]] = [[] for _ in range(ids.size)]
        k_of = composer._steer[ids]
        start = 0
        while start < ids.size:  # groups whose candidates fit in the hidden slots
            stop, used = start, 0
            while stop < ids.size and used + k_of[stop] <= self.free_slots:
                used += int(k_of[stop])
                stop += 1
            if stop == start:
                raise RuntimeError(
                    f"{k_of[start]} candidates need hidden slots; {self.free_slots} are free "
                    "(live searches hold the rest)"
                )
            group = np.arange(start, stop)
            for _ in range(bars):
                for k, seq in zip(group.tolist(), self._bar(composer, ids[group]), strict=True):
                    out[k].append(seq)
            start = stop
        return [np.concatenate(seqs) for seqs in out]

    def _bar(self, composer: Composer, ids: np.ndarray) -> list[np.ndarray]:
        """One steered bar per stream of ``ids`` (each holds the BAR that opens it); returns the bars."""
        ks = composer._steer[ids].astype(np.intp)
        total = int(ks.sum())
        owner = np.repeat(np.arange(ids.size), ks)
        cand = self.take_slots(total)
        assert cand is not None  # generate_bars groups the streams to fit
        try:
            self.seed_candidates(composer, ids, ks, cand)
            openers = composer._take_held(ids)
            tokens: list[list[int]] = [[int(openers[owner[j]])] for j in range(total)]
            logp_sum = np.zeros(total)
            running = np.ones(total, dtype=np.bool_)
            logp = np.empty(total)
            closing = np.empty(total, dtype=np.int64)
            while running.any():
                pos = np.flatnonzero(running)
                step_tokens, is_bar = composer._advance(cand[pos], logprob=logp[: pos.size])
                logp_sum[pos] += logp[: pos.size]
                for j, token, bar in zip(pos.tolist(), step_tokens.tolist(), is_bar.tolist(), strict=True):
                    if bar:
                        closing[j] = token
                        running[j] = False
                    else:
                        tokens[j].append(token)
            lengths = np.asarray([len(t) for t in tokens])
            # sampled per candidate: its tokens after the opening BAR, plus the closing BAR
            mean_logp = logp_sum / lengths
            encoders = [self._encoders[int(ids[i])] for i in owner.tolist()]
            emotion, enc_state = self._recognize(encoders, tokens)
            result = []
            for i, stream in enumerate(ids.tolist()):
                rows = np.flatnonzero(owner == i)
                best = int(rows[choose(mean_logp[rows], emotion[rows], composer._target[stream])])
                composer._copy_slots(cand[best : best + 1], np.asarray([stream]))
                composer._held[stream] = closing[best]
                bar_tokens = np.asarray(tokens[best], dtype=np.int64)
                self._encoders[stream] = self.after(self._encoders[stream], enc_state[0][:, best],
                                                    enc_state[1][:, best], bar_tokens)  # fmt: skip
                result.append(bar_tokens)
            return result
        finally:
            self.give_slots(cand)

    def seed_candidates(self, composer: Composer, ids: np.ndarray, ks: np.ndarray, cand: np.ndarray) -> None:
        """Copy each stream of ``ids`` into its ``ks[i]`` candidate slots (``cand``, in order),
        candidate k's random numbers from ``default_rng([seed, bar, k])``."""
        owner = np.repeat(np.arange(ids.size), ks)
        src = ids[owner]
        composer._copy_slots(src, cand)
        first = np.concatenate([[0], np.cumsum(ks)[:-1]])
        for j, (slot, stream) in enumerate(zip(cand.tolist(), src.tolist(), strict=True)):
            k = j - int(first[owner[j]])
            entropy = [composer._seeds[stream], int(composer._bars[stream]), k]
            composer._rng.reset(
                slot, int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> 1)
            )

    def after(self, enc: EncoderState, h: np.ndarray, c: np.ndarray, bar_tokens: np.ndarray) -> EncoderState:
        """``enc`` after a bar (its tokens; ``h``/``c`` (L, H) the state after them): a new state."""
        window = self.recognizer.music_window if self.recognizer is not None else 0
        return EncoderState(
            h.copy(), c.copy(), np.zeros_like(enc.sum_h), np.zeros_like(enc.sum_c), 0,
            [*enc.recent, bar_tokens][-window:] if window else [], enc.tempo_bpm,
        )  # fmt: skip

    def _recognize(
        self, encoders: list[EncoderState], tokens: list[list[int]]
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """(valence, arousal) float64[n, 2] of each candidate bar (read from ``encoders[j]``),
        and the encoder (h, c) after it."""
        rec = self.recognizer
        assert rec is not None
        n = len(tokens)
        h = np.ascontiguousarray(np.stack([e.h for e in encoders], axis=1))
        c = np.ascontiguousarray(np.stack([e.c for e in encoders], axis=1))
        sum_h = np.stack([e.sum_h for e in encoders])
        sum_c = np.stack([e.sum_c for e in encoders])
        count = np.asarray([e.count for e in encoders], dtype=np.float64)
        lengths = np.asarray([len(t) for t in tokens])
        padded = np.full((n, int(lengths.max())), V.PAD, dtype=np.int64)
        for j, seq in enumerate(tokens):
            padded[j, : len(seq)] = seq
        final_h, final_c = h, c  # every candidate's latest state (all rows)
        cond = np.zeros((n, 2), dtype=np.float32)
        for t in range(padded.shape[1]):
            live = np.flatnonzero(lengths > t)
            feed = {
                "token": padded[live, t],
                "cond": cond[: live.size],
                "h": np.ascontiguousarray(final_h[:, live]),
                "c": np.ascontiguousarray(final_c[:, live]),
            }
            _, h_new, c_new = rec.artifact.session.run(_OUTPUT_NAMES, feed)
            sum_h[live] += h_new[-1]
            sum_c[live] += c_new[-1]
            final_h[:, live] = h_new
            final_c[:, live] = c_new
        count += lengths
        return self.judge(encoders, tokens, sum_h, sum_c, count), (final_h, final_c)

    def judge(
        self, encoders: list[EncoderState], tokens: list[list[int]], sum_h: np.ndarray, sum_c: np.ndarray,
        count: np.ndarray,
    ) -> np.ndarray:  # fmt: skip
        """(valence, arousal) float64[n, 2] of each candidate bar: ``tokens[j]`` played after
        ``encoders[j]``'s bars, its top-layer state sums (n, H) over ``count[j]`` tokens."""
        rec = self.recognizer
        assert rec is not None
        encoding = BarEncoding(
            (sum_h / count[:, None]).astype(np.float32), (sum_c / count[:, None]).astype(np.float32)
        )
        rows: list[dict[str, np.ndarray]] = []
        for j, seq in enumerate(tokens):
            context = [*encoders[j].recent, np.asarray(seq, dtype=np.int64)]
            notes, beats = codec.decode_tokens(np.concatenate(context))
            secs = bar_seconds_at(beats, encoders[j].tempo_bpm)
            blocks = note_features(rec.blocks, notes, beats, secs, window=rec.music_window)
            rows.append({name: block[-1] for name, block in blocks.items()})
        per_block = {name: np.stack([r[name] for r in rows]) for name in (rows[0] if rows else {})}
        return rec.predict_features(assemble_features(rec.blocks, encoding, per_block))


def choose(mean_logp: np.ndarray, emotion: np.ndarray, target: np.ndarray) -> int:
    """The candidate with the best score (see the module docstring): z(mean log-prob) minus
    STEER_WEIGHT times z(distance of its (valence, arousal) to ``target``)."""
    dist = np.linalg.norm(emotion - target, axis=1)
    return int(np.argmax(_zscore(mean_logp) - STEER_WEIGHT * _zscore(dist)))


def _zscore(x: np.ndarray) -> np.ndarray:
    """``x`` standardised (0 where it does not vary)."""
    sd = float(x.std())
    if sd < 1e-12:
        return np.zeros_like(x)
    out: np.ndarray = (x - x.mean()) / sd
    return out
