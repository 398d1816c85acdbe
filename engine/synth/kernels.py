"""Numba kernels of the built-in synth (:mod:`engine.synth.polysynth`): state, instruments, renderer.

One compiled call renders one audio block (:func:`render_block`, reached from Python through the
C entry point :func:`block_kernel`): it applies the queued events at their exact frames, renders
every sounding voice over the segments between events (voice by voice, into a planar float64 mix
buffer), runs the master limiter and writes float32 stereo. Nothing in it allocates: all state
lives in arrays that :class:`engine.synth.polysynth.Synth` preallocates, and the C entry point takes raw
pointers (a numba dispatcher call would allocate an NRT MemInfo per array argument).

Block-size invariance: every piece of state advances per sample, or per *lane group* of
:data:`LANES` samples aligned to the voice's own age (never to the block); events land on their
frame; voices are freed after a number of samples fixed when their note starts or is released.
Any split of the same frames into blocks gives bit-identical output. (The serial renderers use
``fastmath={"contract"}``, fused multiply-adds, which is deterministic: each has one code path.)

Speed: what has a closed form in the voice's age -- the piano's partials, the pad's and bass's
band-limited saws and sub sine, the drums' noise (a counter-based hash), metal and fixed tone -- is
computed for many samples at once in loops that LLVM vectorises; only filters and envelopes run
sample by sample (a one- or two-FMA dependency per sample). Hot loops index with unsigned
integers (numba adds negative-index wraparound to signed ones) and every kernel uses
``error_model="numpy"`` (no division-by-zero branch): both would block vectorisation. Envelope
stages and voice lifetimes are counted in samples, so per-sample loops carry no comparisons.

Instruments (indices into :data:`engine.synth.polysynth.INSTRUMENTS`):

* piano: 12 modal partials (9 inharmonic string partials and detuned "second string" twins of the
  lowest three, which gives beating and a two-stage decay); partial ``k`` at age ``g * LANES + j``
  is ``Im(Z_k(g) * w_k**j)`` with ``Z_k(g + 1) = Z_k(g) * w_k**LANES`` (``w_k`` a decaying complex
  rotation), so a partial costs two multiply-adds per sample and no ``sin``. Brightness (spectral
  tilt, hammer low-pass) and level follow velocity; a short filtered-noise hammer transient; the
  sound decays while held; note-off engages a damper at the next lane-group boundary (at most
  0.7 ms later; notes from F6 up have none, like a real piano).
* pad: three detuned polyBLEP saws through two one-pole low-passes; slow attack, long release.
* bass: polyBLEP saw + sine sub through a resonant TPT state-variable low-pass whose cutoff falls
  from a velocity-dependent peak (filter envelope, stepped once per lane group); short attack,
  decay to a sustain level.
* pluck: Karplus-Strong string: a per-voice delay line excited with velocity-filtered noise (with
  a pick-position comb), a two-point loss filter and a first-order all-pass for exact tuning.
* drums: a General MIDI drum-map subset built from a swept sine (kick, toms, snare body), fixed
  tones (snare, side stick, ride bell), noise and six square "metal" oscillators (hats, cymbals),
  shaped by a state-variable filter (low/band/high-pass mix); clap noise bursts. Closed and pedal
  hats choke open hats.
"""

from __future__ import annotations

import ctypes
import functools
import math
from collections.abc import Callable
from typing import Any, Final

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic

# --- instruments --------------------------------------------------------------------------------
PIANO: Final = 0
PAD: Final = 1
BASS: Final = 2
PLUCK: Final = 3
DRUMS: Final = 4
N_CHANNELS: Final = 16
DRUM_CHANNEL: Final = 9

# --- event ring ---------------------------------------------------------------------------------
EV_NOTE_ON: Final = 1
EV_NOTE_OFF: Final = 2
EV_ALL_OFF: Final = 3
EV_SET_CHANNEL: Final = 4
# ev_data columns (int32)
ED_KIND: Final = 0
ED_CHANNEL: Final = 1
ED_NOTE: Final = 2  # the instrument index for EV_SET_CHANNEL
ED_VELOCITY: Final = 3
ED_SIZE: Final = 4
# ev_value columns (float64), EV_SET_CHANNEL only
EVV_GAIN: Final = 0  # linear gain
EVV_PAN: Final = 1  # -1 .. 1
EVV_SIZE: Final = 2
# ring_idx (int64): monotonic counters; slot = counter % capacity
RING_READ: Final = 0  # written by the consumer (render_block) only
RING_WRITE: Final = 1  # written by the producer only, after the event's fields
RING_DROPPED: Final = 2  # written by the producer only
RING_SIZE: Final = 3

# --- channel table ------------------------------------------------------------------------------
CH_GAIN: Final = 0  # linear
CH_PAN: Final = 1
CH_SIZE: Final = 2

# --- global state -------------------------------------------------------------------------------
GI_FRAME: Final = 0  # next frame to render
GI_ACTIVE: Final = 1  # active voices after the last block
GI_PEAK: Final = 2  # most voices active at once since reset
GI_ORDER: Final = 3  # note-ons so far (voice age order, noise seeds)
GI_SIZE: Final = 4
GF_SR: Final = 0  # sample rate, Hz
GF_LIM_ENV: Final = 1  # limiter peak envelope
GF_LIM_REL: Final = 2  # limiter release multiplier per sample (200 ms)
GF_DC_K: Final = 3  # declick decay per sample (2 ms)
GF_SIZE: Final = 4

# --- voice state: integers (vi, int64) ---------------------------------------------------------
VI_ACTIVE: Final = 0
VI_INST: Final = 1
VI_CHAN: Final = 2
VI_NOTE: Final = 3
VI_RELEASED: Final = 4
VI_ORDER: Final = 5
VI_AGE: Final = 6  # samples since note-on
VI_NPART: Final = 7  # piano partials in use
VI_HAM_LEFT: Final = 8  # piano hammer samples left
VI_KS_N: Final = 9  # pluck delay length, samples
VI_KS_POS: Final = 10
VI_DRUM: Final = 11  # drum type
VI_BURST_LEFT: Final = 12  # clap bursts still to come
VI_BURST_CTR: Final = 13  # samples to the next clap burst
VI_ACC_GROUP: Final = 14  # piano: the lane group whose sums acc[v] holds (-1: none)
VI_REL_PENDING: Final = 15  # piano: release to apply at the next lane-group boundary
VI_LEFT: Final = 16  # samples left in the envelope stage (pad, bass) or until silence (pluck)
VI_STAGE: Final = 17  # envelope stage (pad, bass): ENV_ATTACK, ENV_SUSTAIN or ENV_RELEASE
VI_SIZE: Final = 18
ENV_ATTACK: Final = 0
ENV_SUSTAIN: Final = 1
ENV_RELEASE: Final = 2
_FOREVER: Final = 1 << 62  # samples

# --- voice state: floats (vf, float64) ---------------------------------------------------------
VF_GL: Final = 0  # output gains (channel gain, pan, velocity, instrument level)
VF_GR: Final = 1
VF_LAST_L: Final = 2  # last output sample (declick on steal)
VF_LAST_R: Final = 3
VF_DC_L: Final = 4  # declick offset, decays to 0
VF_DC_R: Final = 5
# amplitude envelope (pad, bass): env = env * EK + EB for VI_LEFT samples, then the next stage
VF_ENV: Final = 6
VF_EK: Final = 7
VF_EB: Final = 8
VF_KS_A0: Final = 9  # pluck: amplitude bound at note-on
VF_KS_D: Final = 10  # pluck: per-sample decay of the bound
VF_DEC_K: Final = 11
VF_DEC_B: Final = 12
VF_REL_K: Final = 13  # release multiplier (piano partials, pad/bass env)
# piano
VF_BOUND: Final = 14  # upper bound of |partial sum| (falls by BOUND_K per lane group)
VF_BOUND_K: Final = 15
VF_HAM_A: Final = 16
VF_HAM_K: Final = 17
VF_HAM_LP: Final = 18
VF_HAM_ALPHA: Final = 19
# pad / bass oscillators (phases at the start of the current lane group) and filters
VF_PH0: Final = 20
VF_PH1: Final = 21
VF_PH2: Final = 22
VF_DT0: Final = 23
VF_DT1: Final = 24
VF_DT2: Final = 25
VF_IDT0: Final = 26
VF_IDT1: Final = 27
VF_IDT2: Final = 28
VF_LP_A: Final = 29
VF_LP_B: Final = 30
VF_LP1: Final = 31
VF_LP2: Final = 32
VF_G: Final = 33  # bass filter: tan(pi fc / sr), falls toward its sustain value
VF_G_K: Final = 34
VF_G_B: Final = 35
VF_RES_K: Final = 36  # SVF damping (1 / Q)
VF_IC1: Final = 37  # SVF state (bass, drums)
VF_IC2: Final = 38
# pluck
VF_KS_RHO: Final = 39
VF_KS_RHO_REL: Final = 40
VF_KS_C: Final = 41
VF_KS_XPREV: Final = 42
VF_KS_APX: Final = 43
VF_KS_APY: Final = 44
# drums
VF_D_ENV: Final = 45
VF_D_ENV_K: Final = 46
VF_T1_F: Final = 47  # cycles per sample; glides: f = f * T1_KS + T1_FB
VF_T1_KS: Final = 48
VF_T1_FB: Final = 49
VF_T1_A: Final = 50
VF_T1_K: Final = 51
VF_T2_A: Final = 52
VF_T2_K: Final = 53
VF_N_A: Final = 54
VF_N_K: Final = 55
VF_N_K_TAIL: Final = 56
VF_N_BURST: Final = 57
VF_BURST_PERIOD: Final = 58
VF_M_A: Final = 59
VF_M_K: Final = 60
VF_S11: Final = 61  # SVF as a 2x2 state update s' = S s + B x, output C . (s, x)
VF_S12: Final = 62
VF_S21: Final = 63
VF_S22: Final = 64
VF_SB1: Final = 65
VF_SB2: Final = 66
VF_SC1: Final = 67
VF_SC2: Final = 68
VF_SC3: Final = 69
VF_SIZE: Final = 70

