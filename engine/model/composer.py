"""Many independent composer streams, stepped together in one batched ONNX Runtime call.

Each stream is a slot in preallocated tables (LSTM state, grammar state, conditioning, sampling
settings, random numbers). :meth:`Composer.step` gathers the listed slots, runs the step graph
once for all of them, scatters the new state back, masks the logits with the grammar (fixed
meter, no EOS: streams are endless) and samples one token per stream.

Stream lifecycle: :meth:`Composer.open_stream` feeds BOS with a zero state on the first step, so
a stream's first token is always a bar; every token sequence it yields decodes with
:func:`engine.tokens.codec.decode_tokens`.

Emotion: the model was trained with every token carrying its bar's (valence, arousal), so by
default :meth:`Composer.set_emotion` takes effect at the next bar line: the target is read when
a BAR token is fed to the model, so the new bar's BAR token and everything after it carry it —
including a bar whose BAR token was already sampled (held by :meth:`Composer.generate_bars`)
but not fed yet. ``immediate=True`` switches at the next token.

Valence guidance: with ``guidance`` g > 0 a stream also runs a shadow copy of itself fed the
opposite valence (same tokens, same arousal, its own recurrent state) in the same batched call,
and samples from ``l + g * (l - l_opposite)``: the difference the model makes between the two
valences is amplified g-fold (contrastive, classifier-free-style guidance). It costs one more row
per guided stream per step; at valence 0 it changes nothing.

Reproducibility: a stream's random numbers come only from ``default_rng(seed)``, and on the CPU
provider the step graph gives bit-identical results per row whatever the batch around it, so a
stream's tokens do not depend on which other streams are stepped with it. (GPU kernels may pick
different reduction orders for different batch sizes; there only closeness is guaranteed.)

Emotion steering (``steer`` K >= 2): :meth:`Composer.generate_bars` writes a steered stream one
bar at a time, choosing each bar among K candidates by the emotion recognizer and the composer's
own likelihood; see :mod:`engine.model.steering`. Steered streams produce whole bars only:
:meth:`step` refuses them.

Not thread-safe: drive one Composer from one thread.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, TypeGuard

import numpy as np

from engine.checks import MAX_STEER, check_positive, check_steer, check_unit
from engine.model.artifact import OUTPUTS, ModelArtifact, load_artifact
from engine.model.sampling import (
    BatchSampler,
    UniformBank,
    check_guidance,
    check_temperature,
    check_top_p,
    check_weight,
)
from engine.model.steering import Steering
from engine.model.tonal_primer import (
    choose_key,
    key_bias,
    offbeat_bias,
    primer_notes_per_beat,
    primer_tokens,
    primer_velocity,
)
from engine.music.keys import MAX_KEY_STRENGTH
from engine.recognizer.emotion_recognizer import EmotionRecognizer
from engine.recognizer.features import DEFAULT_TEMPO_BPM
from engine.tokens import codec, grammar
from engine.tokens import vocab as V
from engine.tokens.grammar_rows import advance_rows, fill_masks_rows

OUTPUT_NAMES: Final = list(OUTPUTS)
#: Default pull toward the primed key in :meth:`Composer.compose` (nats off-key; see tonal_primer).
DEFAULT_KEY_STRENGTH: Final = 1.5
_NO_TOKEN: Final = -1


@dataclass(frozen=True)
class StreamInfo:
    """A snapshot of one stream.

    Attributes:
        stream: slot id.
        seed: the seed of its random numbers.
        emotion: (valence, arousal) its tokens are currently fed with.
        target: (valence, arousal) it will take at the next bar line.
        temperature: sampling temperature.
        top_p: nucleus mass.
        bars: bars started so far (BAR tokens sampled).
        tokens: tokens sampled so far.
        key: (tonic pitch class, "major"/"minor") the stream was primed in, None if unprimed.
    """

    stream: int
    seed: int
    emotion: tuple[float, float]
    target: tuple[float, float]
    temperature: float
    top_p: float
    bars: int
    tokens: int
    key: tuple[int, str] | None = None
    steer: int = 0


@dataclass(frozen=True)
class StreamSnapshot:
    """A copy of one stream's model, grammar and conditioning state (see :meth:`Composer.snapshot`)."""

    h: np.ndarray
    c: np.ndarray
    h_shadow: np.ndarray | None
    c_shadow: np.ndarray | None
    next_token: int
    cond: np.ndarray
    grammar: np.ndarray
    bars: int
    count: int
    held: int


