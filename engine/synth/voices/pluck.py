"""The pluck: a Karplus-Strong string.

A per-voice delay line excited with velocity-filtered noise (with a pick-position comb), a
two-point loss filter and a first-order all-pass for exact tuning.
"""

from __future__ import annotations

import math

from engine.realtime.jit import njit
from engine.synth.dsp import FAST, samples_until, xorshift
from engine.synth.layout import (
    LOWEST_PLUCK_HZ,
    SILENT,
    VF_GL,
    VF_GR,
    VF_KS_A0,
    VF_KS_APX,
    VF_KS_APY,
    VF_KS_C,
    VF_KS_D,
    VF_KS_RHO,
    VF_KS_RHO_REL,
    VF_KS_XPREV,
    VI_ACTIVE,
    VI_AGE,
    VI_KS_N,
    VI_KS_POS,
    VI_LEFT,
)
from engine.synth.voices.mix import finish_serial


@njit(cache=True, nogil=True, error_model="numpy")
def start_pluck(v, note, vel, sr, vi, vf, dl, seed):  # pragma: no cover - numba
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
        x, u = xorshift(x)
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
    vi[v, VI_LEFT] = samples_until(
        vf[v, VF_KS_A0], SILENT / max(vf[v, VF_GL], vf[v, VF_GR], 1e-30), vf[v, VF_KS_D]
    )


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FAST)
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


@njit(cache=True, nogil=True, error_model="numpy")
def render_pluck(v, n, vi, vf, dl, mix):  # pragma: no cover - numba
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
    finish_serial(v, vi, vf, mix, cnt, vi[v, VI_AGE] + cnt, left)