# --- voice state: unsigned (vu, uint64): noise state, integer phase accumulators (1.0 = 2**64) --
VU_RNG: Final = 0
VU_T1_PH: Final = 1
VU_T2_PH: Final = 2
VU_T2_INC: Final = 3
VU_M_PH: Final = 4  # 6 metal phases
VU_M_INC: Final = 10  # 6 metal increments
VU_SIZE: Final = 16
_PHASE_ONE: Final = 18446744073709551616.0  # 2**64: a float phase (cycles) to uint64
_PHASE_UNIT: Final = 1.1102230246251565e-16  # 2**-53: (phase >> 11) to cycles

N_PARTIALS: Final = 12
LANES: Final = 32  # lane group: closed-form oscillators are computed 32 samples at a time
CHUNK_FRAMES: Final = 256  # mix buffer length; segments never exceed it
LOWEST_PLUCK_HZ: Final = 27.5  # pluck notes below A0 are raised by octaves

# --- drum map -------------------------------------------------------------------------------
DR_KICK: Final = 0
DR_SNARE: Final = 1
DR_SIDESTICK: Final = 2
DR_CLAP: Final = 3
DR_HAT_CLOSED: Final = 4
DR_HAT_PEDAL: Final = 5
DR_HAT_OPEN: Final = 6
DR_CRASH: Final = 7
DR_RIDE: Final = 8
DR_TOM: Final = 9

# levels and constants
SILENT: Final = 3.1622776601683795e-05  # -90 dBFS: a voice quieter than this is freed
LIMIT_THRESHOLD: Final = 0.8
PIANO_LEVEL: Final = 0.65
PAD_LEVEL: Final = 0.17
BASS_LEVEL: Final = 0.42
PLUCK_LEVEL: Final = 0.6
DRUM_LEVEL: Final = 0.55
_METAL_HZ = (205.3, 304.4, 369.6, 522.7, 540.0, 800.0)  # TR-808 cymbal oscillators
_FAST = {"contract"}  # fused multiply-add: one FMA per recurrence step


def drum_tables() -> tuple[np.ndarray, np.ndarray]:
    """The drum map: for each MIDI note, its drum type (``DR_*``) and its pitch / scale.

    Returns:
        ``(drum_type, drum_hz)``: int64[128] and float64[128]. ``drum_hz`` is the body pitch in Hz
        for kick, snare, side stick and toms, and a brightness scale (about 1) for hats and
        cymbals. Notes outside the General MIDI subset map to the nearest family (documented in
        :mod:`engine.synth.polysynth`).
    """
    kind = np.full(128, DR_TOM, dtype=np.int64)
    hz = np.ones(128, dtype=np.float64)
    # fmt: off
    table: dict[int, tuple[int, float]] = {
        27: (DR_SIDESTICK, 900.0), 28: (DR_CLAP, 1.0), 29: (DR_SNARE, 240.0), 30: (DR_SNARE, 230.0),
        31: (DR_SIDESTICK, 700.0), 32: (DR_SIDESTICK, 1200.0), 33: (DR_SIDESTICK, 1500.0),
        34: (DR_RIDE, 1.3), 35: (DR_KICK, 44.0), 36: (DR_KICK, 50.0), 37: (DR_SIDESTICK, 520.0),
        38: (DR_SNARE, 185.0), 39: (DR_CLAP, 1.0), 40: (DR_SNARE, 215.0), 41: (DR_TOM, 82.0),
        42: (DR_HAT_CLOSED, 1.0), 43: (DR_TOM, 98.0), 44: (DR_HAT_PEDAL, 1.0), 45: (DR_TOM, 110.0),
        46: (DR_HAT_OPEN, 1.0), 47: (DR_TOM, 131.0), 48: (DR_TOM, 147.0), 49: (DR_CRASH, 1.0),
        50: (DR_TOM, 175.0), 51: (DR_RIDE, 1.0), 52: (DR_CRASH, 0.8), 53: (DR_RIDE, 1.15),
        54: (DR_HAT_CLOSED, 1.3), 55: (DR_CRASH, 1.3), 56: (DR_SIDESTICK, 800.0), 57: (DR_CRASH, 1.12),
        58: (DR_HAT_CLOSED, 0.7), 59: (DR_RIDE, 0.9), 60: (DR_TOM, 392.0), 61: (DR_TOM, 330.0),
        62: (DR_TOM, 294.0), 63: (DR_TOM, 277.0), 64: (DR_TOM, 220.0), 65: (DR_TOM, 349.0),
        66: (DR_TOM, 262.0), 67: (DR_SIDESTICK, 900.0), 68: (DR_SIDESTICK, 680.0),
        69: (DR_HAT_CLOSED, 1.2), 70: (DR_HAT_CLOSED, 1.4), 71: (DR_SIDESTICK, 2000.0),
        72: (DR_SIDESTICK, 1800.0), 73: (DR_HAT_CLOSED, 0.8), 74: (DR_HAT_OPEN, 0.8),
        75: (DR_SIDESTICK, 2500.0), 76: (DR_SIDESTICK, 1100.0), 77: (DR_SIDESTICK, 850.0),
        78: (DR_TOM, 450.0), 79: (DR_TOM, 400.0), 80: (DR_HAT_CLOSED, 1.6), 81: (DR_HAT_OPEN, 1.6),
        82: (DR_HAT_CLOSED, 1.3), 83: (DR_HAT_OPEN, 1.4), 84: (DR_RIDE, 1.5), 85: (DR_SIDESTICK, 1300.0),
        86: (DR_TOM, 70.0), 87: (DR_TOM, 62.0),
    }
    # fmt: on
    mapped = np.asarray(sorted(table))
    for note in range(128):
        nearest = int(mapped[np.argmin(np.abs(mapped - note))])
        kind[note], hz[note] = table[nearest]
    return kind, hz


def _make_fence(ordering: str) -> Callable[..., Any]:
    """An intrinsic emitting an LLVM ``fence`` (compiles to nothing on x86-64 for acquire/release,
    but also stops the compiler from moving memory accesses across it)."""

    @intrinsic
    def fence(typingctx):  # pragma: no cover - numba
        def codegen(context, builder, signature, args):
            builder.fence(ordering)
            return context.get_dummy_value()

        return types.void(), codegen

    return fence


_ACQUIRE = _make_fence("acquire")
_RELEASE = _make_fence("release")


# ================================================================================================
# small kernels
# ================================================================================================


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _decay_k(seconds: float, sr: float) -> float:  # pragma: no cover - numba
    """Per-sample multiplier of an exponential with time constant ``seconds`` (1/e)."""
    return math.exp(-1.0 / (seconds * sr))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _t60_k(seconds: float, sr: float) -> float:  # pragma: no cover - numba
    """Per-sample multiplier that falls by 60 dB in ``seconds``."""
    return math.exp(-6.907755278982137 / (seconds * sr))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _noise(x: np.uint64) -> tuple[np.uint64, float]:  # pragma: no cover - numba
    """xorshift64: next state and a uniform value in [-1, 1)."""
    x ^= x << np.uint64(13)
    x ^= x >> np.uint64(7)
    x ^= x << np.uint64(17)
    return x, float(x >> np.uint64(11)) * (2.0 / 9007199254740992.0) - 1.0


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def _sin_cycle(p: float) -> float:  # pragma: no cover - numba
    """sin(2 pi p) for p in [0, 1), branch-free 9th-order odd polynomial (error < 4e-6)."""
    q = p - 0.5
    a = abs(q)
    x = min(a, 0.5 - a) * 6.283185307179586
    x2 = x * x
    s = x * (1.0 + x2 * (-1.0 / 6.0 + x2 * (1.0 / 120.0 + x2 * (-1.0 / 5040.0 + x2 * (1.0 / 362880.0)))))
    return -math.copysign(s, q)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _blep_saw(p: float, idt: float) -> float:  # pragma: no cover - numba
    """Band-limited saw (polyBLEP, branch-free) at phase ``p`` in [0, 1); ``idt`` = 1 / increment."""
    u = max(0.0, 1.0 - p * idt)
    w = max(0.0, (p - 1.0) * idt + 1.0)
    return 2.0 * p - 1.0 + u * u - w * w


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _svf_matrix(vf, v, fc_hz, damping, mix_lp, mix_bp, mix_hp, sr):  # pragma: no cover - numba
    """A fixed TPT state-variable filter as ``s' = S s + B x``, ``y = C1 s1 + C2 s2 + C3 x``.

    ``y`` is ``mix_lp * low-pass + mix_bp * band-pass + mix_hp * high-pass`` of ``x``.
    """
    fc = min(fc_hz, 0.45 * sr)
    g = math.tan(math.pi * fc / sr)
    a1 = 1.0 / (1.0 + g * (g + damping))
    a2 = g * a1
    a3 = g * a2
    vf[v, VF_S11] = 2.0 * a1 - 1.0
    vf[v, VF_S12] = -2.0 * a2
    vf[v, VF_S21] = 2.0 * a2
    vf[v, VF_S22] = 1.0 - 2.0 * a3
    vf[v, VF_SB1] = 2.0 * a2
    vf[v, VF_SB2] = 2.0 * a3
    # band = a1 s1 - a2 s2 + a2 x; low = a2 s1 + (1 - a3) s2 + a3 x; high = x - damping band - low
    p = mix_bp - mix_hp * damping
    q = mix_lp - mix_hp
    vf[v, VF_SC1] = p * a1 + q * a2
    vf[v, VF_SC2] = -p * a2 + q * (1.0 - a3)
    vf[v, VF_SC3] = p * a2 + q * a3 + mix_hp


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _velocity_amp(velocity: int) -> float:  # pragma: no cover - numba
    """Velocity 1..127 -> linear amplitude, ``(velocity / 127) ** 1.6`` (64 -> -9.5 dB)."""
    return (velocity / 127.0) ** 1.6


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _samples_until(level, target, k):  # pragma: no cover - numba
    """Samples n >= 1 after which ``level * k**n`` (0 < k < 1) has fallen below ``target``."""
    if level <= target or k >= 1.0:
        return 1 if k < 1.0 else _FOREVER
    return max(1, math.ceil(math.log(target / level) / math.log(k)))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _envelope(vi, vf, v, attack_s, attack_target, decay_s, sustain, release_s, sr):  # pragma: no cover
    """Start the pad/bass amplitude envelope (time constants in s).

    Attack: exponential toward ``attack_target`` (> 1) for the samples it takes to reach 1 (then
    ``env`` is set to exactly 1); decay: exponential toward ``sustain``; release (see
    :func:`_release`): exponential to silence, the voice freed when it is below -90 dBFS. Stage
    lengths are counted in samples, so the per-sample loop carries no comparisons.
    """
    c = 1.0 - _decay_k(attack_s, sr)
    vf[v, VF_ENV] = 0.0
    vf[v, VF_EK] = 1.0 - c
    vf[v, VF_EB] = c * attack_target
    vi[v, VI_STAGE] = ENV_ATTACK
    vi[v, VI_LEFT] = _samples_until(attack_target, attack_target - 1.0, 1.0 - c)
    dk = _decay_k(decay_s, sr) if decay_s > 0.0 else 1.0
    vf[v, VF_DEC_K] = dk
    vf[v, VF_DEC_B] = sustain * (1.0 - dk)
    vf[v, VF_REL_K] = _decay_k(release_s, sr)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _envelope_next(vi, vf, v):  # pragma: no cover - numba
    """The current stage is over: attack -> sustain, release -> voice freed. Returns False if freed."""
    if vi[v, VI_STAGE] == ENV_ATTACK:
        vi[v, VI_STAGE] = ENV_SUSTAIN
        vi[v, VI_LEFT] = _FOREVER
        vf[v, VF_ENV] = 1.0
        vf[v, VF_EK] = vf[v, VF_DEC_K]
        vf[v, VF_EB] = vf[v, VF_DEC_B]
        return True
    vi[v, VI_ACTIVE] = 0
    return False


