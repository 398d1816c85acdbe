"""How a serial voice renderer hands its samples over: from ``mix[2]`` (one voice, mono) into
the stereo mix with the voice's gains, keeping the last sample (the declick on a steal).
"""

from __future__ import annotations

import numpy as np

from engine.realtime.jit import njit
from engine.synth.layout import VF_GL, VF_GR, VF_LAST_L, VF_LAST_R, VI_ACTIVE, VI_AGE, VI_LEFT


@njit(cache=True, nogil=True, error_model="numpy")
def _add_mono(mix, n, gl, gr):  # pragma: no cover - numba
    """Add the mono voice signal in ``mix[2, :n]`` to left and right with gains (vectorised)."""
    mono = mix[2]
    mix_l = mix[0]
    mix_r = mix[1]
    for t in range(np.uint64(n)):
        x = mono[t]
        mix_l[t] += x * gl
        mix_r[t] += x * gr


@njit(cache=True, nogil=True, error_model="numpy")
def finish_serial(v, vi, vf, mix, done, age, left):  # pragma: no cover - numba
    """Common end of a serial renderer: mix ``done`` samples, store age/left and the last sample."""
    gl = vf[v, VF_GL]
    gr = vf[v, VF_GR]
    _add_mono(mix, done, gl, gr)
    vi[v, VI_AGE] = age
    vi[v, VI_LEFT] = left
    last = mix[2, done - 1] if done > 0 and vi[v, VI_ACTIVE] == 1 else 0.0
    vf[v, VF_LAST_L] = last * gl
    vf[v, VF_LAST_R] = last * gr
