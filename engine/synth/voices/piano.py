"""The piano: modal synthesis with inharmonic partials, a hammer transient and dampers.

12 modal partials (9 inharmonic string partials and detuned "second string" twins of the
lowest three, which gives beating and a two-stage decay); partial ``k`` at age ``g * LANES + j``
is ``Im(Z_k(g) * w_k**j)`` with ``Z_k(g + 1) = Z_k(g) * w_k**LANES`` (``w_k`` a decaying complex
rotation), so a partial costs two multiply-adds per sample and no ``sin``. Brightness (spectral
tilt, hammer low-pass) and level follow velocity; a short filtered-noise hammer transient; the
sound decays while held; note-off engages a damper at the next lane-group boundary (at most
0.7 ms later; notes from F6 up have none, like a real piano).
"""

from __future__ import annotations

import math

import numpy as np

from engine.realtime.jit import njit
from engine.synth.dsp import decay_k, t60_k, xorshift
from engine.synth.layout import (
    LANES,
    N_PARTIALS,
    SILENT,
    VF_BOUND,
    VF_BOUND_K,
    VF_GL,
    VF_GR,
    VF_HAM_A,
    VF_HAM_ALPHA,
    VF_HAM_K,
    VF_HAM_LP,
    VF_LAST_L,
    VF_LAST_R,
    VF_REL_K,
    VI_ACC_GROUP,
    VI_ACTIVE,
    VI_AGE,
    VI_HAM_LEFT,
    VI_NPART,
    VI_REL_PENDING,
    VU_RNG,
)


@njit(cache=True, nogil=True, error_model="numpy")
def start_piano(v, note, vel, sr, vi, vf, pz, pw, p8):  # pragma: no cover - numba
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
        r = t60_k(max(t60, 0.05), sr)
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
    vf[v, VF_REL_K] = 1.0 if note >= 89 else decay_k(0.09 + 0.25 * max(0.0, (60.0 - note) / 39.0), sr)
    vi[v, VI_HAM_LEFT] = int(0.015 * sr)
    vf[v, VF_HAM_A] = 0.22 * v01 * v01
    vf[v, VF_HAM_K] = decay_k(0.0025, sr)
    vf[v, VF_HAM_LP] = 0.0
    vf[v, VF_HAM_ALPHA] = 0.08 + 0.5 * v01


@njit(cache=True, nogil=True, error_model="numpy")
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


@njit(cache=True, nogil=True, error_model="numpy")
def render_piano(v, n, vi, vf, vu, pz, pw, p8, acc, mix):  # pragma: no cover - numba
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
            rng, u = xorshift(rng)
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