# ================================================================================================
# note starts
# ================================================================================================


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _start_piano(v, note, vel, sr, vi, vf, pz, pw, p8):  # pragma: no cover - numba
    v01 = vel / 127.0
    f0 = 440.0 * 2.0 ** ((note - 69) / 12.0)
    inharm = 1.0e-4 * 2.0 ** ((note - 60) / 12.0 * 0.7)
    t60_1 = min(22.0, 18.0 * 2.0 ** (-(note - 21) / 20.0))
    fcut = 600.0 + 6000.0 * v01 * v01 + 2.0 * f0  # harder hammer, brighter tone
    tilt = 1.5 - 1.0 * v01  # partial k at k**-tilt
    twin_cents = 0.6 + 0.35 * ((note * 5) % 3)
    n = 0
    total = 0.0
    slowest = 0.0
    nyq = 0.45 * sr
    for slot in range(N_PARTIALS):
        if slot < 9:
            k = slot + 1
            share = 0.62 if k <= 3 else 1.0
            detune = 1.0
            t60_mul = 1.0
        else:
            k = slot - 8
            share = 0.38
            detune = 2.0 ** (twin_cents / 1200.0)
            t60_mul = 2.3
        fk = k * f0 * math.sqrt(1.0 + inharm * k * k) * detune
        if fk >= nyq or fk > 16000.0:
            continue
        amp = share * k**-tilt * abs(math.sin(math.pi * k / 7.7)) / (1.0 + (fk / fcut) ** 2)
        t60 = t60_1 * t60_mul / ((1.0 + 0.22 * (k - 1)) * (1.0 + fk / 4000.0))
        r = _t60_k(max(t60, 0.05), sr)
        w = 2.0 * math.pi * fk / sr
        pz[v, 0, n] = amp
        pz[v, 1, n] = 0.0
        wr = r * math.cos(w)
        wi = r * math.sin(w)
        cr = 1.0
        ci = 0.0
        for j in range(LANES):  # lanes: w**j (float32), then the group step w**LANES (float64)
            pw[v, 0, n, j] = cr
            pw[v, 1, n, j] = ci
            cr, ci = cr * wr - ci * wi, cr * wi + ci * wr
        p8[v, 0, n] = cr
        p8[v, 1, n] = ci
        total += amp
        slowest = max(slowest, math.hypot(cr, ci))
        n += 1
    for slot in range(n):
        pz[v, 0, slot] /= total
    vi[v, VI_NPART] = n
    vi[v, VI_ACC_GROUP] = -1
    vi[v, VI_REL_PENDING] = 0
    vf[v, VF_BOUND] = 1.0
    vf[v, VF_BOUND_K] = slowest
    # damper time constant; no dampers from F6 (89) up: the release changes nothing there
    vf[v, VF_REL_K] = 1.0 if note >= 89 else _decay_k(0.09 + 0.25 * max(0.0, (60.0 - note) / 39.0), sr)
    vi[v, VI_HAM_LEFT] = int(0.015 * sr)
    vf[v, VF_HAM_A] = 0.22 * v01 * v01
    vf[v, VF_HAM_K] = _decay_k(0.0025, sr)
    vf[v, VF_HAM_LP] = 0.0
    vf[v, VF_HAM_ALPHA] = 0.08 + 0.5 * v01


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _start_pad(v, note, vel, sr, vi, vf, seed):  # pragma: no cover - numba
    v01 = vel / 127.0
    f0 = 440.0 * 2.0 ** ((note - 69) / 12.0)
    x = seed
    for c in range(3):
        x, u = _noise(x)
        dt = min(0.45, f0 * 2.0 ** ((c - 1) * 8.5 / 1200.0) / sr)  # -8.5, 0, +8.5 cents
        vf[v, VF_PH0 + c] = 0.5 + 0.5 * u
        vf[v, VF_DT0 + c] = dt
        vf[v, VF_IDT0 + c] = 1.0 / dt
    fc = min(0.4 * sr, 350.0 + 2.2 * f0 + 900.0 * v01)
    a = 1.0 - math.exp(-2.0 * math.pi * fc / sr)
    vf[v, VF_LP_A] = a
    vf[v, VF_LP_B] = 1.0 - a
    vf[v, VF_LP1] = 0.0
    vf[v, VF_LP2] = 0.0
    _envelope(vi, vf, v, 0.22, 1.25, 0.0, 1.0, 0.42, sr)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _start_bass(v, note, vel, sr, vi, vf):  # pragma: no cover - numba
    v01 = vel / 127.0
    f0 = 440.0 * 2.0 ** ((note - 69) / 12.0)
    dt = min(0.45, f0 / sr)
    vf[v, VF_PH0] = 0.0
    vf[v, VF_DT0] = dt
    vf[v, VF_IDT0] = 1.0 / dt
    fc_peak = min(0.2 * sr, 200.0 + f0 * (5.0 + 22.0 * v01))
    fc_sus = min(0.2 * sr, 120.0 + 2.5 * f0)
    gk = _decay_k(0.09, sr) ** LANES  # per lane group
    vf[v, VF_G] = math.tan(math.pi * fc_peak / sr)
    vf[v, VF_G_K] = gk
    vf[v, VF_G_B] = math.tan(math.pi * fc_sus / sr) * (1.0 - gk)
    vf[v, VF_RES_K] = 0.75
    vf[v, VF_IC1] = 0.0
    vf[v, VF_IC2] = 0.0
    _envelope(vi, vf, v, 0.002, 1.4, 0.6, 0.7, 0.05, sr)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _start_pluck(v, note, vel, sr, vi, vf, dl, seed):  # pragma: no cover - numba
    v01 = vel / 127.0
    f0 = 440.0 * 2.0 ** ((note - 69) / 12.0)
    while f0 < LOWEST_PLUCK_HZ:
        f0 *= 2.0
    f0 = min(f0, 0.2 * sr)
    period = sr / f0
    n = int(period - 0.6)
    frac = period - 0.5 - n  # in [0.1, 1.1): the all-pass supplies the fractional delay
    vf[v, VF_KS_C] = (1.0 - frac) / (1.0 + frac)
    t60 = min(6.0, max(0.5, 3.5 * 2.0 ** (-(note - 48) / 24.0)))
    vf[v, VF_KS_RHO] = 10.0 ** (-3.0 / (t60 * f0))
    vf[v, VF_KS_RHO_REL] = 10.0 ** (-3.0 / (0.18 * f0))
    alpha = 0.3 + 0.65 * v01
    x = seed
    lp = 0.0
    mean = 0.0
    for i in range(n):
        x, u = _noise(x)
        lp += alpha * (u - lp)
        dl[v, i] = lp
        mean += lp
    mean /= n
    for i in range(n):
        dl[v, i] -= mean
    m = max(1, int(0.13 * n))
    for i in range(n - 1, m - 1, -1):  # pick-position comb, in place from the end
        dl[v, i] -= 0.85 * dl[v, i - m]
    peak = 1e-9
    for i in range(n):
        peak = max(peak, abs(dl[v, i]))
    energy = 0.0
    for i in range(n):
        dl[v, i] /= peak
        energy += dl[v, i] * dl[v, i]
    vi[v, VI_KS_N] = n
    vi[v, VI_KS_POS] = 0
    vf[v, VF_KS_XPREV] = 0.0
    vf[v, VF_KS_APX] = 0.0
    vf[v, VF_KS_APY] = 0.0
    # The loop is passive (|loss filter| <= rho, all-pass 1): the energy in the line falls by at
    # least rho**2 per period, and |sample| <= sqrt(energy). The voice is freed when that bound
    # is below -90 dBFS.
    vf[v, VF_KS_A0] = math.sqrt(energy)
    vf[v, VF_KS_D] = vf[v, VF_KS_RHO] ** (1.0 / period)
    vi[v, VI_LEFT] = _samples_until(
        vf[v, VF_KS_A0], SILENT / max(vf[v, VF_GL], vf[v, VF_GR], 1e-30), vf[v, VF_KS_D]
    )


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _tone(vf, vu, v, second, start_hz, end_hz, sweep_s, amp, decay_s, sr):  # pragma: no cover - numba
    """Set drum tone 1 (gliding exponentially from start to end) or 2 (fixed): phase 0, decaying."""
    if second:
        vu[v, VU_T2_PH] = 0
        vu[v, VU_T2_INC] = np.uint64(min(0.45, start_hz / sr) * _PHASE_ONE)
        vf[v, VF_T2_A] = amp
        vf[v, VF_T2_K] = _decay_k(decay_s, sr)
    else:
        ks = _decay_k(sweep_s, sr) if sweep_s > 0.0 else 1.0
        vu[v, VU_T1_PH] = 0
        vf[v, VF_T1_F] = min(0.45, start_hz / sr)
        vf[v, VF_T1_KS] = ks
        vf[v, VF_T1_FB] = min(0.45, end_hz / sr) * (1.0 - ks)
        vf[v, VF_T1_A] = amp
        vf[v, VF_T1_K] = _decay_k(decay_s, sr)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _start_drum(v, kind, hz, vel, sr, vi, vf, vu):  # pragma: no cover - numba
    for c in range(VF_D_ENV, VF_SIZE):
        vf[v, c] = 0.0
    vf[v, VF_IC1] = 0.0
    vf[v, VF_IC2] = 0.0
    vi[v, VI_DRUM] = kind
    vi[v, VI_BURST_LEFT] = 0
    vi[v, VI_BURST_CTR] = 0
    vf[v, VF_D_ENV] = 1.0
    vf[v, VF_D_ENV_K] = 1.0
    vf[v, VF_T1_KS] = 1.0
    bright = 0.75 + 0.25 * vel / 127.0
    if kind == DR_KICK:
        _tone(vf, vu, v, False, 3.4 * hz, hz, 0.028, 1.0, 0.32, sr)
        vf[v, VF_N_A] = 0.6 * bright
        vf[v, VF_N_K] = _decay_k(0.003, sr)
        _svf_matrix(vf, v, 2800.0, 1.4, 1.0, 0.0, 0.0, sr)
    elif kind == DR_SNARE:
        _tone(vf, vu, v, False, 1.2 * hz, hz, 0.012, 0.5, 0.07, sr)
        _tone(vf, vu, v, True, 1.78 * hz, 0.0, 0.0, 0.25, 0.045, sr)
        vf[v, VF_N_A] = 0.8
        vf[v, VF_N_K] = _decay_k(0.135 if hz < 200.0 else 0.075, sr)
        fc = 3200.0 if hz < 200.0 else 3200.0 + 6000.0 * bright
        _svf_matrix(vf, v, fc, 1.1, 0.0, 0.8, 0.65 * bright, sr)
    elif kind == DR_SIDESTICK:
        _tone(vf, vu, v, False, hz, hz, 0.0, 0.55, 0.012, sr)
        _tone(vf, vu, v, True, 3.1 * hz, 0.0, 0.0, 0.3, 0.006, sr)
        vf[v, VF_N_A] = 0.5
        vf[v, VF_N_K] = _decay_k(0.008, sr)
        _svf_matrix(vf, v, 2400.0, 1.0, 0.0, 1.0, 0.0, sr)
    elif kind == DR_CLAP:
        vf[v, VF_N_BURST] = 1.0
        vf[v, VF_N_A] = 1.0
        vf[v, VF_N_K] = _decay_k(0.005, sr)
        vf[v, VF_N_K_TAIL] = _decay_k(0.11, sr)
        period = max(1, int(0.0095 * sr))
        vi[v, VI_BURST_LEFT] = 3
        vi[v, VI_BURST_CTR] = period
        vf[v, VF_BURST_PERIOD] = float(period)
        _svf_matrix(vf, v, 1150.0 * hz, 0.7, 0.0, 1.3, 0.25, sr)
    elif kind == DR_TOM:
        _tone(vf, vu, v, False, 1.45 * hz, hz, 0.045, 0.95, 0.12 + 0.16 * min(1.0, 110.0 / hz), sr)
        _tone(vf, vu, v, True, 1.52 * hz, 0.0, 0.0, 0.18, 0.05, sr)
        vf[v, VF_N_A] = 0.3
        vf[v, VF_N_K] = _decay_k(0.005, sr)
        _svf_matrix(vf, v, 3000.0, 1.2, 0.7, 0.0, 0.0, sr)
    else:  # hats and cymbals: noise + metal through a high/band-pass
        if kind == DR_HAT_CLOSED:
            tau, m_amp, n_amp, fc = 0.022, 0.45, 0.35, 7500.0
        elif kind == DR_HAT_PEDAL:
            tau, m_amp, n_amp, fc = 0.014, 0.3, 0.2, 7000.0
        elif kind == DR_HAT_OPEN:
            tau, m_amp, n_amp, fc = 0.19, 0.4, 0.3, 7000.0
        elif kind == DR_CRASH:
            tau, m_amp, n_amp, fc = 0.55, 0.3, 0.45, 4800.0
        else:  # ride (the ride bell, hz > 1.1, rings louder)
            tau, m_amp, n_amp, fc = 0.5, 0.38, 0.1, 5600.0
            _tone(vf, vu, v, False, 880.0 * hz, 880.0 * hz, 0.0, 0.3 if hz > 1.1 else 0.05, 0.35, sr)
        vf[v, VF_M_A] = m_amp
        vf[v, VF_M_K] = _decay_k(tau, sr)
        vf[v, VF_N_A] = n_amp
        vf[v, VF_N_K] = _decay_k(tau * 0.85, sr)
        _svf_matrix(vf, v, fc * min(hz, 1.6), 0.9, 0.0, 0.45 * bright, 0.9, sr)
        for c in range(6):
            vu[v, VU_M_INC + c] = np.uint64(min(0.45, _METAL_HZ[c] * hz * 1.3 / sr) * _PHASE_ONE)
            vu[v, VU_M_PH + c] = np.uint64(0.1 * c * _PHASE_ONE)
    vi[v, VI_LEFT] = _drum_left(v, vi, vf)


