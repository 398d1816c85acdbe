"""Small DSP kernels shared by the synth's instruments, and the pad/bass amplitude envelope.

Decay coefficients (time constant, T60), xorshift noise, a branch-free polynomial sine, a
polyBLEP saw, a state-variable filter as a 2x2 state update, velocity to amplitude, and the
envelope (stage lengths counted in samples, so per-sample loops carry no comparisons). Every
kernel uses ``error_model="numpy"`` (no division-by-zero branch, which would block
vectorisation); :data:`FAST` is the ``fastmath`` flag of the serial renderers.
"""

from __future__ import annotations

import math

import numpy as np

from engine.realtime.jit import njit
from engine.synth.layout import (
    ENV_ATTACK,
    ENV_SUSTAIN,
    FOREVER,
    VF_DEC_B,
    VF_DEC_K,
    VF_EB,
    VF_EK,
    VF_ENV,
    VF_REL_K,
    VF_S11,
    VF_S12,
    VF_S21,
    VF_S22,
    VF_SB1,
    VF_SB2,
    VF_SC1,
    VF_SC2,
    VF_SC3,
    VI_ACTIVE,
    VI_LEFT,
    VI_STAGE,
)

FAST = {"contract"}  # fused multiply-add: one FMA per recurrence step


@njit(cache=True, nogil=True, error_model="numpy")
def decay_k(seconds: float, sr: float) -> float:  # pragma: no cover - numba
    """Per-sample multiplier of an exponential with time constant ``seconds`` (1/e)."""
    return math.exp(-1.0 / (seconds * sr))


@njit(cache=True, nogil=True, error_model="numpy")
def t60_k(seconds: float, sr: float) -> float:  # pragma: no cover - numba
    """Per-sample multiplier that falls by 60 dB in ``seconds``."""
    return math.exp(-6.907755278982137 / (seconds * sr))


@njit(cache=True, nogil=True, error_model="numpy")
def xorshift(x: np.uint64) -> tuple[np.uint64, float]:  # pragma: no cover - numba
    """xorshift64: next state and a uniform value in [-1, 1)."""
    x ^= x << np.uint64(13)
    x ^= x >> np.uint64(7)
    x ^= x << np.uint64(17)
    return x, float(x >> np.uint64(11)) * (2.0 / 9007199254740992.0) - 1.0


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FAST)
def sin_cycle(p: float) -> float:  # pragma: no cover - numba
    """sin(2 pi p) for p in [0, 1), branch-free 9th-order odd polynomial (error < 4e-6)."""
    q = p - 0.5
    a = abs(q)
    x = min(a, 0.5 - a) * 6.283185307179586
    x2 = x * x
    s = x * (1.0 + x2 * (-1.0 / 6.0 + x2 * (1.0 / 120.0 + x2 * (-1.0 / 5040.0 + x2 * (1.0 / 362880.0)))))
    return -math.copysign(s, q)


@njit(cache=True, nogil=True, error_model="numpy")
def blep_saw(p: float, idt: float) -> float:  # pragma: no cover - numba
    """Band-limited saw (polyBLEP, branch-free) at phase ``p`` in [0, 1); ``idt`` = 1 / increment."""
    u = max(0.0, 1.0 - p * idt)
    w = max(0.0, (p - 1.0) * idt + 1.0)
    return 2.0 * p - 1.0 + u * u - w * w


@njit(cache=True, nogil=True, error_model="numpy")
def svf_matrix(vf, v, fc_hz, damping, mix_lp, mix_bp, mix_hp, sr):  # pragma: no cover - numba
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


@njit(cache=True, nogil=True, error_model="numpy")
def velocity_amp(velocity: int) -> float:  # pragma: no cover - numba
    """Velocity 1..127 -> linear amplitude, ``(velocity / 127) ** 1.6`` (64 -> -9.5 dB)."""
    return (velocity / 127.0) ** 1.6


@njit(cache=True, nogil=True, error_model="numpy")
def samples_until(level, target, k):  # pragma: no cover - numba
    """Samples n >= 1 after which ``level * k**n`` (0 < k < 1) has fallen below ``target``."""
    if level <= target or k >= 1.0:
        return 1 if k < 1.0 else FOREVER
    return max(1, math.ceil(math.log(target / level) / math.log(k)))


@njit(cache=True, nogil=True, error_model="numpy")
def start_envelope(vi, vf, v, attack_s, attack_target, decay_s, sustain, release_s, sr):  # pragma: no cover
    """Start the pad/bass amplitude envelope (time constants in s).

    Attack: exponential toward ``attack_target`` (> 1) for the samples it takes to reach 1 (then
    ``env`` is set to exactly 1); decay: exponential toward ``sustain``; release (see
    :func:`engine.synth.events._release`): exponential to silence, the voice freed when it is
    below -90 dBFS. Stage lengths are counted in samples, so the per-sample loop carries no
    comparisons.
    """
    c = 1.0 - decay_k(attack_s, sr)
    vf[v, VF_ENV] = 0.0
    vf[v, VF_EK] = 1.0 - c
    vf[v, VF_EB] = c * attack_target
    vi[v, VI_STAGE] = ENV_ATTACK
    vi[v, VI_LEFT] = samples_until(attack_target, attack_target - 1.0, 1.0 - c)
    dk = decay_k(decay_s, sr) if decay_s > 0.0 else 1.0
    vf[v, VF_DEC_K] = dk
    vf[v, VF_DEC_B] = sustain * (1.0 - dk)
    vf[v, VF_REL_K] = decay_k(release_s, sr)


@njit(cache=True, nogil=True, error_model="numpy")
def envelope_next(vi, vf, v):  # pragma: no cover - numba
    """The current stage is over: attack -> sustain, release -> voice freed. Returns False if freed."""
    if vi[v, VI_STAGE] == ENV_ATTACK:
        vi[v, VI_STAGE] = ENV_SUSTAIN
        vi[v, VI_LEFT] = FOREVER
        vf[v, VF_ENV] = 1.0
        vf[v, VF_EK] = vf[v, VF_DEC_K]
        vf[v, VF_EB] = vf[v, VF_DEC_B]
        return True
    vi[v, VI_ACTIVE] = 0
    return False
