"""The built-in polyphonic synth: five instruments, sample-accurate events, one numba call per block.

Real-time contract (pedalboard style):

* ``Synth(...)`` allocates everything: voices, delay lines, the event ring, the mix buffer.
* :meth:`Synth.note_on` / :meth:`Synth.note_off` / :meth:`Synth.all_notes_off` /
  :meth:`Synth.set_channel` queue an event in a single-producer / single-consumer ring (one
  producer thread, e.g. the engine's scheduler). They never block: when the ring is full the event
  is dropped and counted in :attr:`Synth.dropped_events`.
* :meth:`Synth.process` (the audio callback thread) renders one block with a single compiled call
  that releases the GIL, allocates nothing and takes no lock. Queued events are applied exactly at
  their frame; an event whose frame has already passed is applied at the first frame of the block.
* :meth:`Synth.reset` silences everything, clears the queue and rewinds to frame 0 (call it while
  ``process`` is not running).

Rendering is block-size invariant: the same events rendered with any block sizes give
bit-identical audio (see :mod:`engine.synth.kernel` for how).

The ring: preallocated arrays ``frame`` (int64), ``kind/channel/note/velocity`` (int32) and two
float64 values (for :meth:`Synth.set_channel`), plus ``[read, write, dropped]`` counters (int64).
The producer (a small compiled function, :func:`engine.synth.kernel.push_kernel`) writes an
event's fields, then publishes it by advancing ``write`` behind a release fence; the consumer
reads events up to the ``write`` it saw at the start of the block (acquire fence), then hands the
slots back by advancing ``read`` (release fence). The fences cost nothing on x86-64 and keep the
ring correct on weakly ordered CPUs (ARM).

Instruments: ``piano`` (modal, inharmonic partials), ``pad`` (detuned band-limited saws),
``bass`` (saw + sub through a filter envelope), ``pluck`` (Karplus-Strong) and ``drums`` (General
MIDI drum map on any channel set to drums; channel 9 by default). Drum notes outside the map's
core (35-59) go to the nearest family: bongos, congas, timbales and cuicas are toms; cowbell,
agogo, claves, wood blocks and whistles are side-stick clicks; tambourine, shakers, maracas,
cabasa, guiro and the mute triangle are closed hats; the open triangle and bells are open hats;
Chinese and splash cymbals are crashes; the ride bell is a ride with a louder bell; notes below 27
or above 87 take the nearest mapped note.

Each voice takes its channel's gain and pan when it starts (later :meth:`Synth.set_channel`
calls do not change sounding notes: no zipper noise, and block-size invariance holds). A master
peak limiter (instant attack, 200 ms release, threshold 0.8 = -1.9 dBFS) keeps the output within
+-0.8 however many voices play.
"""

from __future__ import annotations

import math
import os
from typing import Final

import mido
import numpy as np

from engine.checks import check_choice, check_int, check_real
from engine.outputs.gm import DRUM_CHANNEL, INSTRUMENTS, MAX_GAIN_DB, MIN_GAIN_DB, gain_db, voice_for_program
from engine.synth import layout as L
from engine.synth.kernel import block_kernel, push_kernel

N_CHANNELS: Final = L.N_CHANNELS  # channels in a block (a MIDI port's worth)
MAX_CHANNELS: Final = 4096
MIN_SAMPLE_RATE_HZ: Final = 8_000
MAX_SAMPLE_RATE_HZ: Final = 192_000
MAX_VOICES: Final = 256
MIN_EVENT_CAPACITY: Final = 16
MAX_EVENT_CAPACITY: Final = 1 << 22
MAX_FRAME: Final = 1 << 62
MAX_BLOCK_FRAMES: Final = 1 << 16
RENDER_TAIL_S: Final = 3.0  # render_midi: longest tail after the last event
RENDER_SILENCE: Final = 1e-5  # render_midi: trailing samples below this (-100 dBFS) are trimmed

_DRUM_TYPE, _DRUM_HZ = L.drum_tables()
_DRUM_TYPE.setflags(write=False)  # shared by every Synth; the kernel only reads them
_DRUM_HZ.setflags(write=False)