# ================================================================================================
# voice renderers: add n samples of voice v into mix[:, 0:n] (planar left, right)
# ================================================================================================


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _add_mono(mix, n, gl, gr):  # pragma: no cover - numba
    """Add the mono voice signal in ``mix[2, :n]`` to left and right with gains (vectorised)."""
    mono = mix[2]
    mix_l = mix[0]
    mix_r = mix[1]
    for t in range(np.uint64(n)):
        x = mono[t]
        mix_l[t] += x * gl
        mix_r[t] += x * gr


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _piano_release_now(v, vf, pw, p8, npart):  # pragma: no cover - numba
    """Fold the damper into the partials: lanes times rel**j, group step times rel**LANES."""
    rel = vf[v, VF_REL_K]
    if rel >= 1.0:
        return
    rj = 1.0
    for j in range(LANES):
        for k in range(npart):
            pw[v, 0, k, j] *= rj
            pw[v, 1, k, j] *= rj
        rj *= rel
    for k in range(npart):
        p8[v, 0, k] *= rj
        p8[v, 1, k] *= rj
    vf[v, VF_BOUND_K] *= rj


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _render_piano(v, n, vi, vf, vu, pz, pw, p8, acc, mix):  # pragma: no cover - numba
    """Piano voice (see the module docstring): lane sums cached per group in ``acc[v]``."""
    npart = vi[v, VI_NPART]
    age = vi[v, VI_AGE]
    ham_left = vi[v, VI_HAM_LEFT]
    gl = vf[v, VF_GL]
    gr = vf[v, VF_GR]
    gmax = max(gl, gr)
    bound = vf[v, VF_BOUND]
    ham_a = vf[v, VF_HAM_A]
    ham_k = vf[v, VF_HAM_K]
    ham_lp = vf[v, VF_HAM_LP]
    ham_alpha = vf[v, VF_HAM_ALPHA]
    rng = vu[v, VU_RNG]
    zre = pz[v, 0]
    zim = pz[v, 1]
    wre = pw[v, 0]
    wim = pw[v, 1]
    sre = p8[v, 0]
    sim = p8[v, 1]
    lanes = acc[v]
    mix_l = mix[0]
    mix_r = mix[1]
    if ham_left > 0:  # the hammer: filtered noise, the first 15 ms
        for i in range(min(n, ham_left)):
            rng, u = _noise(rng)
            ham_lp += ham_alpha * (u - ham_lp)
            h = ham_lp * ham_a
            ham_a *= ham_k
            mix_l[i] += h * gl
            mix_r[i] += h * gr
        ham_left = max(0, ham_left - n)
    s = 0.0
    i = 0
    while i < n:
        j0 = age & (LANES - 1)
        cnt = min(LANES - j0, n - i)
        group = age // LANES
        if vi[v, VI_ACC_GROUP] != group:
            for j in range(LANES):
                lanes[j] = 0.0
            for k in range(npart):
                zr = np.float32(zre[k])
                zi = np.float32(zim[k])
                for j in range(LANES):
                    lanes[j] += zr * wim[k, j] + zi * wre[k, j]
            vi[v, VI_ACC_GROUP] = group
        uj = np.uint64(j0)  # unsigned indices: no negative-index wraparound, so this vectorises
        ui = np.uint64(i)
        for t in range(np.uint64(cnt)):
            x = float(lanes[uj + t])
            mix_l[ui + t] += x * gl
            mix_r[ui + t] += x * gr
        i += cnt
        s = float(lanes[j0 + cnt - 1])
        age += cnt
        if (age & (LANES - 1)) == 0:
            for k in range(npart):
                zr = zre[k]
                zi = zim[k]
                zre[k] = zr * sre[k] - zi * sim[k]
                zim[k] = zr * sim[k] + zi * sre[k]
            bound *= vf[v, VF_BOUND_K]
            if vi[v, VI_REL_PENDING] == 1:
                vi[v, VI_REL_PENDING] = 0
                _piano_release_now(v, vf, pw, p8, npart)
            if ham_left == 0 and bound * gmax < SILENT:
                vi[v, VI_ACTIVE] = 0
                s = 0.0
                break
    vi[v, VI_AGE] = age
    vi[v, VI_HAM_LEFT] = ham_left
    vf[v, VF_BOUND] = bound
    vf[v, VF_HAM_A] = ham_a
    vf[v, VF_HAM_LP] = ham_lp
    vu[v, VU_RNG] = rng
    vf[v, VF_LAST_L] = s * gl
    vf[v, VF_LAST_R] = s * gr


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _pad_lanes(p0, p1, p2, d0, d1, d2, i0, i1, i2, lanes, start):  # pragma: no cover - numba
    """The three detuned saws for one lane group into ``lanes[start:start + LANES]`` (vectorised:
    closed-form phase per lane from the group's start phases ``p0..p2``)."""
    u = np.uint64(start)
    for t in range(LANES):
        x0 = p0 + t * d0
        x1 = p1 + t * d1
        x2 = p2 + t * d2
        s = _blep_saw(x0 - np.floor(x0), i0) + _blep_saw(x1 - np.floor(x1), i1)
        lanes[u + np.uint64(t)] = s + _blep_saw(x2 - np.floor(x2), i2)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _bass_lanes(p, d, idt, lanes, start):  # pragma: no cover - numba
    """Saw + sine sub at the same phase for one lane group into ``lanes[start:start + LANES]``."""
    u = np.uint64(start)
    for t in range(LANES):
        x = p + t * d
        ph = x - np.floor(x)
        lanes[u + np.uint64(t)] = 0.55 * _blep_saw(ph, idt) + 0.6 * _sin_cycle(ph)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _next_phase(p, d):  # pragma: no cover - numba
    """An oscillator phase one lane group later."""
    x = p + LANES * d
    return x - np.floor(x)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _osc_segment(vi, vf, v, n, count, scratch):  # pragma: no cover - numba
    """Oscillator values for the voice's next ``n`` samples into ``scratch[age % LANES:][:n]``.

    Pad (``count`` = 3): three saws; bass (1): saw + sub. Computed by whole lane groups from the
    phases stored at the start of the current group; the stored phases move past the groups this
    segment completes (a group cut by the segment's end is recomputed, identically, next time).
    Returns the offset of the voice's next sample in ``scratch``.
    """
    age = vi[v, VI_AGE]
    off = age & (LANES - 1)
    groups = (off + n + LANES - 1) // LANES
    done = (age + n) // LANES - age // LANES
    p0 = vf[v, VF_PH0]
    p1 = vf[v, VF_PH1]
    p2 = vf[v, VF_PH2]
    d0 = vf[v, VF_DT0]
    d1 = vf[v, VF_DT1]
    d2 = vf[v, VF_DT2]
    for g in range(groups):
        if count == 3:
            _pad_lanes(
                p0, p1, p2, d0, d1, d2, vf[v, VF_IDT0], vf[v, VF_IDT1], vf[v, VF_IDT2], scratch, g * LANES
            )
        else:
            _bass_lanes(p0, d0, vf[v, VF_IDT0], scratch, g * LANES)
        if g < done:
            p0 = _next_phase(p0, d0)
            p1 = _next_phase(p1, d1)
            p2 = _next_phase(p2, d2)
    vf[v, VF_PH0] = p0
    vf[v, VF_PH1] = p1
    vf[v, VF_PH2] = p2
    return off


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def _pad_run(lanes, j0, cnt, mono, i0, env, ek, eb, a, b, lp1, lp2):  # pragma: no cover - numba
    """``cnt`` samples of the pad's filters and envelope (no branches: 3 FMA chains)."""
    uj = np.uint64(j0)
    ui = np.uint64(i0)
    for t in range(np.uint64(cnt)):
        lp1 = b * lp1 + a * lanes[uj + t]
        lp2 = b * lp2 + a * lp1
        env = env * ek + eb
        mono[ui + t] = lp2 * env
    return env, lp1, lp2


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _render_pad(v, n, vi, vf, scratch, mix):  # pragma: no cover - numba
    lanes = scratch[0]
    off = _osc_segment(vi, vf, v, n, 3, lanes)
    left = vi[v, VI_LEFT]
    env = vf[v, VF_ENV]
    ek = vf[v, VF_EK]
    eb = vf[v, VF_EB]
    a = vf[v, VF_LP_A]
    b = vf[v, VF_LP_B]
    lp1 = vf[v, VF_LP1]
    lp2 = vf[v, VF_LP2]
    mono = mix[2]
    i = 0
    while i < n:
        cnt = min(n - i, left)
        env, lp1, lp2 = _pad_run(lanes, off + i, cnt, mono, i, env, ek, eb, a, b, lp1, lp2)
        i += cnt
        left -= cnt
        if left == 0:
            vf[v, VF_ENV] = env
            if not _envelope_next(vi, vf, v):
                break
            left = vi[v, VI_LEFT]
            env = vf[v, VF_ENV]
            ek = vf[v, VF_EK]
            eb = vf[v, VF_EB]
    _finish_serial(v, vi, vf, mix, i, vi[v, VI_AGE] + n, left)
    vf[v, VF_ENV] = env
    vf[v, VF_LP1] = lp1
    vf[v, VF_LP2] = lp2


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _finish_serial(v, vi, vf, mix, done, age, left):  # pragma: no cover - numba
    """Common end of a serial renderer: mix ``done`` samples, store age/left and the last sample."""
    gl = vf[v, VF_GL]
    gr = vf[v, VF_GR]
    _add_mono(mix, done, gl, gr)
    vi[v, VI_AGE] = age
    vi[v, VI_LEFT] = left
    last = mix[2, done - 1] if done > 0 and vi[v, VI_ACTIVE] == 1 else 0.0
    vf[v, VF_LAST_L] = last * gl
    vf[v, VF_LAST_R] = last * gr


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def _bass_run(lanes, j0, cnt, mono, i0, env, ek, eb, g, res, ic1, ic2):  # pragma: no cover - numba
    """``cnt`` samples of the bass low-pass (a TPT state-variable filter at ``g = tan(pi fc / sr)``,
    run as a 2x2 state update) and amplitude envelope."""
    a1 = 1.0 / (1.0 + g * (g + res))
    a2 = g * a1
    a3 = g * a2
    s11 = 2.0 * a1 - 1.0
    s12 = -2.0 * a2
    s22 = 1.0 - 2.0 * a3
    b2 = 2.0 * a3
    c2 = 1.0 - a3
    uj = np.uint64(j0)
    ui = np.uint64(i0)
    for t in range(np.uint64(cnt)):
        x = lanes[uj + t]
        v2 = a2 * ic1 + c2 * ic2 + a3 * x
        n1 = s11 * ic1 + s12 * ic2 - s12 * x
        ic2 = -s12 * ic1 + s22 * ic2 + b2 * x
        ic1 = n1
        env = env * ek + eb
        mono[ui + t] = v2 * env
    return env, ic1, ic2


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _render_bass(v, n, vi, vf, scratch, mix):  # pragma: no cover - numba
    lanes = scratch[0]
    off = _osc_segment(vi, vf, v, n, 1, lanes)
    left = vi[v, VI_LEFT]
    env = vf[v, VF_ENV]
    ek = vf[v, VF_EK]
    eb = vf[v, VF_EB]
    g = vf[v, VF_G]
    gk = vf[v, VF_G_K]
    gb = vf[v, VF_G_B]
    res = vf[v, VF_RES_K]
    ic1 = vf[v, VF_IC1]
    ic2 = vf[v, VF_IC2]
    age = vi[v, VI_AGE]
    mono = mix[2]
    i = 0
    while i < n:
        in_group = (age + i) & (LANES - 1)
        if in_group == 0 and age + i > 0:  # the filter envelope moves once per lane group
            g = g * gk + gb
        cnt = min(n - i, left, LANES - in_group)
        env, ic1, ic2 = _bass_run(lanes, off + i, cnt, mono, i, env, ek, eb, g, res, ic1, ic2)
        i += cnt
        left -= cnt
        if left == 0:
            vf[v, VF_ENV] = env
            if not _envelope_next(vi, vf, v):
                break
            left = vi[v, VI_LEFT]
            env = vf[v, VF_ENV]
            ek = vf[v, VF_EK]
            eb = vf[v, VF_EB]
    _finish_serial(v, vi, vf, mix, i, vi[v, VI_AGE] + n, left)
    vf[v, VF_ENV] = env
    vf[v, VF_G] = g
    vf[v, VF_IC1] = ic1
    vf[v, VF_IC2] = ic2


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def _pluck_run(line, ks_n, pos, cnt, mono, half_rho, c, xprev, apx, apy):  # pragma: no cover - numba
    """``cnt`` samples of the Karplus-Strong loop."""
    for i in range(cnt):
        x = float(line[pos])
        lp = half_rho * (x + xprev)  # two-point loss filter (half a sample of delay)
        xprev = x
        ap = (c * lp + apx) - c * apy  # first-order all-pass: the fractional delay
        apx = lp
        apy = ap
        line[pos] = ap
        pos += 1
        if pos == ks_n:
            pos = 0
        mono[i] = x
    return pos, xprev, apx, apy


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _render_pluck(v, n, vi, vf, dl, mix):  # pragma: no cover - numba
    left = vi[v, VI_LEFT]
    cnt = min(n, left)
    pos, xprev, apx, apy = _pluck_run(
        dl[v],
        vi[v, VI_KS_N],
        vi[v, VI_KS_POS],
        cnt,
        mix[2],
        0.5 * vf[v, VF_KS_RHO],
        vf[v, VF_KS_C],
        vf[v, VF_KS_XPREV],
        vf[v, VF_KS_APX],
        vf[v, VF_KS_APY],
    )
    left -= cnt
    if left == 0:
        vi[v, VI_ACTIVE] = 0
    vi[v, VI_KS_POS] = pos
    vf[v, VF_KS_XPREV] = xprev
    vf[v, VF_KS_APX] = apx
    vf[v, VF_KS_APY] = apy
    _finish_serial(v, vi, vf, mix, cnt, vi[v, VI_AGE] + cnt, left)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _hash_noise(seed, age):  # pragma: no cover - numba
    """Counter-based noise (splitmix64 of ``seed + age``): uniform in [-1, 1), a pure function of
    the voice's age, so it can be computed for many samples at once (vectorised)."""
    z = seed + age * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return float(z >> np.uint64(40)) * (2.0 / 16777216.0) - 1.0


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _drum_prepass(v, n, age0, vu, has_metal, has_tone2, scratch):  # pragma: no cover - numba
    """Noise, metal and the fixed tone of a drum voice for ``n`` samples from ``age0`` into
    ``scratch`` rows 0, 1, 2: closed forms of the age (integer phases), so these loops vectorise."""
    seed = vu[v, VU_RNG]
    a0 = np.uint64(age0)
    noise = scratch[0]
    for t in range(np.uint64(n)):
        noise[t] = _hash_noise(seed, a0 + t)
    if has_metal:  # six square waves: +1 in the first half-cycle, -1 in the second
        metal = scratch[1]
        top = np.uint64(63)
        p0 = vu[v, VU_M_PH]
        p1 = vu[v, VU_M_PH + 1]
        p2 = vu[v, VU_M_PH + 2]
        p3 = vu[v, VU_M_PH + 3]
        p4 = vu[v, VU_M_PH + 4]
        p5 = vu[v, VU_M_PH + 5]
        i0 = vu[v, VU_M_INC]
        i1 = vu[v, VU_M_INC + 1]
        i2 = vu[v, VU_M_INC + 2]
        i3 = vu[v, VU_M_INC + 3]
        i4 = vu[v, VU_M_INC + 4]
        i5 = vu[v, VU_M_INC + 5]
        for t in range(np.uint64(n)):
            a = a0 + t
            down = ((p0 + a * i0) >> top) + ((p1 + a * i1) >> top) + ((p2 + a * i2) >> top)
            down += ((p3 + a * i3) >> top) + ((p4 + a * i4) >> top) + ((p5 + a * i5) >> top)
            metal[t] = 1.0 - float(down) * (1.0 / 3.0)
    if has_tone2:
        tone = scratch[2]
        p = vu[v, VU_T2_PH]
        inc = vu[v, VU_T2_INC]
        for t in range(np.uint64(n)):
            tone[t] = _sin_cycle(float((p + (a0 + t) * inc) >> np.uint64(11)) * _PHASE_UNIT)


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def _render_drum(v, n, vi, vf, vu, scratch, mix):  # pragma: no cover - numba
    age0 = vi[v, VI_AGE]
    left = vi[v, VI_LEFT]
    cnt = min(n, left)
    env = vf[v, VF_D_ENV]
    env_k = vf[v, VF_D_ENV_K]
    t1_f = vf[v, VF_T1_F]
    t1_ks = vf[v, VF_T1_KS]
    t1_fb = vf[v, VF_T1_FB]
    t1_a = vf[v, VF_T1_A]
    t1_k = vf[v, VF_T1_K]
    t2_a = vf[v, VF_T2_A]
    t2_k = vf[v, VF_T2_K]
    n_a = vf[v, VF_N_A]
    n_k = vf[v, VF_N_K]
    m_a = vf[v, VF_M_A]
    m_k = vf[v, VF_M_K]
    s11 = vf[v, VF_S11]
    s12 = vf[v, VF_S12]
    s21 = vf[v, VF_S21]
    s22 = vf[v, VF_S22]
    sb1 = vf[v, VF_SB1]
    sb2 = vf[v, VF_SB2]
    sc1 = vf[v, VF_SC1]
    sc2 = vf[v, VF_SC2]
    sc3 = vf[v, VF_SC3]
    ic1 = vf[v, VF_IC1]
    ic2 = vf[v, VF_IC2]
    t1p = vu[v, VU_T1_PH]
    burst_left = vi[v, VI_BURST_LEFT]
    burst_ctr = vi[v, VI_BURST_CTR]
    has_tone1 = t1_a > 0.0
    has_tone2 = t2_a > 0.0
    has_metal = m_a > 0.0
    _drum_prepass(v, cnt, age0, vu, has_metal, has_tone2, scratch)
    noise = scratch[0]
    metal = scratch[1]
    tone = scratch[2]
    mono = mix[2]
    for i in range(cnt):
        y = 0.0
        if has_tone1:  # the gliding tone (kick, toms, snare body)
            t1p += np.uint64(t1_f * _PHASE_ONE)
            y += t1_a * _sin_cycle(float(t1p >> np.uint64(11)) * _PHASE_UNIT)
            t1_a *= t1_k
            t1_f = t1_f * t1_ks + t1_fb
        x = n_a * noise[i]
        n_a *= n_k
        if burst_left > 0:  # clap: noise bursts, then the tail
            burst_ctr -= 1
            if burst_ctr == 0:
                burst_left -= 1
                n_a = vf[v, VF_N_BURST]
                burst_ctr = int(vf[v, VF_BURST_PERIOD])
                if burst_left == 0:
                    n_k = vf[v, VF_N_K_TAIL]
        if has_metal:
            x += m_a * metal[i]
            m_a *= m_k
        if has_tone2:
            y += t2_a * tone[i]
            t2_a *= t2_k
        y += sc1 * ic1 + sc2 * ic2 + sc3 * x  # state-variable filter: output, then state update
        n1 = s11 * ic1 + s12 * ic2 + sb1 * x
        ic2 = s21 * ic1 + s22 * ic2 + sb2 * x
        ic1 = n1
        mono[i] = y * env
        env *= env_k
    left -= cnt
    if left == 0:
        vi[v, VI_ACTIVE] = 0
    vi[v, VI_BURST_LEFT] = burst_left
    vi[v, VI_BURST_CTR] = burst_ctr
    vf[v, VF_D_ENV] = env
    vf[v, VF_T1_F] = t1_f
    vf[v, VF_T1_A] = t1_a
    vf[v, VF_T2_A] = t2_a
    vf[v, VF_N_A] = n_a
    vf[v, VF_N_K] = n_k
    vf[v, VF_M_A] = m_a
    vf[v, VF_IC1] = ic1
    vf[v, VF_IC2] = ic2
    vu[v, VU_T1_PH] = t1p
    _finish_serial(v, vi, vf, mix, cnt, age0 + cnt, left)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _drum_left(v, vi, vf):  # pragma: no cover - numba
    """Samples until the drum voice is below -90 dBFS: every component (and a clap's bursts to
    come) decays at least as fast as the slowest of them times the voice envelope."""
    g = max(vf[v, VF_GL], vf[v, VF_GR], 1e-30)
    level = (vf[v, VF_T1_A] + vf[v, VF_T2_A] + vf[v, VF_N_A] + vf[v, VF_M_A]) * vf[v, VF_D_ENV]
    slowest = 0.0
    for c in (VF_T1_K, VF_T2_K, VF_N_K, VF_M_K):
        if c != VF_N_K or vi[v, VI_BURST_LEFT] == 0:
            slowest = max(slowest, vf[v, c])
    wait = 0
    if vi[v, VI_BURST_LEFT] > 0:  # bursts re-arm the noise; the tail decays with N_K_TAIL
        wait = vi[v, VI_BURST_CTR] + (vi[v, VI_BURST_LEFT] - 1) * int(vf[v, VF_BURST_PERIOD])
        level = max(level, vf[v, VF_N_BURST] * vf[v, VF_D_ENV])
        slowest = max(slowest, vf[v, VF_N_K_TAIL])
    return wait + _samples_until(level, SILENT / g, slowest * vf[v, VF_D_ENV_K])


