"""The pad's and the bass's oscillators, computed by whole lane groups (vectorised).

A lane group is :data:`~engine.synth.layout.LANES` samples aligned to the voice's age; each
sample's phase is a closed form of the phase stored at the start of its group, so a group's
saws (and the bass's sub sine) are computed at once and any split into blocks gives the same
samples.
"""

from __future__ import annotations

import numpy as np

from engine.realtime.jit import njit
from engine.synth.dsp import blep_saw, sin_cycle
from engine.synth.layout import (
    LANES,
    VF_DT0,
    VF_DT1,
    VF_DT2,
    VF_IDT0,
    VF_IDT1,
    VF_IDT2,
    VF_PH0,
    VF_PH1,
    VF_PH2,
    VI_AGE,
)


@njit(cache=True, nogil=True, error_model="numpy")
def _pad_lanes(p0, p1, p2, d0, d1, d2, i0, i1, i2, lanes, start):  # pragma: no cover - numba
    """The three detuned saws for one lane group into ``lanes[start:start + LANES]`` (vectorised:
    closed-form phase per lane from the group's start phases ``p0..p2``)."""
    u = np.uint64(start)
    for t in range(LANES):
        x0 = p0 + t * d0
        x1 = p1 + t * d1
        x2 = p2 + t * d2
        s = blep_saw(x0 - np.floor(x0), i0) + blep_saw(x1 - np.floor(x1), i1)
        lanes[u + np.uint64(t)] = s + blep_saw(x2 - np.floor(x2), i2)


@njit(cache=True, nogil=True, error_model="numpy")
def _bass_lanes(p, d, idt, lanes, start):  # pragma: no cover - numba
    """Saw + sine sub at the same phase for one lane group into ``lanes[start:start + LANES]``."""
    u = np.uint64(start)
    for t in range(LANES):
        x = p + t * d
        ph = x - np.floor(x)
        lanes[u + np.uint64(t)] = 0.55 * blep_saw(ph, idt) + 0.6 * sin_cycle(ph)


@njit(cache=True, nogil=True, error_model="numpy")
def _next_phase(p, d):  # pragma: no cover - numba
    """An oscillator phase one lane group later."""
    x = p + LANES * d
    return x - np.floor(x)


@njit(cache=True, nogil=True, error_model="numpy")
def osc_segment(vi, vf, v, n, count, scratch):  # pragma: no cover - numba
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
