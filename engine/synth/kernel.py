"""The synth's compiled entry points: the block renderer and the event push, as C functions.

One compiled call renders one audio block (:func:`render_block`, reached from Python through the
C entry point :func:`block_kernel`): it applies the queued events at their exact frames
(:mod:`engine.synth.events`), renders every sounding voice over the segments between events
(voice by voice, into a planar float64 mix buffer; :mod:`engine.synth.voices`), runs the master
limiter and writes float32 stereo. Nothing in it allocates: all state lives in arrays that
:class:`engine.synth.polysynth.Synth` preallocates (:mod:`engine.synth.layout`), and the C entry
point takes raw pointers (a numba dispatcher call would allocate an NRT MemInfo per array
argument). :func:`push_kernel` is the producer side of the event ring.

Block-size invariance: every piece of state advances per sample, or per *lane group* of
:data:`~engine.synth.layout.LANES` samples aligned to the voice's own age (never to the block);
events land on their frame; voices are freed after a number of samples fixed when their note
starts or is released. Any split of the same frames into blocks gives bit-identical output. (The
serial renderers use ``fastmath={"contract"}``, fused multiply-adds, which is deterministic: each
has one code path.)
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable
from typing import Any, Final

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic

from engine.realtime.atomics import acquire_fence, release_fence
from engine.realtime.jit import cfunc, njit
from engine.synth.dsp import FAST
from engine.synth.events import apply_event
from engine.synth.layout import (
    BASS,
    CH_SIZE,
    CHUNK_FRAMES,
    ED_CHANNEL,
    ED_KIND,
    ED_NOTE,
    ED_SIZE,
    ED_VELOCITY,
    EVV_GAIN,
    EVV_PAN,
    EVV_SIZE,
    GF_DC_K,
    GF_LIM_ENV,
    GF_LIM_REL,
    GF_SIZE,
    GI_ACTIVE,
    GI_FRAME,
    GI_PEAK,
    GI_SIZE,
    LANES,
    LIMIT_THRESHOLD,
    N_PARTIALS,
    PAD,
    PIANO,
    PLUCK,
    RING_DROPPED,
    RING_READ,
    RING_SIZE,
    RING_WRITE,
    VF_DC_L,
    VF_DC_R,
    VF_SIZE,
    VI_ACTIVE,
    VI_INST,
    VI_SIZE,
    VU_SIZE,
)
from engine.synth.voices.bass import render_bass
from engine.synth.voices.drums import render_drum
from engine.synth.voices.pad import render_pad
from engine.synth.voices.piano import render_piano
from engine.synth.voices.pluck import render_pluck

# ================================================================================================
# the block renderer
# ================================================================================================


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FAST)
def _master(mix, out, pos, seg, gf):  # pragma: no cover - numba
    """Peak limiter into ``out`` (interleaved stereo, flat): instant attack, 200 ms release.

    The gain is ``LIMIT_THRESHOLD / max(peak envelope, LIMIT_THRESHOLD)`` and the envelope is at
    least the current sample's peak, so the output never exceeds the threshold (0.8, -1.9 dBFS);
    the final clamp only guards against non-finite input. The envelope runs sample by sample
    (into ``mix[2]``), the rest is vectorised.
    """
    lim = gf[GF_LIM_ENV]
    rel = gf[GF_LIM_REL]
    mix_l = mix[0]
    mix_r = mix[1]
    env = mix[2]
    for i in range(seg):
        lim = max(max(abs(mix_l[i]), abs(mix_r[i])), lim * rel)
        env[i] = lim
    gf[GF_LIM_ENV] = lim
    base = np.uint64(2 * pos)
    for t in range(np.uint64(seg)):
        g = LIMIT_THRESHOLD / max(env[t], LIMIT_THRESHOLD)
        out[base + 2 * t] = min(max(mix_l[t] * g, -LIMIT_THRESHOLD), LIMIT_THRESHOLD)
        out[base + 2 * t + 1] = min(max(mix_r[t] * g, -LIMIT_THRESHOLD), LIMIT_THRESHOLD)


@njit(cache=True, nogil=True, error_model="numpy")
def render_block(
    out,
    ev_frame,
    ev_data,
    ev_value,
    ring_idx,
    chi,
    chf,
    vi,
    vf,
    vu,
    pz,
    pw,
    p8,
    dl,
    mix,
    acc,
    scratch,
    gi,
    gf,
    drum_type,
    drum_hz,
):  # pragma: no cover - numba
    """Render ``out.shape[0] // 2`` frames into ``out`` (float32, interleaved stereo, flat) and
    advance ``gi[GI_FRAME]``.

    Events queued in the ring (``ring_idx[RING_READ]`` up to the ``ring_idx[RING_WRITE]`` seen at
    the start of the call) are applied at their frame; those already past, at frame 0 of the block.
    """
    n_total = out.shape[0] // 2
    n_voices = vi.shape[0]
    capacity = ev_frame.shape[0]
    frame0 = gi[GI_FRAME]
    read = ring_idx[RING_READ]
    write = ring_idx[RING_WRITE]
    acquire_fence()  # the fields of the events up to ``write`` are visible from here on
    dc_k = gf[GF_DC_K]
    peak = gi[GI_PEAK]
    pos = 0
    while pos < n_total:
        now = frame0 + pos
        while read < write:
            slot = read % capacity
            if ev_frame[slot] > now:
                break
            apply_event(
                slot, ev_data, ev_value, chi, chf, vi, vf, vu, pz, pw, p8, dl, gi, gf, drum_type, drum_hz
            )
            read += 1
        if read != ring_idx[RING_READ]:
            release_fence()  # done with those slots before handing them back to the producer
            ring_idx[RING_READ] = read
        seg = min(n_total - pos, CHUNK_FRAMES)
        if read < write:
            seg = min(seg, ev_frame[read % capacity] - now)
        mix[:2, :seg] = 0.0
        active = 0
        for v in range(n_voices):
            if vi[v, VI_ACTIVE] == 0:
                continue
            active += 1
            inst = vi[v, VI_INST]
            if inst == PIANO:
                render_piano(v, seg, vi, vf, vu, pz, pw, p8, acc, mix)
            elif inst == PAD:
                render_pad(v, seg, vi, vf, scratch, mix)
            elif inst == BASS:
                render_bass(v, seg, vi, vf, scratch, mix)
            elif inst == PLUCK:
                render_pluck(v, seg, vi, vf, dl, mix)
            else:
                render_drum(v, seg, vi, vf, vu, scratch, mix)
        peak = max(peak, active)
        for v in range(n_voices):
            dcl = vf[v, VF_DC_L]
            dcr = vf[v, VF_DC_R]
            if dcl == 0.0 and dcr == 0.0:
                continue
            for i in range(seg):
                mix[0, i] += dcl
                mix[1, i] += dcr
                dcl *= dc_k
                dcr *= dc_k
                if abs(dcl) + abs(dcr) < 1e-7:
                    dcl = 0.0
                    dcr = 0.0
                    break
            vf[v, VF_DC_L] = dcl
            vf[v, VF_DC_R] = dcr
        _master(mix, out, pos, seg, gf)
        pos += seg
    active = 0
    for v in range(n_voices):
        active += vi[v, VI_ACTIVE]
    gi[GI_FRAME] = frame0 + n_total
    gi[GI_ACTIVE] = active
    gi[GI_PEAK] = peak


# ================================================================================================
# the C entry point: no NRT allocation at the call boundary
# ================================================================================================

_TABLE = (  # the state arrays' element types, in the order of the kernel's pointer table
    types.int64,  # ev_frame (capacity,)
    types.int32,  # ev_data (capacity, ED_SIZE)
    types.float64,  # ev_value (capacity, EVV_SIZE)
    types.int64,  # ring_idx (RING_SIZE,)
    types.int64,  # chi (N_CHANNELS,)
    types.float64,  # chf (N_CHANNELS, CH_SIZE)
    types.int64,  # vi (n_voices, VI_SIZE)
    types.float64,  # vf (n_voices, VF_SIZE)
    types.uint64,  # vu (n_voices, VU_SIZE)
    types.float64,  # pz (n_voices, 2, N_PARTIALS)
    types.float32,  # pw (n_voices, 2, N_PARTIALS, LANES)
    types.float64,  # p8 (n_voices, 2, N_PARTIALS)
    types.float32,  # dl (n_voices, delay_len)
    types.float64,  # mix (3, CHUNK_FRAMES)
    types.float32,  # acc (n_voices, LANES)
    types.float32,  # scratch (3, CHUNK_FRAMES + LANES)
    types.int64,  # gi (GI_SIZE,)
    types.float64,  # gf (GF_SIZE,)
    types.int64,  # drum_type (128,)
    types.float64,  # drum_hz (128,)
)


TABLE_SIZE: Final = len(_TABLE) + 4  # the pointers, then n_voices, capacity, delay_len, channels


def _pointer_cast(dtype: types.Type) -> Callable[..., Any]:
    """An intrinsic turning an int64 address into a ``dtype*`` (for ``numba.carray``)."""

    @intrinsic
    def cast(typingctx, address):  # pragma: no cover - numba
        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

        return types.CPointer(dtype)(types.int64), codegen

    return cast


_I32_AT = _pointer_cast(types.int32)
_I64_AT = _pointer_cast(types.int64)
_U64_AT = _pointer_cast(types.uint64)
_F32_AT = _pointer_cast(types.float32)
_F64_AT = _pointer_cast(types.float64)


def _kernel(out, n_frames, table):  # pragma: no cover - numba
    """:func:`render_block` on raw pointers (``table``: the state arrays' addresses, then
    n_voices, capacity, delay_len, channels); ``numba.carray`` views allocate nothing."""
    t = numba.carray(table, (TABLE_SIZE,))
    nv = t[20]
    cap = t[21]
    nch = t[23]
    carray = numba.carray
    render_block(
        carray(out, (2 * n_frames,)),
        carray(_I64_AT(t[0]), (cap,)),
        carray(_I32_AT(t[1]), (cap, ED_SIZE)),
        carray(_F64_AT(t[2]), (cap, EVV_SIZE)),
        carray(_I64_AT(t[3]), (RING_SIZE,)),
        carray(_I64_AT(t[4]), (nch,)),
        carray(_F64_AT(t[5]), (nch, CH_SIZE)),
        carray(_I64_AT(t[6]), (nv, VI_SIZE)),
        carray(_F64_AT(t[7]), (nv, VF_SIZE)),
        carray(_U64_AT(t[8]), (nv, VU_SIZE)),
        carray(_F64_AT(t[9]), (nv, 2, N_PARTIALS)),
        carray(_F32_AT(t[10]), (nv, 2, N_PARTIALS, LANES)),
        carray(_F64_AT(t[11]), (nv, 2, N_PARTIALS)),
        carray(_F32_AT(t[12]), (nv, t[22])),
        carray(_F64_AT(t[13]), (3, CHUNK_FRAMES)),
        carray(_F32_AT(t[14]), (nv, LANES)),
        carray(_F32_AT(t[15]), (3, CHUNK_FRAMES + LANES)),
        carray(_I64_AT(t[16]), (GI_SIZE,)),
        carray(_F64_AT(t[17]), (GF_SIZE,)),
        carray(_I64_AT(t[18]), (128,)),
        carray(_F64_AT(t[19]), (128,)),
    )


_KERNEL_SIGNATURE = types.void(types.CPointer(types.float32), types.int64, types.CPointer(types.int64))


@functools.cache
def block_kernel() -> Callable[[int, int, int], None]:
    """The block renderer as a ctypes C function ``(out address, n_frames, table address)``.

    Compiled, or loaded from numba's cache, on first use. ``table`` is an int64 array of
    :data:`TABLE_SIZE`: the addresses of the state arrays (see :data:`_TABLE` for their order and
    element types, :class:`engine.synth.polysynth.Synth` for their shapes), then n_voices, event capacity
    and the pluck delay length. Calling it releases the GIL and performs no heap allocation
    (a numba dispatcher call would wrap every array argument in a newly allocated NRT MemInfo).
    """
    compiled = cfunc(_KERNEL_SIGNATURE, cache=True, error_model="numpy")(_kernel)
    address = compiled.address
    if address is None:
        raise RuntimeError("numba did not compile the synth's block kernel")
    function = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p)(address)
    function._numba_cfunc = compiled  # type: ignore[attr-defined]  # keeps the code alive
    return function


def _push(table, frame, kind, channel, note, velocity, gain, pan):  # pragma: no cover - numba
    """Queue one event (the producer side of the ring); 0 and ``dropped += 1`` if it is full."""
    t = numba.carray(table, (TABLE_SIZE,))
    capacity = t[21]
    ring_idx = numba.carray(_I64_AT(t[3]), (RING_SIZE,))
    write = ring_idx[RING_WRITE]
    read = ring_idx[RING_READ]
    acquire_fence()  # the consumer is done with the slots before ``read``
    if write - read >= capacity:
        ring_idx[RING_DROPPED] += 1
        return 0
    slot = write % capacity
    numba.carray(_I64_AT(t[0]), (capacity,))[slot] = frame
    ev_data = numba.carray(_I32_AT(t[1]), (capacity, ED_SIZE))
    ev_data[slot, ED_KIND] = kind
    ev_data[slot, ED_CHANNEL] = channel
    ev_data[slot, ED_NOTE] = note
    ev_data[slot, ED_VELOCITY] = velocity
    ev_value = numba.carray(_F64_AT(t[2]), (capacity, EVV_SIZE))
    ev_value[slot, EVV_GAIN] = gain
    ev_value[slot, EVV_PAN] = pan
    release_fence()  # the fields are visible before the new write index
    ring_idx[RING_WRITE] = write + 1
    return 1


_PUSH_SIGNATURE = types.int64(
    types.CPointer(types.int64),
    types.int64,
    types.int32,
    types.int32,
    types.int32,
    types.int32,
    types.float64,
    types.float64,
)


@functools.cache
def push_kernel() -> Callable[[int, int, int, int, int, int, float, float], int]:
    """The producer side of the event ring as a ctypes C function ``(table address, frame, kind,
    channel, note, velocity, gain, pan) -> 1 queued / 0 dropped`` (see :func:`block_kernel` for
    the table). It orders its stores with release/acquire fences, so the single-producer /
    single-consumer ring is also correct on weakly ordered CPUs."""
    compiled = cfunc(_PUSH_SIGNATURE, cache=True, error_model="numpy")(_push)
    address = compiled.address
    if address is None:
        raise RuntimeError("numba did not compile the synth's event push")
    function = ctypes.CFUNCTYPE(
        ctypes.c_int64,
        ctypes.c_void_p,
        ctypes.c_int64,
        ctypes.c_int32,
        ctypes.c_int32,
        ctypes.c_int32,
        ctypes.c_int32,
        ctypes.c_double,
        ctypes.c_double,
    )(address)
    function._numba_cfunc = compiled  # type: ignore[attr-defined]  # keeps the code alive
    return function