# ================================================================================================
# events
# ================================================================================================


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _voice_level(v, vi, vf):  # pragma: no cover - numba
    """Current output level (upper estimate, linear) of active voice ``v``."""
    inst = vi[v, VI_INST]
    g = max(vf[v, VF_GL], vf[v, VF_GR])
    if inst == PIANO:
        return vf[v, VF_BOUND] * g
    if inst == PLUCK:
        return vf[v, VF_KS_A0] * vf[v, VF_KS_D] ** vi[v, VI_AGE] * g
    if inst == DRUMS:
        return (vf[v, VF_T1_A] + vf[v, VF_T2_A] + vf[v, VF_N_A] + vf[v, VF_M_A]) * vf[v, VF_D_ENV] * g
    return vf[v, VF_ENV] * g


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _release(v, vi, vf, sr, from_all_off):  # pragma: no cover - numba
    """Start the release of voice ``v`` (drums only release on all-notes-off or a hat choke)."""
    inst = vi[v, VI_INST]
    if inst == DRUMS:
        if from_all_off:
            vf[v, VF_D_ENV_K] = min(vf[v, VF_D_ENV_K], _decay_k(0.03, sr))
            vi[v, VI_RELEASED] = 1
            vi[v, VI_LEFT] = min(vi[v, VI_LEFT], _drum_left(v, vi, vf))
        return
    vi[v, VI_RELEASED] = 1
    threshold = SILENT / max(vf[v, VF_GL], vf[v, VF_GR], 1e-30)
    if inst == PIANO:
        vi[v, VI_REL_PENDING] = 1
    elif inst == PLUCK:
        rho = min(vf[v, VF_KS_RHO], vf[v, VF_KS_RHO_REL])
        level = _voice_level(v, vi, vf) / max(vf[v, VF_GL], vf[v, VF_GR], 1e-30)
        vf[v, VF_KS_RHO] = rho
        vf[v, VF_KS_D] = rho ** (1.0 / (vi[v, VI_KS_N] + 0.5))
        vf[v, VF_KS_A0] = level / vf[v, VF_KS_D] ** vi[v, VI_AGE]  # bound(age) = A0 * D**age
        vi[v, VI_LEFT] = _samples_until(level, threshold, vf[v, VF_KS_D])
    else:
        vi[v, VI_STAGE] = ENV_RELEASE
        vf[v, VF_EK] = vf[v, VF_REL_K]
        vf[v, VF_EB] = 0.0
        vi[v, VI_LEFT] = _samples_until(vf[v, VF_ENV], threshold, vf[v, VF_REL_K])


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _steal(vi, vf, sr):  # pragma: no cover - numba
    """The voice to take when all are busy: the quietest released one, else the lowest level/age."""
    best = 0
    best_score = math.inf
    for v in range(vi.shape[0]):
        level = _voice_level(v, vi, vf)
        score = level * 1e-3 if vi[v, VI_RELEASED] == 1 else level / (1.0 + vi[v, VI_AGE] / sr)
        if score < best_score:
            best_score = score
            best = v
    return best


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _note_on(
    ch, note, vel, chi, chf, vi, vf, vu, pz, pw, p8, dl, gi, gf, drum_type, drum_hz
):  # pragma: no cover
    sr = gf[GF_SR]
    inst = chi[ch]
    n_voices = vi.shape[0]
    if inst == DRUMS and (drum_type[note] == DR_HAT_CLOSED or drum_type[note] == DR_HAT_PEDAL):
        for u in range(n_voices):
            if (
                vi[u, VI_ACTIVE] == 1
                and vi[u, VI_CHAN] == ch
                and vi[u, VI_INST] == DRUMS
                and vi[u, VI_DRUM] == DR_HAT_OPEN
            ):
                vf[u, VF_D_ENV_K] = min(vf[u, VF_D_ENV_K], _decay_k(0.012, sr))
                vi[u, VI_RELEASED] = 1
                vi[u, VI_LEFT] = min(vi[u, VI_LEFT], _drum_left(u, vi, vf))
    v = -1
    for u in range(n_voices):  # retrigger the same (channel, note)
        if vi[u, VI_ACTIVE] == 1 and vi[u, VI_CHAN] == ch and vi[u, VI_NOTE] == note:
            v = u
            if vi[u, VI_RELEASED] == 0:
                break
    if v < 0:
        for u in range(n_voices):
            if vi[u, VI_ACTIVE] == 0:
                v = u
                break
    if v < 0:
        v = _steal(vi, vf, sr)
    if vi[v, VI_ACTIVE] == 1:  # cut: carry its last sample as a fast-decaying offset
        vf[v, VF_DC_L] += vf[v, VF_LAST_L]
        vf[v, VF_DC_R] += vf[v, VF_LAST_R]
    order = gi[GI_ORDER]
    gi[GI_ORDER] = order + 1
    vi[v, VI_ACTIVE] = 1
    vi[v, VI_INST] = inst
    vi[v, VI_CHAN] = ch
    vi[v, VI_NOTE] = note
    vi[v, VI_RELEASED] = 0
    vi[v, VI_ORDER] = order
    vi[v, VI_AGE] = 0
    seed = (np.uint64(order + 1) * np.uint64(0x9E3779B97F4A7C15)) ^ (
        np.uint64(note * 128 + ch + 1) << np.uint64(40)
    )
    if seed == np.uint64(0):
        seed = np.uint64(0x2545F4914F6CDD1D)
    vu[v, VU_RNG] = seed
    pan = chf[ch, CH_PAN]
    if inst == PIANO:
        level = PIANO_LEVEL
        pan = min(1.0, max(-1.0, pan + 0.3 * (note - 64) / 43.0))
    elif inst == PAD:
        level = PAD_LEVEL
    elif inst == BASS:
        level = BASS_LEVEL
    elif inst == PLUCK:
        level = PLUCK_LEVEL
    else:
        level = DRUM_LEVEL
    gain = chf[ch, CH_GAIN] * level * _velocity_amp(vel)
    theta = (pan + 1.0) * (math.pi / 4.0)
    vf[v, VF_GL] = gain * math.cos(theta)
    vf[v, VF_GR] = gain * math.sin(theta)
    vf[v, VF_LAST_L] = 0.0
    vf[v, VF_LAST_R] = 0.0
    if inst == PIANO:
        _start_piano(v, note, vel, sr, vi, vf, pz, pw, p8)
    elif inst == PAD:
        _start_pad(v, note, vel, sr, vi, vf, seed)
    elif inst == BASS:
        _start_bass(v, note, vel, sr, vi, vf)
    elif inst == PLUCK:
        _start_pluck(v, note, vel, sr, vi, vf, dl, seed)
    else:
        _start_drum(v, drum_type[note], drum_hz[note], vel, sr, vi, vf, vu)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _apply_event(
    slot, ev_data, ev_value, chi, chf, vi, vf, vu, pz, pw, p8, dl, gi, gf, drum_type, drum_hz
):  # pragma: no cover
    kind = ev_data[slot, ED_KIND]
    ch = ev_data[slot, ED_CHANNEL]
    note = ev_data[slot, ED_NOTE]
    vel = ev_data[slot, ED_VELOCITY]
    sr = gf[GF_SR]
    if kind == EV_NOTE_ON and vel > 0:
        _note_on(ch, note, vel, chi, chf, vi, vf, vu, pz, pw, p8, dl, gi, gf, drum_type, drum_hz)
    elif kind in (EV_NOTE_OFF, EV_NOTE_ON):
        for v in range(vi.shape[0]):
            if (
                vi[v, VI_ACTIVE] == 1
                and vi[v, VI_RELEASED] == 0
                and vi[v, VI_CHAN] == ch
                and vi[v, VI_NOTE] == note
            ):
                _release(v, vi, vf, sr, False)
    elif kind == EV_ALL_OFF:
        for v in range(vi.shape[0]):
            if vi[v, VI_ACTIVE] == 1:
                _release(v, vi, vf, sr, True)
    elif kind == EV_SET_CHANNEL:
        chi[ch] = note
        chf[ch, CH_GAIN] = ev_value[slot, EVV_GAIN]
        chf[ch, CH_PAN] = ev_value[slot, EVV_PAN]


