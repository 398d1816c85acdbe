"""Voice allocation and the synth's events: note-on, note-off, all notes off, channel setup.

:func:`apply_event` applies one event of the ring; :func:`engine.synth.kernel.render_block` calls
it at the event's frame. A note-on takes the voice already playing its (channel, note) (a
retrigger), else a free voice, else steals one (:func:`_steal`); a cut voice's last sample decays
as a fast declick offset. Each voice takes its channel's gain and pan when it starts; a closed or
pedal hat chokes the open hats of its channel. Note-off releases (drums ignore it), all notes off
releases every voice, drums included, and a channel setup sets the instrument, gain and pan for
later notes.
"""

from __future__ import annotations

import math

import numpy as np

from engine.realtime.jit import njit
from engine.synth.dsp import decay_k, samples_until, velocity_amp
from engine.synth.layout import (
    BASS,
    BASS_LEVEL,
    CH_GAIN,
    CH_PAN,
    DR_HAT_CLOSED,
    DR_HAT_OPEN,
    DR_HAT_PEDAL,
    DRUM_LEVEL,
    DRUMS,
    ED_CHANNEL,
    ED_KIND,
    ED_NOTE,
    ED_VELOCITY,
    ENV_RELEASE,
    EV_ALL_OFF,
    EV_NOTE_OFF,
    EV_NOTE_ON,
    EV_SET_CHANNEL,
    EVV_GAIN,
    EVV_PAN,
    GF_SR,
    GI_ORDER,
    PAD,
    PAD_LEVEL,
    PIANO,
    PIANO_LEVEL,
    PLUCK,
    PLUCK_LEVEL,
    SILENT,
    VF_BOUND,
    VF_D_ENV,
    VF_D_ENV_K,
    VF_DC_L,
    VF_DC_R,
    VF_EB,
    VF_EK,
    VF_ENV,
    VF_GL,
    VF_GR,
    VF_KS_A0,
    VF_KS_D,
    VF_KS_RHO,
    VF_KS_RHO_REL,
    VF_LAST_L,
    VF_LAST_R,
    VF_M_A,
    VF_N_A,
    VF_REL_K,
    VF_T1_A,
    VF_T2_A,
    VI_ACTIVE,
    VI_AGE,
    VI_CHAN,
    VI_DRUM,
    VI_INST,
    VI_KS_N,
    VI_LEFT,
    VI_NOTE,
    VI_ORDER,
    VI_REL_PENDING,
    VI_RELEASED,
    VI_STAGE,
    VU_RNG,
)
from engine.synth.voices.bass import start_bass
from engine.synth.voices.drums import drum_left, start_drum
from engine.synth.voices.pad import start_pad
from engine.synth.voices.piano import start_piano
from engine.synth.voices.pluck import start_pluck


@njit(cache=True, nogil=True, error_model="numpy")
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


@njit(cache=True, nogil=True, error_model="numpy")
def _release(v, vi, vf, sr, from_all_off):  # pragma: no cover - numba
    """Start the release of voice ``v`` (drums only release on all-notes-off or a hat choke)."""
    inst = vi[v, VI_INST]
    if inst == DRUMS:
        if from_all_off:
            vf[v, VF_D_ENV_K] = min(vf[v, VF_D_ENV_K], decay_k(0.03, sr))
            vi[v, VI_RELEASED] = 1
            vi[v, VI_LEFT] = min(vi[v, VI_LEFT], drum_left(v, vi, vf))
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
        vi[v, VI_LEFT] = samples_until(level, threshold, vf[v, VF_KS_D])
    else:
        vi[v, VI_STAGE] = ENV_RELEASE
        vf[v, VF_EK] = vf[v, VF_REL_K]
        vf[v, VF_EB] = 0.0
        vi[v, VI_LEFT] = samples_until(vf[v, VF_ENV], threshold, vf[v, VF_REL_K])


@njit(cache=True, nogil=True, error_model="numpy")
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


@njit(cache=True, nogil=True, error_model="numpy")
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
                vf[u, VF_D_ENV_K] = min(vf[u, VF_D_ENV_K], decay_k(0.012, sr))
                vi[u, VI_RELEASED] = 1
                vi[u, VI_LEFT] = min(vi[u, VI_LEFT], drum_left(u, vi, vf))
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
    gain = chf[ch, CH_GAIN] * level * velocity_amp(vel)
    theta = (pan + 1.0) * (math.pi / 4.0)
    vf[v, VF_GL] = gain * math.cos(theta)
    vf[v, VF_GR] = gain * math.sin(theta)
    vf[v, VF_LAST_L] = 0.0
    vf[v, VF_LAST_R] = 0.0
    if inst == PIANO:
        start_piano(v, note, vel, sr, vi, vf, pz, pw, p8)
    elif inst == PAD:
        start_pad(v, note, vel, sr, vi, vf, seed)
    elif inst == BASS:
        start_bass(v, note, vel, sr, vi, vf)
    elif inst == PLUCK:
        start_pluck(v, note, vel, sr, vi, vf, dl, seed)
    else:
        start_drum(v, drum_type[note], drum_hz[note], vel, sr, vi, vf, vu)


@njit(cache=True, nogil=True, error_model="numpy")
def apply_event(
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
