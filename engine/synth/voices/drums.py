"""The drums: a General MIDI drum-map subset (the map: :func:`engine.synth.layout.drum_tables`).

Built from a swept sine (kick, toms, snare body), fixed tones (snare, side stick, ride bell),
noise and six square "metal" oscillators (hats, cymbals), shaped by a state-variable filter
(low/band/high-pass mix); clap noise bursts. Closed and pedal hats choke open hats (see
:mod:`engine.synth.events`).
"""

from __future__ import annotations

import numpy as np

from engine.realtime.jit import njit
from engine.synth.dsp import FAST, decay_k, samples_until, sin_cycle, svf_matrix
from engine.synth.layout import (
    DR_CLAP,
    DR_CRASH,
    DR_HAT_CLOSED,
    DR_HAT_OPEN,
    DR_HAT_PEDAL,
    DR_KICK,
    DR_SIDESTICK,
    DR_SNARE,
    DR_TOM,
    PHASE_ONE,
    PHASE_UNIT,
    SILENT,
    VF_BURST_PERIOD,
    VF_D_ENV,
    VF_D_ENV_K,
    VF_GL,
    VF_GR,
    VF_IC1,
    VF_IC2,
    VF_M_A,
    VF_M_K,
    VF_N_A,
    VF_N_BURST,
    VF_N_K,
    VF_N_K_TAIL,
    VF_S11,
    VF_S12,
    VF_S21,
    VF_S22,
    VF_SB1,
    VF_SB2,
    VF_SC1,
    VF_SC2,
    VF_SC3,
    VF_SIZE,
    VF_T1_A,
    VF_T1_F,
    VF_T1_FB,
    VF_T1_K,
    VF_T1_KS,
    VF_T2_A,
    VF_T2_K,
    VI_ACTIVE,
    VI_AGE,
    VI_BURST_CTR,
    VI_BURST_LEFT,
    VI_DRUM,
    VI_LEFT,
    VU_M_INC,
    VU_M_PH,
    VU_RNG,
    VU_T1_PH,
    VU_T2_INC,
    VU_T2_PH,
)
from engine.synth.voices.mix import finish_serial

_METAL_HZ = (205.3, 304.4, 369.6, 522.7, 540.0, 800.0)  # TR-808 cymbal oscillators


@njit(cache=True, nogil=True, error_model="numpy")
def _tone(vf, vu, v, second, start_hz, end_hz, sweep_s, amp, decay_s, sr):  # pragma: no cover - numba
    """Set drum tone 1 (gliding exponentially from start to end) or 2 (fixed): phase 0, decaying."""
    if second:
        vu[v, VU_T2_PH] = 0
        vu[v, VU_T2_INC] = np.uint64(min(0.45, start_hz / sr) * PHASE_ONE)
        vf[v, VF_T2_A] = amp
        vf[v, VF_T2_K] = decay_k(decay_s, sr)
    else:
        ks = decay_k(sweep_s, sr) if sweep_s > 0.0 else 1.0
        vu[v, VU_T1_PH] = 0
        vf[v, VF_T1_F] = min(0.45, start_hz / sr)
        vf[v, VF_T1_KS] = ks
        vf[v, VF_T1_FB] = min(0.45, end_hz / sr) * (1.0 - ks)
        vf[v, VF_T1_A] = amp
        vf[v, VF_T1_K] = decay_k(decay_s, sr)