# ================================================================================================
# the block renderer
# ================================================================================================


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def _master(mix, out, pos, seg, gf):  # pragma: no cover - numba
    """Peak limiter into ``out`` (interleaved stereo, flat): instant attack, 200 ms release.

    The gain is ``LIMIT_THRESHOLD / max(peak envelope, LIMIT_THRESHOLD)`` and the envelope is at
    least the current sample's peak, so the output never exceeds the threshold (0.8, -1.9 dBFS);
    the final clamp only guards against non-finite input. The envelope runs sample by sample
    (into ``mix[2]``), the rest is vectorised.
    """
    lim = gf[GF_LIM_ENV]
    rel = gf[GF_LIM_REL]
    mix_l = mix[0]
    mix_r = mix[1]
    env = mix[2]
    for i in range(seg):
        lim = max(max(abs(mix_l[i]), abs(mix_r[i])), lim * rel)
        env[i] = lim
    gf[GF_LIM_ENV] = lim
    base = np.uint64(2 * pos)
    for t in range(np.uint64(seg)):
        g = LIMIT_THRESHOLD / max(env[t], LIMIT_THRESHOLD)
        out[base + 2 * t] = min(max(mix_l[t] * g, -LIMIT_THRESHOLD), LIMIT_THRESHOLD)
        out[base + 2 * t + 1] = min(max(mix_r[t] * g, -LIMIT_THRESHOLD), LIMIT_THRESHOLD)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def render_block(
    out,
    ev_frame,
    ev_data,
    ev_value,
    ring_idx,
    chi,
    chf,
    vi,
    vf,
    vu,
    pz,
    pw,
    p8,
    dl,
    mix,
    acc,
    scratch,
    gi,
    gf,
    drum_type,
    drum_hz,
):  # pragma: no cover - numba
    """Render ``out.shape[0] // 2`` frames into ``out`` (float32, interleaved stereo, flat) and
    advance ``gi[GI_FRAME]``.

    Events queued in the ring (``ring_idx[RING_READ]`` up to the ``ring_idx[RING_WRITE]`` seen at
    the start of the call) are applied at their frame; those already past, at frame 0 of the block.
    """
    n_total = out.shape[0] // 2
    n_voices = vi.shape[0]
    capacity = ev_frame.shape[0]
    frame0 = gi[GI_FRAME]
    read = ring_idx[RING_READ]
    write = ring_idx[RING_WRITE]
    _ACQUIRE()  # the fields of the events up to ``write`` are visible from here on
    dc_k = gf[GF_DC_K]
    peak = gi[GI_PEAK]
    pos = 0
    while pos < n_total:
        now = frame0 + pos
        while read < write:
            slot = read % capacity
            if ev_frame[slot] > now:
                break
            _apply_event(
                slot, ev_data, ev_value, chi, chf, vi, vf, vu, pz, pw, p8, dl, gi, gf, drum_type, drum_hz
            )
            read += 1
        if read != ring_idx[RING_READ]:
            _RELEASE()  # done with those slots before handing them back to the producer
            ring_idx[RING_READ] = read
        seg = min(n_total - pos, CHUNK_FRAMES)
        if read < write:
            seg = min(seg, ev_frame[read % capacity] - now)
        mix[:2, :seg] = 0.0
        active = 0
        for v in range(n_voices):
            if vi[v, VI_ACTIVE] == 0:
                continue
            active += 1
            inst = vi[v, VI_INST]
            if inst == PIANO:
                _render_piano(v, seg, vi, vf, vu, pz, pw, p8, acc, mix)
            elif inst == PAD:
                _render_pad(v, seg, vi, vf, scratch, mix)
            elif inst == BASS:
                _render_bass(v, seg, vi, vf, scratch, mix)
            elif inst == PLUCK:
                _render_pluck(v, seg, vi, vf, dl, mix)
            else:
                _render_drum(v, seg, vi, vf, vu, scratch, mix)
        peak = max(peak, active)
        for v in range(n_voices):
            dcl = vf[v, VF_DC_L]
            dcr = vf[v, VF_DC_R]
            if dcl == 0.0 and dcr == 0.0:
                continue
            for i in range(seg):
                mix[0, i] += dcl
                mix[1, i] += dcr
                dcl *= dc_k
                dcr *= dc_k
                if abs(dcl) + abs(dcr) < 1e-7:
                    dcl = 0.0
                    dcr = 0.0
                    break
            vf[v, VF_DC_L] = dcl
            vf[v, VF_DC_R] = dcr
        _master(mix, out, pos, seg, gf)
        pos += seg
    active = 0
    for v in range(n_voices):
        active += vi[v, VI_ACTIVE]
    gi[GI_FRAME] = frame0 + n_total
    gi[GI_ACTIVE] = active
    gi[GI_PEAK] = peak