class Synth:
    """A polyphonic synth with ``max_voices`` preallocated voices and MIDI-like channels.

    Args:
        sample_rate_hz: output sample rate, 8000..192000 Hz.
        max_voices: voices sounding at once, 1..256; beyond that a voice is stolen (the quietest
            released one, else the one with the lowest level per second of age).
        event_capacity: events the ring holds before :meth:`process` consumes them, 16..4194304.
        channels: 16 (one MIDI port's worth) or a multiple, up to 4096: blocks of 16 channels,
            e.g. one per player sharing the synth, whose notes never touch another block's.

    Raises:
        TypeError: an argument is not an int.
        ValueError: an argument is outside its range.

    Default channel setup: every channel ``piano`` except channel 9 of each block of 16 ``drums``;
    gain 0 dB, pan 0.

    The first ``Synth`` of a process compiles the kernels, or loads them from numba's on-disk cache
    (about 15 s cold, under a second cached): create it before the audio stream starts.
    """

    def __init__(
        self,
        sample_rate_hz: int = 48_000,
        max_voices: int = 32,
        event_capacity: int = 8192,
        channels: int = 16,
    ) -> None:
        self._channels = check_int("channels", channels, N_CHANNELS, MAX_CHANNELS)
        if self._channels % N_CHANNELS:
            raise ValueError(
                f"channels must be a multiple of {N_CHANNELS} in {N_CHANNELS}..{MAX_CHANNELS}, got {channels}"
            )
        self._sample_rate_hz = check_int(
            "sample_rate_hz", sample_rate_hz, MIN_SAMPLE_RATE_HZ, MAX_SAMPLE_RATE_HZ
        )
        self._max_voices = check_int("max_voices", max_voices, 1, MAX_VOICES)
        self._capacity = check_int("event_capacity", event_capacity, MIN_EVENT_CAPACITY, MAX_EVENT_CAPACITY)
        sr = float(self._sample_rate_hz)
        # event ring
        self._ev_frame = np.zeros(self._capacity, dtype=np.int64)
        self._ev_data = np.zeros((self._capacity, L.ED_SIZE), dtype=np.int32)
        self._ev_value = np.zeros((self._capacity, L.EVV_SIZE), dtype=np.float64)
        self._ring_idx = np.zeros(L.RING_SIZE, dtype=np.int64)
        self._last_frame = 0  # producer side: frame of the latest queued note event
        # channels
        self._chi = np.zeros(self._channels, dtype=np.int64)
        self._chf = np.zeros((self._channels, L.CH_SIZE), dtype=np.float64)
        self._channel_setup: list[tuple[int, float, float]] = [
            (L.DRUMS if ch % N_CHANNELS == DRUM_CHANNEL else L.PIANO, 1.0, 0.0)
            for ch in range(self._channels)
        ]
        # voices
        n = self._max_voices
        self._vi = np.zeros((n, L.VI_SIZE), dtype=np.int64)
        self._vf = np.zeros((n, L.VF_SIZE), dtype=np.float64)
        self._vu = np.zeros((n, L.VU_SIZE), dtype=np.uint64)
        self._pz = np.zeros((n, 2, L.N_PARTIALS), dtype=np.float64)
        self._pw = np.zeros((n, 2, L.N_PARTIALS, L.LANES), dtype=np.float32)
        self._p8 = np.zeros((n, 2, L.N_PARTIALS), dtype=np.float64)
        self._dl = np.zeros((n, math.ceil(sr / L.LOWEST_PLUCK_HZ) + 8), dtype=np.float32)
        # scratch and globals
        self._mix = np.zeros((3, L.CHUNK_FRAMES), dtype=np.float64)  # left, right, one voice
        self._acc = np.zeros((n, L.LANES), dtype=np.float32)
        self._scratch = np.zeros((3, L.CHUNK_FRAMES + L.LANES), dtype=np.float32)
        self._gi = np.zeros(L.GI_SIZE, dtype=np.int64)
        self._gf = np.zeros(L.GF_SIZE, dtype=np.float64)
        self._gf[L.GF_SR] = sr
        self._gf[L.GF_LIM_REL] = math.exp(-1.0 / (0.2 * sr))
        self._gf[L.GF_DC_K] = math.exp(-1.0 / (0.002 * sr))
        self._drum_type = _DRUM_TYPE
        self._drum_hz = _DRUM_HZ
        state = (
            self._ev_frame, self._ev_data, self._ev_value, self._ring_idx, self._chi, self._chf, self._vi,
            self._vf, self._vu, self._pz, self._pw, self._p8, self._dl, self._mix, self._acc, self._scratch,
            self._gi, self._gf, self._drum_type, self._drum_hz,
        )  # fmt: skip
        # the kernel reads and writes these C-contiguous arrays through the addresses in this table
        self._table = np.array(
            [a.ctypes.data for a in state] + [n, self._capacity, self._dl.shape[1], self._channels], np.int64
        )
        self._kernel = block_kernel()
        self._push_kernel = push_kernel()
        self._table_address = self._table.ctypes.data
        self.reset()

    # --- properties -----------------------------------------------------------------------------
    @property
    def sample_rate_hz(self) -> int:
        """Output sample rate, Hz."""
        return self._sample_rate_hz

    @property
    def channels(self) -> int:
        """Channels (a multiple of 16)."""
        return self._channels

    @property
    def max_voices(self) -> int:
        """Voices that can sound at once."""
        return self._max_voices

    @property
    def frame(self) -> int:
        """The next frame :meth:`process` renders (frames since the last :meth:`reset`)."""
        return int(self._gi[L.GI_FRAME])

    @property
    def active_voices(self) -> int:
        """Voices sounding at the end of the last block (released voices count until silent)."""
        return int(self._gi[L.GI_ACTIVE])

    @property
    def peak_active_voices(self) -> int:
        """The most voices that sounded at once since the last :meth:`reset`."""
        return int(self._gi[L.GI_PEAK])

    @property
    def dropped_events(self) -> int:
        """Events refused because the ring was full, since the last :meth:`reset`."""
        return int(self._ring_idx[L.RING_DROPPED])

    # --- producer side ------------------------------------------------------------------------
    def _push(
        self, frame: int, kind: int, channel: int, note: int, velocity: int, gain: float, pan: float
    ) -> bool:
        return bool(self._push_kernel(self._table_address, frame, kind, channel, note, velocity, gain, pan))

    def note_on(self, frame: int, channel: int, note: int, velocity: int) -> None:
        """Queue a note-on at ``frame`` (``velocity == 0`` is a note-off).

        A note-on for a (channel, note) that is already sounding retriggers that voice.

        Args:
            frame: absolute frame (0..2**62) at which the note starts; a past frame plays at the
                start of the next block.
            channel: 0..channels - 1.
            note: MIDI note 0..127 (A4 = 69 = 440 Hz).
            velocity: 0..127.

        Raises:
            TypeError: an argument is not an int.
            ValueError: an argument is outside its range.
        """
        frame = check_int("frame", frame, 0, MAX_FRAME)
        channel = check_int("channel", channel, 0, self._channels - 1)
        note = check_int("note", note, 0, 127)
        velocity = check_int("velocity", velocity, 0, 127)
        kind = L.EV_NOTE_ON if velocity > 0 else L.EV_NOTE_OFF
        self._last_frame = max(self._last_frame, frame)
        self._push(frame, kind, channel, note, velocity, 0.0, 0.0)

    def note_off(self, frame: int, channel: int, note: int) -> None:
        """Queue the release of (channel, note) at ``frame`` (drum hits ignore note-offs).

        Args:
            frame: absolute frame, 0..2**62.
            channel: 0..channels - 1.
            note: 0..127.

        Raises:
            TypeError: an argument is not an int.
            ValueError: an argument is outside its range.
        """
        frame = check_int("frame", frame, 0, MAX_FRAME)
        channel = check_int("channel", channel, 0, self._channels - 1)
        note = check_int("note", note, 0, 127)
        self._last_frame = max(self._last_frame, frame)
        self._push(frame, L.EV_NOTE_OFF, channel, note, 0, 0.0, 0.0)

    def all_notes_off(self, frame: int) -> None:
        """Queue the release (not a hard cut) of every sounding voice, drums included, at ``frame``.

        Args:
            frame: absolute frame, 0..2**62.

        Raises:
            TypeError: ``frame`` is not an int.
            ValueError: ``frame`` is outside its range.
        """
        frame = check_int("frame", frame, 0, MAX_FRAME)
        self._last_frame = max(self._last_frame, frame)
        self._push(frame, L.EV_ALL_OFF, 0, 0, 0, 0.0, 0.0)

    def set_channel(self, channel: int, instrument: str, gain_db: float = 0.0, pan: float = 0.0) -> None:
        """Set a channel's instrument, gain and pan for the notes queued after this call.

        The change travels through the event ring behind the events already queued, so notes
        queued before it (even for later frames) keep the old setup, notes queued after it get the
        new one. Sounding notes keep their setup. The setup survives :meth:`reset`.

        Args:
            channel: 0..channels - 1.
            instrument: one of :data:`INSTRUMENTS`.
            gain_db: channel gain, -120..24 dB.
            pan: -1 (left) .. 1 (right), constant-power.

        Raises:
            TypeError: an argument has the wrong type.
            ValueError: an argument is outside its range or not an instrument name.
        """
        channel = check_int("channel", channel, 0, self._channels - 1)
        inst = INSTRUMENTS.index(check_choice("instrument", instrument, INSTRUMENTS))
        gain = 10.0 ** (check_real("gain_db", gain_db, MIN_GAIN_DB, MAX_GAIN_DB) / 20.0)
        pan = check_real("pan", pan, -1.0, 1.0)
        self._channel_setup[channel] = (inst, gain, pan)
        self._push(self._last_frame, L.EV_SET_CHANNEL, channel, inst, 0, gain, pan)

    # --- consumer side ------------------------------------------------------------------------
    def process(self, out: np.ndarray) -> None:
        """Render frames ``[frame, frame + n)`` into ``out`` and advance :attr:`frame` by ``n``.

        One compiled call (GIL released); no allocation, no lock, no per-sample Python work.

        Args:
            out: float32, C-contiguous, shape ``(n_frames, 2)`` with ``n_frames >= 1``;
                overwritten with the stereo block, every sample within +-0.8.

        Raises:
            TypeError: ``out`` is not a float32 numpy array.
            ValueError: ``out`` has the wrong shape or is not C-contiguous and writeable.
        """
        if not isinstance(out, np.ndarray) or out.dtype != np.float32:
            raise TypeError(f"out must be a float32 numpy array of shape (n_frames >= 1, 2), got {out!r:.60}")
        if out.ndim != 2 or out.shape[1] != 2 or out.shape[0] < 1:
            raise ValueError(f"out must have shape (n_frames >= 1, 2), got {out.shape}")
        if not (out.flags.c_contiguous and out.flags.writeable):
            raise ValueError("out must be C-contiguous and writeable")
        self._kernel(out.ctypes.data, out.shape[0], self._table_address)

    def reset(self) -> None:
        """Silence every voice, clear the event queue and the counters, rewind to frame 0.

        The channel setup (the latest :meth:`set_channel` per channel) is kept. Not thread-safe
        against :meth:`process` or the producer: call it while neither runs.
        """
        self._vi[:] = 0
        self._vf[:] = 0.0
        self._vu[:] = 0
        self._pz[:] = 0.0
        self._dl[:] = 0.0
        self._ring_idx[:] = 0
        self._gi[:] = 0
        self._gf[L.GF_LIM_ENV] = 0.0
        self._last_frame = 0
        for ch, (inst, gain, pan) in enumerate(self._channel_setup):
            self._chi[ch] = inst
            self._chf[ch, L.CH_GAIN] = gain
            self._chf[ch, L.CH_PAN] = pan


