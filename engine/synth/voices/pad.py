"""The pad: three detuned polyBLEP saws through two one-pole low-passes; slow attack, long release."""

from __future__ import annotations

import math

import numpy as np

from engine.realtime.jit import njit
from engine.synth.dsp import FAST, envelope_next, start_envelope, xorshift
from engine.synth.layout import (
    VF_DT0,
    VF_EB,
    VF_EK,
    VF_ENV,
    VF_IDT0,
    VF_LP1,
    VF_LP2,
    VF_LP_A,
    VF_LP_B,
    VF_PH0,
    VI_AGE,
    VI_LEFT,
)
from engine.synth.voices.mix import finish_serial
from engine.synth.voices.oscillators import osc_segment


@njit(cache=True, nogil=True, error_model="numpy")
def start_pad(v, note, vel, sr, vi, vf, seed):  # pragma: no cover - numba
    v01 = vel / 127.0
    f0 = 440.0 * 2.0 ** ((note - 69) / 12.0)
    x = seed
    for c in range(3):
        x, u = xorshift(x)
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
    start_envelope(vi, vf, v, 0.22, 1.25, 0.0, 1.0, 0.42, sr)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FAST)
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


@njit(cache=True, nogil=True, error_model="numpy")
def render_pad(v, n, vi, vf, scratch, mix):  # pragma: no cover - numba
    lanes = scratch[0]
    off = osc_segment(vi, vf, v, n, 3, lanes)
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
            if not envelope_next(vi, vf, v):
                break
            left = vi[v, VI_LEFT]
            env = vf[v, VF_ENV]
            ek = vf[v, VF_EK]
            eb = vf[v, VF_EB]
    finish_serial(v, vi, vf, mix, i, vi[v, VI_AGE] + n, left)
    vf[v, VF_ENV] = env
    vf[v, VF_LP1] = lp1
    vf[v, VF_LP2] = lp2