# ================================================================================================
# the C entry point: no NRT allocation at the call boundary
# ================================================================================================

_TABLE = (  # the state arrays' element types, in the order of the kernel's pointer table
    types.int64,  # ev_frame (capacity,)
    types.int32,  # ev_data (capacity, ED_SIZE)
    types.float64,  # ev_value (capacity, EVV_SIZE)
    types.int64,  # ring_idx (RING_SIZE,)
    types.int64,  # chi (N_CHANNELS,)
    types.float64,  # chf (N_CHANNELS, CH_SIZE)
    types.int64,  # vi (n_voices, VI_SIZE)
    types.float64,  # vf (n_voices, VF_SIZE)
    types.uint64,  # vu (n_voices, VU_SIZE)
    types.float64,  # pz (n_voices, 2, N_PARTIALS)
    types.float32,  # pw (n_voices, 2, N_PARTIALS, LANES)
    types.float64,  # p8 (n_voices, 2, N_PARTIALS)
    types.float32,  # dl (n_voices, delay_len)
    types.float64,  # mix (3, CHUNK_FRAMES)
    types.float32,  # acc (n_voices, LANES)
    types.float32,  # scratch (3, CHUNK_FRAMES + LANES)
    types.int64,  # gi (GI_SIZE,)
    types.float64,  # gf (GF_SIZE,)
    types.int64,  # drum_type (128,)
    types.float64,  # drum_hz (128,)
)
TABLE_SIZE: Final = len(_TABLE) + 4  # the pointers, then n_voices, capacity, delay_len, channels