# ================================================================================================
# offline rendering of MIDI files
# ================================================================================================


def _midi_actions(
    mid: mido.MidiFile, sample_rate_hz: int
) -> tuple[list[tuple[int, int, int, int, int, str, float, float]], int]:
    """Timed synth actions of a MIDI file and its end frame.

    Actions are ``(frame, kind, channel, note, velocity, instrument, gain_db, pan)`` in file order;
    ``kind`` is an ``EV_*`` constant. Sustain (CC64) defers note-offs; CC120/123 release the
    channel's notes; program changes, CC7/11 (gain) and CC10 (pan) become channel setups.
    """
    actions: list[tuple[int, int, int, int, int, str, float, float]] = []
    program = [0] * N_CHANNELS
    volume = [100] * N_CHANNELS
    expression = [127] * N_CHANNELS
    pan = [0.0] * N_CHANNELS
    sustain = [False] * N_CHANNELS
    pedal_held: list[set[int]] = [set() for _ in range(N_CHANNELS)]
    sounding: list[set[int]] = [set() for _ in range(N_CHANNELS)]

    def setup(frame: int, ch: int) -> None:
        inst = voice_for_program(program[ch], ch)
        actions.append(
            (frame, L.EV_SET_CHANNEL, ch, 0, 0, inst, gain_db(volume[ch], expression[ch]), pan[ch])
        )

    def off(frame: int, ch: int, note: int) -> None:
        sounding[ch].discard(note)
        actions.append((frame, L.EV_NOTE_OFF, ch, note, 0, "", 0.0, 0.0))

    seconds = 0.0
    for msg in mid:
        seconds += msg.time
        frame = round(seconds * sample_rate_hz)
        if msg.is_meta or not hasattr(msg, "channel"):
            continue
        ch = msg.channel
        if msg.type == "note_on" and msg.velocity > 0:
            pedal_held[ch].discard(msg.note)
            sounding[ch].add(msg.note)
            actions.append((frame, L.EV_NOTE_ON, ch, msg.note, msg.velocity, "", 0.0, 0.0))
        elif msg.type in ("note_off", "note_on"):
            if sustain[ch]:
                pedal_held[ch].add(msg.note)
            else:
                off(frame, ch, msg.note)
        elif msg.type == "program_change":
            program[ch] = msg.program
            setup(frame, ch)
        elif msg.type == "control_change":
            if msg.control in (7, 10, 11):
                if msg.control == 7:
                    volume[ch] = msg.value
                elif msg.control == 11:
                    expression[ch] = msg.value
                else:
                    pan[ch] = min(1.0, max(-1.0, (msg.value - 64) / 63.0))
                setup(frame, ch)
            elif msg.control == 64:
                sustain[ch] = msg.value >= 64
                if not sustain[ch]:
                    for note in sorted(pedal_held[ch]):
                        off(frame, ch, note)
                    pedal_held[ch].clear()
            elif msg.control in (120, 123):
                for note in sorted(sounding[ch] | pedal_held[ch]):
                    off(frame, ch, note)
                pedal_held[ch].clear()
    return actions, round(seconds * sample_rate_hz)


