"""The bass: a polyBLEP saw and a sine sub through a resonant low-pass with a filter envelope.

The filter is a TPT state-variable low-pass whose cutoff falls from a velocity-dependent peak
(stepped once per lane group); short attack, decay to a sustain level.
"""

from __future__ import annotations

import math

import numpy as np

from engine.realtime.jit import njit
from engine.synth.dsp import FAST, decay_k, envelope_next, start_envelope
from engine.synth.layout import (
    LANES,
    VF_DT0,
    VF_EB,
    VF_EK,
    VF_ENV,
    VF_G,
    VF_G_B,
    VF_G_K,
    VF_IC1,
    VF_IC2,
    VF_IDT0,
    VF_PH0,
    VF_RES_K,
    VI_AGE,
    VI_LEFT,
)
from engine.synth.voices.mix import finish_serial
from engine.synth.voices.oscillators import osc_segment


@njit(cache=True, nogil=True, error_model="numpy")
def start_bass(v, note, vel, sr, vi, vf):  # pragma: no cover - numba
    v01 = vel / 127.0
    f0 = 440.0 * 2.0 ** ((note - 69) / 12.0)
    dt = min(0.45, f0 / sr)
    vf[v, VF_PH0] = 0.0
    vf[v, VF_DT0] = dt
    vf[v, VF_IDT0] = 1.0 / dt
    fc_peak = min(0.2 * sr, 200.0 + f0 * (5.0 + 22.0 * v01))
    fc_sus = min(0.2 * sr, 120.0 + 2.5 * f0)
    gk = decay_k(0.09, sr) ** LANES  # per lane group
    vf[v, VF_G] = math.tan(math.pi * fc_peak / sr)
    vf[v, VF_G_K] = gk
    vf[v, VF_G_B] = math.tan(math.pi * fc_sus / sr) * (1.0 - gk)
    vf[v, VF_RES_K] = 0.75
    vf[v, VF_IC1] = 0.0
    vf[v, VF_IC2] = 0.0
    start_envelope(vi, vf, v, 0.002, 1.4, 0.6, 0.7, 0.05, sr)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FAST)
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


@njit(cache=True, nogil=True, error_model="numpy")
def render_bass(v, n, vi, vf, scratch, mix):  # pragma: no cover - numba
    lanes = scratch[0]
    off = osc_segment(vi, vf, v, n, 1, lanes)
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
            if not envelope_next(vi, vf, v):
                break
            left = vi[v, VI_LEFT]
            env = vf[v, VF_ENV]
            ek = vf[v, VF_EK]
            eb = vf[v, VF_EB]
    finish_serial(v, vi, vf, mix, i, vi[v, VI_AGE] + n, left)
    vf[v, VF_ENV] = env
    vf[v, VF_G] = g
    vf[v, VF_IC1] = ic1
    vf[v, VF_IC2] = ic2