def _pointer_cast(dtype: types.Type) -> Callable[..., Any]:
    """An intrinsic turning an int64 address into a ``dtype*`` (for ``numba.carray``)."""

    @intrinsic
    def cast(typingctx, address):  # pragma: no cover - numba
        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

        return types.CPointer(dtype)(types.int64), codegen

    return cast


_I32_AT = _pointer_cast(types.int32)
_I64_AT = _pointer_cast(types.int64)
_U64_AT = _pointer_cast(types.uint64)
_F32_AT = _pointer_cast(types.float32)
_F64_AT = _pointer_cast(types.float64)


def _kernel(out, n_frames, table):  # pragma: no cover - numba
    """:func:`render_block` on raw pointers (``table``: the state arrays' addresses, then
    n_voices, capacity, delay_len, channels); ``numba.carray`` views allocate nothing."""
    t = numba.carray(table, (TABLE_SIZE,))
    nv = t[20]
    cap = t[21]
    nch = t[23]
    carray = numba.carray
    render_block(
        carray(out, (2 * n_frames,)),
        carray(_I64_AT(t[0]), (cap,)),
        carray(_I32_AT(t[1]), (cap, ED_SIZE)),
        carray(_F64_AT(t[2]), (cap, EVV_SIZE)),
        carray(_I64_AT(t[3]), (RING_SIZE,)),
        carray(_I64_AT(t[4]), (nch,)),
        carray(_F64_AT(t[5]), (nch, CH_SIZE)),
        carray(_I64_AT(t[6]), (nv, VI_SIZE)),
        carray(_F64_AT(t[7]), (nv, VF_SIZE)),
        carray(_U64_AT(t[8]), (nv, VU_SIZE)),
        carray(_F64_AT(t[9]), (nv, 2, N_PARTIALS)),
        carray(_F32_AT(t[10]), (nv, 2, N_PARTIALS, LANES)),
        carray(_F64_AT(t[11]), (nv, 2, N_PARTIALS)),
        carray(_F32_AT(t[12]), (nv, t[22])),
        carray(_F64_AT(t[13]), (3, CHUNK_FRAMES)),
        carray(_F32_AT(t[14]), (nv, LANES)),
        carray(_F32_AT(t[15]), (3, CHUNK_FRAMES + LANES)),
        carray(_I64_AT(t[16]), (GI_SIZE,)),
        carray(_F64_AT(t[17]), (GF_SIZE,)),
        carray(_I64_AT(t[18]), (128,)),
        carray(_F64_AT(t[19]), (128,)),
    )


_KERNEL_SIGNATURE = types.void(types.CPointer(types.float32), types.int64, types.CPointer(types.int64))


@functools.cache
def block_kernel() -> Callable[[int, int, int], None]:
    """The block renderer as a ctypes C function ``(out address, n_frames, table address)``.

    Compiled, or loaded from numba's cache, on first use. ``table`` is an int64 array of
    :data:`TABLE_SIZE`: the addresses of the state arrays (see :data:`_TABLE` for their order and
    element types, :class:`engine.synth.polysynth.Synth` for their shapes), then n_voices, event capacity
    and the pluck delay length. Calling it releases the GIL and performs no heap allocation
    (a numba dispatcher call would wrap every array argument in a newly allocated NRT MemInfo).
    """
    compiled = numba.cfunc(_KERNEL_SIGNATURE, cache=True, error_model="numpy")(_kernel)
    address = compiled.address
    if address is None:
        raise RuntimeError("numba did not compile the synth's block kernel")
    function = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p)(address)
    function._numba_cfunc = compiled  # type: ignore[attr-defined]  # keeps the code alive
    return function


def _push(table, frame, kind, channel, note, velocity, gain, pan):  # pragma: no cover - numba
    """Queue one event (the producer side of the ring); 0 and ``dropped += 1`` if it is full."""
    t = numba.carray(table, (TABLE_SIZE,))
    capacity = t[21]
    ring_idx = numba.carray(_I64_AT(t[3]), (RING_SIZE,))
    write = ring_idx[RING_WRITE]
    read = ring_idx[RING_READ]
    _ACQUIRE()  # the consumer is done with the slots before ``read``
    if write - read >= capacity:
        ring_idx[RING_DROPPED] += 1
        return 0
    slot = write % capacity
    numba.carray(_I64_AT(t[0]), (capacity,))[slot] = frame
    ev_data = numba.carray(_I32_AT(t[1]), (capacity, ED_SIZE))
    ev_data[slot, ED_KIND] = kind
    ev_data[slot, ED_CHANNEL] = channel
    ev_data[slot, ED_NOTE] = note
    ev_data[slot, ED_VELOCITY] = velocity
    ev_value = numba.carray(_F64_AT(t[2]), (capacity, EVV_SIZE))
    ev_value[slot, EVV_GAIN] = gain
    ev_value[slot, EVV_PAN] = pan
    _RELEASE()  # the fields are visible before the new write index
    ring_idx[RING_WRITE] = write + 1
    return 1


_PUSH_SIGNATURE = types.int64(
    types.CPointer(types.int64),
    types.int64,
    types.int32,
    types.int32,
    types.int32,
    types.int32,
    types.float64,
    types.float64,
)


@functools.cache
def push_kernel() -> Callable[[int, int, int, int, int, int, float, float], int]:
    """The producer side of the event ring as a ctypes C function ``(table address, frame, kind,
    channel, note, velocity, gain, pan) -> 1 queued / 0 dropped`` (see :func:`block_kernel` for
    the table). It orders its stores with release/acquire fences, so the single-producer /
    single-consumer ring is also correct on weakly ordered CPUs."""
    compiled = numba.cfunc(_PUSH_SIGNATURE, cache=True, error_model="numpy")(_push)
    address = compiled.address
    if address is None:
        raise RuntimeError("numba did not compile the synth's event push")
    function = ctypes.CFUNCTYPE(
        ctypes.c_int64,
        ctypes.c_void_p,
        ctypes.c_int64,
        ctypes.c_int32,
        ctypes.c_int32,
        ctypes.c_int32,
        ctypes.c_int32,
        ctypes.c_double,
        ctypes.c_double,
    )(address)
    function._numba_cfunc = compiled  # type: ignore[attr-defined]  # keeps the code alive
    return function
