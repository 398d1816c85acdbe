"""State layout of the built-in synth: what every column of its preallocated arrays means.

All state lives in arrays that :class:`engine.synth.polysynth.Synth` preallocates (nothing in the
kernels allocates); these constants name their columns: the instruments, the event ring (filled by
:func:`engine.synth.kernel.push_kernel`, drained by :func:`engine.synth.kernel.render_block`), the
channel table, the global state, the voice state (integers ``vi``, floats ``vf``, unsigned
``vu``), buffer sizes, the drum map (:func:`drum_tables`) and the instruments' output levels. The
kernels read them as compile-time constants.
"""

from __future__ import annotations

from typing import Final

import numpy as np

# --- instruments --------------------------------------------------------------------------------
PIANO: Final = 0
PAD: Final = 1
BASS: Final = 2
PLUCK: Final = 3
DRUMS: Final = 4
N_CHANNELS: Final = 16

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
FOREVER: Final = 1 << 62  # samples

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
PHASE_ONE: Final = 18446744073709551616.0  # 2**64: a float phase (cycles) to uint64
PHASE_UNIT: Final = 1.1102230246251565e-16  # 2**-53: (phase >> 11) to cycles

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