@njit(cache=True, nogil=True, error_model="numpy")
def start_drum(v, kind, hz, vel, sr, vi, vf, vu):  # pragma: no cover - numba
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
        vf[v, VF_N_K] = decay_k(0.003, sr)
        svf_matrix(vf, v, 2800.0, 1.4, 1.0, 0.0, 0.0, sr)
    elif kind == DR_SNARE:
        _tone(vf, vu, v, False, 1.2 * hz, hz, 0.012, 0.5, 0.07, sr)
        _tone(vf, vu, v, True, 1.78 * hz, 0.0, 0.0, 0.25, 0.045, sr)
        vf[v, VF_N_A] = 0.8
        vf[v, VF_N_K] = decay_k(0.135 if hz < 200.0 else 0.075, sr)
        fc = 3200.0 if hz < 200.0 else 3200.0 + 6000.0 * bright
        svf_matrix(vf, v, fc, 1.1, 0.0, 0.8, 0.65 * bright, sr)
    elif kind == DR_SIDESTICK:
        _tone(vf, vu, v, False, hz, hz, 0.0, 0.55, 0.012, sr)
        _tone(vf, vu, v, True, 3.1 * hz, 0.0, 0.0, 0.3, 0.006, sr)
        vf[v, VF_N_A] = 0.5
        vf[v, VF_N_K] = decay_k(0.008, sr)
        svf_matrix(vf, v, 2400.0, 1.0, 0.0, 1.0, 0.0, sr)
    elif kind == DR_CLAP:
        vf[v, VF_N_BURST] = 1.0
        vf[v, VF_N_A] = 1.0
        vf[v, VF_N_K] = decay_k(0.005, sr)
        vf[v, VF_N_K_TAIL] = decay_k(0.11, sr)
        period = max(1, int(0.0095 * sr))
        vi[v, VI_BURST_LEFT] = 3
        vi[v, VI_BURST_CTR] = period
        vf[v, VF_BURST_PERIOD] = float(period)
        svf_matrix(vf, v, 1150.0 * hz, 0.7, 0.0, 1.3, 0.25, sr)
    elif kind == DR_TOM:
        _tone(vf, vu, v, False, 1.45 * hz, hz, 0.045, 0.95, 0.12 + 0.16 * min(1.0, 110.0 / hz), sr)
        _tone(vf, vu, v, True, 1.52 * hz, 0.0, 0.0, 0.18, 0.05, sr)
        vf[v, VF_N_A] = 0.3
        vf[v, VF_N_K] = decay_k(0.005, sr)
        svf_matrix(vf, v, 3000.0, 1.2, 0.7, 0.0, 0.0, sr)
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
        vf[v, VF_M_K] = decay_k(tau, sr)
        vf[v, VF_N_A] = n_amp
        vf[v, VF_N_K] = decay_k(tau * 0.85, sr)
        svf_matrix(vf, v, fc * min(hz, 1.6), 0.9, 0.0, 0.45 * bright, 0.9, sr)
        for c in range(6):
            vu[v, VU_M_INC + c] = np.uint64(min(0.45, _METAL_HZ[c] * hz * 1.3 / sr) * PHASE_ONE)
            vu[v, VU_M_PH + c] = np.uint64(0.1 * c * PHASE_ONE)
    vi[v, VI_LEFT] = drum_left(v, vi, vf)


@njit(cache=True, nogil=True, error_model="numpy")
def _hash_noise(seed, age):  # pragma: no cover - numba
    """Counter-based noise (splitmix64 of ``seed + age``): uniform in [-1, 1), a pure function of
    the voice's age, so it can be computed for many samples at once (vectorised)."""
    z = seed + age * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return float(z >> np.uint64(40)) * (2.0 / 16777216.0) - 1.0


@njit(cache=True, nogil=True, error_model="numpy")
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
            tone[t] = sin_cycle(float((p + (a0 + t) * inc) >> np.uint64(11)) * PHASE_UNIT)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FAST)
def render_drum(v, n, vi, vf, vu, scratch, mix):  # pragma: no cover - numba
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
            t1p += np.uint64(t1_f * PHASE_ONE)
            y += t1_a * sin_cycle(float(t1p >> np.uint64(11)) * PHASE_UNIT)
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
    finish_serial(v, vi, vf, mix, cnt, age0 + cnt, left)


@njit(cache=True, nogil=True, error_model="numpy")
def drum_left(v, vi, vf):  # pragma: no cover - numba
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
    return wait + samples_until(level, SILENT / g, slowest * vf[v, VF_D_ENV_K])