def is_int(value: object) -> TypeGuard[int | np.integer]:
    """True for Python and numpy integers (not bools)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_emotion(valence: object, arousal: object) -> tuple[float, float]:
    """(valence, arousal) as floats if both are finite reals in [-1, 1] (:func:`engine.checks.check_unit`).

    Raises:
        TypeError: a value is not a real number.
        ValueError: a value is NaN, infinite or outside [-1, 1].
    """
    return check_unit("valence", valence), check_unit("arousal", arousal)


def check_key_strength(value: object, name: str = "key_strength") -> float:
    """``value`` as a valid key strength, nats in [0, MAX_KEY_STRENGTH] (see ``check_weight``)."""
    return check_weight(name, value, MAX_KEY_STRENGTH)


def check_seed(seed: object) -> int:
    """``seed`` as an int >= 0; None draws a fresh random seed (reported by :meth:`Composer.info`).

    Raises:
        TypeError: not an int (or None).
        ValueError: negative.
    """
    if seed is None:
        return secrets.randbits(63)
    if not is_int(seed):
        raise TypeError(f"seed must be an int >= 0 or None, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return int(seed)


class _Scratch:
    """Contiguous per-batch buffers carved from flat allocations sized for ``max_streams``."""

    def __init__(self, max_streams: int, layers: int, hidden: int) -> None:
        self.layers, self.hidden = layers, hidden
        rows = 2 * max_streams  # each stream plus, when guided, its shadow
        self.token = np.empty(rows, dtype=np.int64)
        self.cond = np.empty((rows, 2), dtype=np.float32)
        self.h = np.empty(layers * rows * hidden, dtype=np.float32)
        self.c = np.empty(layers * rows * hidden, dtype=np.float32)
        self.states = np.empty((max_streams, grammar.STATE_SIZE), dtype=np.int32)
        self.mask = np.empty((max_streams, V.VOCAB_SIZE), dtype=np.bool_)
        self.temperature = np.empty(max_streams, dtype=np.float64)
        self.top_p = np.empty(max_streams, dtype=np.float64)
        self.uniforms = np.empty(max_streams, dtype=np.float64)
        self.is_bar = np.empty(max_streams, dtype=np.bool_)
        self.bias = np.empty((max_streams, V.VOCAB_SIZE), dtype=np.float32)

    def state_view(self, flat: np.ndarray, n: int) -> np.ndarray:
        """A C-contiguous (L, n, H) view at the start of ``flat``."""
        return flat[: self.layers * n * self.hidden].reshape(self.layers, n, self.hidden)


class Composer:
    """Holds up to ``max_streams`` independent composing streams and steps them in batches.

    Args:
        model_dir: model directory (see :mod:`engine.model.artifact`); None: the shipped model.
        providers: execution provider override (``"cpu"``, ``"cuda"``, ...); None: automatic
            (``AFFETTO_ORT_PROVIDER``, else CUDA when available, else CPU).
        max_streams: slots preallocated (>= 1); stream ids are 0..max_streams-1 and reused.
        meter_beats: the bar length every stream uses, in quarter-note beats (one of BAR_BEATS).
        intra_op_threads: onnxruntime threads per operator; None: its default.
        artifact: an already loaded model (then model_dir/providers/threads are ignored).
        precision: "fp32" or "int8" (see :func:`engine.model.artifact.load_artifact`).
        recognizer: the emotion recognizer steered streams are scored with; None: the shipped
            one, loaded when the first steered stream opens.
        steer_rows: hidden candidate slots (>= MAX_STEER); steered streams whose candidates do
            not fit together are stepped in several groups.

    Raises:
        TypeError, ValueError: an argument is out of range (message names the allowed range).
        FileNotFoundError: see :func:`engine.model.artifact.load_manifest`.
    """

    def __init__(
        self,
        model_dir: str | os.PathLike[str] | None = None,
        *,
        providers: str | Sequence[str] | None = None,
        max_streams: int = 256,
        meter_beats: int = 4,
        intra_op_threads: int | None = None,
        artifact: ModelArtifact | None = None,
        precision: str = "fp32",
        recognizer: EmotionRecognizer | None = None,
        steer_rows: int = MAX_STEER,
    ) -> None:
        if not is_int(max_streams):
            raise TypeError(f"max_streams must be an int >= 1, got {max_streams!r}")
        if max_streams < 1:
            raise ValueError(f"max_streams must be >= 1, got {max_streams}")
        if meter_beats not in V.BAR_BEATS:
            raise ValueError(f"meter_beats must be one of {V.BAR_BEATS}, got {meter_beats!r}")
        if not is_int(steer_rows) or steer_rows < MAX_STEER:
            raise ValueError(f"steer_rows must be an int >= {MAX_STEER}, got {steer_rows!r}")
        self.artifact = artifact or load_artifact(
            model_dir, providers=providers, intra_op_threads=intra_op_threads, precision=precision
        )
        self._session = self.artifact.session
        #: the composer's threads per operator, which the recognizer it loads for steering gets too
        self._intra_op_threads = self._session.get_session_options().intra_op_num_threads or None
        m = self.artifact.manifest
        L, H = m.num_layers, m.hidden_size
        self.max_streams = int(max_streams)
        # hidden candidate slots follow the public ones
        self._steering = Steering(recognizer, self.max_streams, int(steer_rows))
        S = self.max_streams + int(steer_rows)
        self._steer = np.zeros(S, dtype=np.int64)
        self.meter_beats = int(meter_beats)
        self._allowed_bars = grammar.only_bar(self.meter_beats)
        self._active = np.zeros(S, dtype=np.bool_)
        self._h = np.zeros((L, S, H), dtype=np.float32)
        self._c = np.zeros((L, S, H), dtype=np.float32)
        self._next_token = np.full(S, V.BOS, dtype=np.int64)
        self._cond = np.zeros((S, 2), dtype=np.float32)
        self._target = np.zeros((S, 2), dtype=np.float32)
        self._temperature = np.ones(S, dtype=np.float64)
        self._top_p = np.ones(S, dtype=np.float64)
        self._grammar = grammar.new_states(S, after_bos=True)
        self._bars = np.zeros(S, dtype=np.int64)
        self._count = np.zeros(S, dtype=np.int64)
        self._held = np.full(S, _NO_TOKEN, dtype=np.int64)
        self._guidance = np.zeros(S, dtype=np.float32)
        self._h_shadow = np.zeros((L, S, H), dtype=np.float32)  # state under the opposite valence
        self._c_shadow = np.zeros((L, S, H), dtype=np.float32)
        self._seeds = [0] * S
        self._keys: list[tuple[int, str] | None] = [None] * S
        self._key_bias = np.zeros((S, V.VOCAB_SIZE), dtype=np.float32)  # logit bias toward the key
        self._biased = np.zeros(S, dtype=np.bool_)
        self._offbeat_pull = np.ones(S, dtype=np.float32)  # share of the key pull off the beat
        self._mode_guard = np.zeros(S, dtype=np.float32)  # the pull the parallel mode's notes keep
        self._offbeat_bias = np.zeros((S, V.VOCAB_SIZE), dtype=np.float32)  # its bias (tonal_primer)
        self._rng = UniformBank(S)
        self._sampler = BatchSampler(S, V.VOCAB_SIZE)
        self._scratch = _Scratch(S, L, H)

    # ----------------------------------------------------------------------------- streams
    @property
    def provider(self) -> str:
        """The onnxruntime execution provider actually running the model."""
        return self.artifact.provider

    @property
    def open_streams(self) -> list[int]:
        """Ids of the open streams, ascending."""
        return np.flatnonzero(self._active).tolist()

    def open_stream(
        self,
        seed: int | None = None,
        valence: float = 0.0,
        arousal: float = 0.0,
        *,
        temperature: float = 1.0,
        top_p: float = 0.95,
        guidance: float = 0.0,
        tonal_prime: bool = False,
        key_strength: float = 0.0,
        steer: int = 0,
        key: tuple[int, str] | None = None,
        tempo_bpm: float = DEFAULT_TEMPO_BPM,
        offbeat_pull: float = 1.0,
        mode_guard: float = 0.0,
    ) -> int:
        """Open a stream at the start of a piece; returns its id.

        Args:
            seed: int >= 0 for reproducible output; None: a random seed (see :meth:`info`).
            valence: target valence in [-1, 1] (negative: sad/dark, positive: happy/bright).
            arousal: target arousal in [-1, 1] (negative: calm, positive: energetic).
            temperature: sampling temperature, > 0.
            top_p: nucleus mass, in (0, 1].
            guidance: valence guidance weight in [0, 8] (see the module docstring); 0: off.
            tonal_prime: prime the stream with a bar in a key whose mode follows the valence
                (:mod:`engine.model.tonal_primer`; the key is drawn from the seed).
            key_strength: with ``tonal_prime``, a soft pull toward the key: pitches outside it
                get this much less logit (nats, in [0, 8]; 0: none).
            steer: emotion-steered decoding with this many candidates per bar, 0..MAX_STEER
                (0 or 1: off; see the module docstring). Loads the shipped recognizer if the
                Composer was built without one.
            key: with ``tonal_prime``, the (tonic pitch class, "major"/"minor") to prime; None:
                drawn from the seed with the mode following the valence.
            tempo_bpm: with ``steer``, the tempo the stream will be played at (> 0): the
                recognizer judges candidates by how they sound at it (notes per second). Plain
                streams ignore it (tokens have no tempo).
            offbeat_pull: the share of ``key_strength`` on notes starting between beats, in
                [0, 1] (1: the same pull everywhere; the mode's own degrees keep the full pull,
                see :func:`engine.model.tonal_primer.offbeat_bias`).
            mode_guard: the pull (nats, in [0, 8]) the pitch classes that would say the parallel
                mode keep where the key pull is weaker (:func:`engine.model.tonal_primer.key_bias`),
                here with ``tonal_prime`` and in every later :meth:`set_key`; 0: the same as the rest.

        Raises:
            TypeError, ValueError: an argument is out of range.
            RuntimeError: all ``max_streams`` slots are open.
        """
        seed = check_seed(seed)
        emotion = check_emotion(valence, arousal)
        t, p = check_temperature(temperature), check_top_p(top_p)
        g = check_guidance(guidance)
        strength = check_key_strength(key_strength)
        guard = check_key_strength(mode_guard, "mode_guard")
        offbeat = check_weight("offbeat_pull", offbeat_pull, 1.0)
        k = check_steer(steer)
        tempo = check_positive("tempo_bpm", tempo_bpm)
        if k > 1:
            self._steering.load_recognizer(self._intra_op_threads)
        free = np.flatnonzero(~self._active[: self.max_streams])
        if free.size == 0:
            raise RuntimeError(f"all {self.max_streams} streams are open; close one or raise max_streams")
        s = int(free[0])
        self._active[s] = True
        self._h[:, s] = 0.0
        self._c[:, s] = 0.0
        self._h_shadow[:, s] = 0.0
        self._c_shadow[:, s] = 0.0
        self._guidance[s] = g
        self._next_token[s] = V.BOS
        self._cond[s] = self._target[s] = emotion
        self._temperature[s], self._top_p[s] = t, p
        self._grammar[s] = grammar.new_states(1, after_bos=True)[0]
        self._bars[s] = self._count[s] = 0
        self._held[s] = _NO_TOKEN
        self._seeds[s] = seed
        self._rng.reset(s, seed)
        self._keys[s] = None
        self._biased[s] = False
        self._key_bias[s] = 0.0  # a batch with a biased stream adds every row's bias: none here
        self._offbeat_bias[s] = 0.0
        self._offbeat_pull[s] = offbeat
        self._mode_guard[s] = guard
        self._steer[s] = k if k > 1 else 0
        self._steering.open(s, k, tempo)
        if tonal_prime:
            tonic, mode = key if key is not None else choose_key(seed, emotion[0])
            arousal = emotion[1]
            primer = primer_tokens(
                tonic, mode, self.meter_beats, primer_velocity(arousal), primer_notes_per_beat(arousal)
            )
            self.prime(s, primer)
            self._pull(s, tonic, mode, strength, offbeat, guard)
        return s

    def close_stream(self, stream: int) -> None:
        """Close ``stream``; its id may be handed out again by :meth:`open_stream`.

        Raises:
            ValueError: ``stream`` is not open.
        """
        self._check_ids(stream)
        self._active[stream] = False
        self._steering.close(stream)

    def set_emotion(self, stream: int, valence: float, arousal: float, *, immediate: bool = False) -> None:
        """Steer ``stream`` towards (valence, arousal), each in [-1, 1].

        Args:
            stream: an open stream id.
            valence: target valence in [-1, 1].
            arousal: target arousal in [-1, 1].
            immediate: switch at the next token instead of the next bar line. A stream that has
                not produced a token yet always switches at once.

        Raises:
            TypeError, ValueError: a value is not a finite real in [-1, 1], or the stream is not open.
        """
        self._check_ids(stream)
        emotion = check_emotion(valence, arousal)
        self._target[stream] = emotion
        if immediate or self._count[stream] == 0:
            self._cond[stream] = emotion

    def set_sampling(
        self,
        stream: int,
        *,
        temperature: float | None = None,
        top_p: float | None = None,
        guidance: float | None = None,
    ) -> None:
        """Change the sampling settings of ``stream`` from its next token on.

        Turning guidance on mid-stream starts the shadow from the stream's current state.

        Raises:
            TypeError, ValueError: temperature not > 0, top_p not in (0, 1], guidance not in
                [0, 8], or the stream not open.
        """
        self._check_ids(stream)
        if guidance is not None:
            g = check_guidance(guidance)
            if g > 0 and self._guidance[stream] == 0:
                self._h_shadow[:, stream] = self._h[:, stream]
                self._c_shadow[:, stream] = self._c[:, stream]
            self._guidance[stream] = g
        if temperature is not None:
            self._temperature[stream] = check_temperature(temperature)
        if top_p is not None:
            self._top_p[stream] = check_top_p(top_p)

    def info(self, stream: int) -> StreamInfo:
        """A snapshot of ``stream``'s settings and progress.

        Raises:
            ValueError: the stream is not open.
        """
        self._check_ids(stream)
        s = stream
        return StreamInfo(
            s,
            self._seeds[s],
            (float(self._cond[s, 0]), float(self._cond[s, 1])),
            (float(self._target[s, 0]), float(self._target[s, 1])),
            float(self._temperature[s]),
            float(self._top_p[s]),
            int(self._bars[s]),
            int(self._count[s]),
            self._keys[s],
            int(self._steer[s]),
        )

    def prime(self, stream: int, tokens: Sequence[int] | np.ndarray) -> None:
        """Feed ``tokens`` to ``stream`` as unheard context (a key, a theme), then open a bar.

        The tokens run through the model (and the guidance shadow) as if they had been sampled,
        but are never output; afterwards the stream's next output starts with a new bar. Must
        be called before the stream has produced anything.

        Args:
            stream: an open stream that has not produced a token yet.
            tokens: whole bars in the composer's meter, starting with a BAR token.

        Raises:
            ValueError: the stream has already produced tokens, or the tokens break the grammar
                or the meter (the stream is then closed, since its state is partly primed).
        """
        ids = self._check_ids(stream)
        if self._count[stream] or self._held[stream] != _NO_TOKEN:
            raise ValueError(f"stream {stream} has already started; prime it right after open_stream")
        seq = np.asarray(tokens, dtype=np.int64).reshape(-1)
        bar = V.bar_token(self.meter_beats)
        if seq.size == 0 or seq[0] != bar:
            raise ValueError(f"a primer must start with {V.token_name(bar)} (the composer's meter)")
        try:
            for token in (*seq.tolist(), bar):
                self._advance(ids, np.full(1, token, dtype=np.int64))
        except ValueError:
            self.close_stream(stream)
            raise
        self._held[stream] = bar  # the bar opened after the primer is the stream's first output
        self._bars[stream] = 1
        self._count[stream] = 1

    def set_key(
        self,
        stream: int,
        tonic_pc: int,
        mode: str,
        strength: float,
        *,
        offbeat_pull: float | None = None,
        mode_guard: float | None = None,
    ) -> None:
        """Pull ``stream`` toward a key from its next token on (a modulation; see tonal_primer).

        Args:
            stream: an open stream.
            tonic_pc: tonic pitch class, 0 (C) .. 11 (B).
            mode: "major" or "minor".
            strength: logit penalty of the least fitting pitch class, nats in [0, 8]; 0: no pull.
            offbeat_pull: the share of the pull on notes starting between beats, in [0, 1]
                (passing and neighbour tones may leave the key); None: as it was.
            mode_guard: the pull (nats, in [0, 8]) the pitch classes that would say the parallel
                mode keep where ``strength`` is weaker (see
                :func:`engine.model.tonal_primer.key_bias`); None: as it was.

        Raises:
            TypeError, ValueError: an argument is out of range or the stream is not open.
        """
        self._check_ids(stream)  # every argument is checked before anything changes
        k = check_key_strength(strength)
        guard = (
            float(self._mode_guard[stream])
            if mode_guard is None
            else check_key_strength(mode_guard, "mode_guard")
        )
        pull = (
            float(self._offbeat_pull[stream])
            if offbeat_pull is None
            else check_weight("offbeat_pull", offbeat_pull, 1.0)
        )
        self._pull(stream, tonic_pc, mode, k, pull, guard)

    def _pull(self, s: int, tonic_pc: int, mode: str, strength: float, offbeat: float, guard: float) -> None:
        """Write slot ``s``'s key tables (arguments checked but tonic and mode, which the bias
        checks before anything is written)."""
        bias = key_bias(tonic_pc, mode, strength, guard)  # validates tonic and mode
        self._mode_guard[s], self._offbeat_pull[s] = guard, offbeat
        self._keys[s] = (int(tonic_pc), mode)
        self._key_bias[s] = bias
        self._offbeat_bias[s] = offbeat_bias(tonic_pc, mode, strength, offbeat, guard)
        self._biased[s] = strength > 0 or guard > 0

    def set_bar_rhythm(
        self, stream: int, positions: Sequence[int] | None, free_from: int | None = None
    ) -> None:
        """Fix the onsets of the bar ``stream`` has just opened (its last output, or held, is a
        BAR token): the bar's notes start exactly at ``positions`` (sixteenths from the bar line,
        each at least one note, chords free); None frees the rest of the current bar. With
        ``free_from`` (a sixteenth into the bar) only the bar's head is fixed: ``positions`` are
        its onsets before ``free_from``, and from there on they are free. The rhythm lasts one
        bar, and is part of :meth:`snapshot`.

        Raises:
            TypeError: ``free_from`` is not an int.
            ValueError: the stream is not open, a rhythm is set after the bar's first onset, a
                position is outside the bar or not before ``free_from``, or ``free_from`` is
                outside the bar (see :func:`engine.tokens.grammar.set_rhythm`).
        """
        self._check_ids(stream)
        grammar.set_rhythm(self._grammar[stream], positions, free_from)

    def snapshot(self, stream: int) -> StreamSnapshot:
        """Everything that decides ``stream``'s next tokens except its random numbers.

        :meth:`restore` returns the stream to this point, so the engine can cut composed but
        unplayed music and compose it again under new conditions.

        Raises:
            ValueError: the stream is not open, or it is steered (steered streams write whole bars).
        """
        self._check_ids(stream)
        if self._steer[stream]:
            raise ValueError(f"stream {stream} is steered; snapshots work on plain streams")
        s = stream
        shadow = self._guidance[s] > 0
        return StreamSnapshot(
            self._h[:, s].copy(),
            self._c[:, s].copy(),
            self._h_shadow[:, s].copy() if shadow else None,
            self._c_shadow[:, s].copy() if shadow else None,
            int(self._next_token[s]),
            self._cond[s].copy(),
            self._grammar[s].copy(),
            int(self._bars[s]),
            int(self._count[s]),
            int(self._held[s]),
        )

    def restore(self, stream: int, snap: StreamSnapshot, seed: int) -> None:
        """Return ``stream`` to ``snap`` (taken from this stream) and restart its random numbers.

        Args:
            stream: the open stream ``snap`` was taken from.
            snap: from :meth:`snapshot`.
            seed: int >= 0; the stream's random numbers restart from ``default_rng(seed)``
                (derive it from the point in the music to stay reproducible).

        Raises:
            TypeError, ValueError: bad seed, or the stream is not open.
        """
        self._check_ids(stream)
        s = stream
        self._rng.reset(s, check_seed(seed))
        self._h[:, s] = snap.h
        self._c[:, s] = snap.c
        if snap.h_shadow is not None and snap.c_shadow is not None:
            self._h_shadow[:, s] = snap.h_shadow
            self._c_shadow[:, s] = snap.c_shadow
        self._next_token[s] = snap.next_token
        self._cond[s] = snap.cond
        self._grammar[s] = snap.grammar
        self._bars[s] = snap.bars
        self._count[s] = snap.count
        self._held[s] = snap.held

    def force(self, stream: int, tokens: Sequence[int] | np.ndarray) -> None:
        """Make ``tokens`` the stream's next output, as if it had sampled them (a theme, a cue).

        The caller plays them; the stream then continues from them. A BAR token held back by
        :meth:`generate_bars` or :meth:`prime` has not been output yet, so ``tokens`` must
        start with it then.

        Raises:
            ValueError: the stream is not open or steered, the tokens do not start with a held
                BAR, or a token breaks the grammar (the tokens before it stay fed).
        """
        ids = self._check_ids(stream)
        if self._steer[stream]:
            raise ValueError(f"stream {stream} is steered; it cannot take forced tokens")
        seq = np.asarray(tokens, dtype=np.int64).reshape(-1).tolist()
        held = int(self._held[stream])
        if held != _NO_TOKEN:
            if not seq or seq[0] != held:
                raise ValueError(
                    f"stream {stream} holds {V.token_name(held)} (not output yet); "
                    "forced tokens must start with it"
                )
            self._held[stream] = _NO_TOKEN
            seq = seq[1:]
        for token in seq:
            self._advance(ids, np.full(1, token, dtype=np.int64))

    # ------------------------------------------------------------------------- generation
    def step(self, stream_ids: int | Sequence[int] | np.ndarray) -> np.ndarray:
        """The next token of each listed stream, computed in one batched model run.

        A BAR token held back by :meth:`generate_bars` is returned first (without running the
        model for that stream), so the tokens a stream yields through ``step`` and
        ``generate_bars`` together always form one valid sequence.

        Args:
            stream_ids: distinct open stream ids (an int, a sequence or an int array).

        Returns:
            int64[len(stream_ids)] tokens, in the order of ``stream_ids`` (a new array).

        Raises:
            TypeError, ValueError: ids not ints, out of range, closed or repeated.
        """
        ids = self._check_ids(stream_ids)
        if self._steer[ids].any():
            raise ValueError(
                f"streams {ids[self._steer[ids] > 0].tolist()} are steered: they produce whole bars, "
                "use generate_bars"
            )
        out = np.empty(ids.size, dtype=np.int64)
        held = self._held[ids] != _NO_TOKEN
        if held.any():
            out[held] = self._held[ids[held]]
            self._held[ids[held]] = _NO_TOKEN
            rest = ~held
            if rest.any():
                out[rest] = self._advance(ids[rest])[0]
            return out
        out[...] = self._advance(ids)[0]
        return out

    def generate_bars(self, stream_ids: int | Sequence[int] | np.ndarray, bars: int) -> list[np.ndarray]:
        """Step the listed streams until each has produced ``bars`` complete bars.

        A bar is complete when the BAR token that opens the next one is sampled; that token is
        held back and becomes the first token of the stream's next ``generate_bars`` (or
        :meth:`step`) output. So each returned sequence starts with a BAR token and holds exactly
        ``bars`` bars, and consecutive outputs concatenate into one valid stream.

        Args:
            stream_ids: distinct open stream ids.
            bars: bars to produce per stream, >= 1.

        Returns:
            One int64 token array per listed stream, in the order of ``stream_ids``.

        Raises:
            TypeError, ValueError: bad ids or ``bars`` < 1.
        """
        if not is_int(bars):
            raise TypeError(f"bars must be an int >= 1, got {bars!r}")
        if bars < 1:
            raise ValueError(f"bars must be >= 1, got {bars}")
        ids = self._check_ids(stream_ids)
        steered = self._steer[ids] > 0
        if steered.any():
            result: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * ids.size
            plain = np.flatnonzero(~steered)
            if plain.size:
                for k, seq in zip(plain.tolist(), self.generate_bars(ids[plain], bars), strict=True):
                    result[k] = seq
            chosen = np.flatnonzero(steered)
            sids = ids[chosen]
            fresh = sids[(self._held[sids] == _NO_TOKEN) & (self._count[sids] == 0)]
            if fresh.size:  # a stream's first token is its first BAR: sample it, hold it
                self._held[fresh] = self._advance(fresh)[0]
            for k, seq in zip(chosen.tolist(), self._steering.generate_bars(self, sids, bars), strict=True):
                result[k] = seq
            return result
        n = ids.size
        out: list[list[int]] = [[] for _ in range(n)]
        started = np.zeros(n, dtype=np.int64)
        for k in np.flatnonzero(self._held[ids] != _NO_TOKEN).tolist():
            out[k].append(int(self._held[ids[k]]))
            self._held[ids[k]] = _NO_TOKEN
            started[k] = 1
        running = np.ones(n, dtype=np.bool_)
        while running.any():
            pos = np.flatnonzero(running)
            tokens, is_bar = self._advance(ids[pos])
            done = is_bar & (started[pos] == bars)
            if done.any():
                finished = pos[done]
                self._held[ids[finished]] = tokens[done]
                running[finished] = False
            started[pos] += is_bar & ~done
            for k, token in zip(pos[~done].tolist(), tokens[~done].tolist(), strict=True):
                out[k].append(token)
        return [np.asarray(seq, dtype=np.int64) for seq in out]

    def load_recognizer(self) -> None:
        """Load the shipped emotion recognizer for steering unless one is set (at most once).

        Raises:
            FileNotFoundError, ValueError: see
                :meth:`engine.recognizer.emotion_recognizer.EmotionRecognizer.load`.
        """
        self._steering.load_recognizer(self._intra_op_threads)

    def start_search(self, stream: int, steer: int, prefix: Sequence[int], tempo_bpm: float) -> bool:
        """Live steering: start choosing the rest of plain ``stream``'s current bar among
        ``steer`` candidates (:mod:`engine.model.live_steering`); :meth:`advance_searches` runs
        it, :meth:`search_result` gives the chosen tokens. The stream does not move: the caller
        feeds them to it with :meth:`force_step` (so it can snapshot, and cut, inside the bar).

        Args:
            stream: an open plain stream that has output its bar's BAR token and ``prefix`` since,
                holding no token.
            steer: candidates, 2..MAX_STEER.
            prefix: the bar's tokens so far, its BAR token first.
            tempo_bpm: the stream's tempo (> 0): the recognizer hears notes per second.

        Returns:
            False (nothing started) when fewer than ``steer`` hidden candidate slots are free.

        Raises:
            TypeError, ValueError: a bad stream, count, prefix or tempo; a steered stream; a stream
                that holds a token.
            FileNotFoundError: no recognizer was given and none is shipped.
        """
        self._check_ids(stream)
        k = check_steer(steer)
        if k < 2:
            raise ValueError(f"a search needs 2..{MAX_STEER} candidates, got {k}")
        tempo = check_positive("tempo_bpm", tempo_bpm)
        if self._steer[stream]:
            raise ValueError(f"stream {stream} is steered; searches work on plain streams")
        if self._held[stream] != _NO_TOKEN:
            raise ValueError(f"stream {stream} holds a token; step it first")
        tokens = [int(t) for t in prefix]
        if not tokens or not V.BAR_OFFSET <= tokens[0] < V.POS_OFFSET:
            raise ValueError(f"stream {stream}: a prefix starts with the bar's BAR token")
        self._steering.load_recognizer(self._intra_op_threads)
        return self._steering.live.start(self, int(stream), k, tokens, tempo)

    def advance_searches(self) -> int:
        """One token for every candidate of every search in flight (batched); returns how many."""
        return self._steering.live.advance(self)

    def search_result(self, stream: int) -> np.ndarray | None:
        """``stream``'s chosen tokens once its search is done (the rest of its bar, then the BAR
        that closes it; given once), else None."""
        return self._steering.live.result(stream)

    def cancel_search(self, stream: int) -> None:
        """Drop ``stream``'s search (or its result not taken)."""
        self._steering.live.cancel(stream)

    def search_bar(
        self, stream_ids: Sequence[int], steer: Sequence[int], prefixes: Sequence[Sequence[int]],
        tempo_bpm: Sequence[float],
    ) -> list[np.ndarray]:  # fmt: skip
        """:meth:`start_search` for each listed stream, run to the end; the chosen tokens of each.

        Raises:
            ValueError: see :meth:`start_search`, or the lists' lengths differ.
            RuntimeError: not enough hidden candidate slots for them all.
        """
        if not (len(stream_ids) == len(steer) == len(prefixes) == len(tempo_bpm)):
            raise ValueError("stream_ids, steer, prefixes and tempo_bpm need one entry per stream")
        for stream, k, prefix, tempo in zip(stream_ids, steer, prefixes, tempo_bpm, strict=True):
            if not self.start_search(stream, k, prefix, tempo):
                for s in stream_ids:
                    self.cancel_search(s)
                raise RuntimeError(f"not enough hidden candidate slots for {sum(steer)} candidates")
        out: list[np.ndarray | None] = [None] * len(stream_ids)
        while any(x is None for x in out):
            self.advance_searches()
            out = [
                x if x is not None else self.search_result(s) for x, s in zip(out, stream_ids, strict=True)
            ]
        return [x for x in out if x is not None]

    def force_step(
        self, stream_ids: int | Sequence[int] | np.ndarray, tokens: Sequence[int] | np.ndarray
    ) -> None:
        """:meth:`force` one token into each listed stream, in one batched model run (a stream
        that holds a BAR token must be given it: it is released, as :meth:`force` does).

        Raises:
            TypeError, ValueError: bad ids, one token per stream not given, a steered stream, a
                held token not given, or a token the grammar refuses (as :meth:`force`).
        """
        ids = self._check_ids(stream_ids)
        seq = np.asarray(tokens, dtype=np.int64).reshape(-1)
        if seq.size != ids.size:
            raise ValueError(f"force_step takes one token per stream ({ids.size}), got {seq.size}")
        if self._steer[ids].any():
            steered = ids[self._steer[ids] > 0].tolist()
            raise ValueError(f"streams {steered} are steered; they take no forced tokens")
        held = self._held[ids] != _NO_TOKEN
        if held.any():
            wrong = held & (self._held[ids] != seq)
            if wrong.any():
                k = int(np.flatnonzero(wrong)[0])
                raise ValueError(
                    f"stream {ids[k]} holds {V.token_name(int(self._held[ids[k]]))} (not output yet); "
                    "it must be forced first"
                )
            self._held[ids[held]] = _NO_TOKEN
        self._advance(ids[~held], seq[~held])

    def compose(
        self,
        valence: float,
        arousal: float,
        bars: int,
        *,
        seed: int | None = None,
        temperature: float = 1.0,
        top_p: float = 0.95,
        guidance: float = 0.0,
        tonal_prime: bool = True,
        key_strength: float = DEFAULT_KEY_STRENGTH,
        steer: int = 0,
        tempo_bpm: float = DEFAULT_TEMPO_BPM,
        on_bar: Callable[[int, int], None] | None = None,
    ) -> tuple[list[V.Note], list[int]]:
        """Compose one piece of ``bars`` bars at a fixed emotion (opens and closes a stream).

        Args:
            valence: in [-1, 1].
            arousal: in [-1, 1].
            bars: >= 1.
            seed: int >= 0 for a reproducible piece; None: random.
            temperature: > 0.
            top_p: in (0, 1].
            guidance: valence guidance weight in [0, 8]; 0: off.
            tonal_prime: start from a silent bar in a key whose mode follows the valence.
            key_strength: with ``tonal_prime``, logit penalty (nats) on pitches outside the key.
            steer: candidates per bar for emotion-steered decoding, 0..MAX_STEER (0/1: off).
            tempo_bpm: the tempo the piece will be played at (> 0); steering judges by it.
            on_bar: called with (bars done, ``bars``) after each bar (progress); the piece is the
                same with or without it.

        Returns:
            (notes, bar_beats): decoded notes (onsets in sixteenth steps) and each bar's beats.

        Raises:
            TypeError, ValueError: an argument is out of range.
            RuntimeError: no free stream slot.
        """
        if not is_int(bars):
            raise TypeError(f"bars must be an int >= 1, got {bars!r}")
        if bars < 1:
            raise ValueError(f"bars must be >= 1, got {bars}")
        stream = self.open_stream(
            seed,
            valence,
            arousal,
            temperature=temperature,
            top_p=top_p,
            guidance=guidance,
            tonal_prime=tonal_prime,
            key_strength=key_strength,
            steer=steer,
            tempo_bpm=tempo_bpm,
        )
        try:
            if on_bar is None:
                tokens = self.generate_bars([stream], bars)[0]
            else:  # bar by bar: consecutive outputs concatenate into the same stream
                parts = []
                for done in range(1, bars + 1):
                    parts.append(self.generate_bars([stream], 1)[0])
                    on_bar(done, bars)
                tokens = np.concatenate(parts)
        finally:
            self.close_stream(stream)
        return codec.decode_tokens(tokens)

    # ---------------------------------------------------------------------------- internals
    def _check_ids(self, stream_ids: int | Sequence[int] | np.ndarray) -> np.ndarray:
        """``stream_ids`` as a distinct, open intp[n] array.

        Raises:
            TypeError: not integers.
            ValueError: out of range, not open, or repeated.
        """
        if isinstance(stream_ids, bool):
            raise TypeError(f"stream ids must be ints, got {stream_ids!r}")
        ids = np.asarray(stream_ids)
        if ids.ndim == 0:
            ids = ids.reshape(1)
        if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
            raise TypeError(f"stream ids must be an int or a 1-D sequence of ints, got {stream_ids!r}")
        ids = ids.astype(np.intp, copy=False)
        if ids.size == 0:
            return ids
        if ids.min() < 0 or ids.max() >= self.max_streams:
            raise ValueError(f"stream ids must be in 0..{self.max_streams - 1}, got {ids.tolist()}")
        if not self._active[ids].all():
            raise ValueError(f"streams {ids[~self._active[ids]].tolist()} are not open")
        if ids.size > 1 and np.unique(ids).size != ids.size:
            raise ValueError(f"stream ids must be distinct, got {ids.tolist()}")
        return ids

    def _advance(
        self, ids: np.ndarray, forced: np.ndarray | None = None, logprob: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Run the model once for the (validated) ``ids`` and sample; returns (tokens, is_bar) views.

        With ``forced`` (int64[n]) those tokens are taken instead of sampled (priming); a forced
        token the stream's mask refuses raises ValueError and changes nothing after the model run.
        With ``logprob`` (float64[n]) the log-probability of each sampled token under the
        distribution it was drawn from (masked, tempered, nucleus renormalised) is written there.
        """
        n = ids.size
        sc = self._scratch
        if n == 0:  # onnxruntime aborts the process on an empty batch: never send one
            return sc.token[:0], sc.is_bar[:0]
        guided = ids[self._guidance[ids] > 0]
        rows = n + guided.size  # the streams, then the shadows of the guided ones
        token, cond = sc.token[:rows], sc.cond[:rows]
        h, c = sc.state_view(sc.h, rows), sc.state_view(sc.c, rows)
        np.take(self._next_token, ids, out=token[:n], mode="clip")
        opening = (token[:n] >= V.BAR_OFFSET) & (token[:n] < V.POS_OFFSET)
        if opening.any():  # a bar line is fed now: the new bar carries the latest target
            self._cond[ids[opening]] = self._target[ids[opening]]
        np.take(self._cond, ids, axis=0, out=cond[:n], mode="clip")
        np.take(self._h, ids, axis=1, out=h[:, :n], mode="clip")
        np.take(self._c, ids, axis=1, out=c[:, :n], mode="clip")
        if guided.size:
            token[n:] = self._next_token[guided]
            cond[n:, 0] = -self._cond[guided, 0]
            cond[n:, 1] = self._cond[guided, 1]
            h[:, n:] = self._h_shadow[:, guided]
            c[:, n:] = self._c_shadow[:, guided]
        logits, h_out, c_out = self._session.run(OUTPUT_NAMES, {"token": token, "cond": cond, "h": h, "c": c})
        self._h[:, ids] = h_out[:, :n]
        self._c[:, ids] = c_out[:, :n]
        if guided.size:
            self._h_shadow[:, guided] = h_out[:, n:]
            self._c_shadow[:, guided] = c_out[:, n:]
            rows_guided = np.flatnonzero(self._guidance[ids] > 0)
            weight = self._guidance[guided][:, None]
            own = logits[rows_guided]
            logits[rows_guided] = own + weight * (own - logits[n:])
        logits = logits[:n]
        if self._biased[ids].any():
            bias = np.take(self._key_bias, ids, axis=0, out=sc.bias[:n], mode="clip")
            loose = self._offbeat_pull[ids] < 1.0  # only these pull notes between beats less
            if loose.any():  # an onset between beats (a passing or neighbour tone)
                offbeat = loose & (self._grammar[ids, grammar.STATE_POS] % V.STEPS_PER_BEAT != 0)
                bias[offbeat] = self._offbeat_bias[ids[offbeat]]
            logits += bias
        mask = sc.mask[:n]
        fill_masks_rows(self._grammar, ids, self._allowed_bars, False, sc.states, sc.mask)
        if forced is not None:
            refused = ~mask[np.arange(n), forced]
            if refused.any():
                k = int(np.flatnonzero(refused)[0])
                raise ValueError(
                    f"token {V.token_name(int(forced[k]))} is not allowed here (stream {ids[k]}, "
                    f"meter {self.meter_beats}/4)"
                )
            tokens = forced
        else:
            temperature, top_p, uniforms = sc.temperature[:n], sc.top_p[:n], sc.uniforms[:n]
            np.take(self._temperature, ids, out=temperature, mode="clip")
            np.take(self._top_p, ids, out=top_p, mode="clip")
            self._rng.draw(ids, uniforms)
            tokens = self._sampler.sample(logits, mask, temperature, top_p, uniforms)
            if logprob is not None:
                logprob[...] = self._sampler.logprob
        is_bar = sc.is_bar[:n]
        bad = advance_rows(self._grammar, ids, tokens, is_bar)
        if bad >= 0:  # the mask forbids this; a failure here is a bug in the engine, not bad input
            raise RuntimeError(
                f"sampled token {V.token_name(int(tokens[bad]))} breaks the grammar (stream {ids[bad]})"
            )
        self._next_token[ids] = tokens
        self._count[ids] += 1
        self._bars[ids] += is_bar
        return tokens, is_bar

    # ------------------------------------------------------- slot tables (for engine.model.steering)
    def _copy_slots(self, src: np.ndarray, dst: np.ndarray) -> None:
        """Copy every per-slot table from slots ``src`` to slots ``dst`` (same length)."""
        for table in (self._h, self._c, self._h_shadow, self._c_shadow):
            table[:, dst] = table[:, src]
        for arr in (
            self._next_token, self._cond, self._target, self._temperature, self._top_p, self._grammar,
            self._bars, self._count, self._guidance, self._key_bias, self._biased, self._offbeat_pull,
            self._offbeat_bias, self._mode_guard,
        ):  # fmt: skip
            arr[dst] = arr[src]

    def _take_held(self, ids: np.ndarray) -> np.ndarray:
        """The BAR tokens ``ids`` hold (int64[n], a copy), released: they are output now."""
        held = self._held[ids].copy()
        self._held[ids] = _NO_TOKEN
        return held