def render_midi(
    path: str | os.PathLike[str],
    sample_rate_hz: int = 48_000,
    block_frames: int = 512,
    max_voices: int = 32,
    *,
    stats: dict[str, int] | None = None,
) -> np.ndarray:
    """Render a Standard MIDI File offline with :class:`Synth`.

    General MIDI program changes choose the voice (:func:`engine.outputs.gm.voice_for_program`,
    the table every output uses; channel 9 plays drums), tempo changes are honoured (mido),
    CC7/CC11 set the channel gain (:func:`engine.outputs.gm.gain_db`), CC10 the pan, CC64 holds
    note-offs. After the file's end the render goes on until every voice is silent, at
    most :data:`RENDER_TAIL_S` seconds; trailing samples below -100 dBFS are trimmed.

    Args:
        path: the .mid file.
        sample_rate_hz: 8000..192000 Hz.
        block_frames: frames per :meth:`Synth.process` call, 1..65536 (the audio does not depend
            on it).
        max_voices: 1..256.
        stats: if given, filled with ``peak_active_voices``, ``dropped_events``, ``end_frame``
            (the file's end) and ``frames`` (the returned length).

    Returns:
        float32 array of shape (n_frames, 2).

    Raises:
        TypeError / ValueError: bad arguments, or a file mido cannot read (ValueError).
        OSError: the file cannot be opened.
    """
    sample_rate_hz = check_int("sample_rate_hz", sample_rate_hz, MIN_SAMPLE_RATE_HZ, MAX_SAMPLE_RATE_HZ)
    block_frames = check_int("block_frames", block_frames, 1, MAX_BLOCK_FRAMES)
    max_voices = check_int("max_voices", max_voices, 1, MAX_VOICES)
    try:
        mid = mido.MidiFile(path)
        actions, end_frame = _midi_actions(mid, sample_rate_hz)
    except (EOFError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise ValueError(f"cannot read MIDI file {os.fspath(path)!r}: {exc}") from exc
    frames = np.fromiter((a[0] for a in actions), dtype=np.int64, count=len(actions))
    per_block = int(np.bincount(frames // block_frames).max()) if len(actions) else 0
    synth = Synth(
        sample_rate_hz, max_voices, event_capacity=min(MAX_EVENT_CAPACITY, max(8192, per_block + 16))
    )
    tail = int(RENDER_TAIL_S * sample_rate_hz)
    limit = end_frame + tail
    out = np.zeros(((limit // block_frames + 1) * block_frames, 2), dtype=np.float32)
    pos = 0
    next_action = 0
    while pos < limit:
        block_end = pos + block_frames
        while next_action < len(actions) and actions[next_action][0] < block_end:
            frame, kind, ch, note, velocity, inst, gain_db, pan = actions[next_action]
            if kind == L.EV_SET_CHANNEL:
                synth.set_channel(ch, inst, gain_db, pan)
            elif kind == L.EV_NOTE_ON:
                synth.note_on(frame, ch, note, velocity)
            else:
                synth.note_off(frame, ch, note)
            next_action += 1
        synth.process(out[pos:block_end])
        pos = block_end
        if pos >= end_frame and next_action == len(actions) and synth.active_voices == 0:
            break
    loud = np.flatnonzero(np.max(np.abs(out[end_frame:pos]), axis=1) >= RENDER_SILENCE)
    n_frames = min(limit, end_frame + (int(loud[-1]) + 1 if loud.size else 0))
    if stats is not None:
        stats.update(
            peak_active_voices=synth.peak_active_voices,
            dropped_events=synth.dropped_events,
            end_frame=end_frame,
            frames=n_frames,
        )
    return out[:n_frames].copy()
