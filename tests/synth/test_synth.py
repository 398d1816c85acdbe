"""The built-in synth (engine.synth.polysynth): block-size invariance, levels, releases, voice allocation,
pitch, validation, the event ring, allocation-free processing, render_midi and the benchmark."""

from __future__ import annotations

import importlib
import threading
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path

import mido
import numpy as np
import pytest
from numba.core.runtime import rtsys

from engine.bench.synth import synth_speed
from engine.synth.kernel import block_kernel
from engine.synth.layout import LIMIT_THRESHOLD
from engine.synth.polysynth import Synth, render_midi

SR = 48_000
NRT = importlib.import_module("numba.core.runtime._nrt_python")  # numba's allocation counters
# (frame, kind, channel, note, velocity); kind: "on", "off", "all_off"
Event = tuple[int, str, int, int, int]
DRUM_NOTES = (35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 49, 51, 53, 57, 59, 62, 70, 81, 20, 100)


def setup_channels(synth: Synth) -> None:
    """Channels 0..3: piano, pad, bass, pluck (different gains and pans); 9: drums (default)."""
    for ch, inst in enumerate(("piano", "pad", "bass", "pluck")):
        synth.set_channel(ch, inst, gain_db=-2.0 * ch, pan=(ch - 1.5) / 2.0)


def dense_events(seconds: float, seed: int = 7) -> list[Event]:
    """Many overlapping notes on every instrument, plus events on and next to block edges."""
    rng = np.random.default_rng(seed)
    end = int(seconds * SR)
    events: list[Event] = []
    for _ in range(160):
        frame = int(rng.integers(0, end - SR // 4))
        ch = int(rng.choice([0, 1, 2, 3, 9]))
        note = int(rng.choice(DRUM_NOTES)) if ch == 9 else int(rng.integers(24, 100))
        events.append((frame, "on", ch, note, int(rng.integers(1, 128))))
        events.append((frame + int(rng.integers(1, SR // 3)), "off", ch, note, 0))
    for frame in (63, 64, 65, 255, 256, 257, 8192, 8193, 8194):  # block edges of the tested sizes
        events.append((frame, "on", int(rng.choice([0, 1, 2, 3])), int(rng.integers(40, 80)), 90))
        events.append((frame, "on", 9, 42, 100))
    events.append((8193, "on", 9, 46, 100))  # open hat, choked by the closed hat below
    events.append((8300, "on", 9, 42, 100))
    events.append((end - SR // 5, "all_off", 0, 0, 0))
    events.sort(key=lambda e: e[0])  # stable: same-frame events keep their order
    return events


def render(
    events: Sequence[Event],
    n_frames: int,
    block: int = 512,
    *,
    synth: Synth | None = None,
    max_voices: int = 32,
) -> np.ndarray:
    """Render ``events`` with blocks of ``block`` frames, queueing each block's events just before it."""
    synth = synth or Synth(SR, max_voices=max_voices)
    if synth.frame == 0:
        setup_channels(synth)
    out = np.zeros((n_frames, 2), dtype=np.float32)
    pos = 0
    i = 0
    while pos < n_frames:
        n = min(block, n_frames - pos)
        while i < len(events) and events[i][0] < pos + n:
            frame, kind, ch, note, velocity = events[i]
            if kind == "on":
                synth.note_on(frame, ch, note, velocity)
            elif kind == "off":
                synth.note_off(frame, ch, note)
            else:
                synth.all_notes_off(frame)
            i += 1
        synth.process(out[pos : pos + n])
        pos += n
    return out


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def single_note(instrument: str, note: int = 69, velocity: int = 100, seconds: float = 1.0) -> np.ndarray:
    synth = Synth(SR)
    synth.set_channel(0, instrument)
    synth.note_on(0, 0, note, velocity)
    out = np.zeros((int(seconds * SR), 2), dtype=np.float32)
    synth.process(out)
    return out


# --- block-size invariance -------------------------------------------------------------------


def test_block_size_invariance_is_bit_exact() -> None:
    events = dense_events(1.5)
    n = int(1.6 * SR)
    reference = render(events, n, block=512)
    assert rms(reference) > 0.01
    for block in (1, 64, 65, 256, 8193):
        out = render(events, n, block=block)
        assert np.array_equal(out, reference), f"block {block}: max diff {np.max(np.abs(out - reference))}"


def test_events_are_sample_accurate() -> None:
    synth = Synth(SR)
    synth.set_channel(0, "pluck")  # a pluck starts at full amplitude on its first sample
    synth.note_on(1234, 0, 60, 100)
    out = np.zeros((4096, 2), dtype=np.float32)
    synth.process(out)
    assert not out[:1234].any()
    assert np.abs(out[1234]).max() > 1e-3


def test_late_event_is_applied_at_block_start() -> None:
    def late(frame: int) -> np.ndarray:
        synth = Synth(SR)
        synth.set_channel(0, "pluck")
        out = np.zeros((2000, 2), dtype=np.float32)
        synth.process(out[:1000])
        synth.note_on(frame, 0, 60, 100)
        synth.process(out[1000:])
        return out

    on_time = late(1000)
    assert np.abs(on_time[1000]).max() > 1e-3
    assert np.array_equal(late(10), on_time)  # frame 10 is past: it plays at 1000


# --- levels ---------------------------------------------------------------------------------


@pytest.mark.parametrize("instrument", ["piano", "pad", "bass", "pluck"])
def test_single_note_level_is_plausible(instrument: str) -> None:
    out = single_note(instrument)
    assert 0.005 < rms(out) < 0.2  # about -46 .. -14 dBFS
    assert np.abs(out).max() < 0.6


@pytest.mark.parametrize("note", [35, 36, 37, 38, 39, 42, 44, 46, 49, 51, 57, 59, 41, 45, 50, 62, 75])
def test_drums_sound_and_stop(note: int) -> None:
    synth = Synth(SR)
    synth.note_on(0, 9, note, 110)
    out = np.zeros((8 * SR, 2), dtype=np.float32)  # a crash rings for about 4 s
    synth.process(out)
    assert 0.002 < rms(out[: SR // 10]) < 0.3
    assert synth.active_voices == 0  # one-shots free themselves (no note-off needed)
    assert np.abs(out[-SR // 10 :]).max() < 1e-4


def test_velocity_makes_louder_and_brighter_piano() -> None:
    soft = single_note("piano", 60, 30)[: SR // 2, 0]
    loud = single_note("piano", 60, 120)[: SR // 2, 0]
    assert rms(loud) > 4 * rms(soft)

    def centroid(x: np.ndarray) -> float:
        spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
        return float(np.sum(spectrum * np.arange(spectrum.size)) / np.sum(spectrum))

    assert centroid(loud) > 1.2 * centroid(soft)


def test_limiter_keeps_32_loud_voices_below_full_scale() -> None:
    synth = Synth(SR, max_voices=32)
    setup_channels(synth)
    for i in range(32):
        ch = (0, 1, 2, 3, 9)[i % 5]
        synth.note_on(0, ch, DRUM_NOTES[i // 5] if ch == 9 else 36 + i, 127)
    out = np.zeros((SR, 2), dtype=np.float32)
    synth.process(out)
    assert synth.peak_active_voices == 32
    assert np.abs(out).max() < 1.0
    assert rms(out) > 0.1


# --- releases and voice allocation ---------------------------------------------------------


@pytest.mark.parametrize(
    ("instrument", "silent_after_s"), [("piano", 1.5), ("pad", 5.0), ("bass", 1.0), ("pluck", 1.0)]
)
def test_note_off_releases(instrument: str, silent_after_s: float) -> None:
    synth = Synth(SR)
    synth.set_channel(0, instrument)
    synth.note_on(0, 0, 57, 100)
    synth.note_off(SR // 2, 0, 57)
    out = np.zeros((int((0.5 + silent_after_s + 0.5) * SR), 2), dtype=np.float32)
    synth.process(out)
    held = rms(out[SR // 4 : SR // 2])
    tail = out[int((0.5 + silent_after_s) * SR) :]
    assert held > 1e-3
    assert np.abs(tail).max() < 1e-4 * max(1.0, held * 10)
    assert synth.active_voices == 0


def test_piano_decays_while_held() -> None:
    out = single_note("piano", 72, 100, seconds=4.0)[:, 0]
    assert rms(out[3 * SR :]) < 0.25 * rms(out[: SR // 2])


def test_all_notes_off_silences_everything() -> None:
    events = [e for e in dense_events(1.0) if e[1] == "on"]
    synth = Synth(SR, max_voices=32)
    out = render(events, SR, synth=synth)
    assert synth.active_voices > 10
    synth.all_notes_off(synth.frame)
    tail = np.zeros((6 * SR, 2), dtype=np.float32)
    synth.process(tail)
    assert synth.active_voices == 0
    assert np.abs(tail[-SR:]).max() == 0.0
    assert np.abs(tail[:64]).max() > 0.0  # a release, not a hard cut
    assert rms(out) > 0.01


def test_voice_stealing_keeps_within_max_voices() -> None:
    synth = Synth(SR, max_voices=16)
    setup_channels(synth)
    out = np.zeros((256, 2), dtype=np.float32)
    for i in range(200):
        ch = (0, 1, 2, 3, 9)[i % 5]
        synth.note_on(i * 3, ch, (DRUM_NOTES[i % len(DRUM_NOTES)] if ch == 9 else 30 + i % 60), 100)
    for _ in range(8):
        synth.process(out)
        assert synth.active_voices <= 16
    assert synth.peak_active_voices == 16
    assert np.abs(out).max() < 1.0
    synth.all_notes_off(synth.frame)
    for _ in range(6 * SR // 256):
        synth.process(out)
    assert synth.active_voices == 0


def test_retrigger_of_the_same_note_reuses_its_voice() -> None:
    synth = Synth(SR)
    for instrument in ("piano", "pad", "pluck"):
        synth.reset()
        synth.set_channel(0, instrument)
        out = np.zeros((64, 2), dtype=np.float32)
        for i in range(100):
            synth.note_on(i * 64, 0, 60, 100)
            synth.process(out)
            assert synth.active_voices == 1
        assert np.abs(out).max() > 0.0


# --- pitch ------------------------------------------------------------------------------------


@pytest.mark.parametrize("instrument", ["piano", "pluck", "bass", "pad"])
def test_a4_fundamental_is_440_hz(instrument: str) -> None:
    x = single_note(instrument, 69, 100)[SR // 10 : SR // 10 + 32768, 0].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size), 8 * x.size))
    freqs = np.fft.rfftfreq(8 * x.size, 1.0 / SR)
    band = (freqs > 300.0) & (freqs < 600.0)
    peak = float(freqs[band][np.argmax(spectrum[band])])
    assert abs(peak - 440.0) < 4.4, peak


@pytest.mark.parametrize("note", [28, 40, 57, 81])
def test_pluck_tuning_across_the_range(note: int) -> None:
    expected = 440.0 * 2.0 ** ((note - 69) / 12.0)
    x = single_note("pluck", note, 100)[2048 : 2048 + 32768, 0].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size), 8 * x.size))
    freqs = np.fft.rfftfreq(8 * x.size, 1.0 / SR)
    band = (freqs > 0.75 * expected) & (freqs < 1.3 * expected)
    peak = float(freqs[band][np.argmax(spectrum[band])])
    assert abs(peak / expected - 1.0) < 0.01, (peak, expected)


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda s: s.note_on(0, 16, 60, 100), ValueError, "0..15"),
        (lambda s: s.note_on(0, -1, 60, 100), ValueError, "0..15"),
        (lambda s: s.note_on(0, "0", 60, 100), TypeError, "0..15"),
        (lambda s: s.note_on(0, 0, 128, 100), ValueError, "0..127"),
        (lambda s: s.note_on(0, 0, 60.0, 100), TypeError, "0..127"),
        (lambda s: s.note_on(0, 0, 60, 128), ValueError, "0..127"),
        (lambda s: s.note_on(0, 0, 60, True), TypeError, "0..127"),
        (lambda s: s.note_on(-1, 0, 60, 100), ValueError, "frame"),
        (lambda s: s.note_off(0, 0, -1), ValueError, "0..127"),
        (lambda s: s.all_notes_off(1.5), TypeError, "frame"),
        (lambda s: s.set_channel(0, "organ"), ValueError, "piano"),
        (lambda s: s.set_channel(0, 3), TypeError, "piano"),
        (lambda s: s.set_channel(0, "pad", gain_db=float("nan")), ValueError, "[-120, 24]"),
        (lambda s: s.set_channel(0, "pad", gain_db=30), ValueError, "[-120, 24]"),
        (lambda s: s.set_channel(0, "pad", pan=1.5), ValueError, "[-1, 1]"),
        (lambda s: s.set_channel(0, "pad", pan="left"), TypeError, "[-1, 1]"),
        (lambda s: s.process(np.zeros((16, 2))), TypeError, "float32"),
        (lambda s: s.process(np.zeros((16, 1), np.float32)), ValueError, "(n_frames >= 1, 2)"),
        (lambda s: s.process(np.zeros((0, 2), np.float32)), ValueError, "(n_frames >= 1, 2)"),
        (lambda s: s.process(np.zeros((2, 16), np.float32).T), ValueError, "C-contiguous"),
    ],
)
def test_bad_arguments_raise_with_the_allowed_range(
    call: Callable[[Synth], object], error: type[Exception], message: str
) -> None:
    synth = Synth(SR)
    with pytest.raises(error) as info:
        call(synth)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"sample_rate_hz": 1000}, ValueError, "8000..192000"),
        ({"sample_rate_hz": 44100.0}, TypeError, "8000..192000"),
        ({"max_voices": 0}, ValueError, "1..256"),
        ({"event_capacity": 8}, ValueError, "16..4194304"),
        ({"channels": 8}, ValueError, "16..4096"),
        ({"channels": 40}, ValueError, "multiple of 16"),
    ],
)
def test_bad_constructor_arguments(kwargs: dict[str, object], error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        Synth(**kwargs)  # type: ignore[arg-type]
    assert message in str(info.value)


# --- the event ring -------------------------------------------------------------------------


def test_full_ring_drops_and_counts_without_raising() -> None:
    synth = Synth(SR, event_capacity=16)
    for i in range(40):
        synth.note_on(i, 0, 40 + i, 100)
    assert synth.dropped_events == 24
    out = np.zeros((256, 2), dtype=np.float32)
    synth.process(out)
    assert synth.active_voices == 16  # the 16 queued notes played
    synth.note_on(synth.frame, 0, 100, 100)  # room again
    synth.process(out)
    assert synth.dropped_events == 24
    assert synth.active_voices == 17


def test_concurrent_producer_and_consumer() -> None:
    synth = Synth(SR, event_capacity=64)
    setup_channels(synth)
    pairs = 3000

    def produce() -> None:
        for i in range(pairs):
            synth.note_on(i * 16, i % 4, 40 + i % 40, 100)
            synth.note_off(i * 16 + 8, i % 4, 40 + i % 40)

    producer = threading.Thread(target=produce)
    out = np.zeros((64, 2), dtype=np.float32)
    peak = 0.0
    producer.start()
    while producer.is_alive():  # process() releases the GIL: the two really run at once
        synth.process(out)
        peak = max(peak, float(np.abs(out).max()))
    producer.join()
    synth.process(out)  # what was queued after the last block (late events play at once) ...
    while synth.frame <= pairs * 16:  # ... or is still in the future
        synth.process(out)
    read, write, dropped = (int(x) for x in synth._ring_idx)  # the ring's counters
    assert read == write == 4 + 2 * pairs - dropped  # each queued event (4 channel setups) consumed once
    assert dropped == synth.dropped_events
    assert synth.active_voices <= synth.max_voices
    assert np.isfinite(out).all() and peak <= np.float32(LIMIT_THRESHOLD)


def test_set_channel_applies_to_notes_queued_after_it() -> None:
    def render_two(mute_between: bool, second_note: bool) -> np.ndarray:
        synth = Synth(SR)
        synth.note_on(0, 0, 60, 100)
        if mute_between:
            synth.set_channel(0, "piano", gain_db=-120.0)
        if second_note:
            synth.note_on(SR // 2, 0, 72, 100)  # queued after the change, plays half a second later
        out = np.zeros((SR, 2), dtype=np.float32)
        synth.process(out)
        return out

    muted = render_two(mute_between=True, second_note=True)
    first_only = render_two(mute_between=False, second_note=False)
    both = render_two(mute_between=False, second_note=True)
    assert rms(first_only) > 0.01  # the note queued before the change keeps 0 dB ...
    assert np.max(np.abs(muted - first_only)) < 1e-5  # ... the one queued after is at -120 dB
    assert rms(both[SR // 2 :] - first_only[SR // 2 :]) > 0.01


def test_reset_silences_rewinds_and_keeps_the_channel_setup() -> None:
    synth = Synth(SR)
    synth.set_channel(0, "pluck")
    synth.note_on(0, 0, 60, 100)
    out = np.zeros((512, 2), dtype=np.float32)
    synth.process(out)
    first = out.copy()
    synth.note_on(10_000, 0, 61, 100)  # queued, then discarded by reset
    synth.reset()
    assert (synth.frame, synth.active_voices, synth.dropped_events) == (0, 0, 0)
    synth.process(out)
    assert not out.any()
    synth.reset()
    synth.note_on(0, 0, 60, 100)
    synth.process(out)
    assert np.array_equal(out, first)  # still a pluck, same deterministic noise


# --- real-time contract -------------------------------------------------------------------


def test_process_does_not_allocate() -> None:
    synth = Synth(SR)
    setup_channels(synth)
    out = np.zeros((128, 2), dtype=np.float32)
    notes = [(ch, n) for ch in (0, 1, 2, 3, 9) for n in (36, 42, 60, 64, 67)]

    def run(blocks: int) -> None:
        for b in range(blocks):
            ch, note = notes[b % len(notes)]
            synth.note_on(synth.frame + 5, ch, note, 100)
            synth.note_off(synth.frame + 100, ch, note - 1)
            synth.process(out)

    run(200)  # warm-up
    was_enabled = NRT.memsys_stats_enabled()
    NRT.memsys_enable_stats()
    try:
        before = rtsys.get_allocation_stats()
        tracemalloc.start()
        snapshot = tracemalloc.take_snapshot()
        run(1000)
        grown = tracemalloc.take_snapshot().compare_to(snapshot, "filename")
        tracemalloc.stop()
        after = rtsys.get_allocation_stats()
    finally:
        if not was_enabled:
            NRT.memsys_disable_stats()
    assert (after.alloc, after.mi_alloc) == (before.alloc, before.mi_alloc)  # no allocation in the kernel
    growth = sum(stat.size_diff for stat in grown if stat.size_diff > 0)
    assert growth < 16_384, [str(s) for s in grown[:5]]


def test_kernel_has_a_single_c_entry_point() -> None:
    assert block_kernel() is block_kernel()


# --- render_midi and the benchmark ---------------------------------------------------------


def write_midi(path: Path) -> None:
    """Two bars: piano and bass, a drum beat, a program change to strings, a tempo change."""
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120), time=0))
    track.append(mido.Message("program_change", channel=1, program=33, time=0))
    events: list[tuple[int, mido.Message]] = []
    for beat in range(8):
        tick = beat * 480
        events.append((tick, mido.Message("note_on", channel=0, note=60 + beat, velocity=90)))
        events.append((tick + 400, mido.Message("note_off", channel=0, note=60 + beat, velocity=0)))
        events.append((tick, mido.Message("note_on", channel=1, note=36, velocity=100)))
        events.append((tick + 200, mido.Message("note_off", channel=1, note=36, velocity=0)))
        events.append(
            (tick, mido.Message("note_on", channel=9, note=36 if beat % 2 == 0 else 38, velocity=110))
        )
    events.append((1920, mido.Message("program_change", channel=0, program=48)))
    events.append((1920, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(60))))
    events.sort(key=lambda e: e[0])
    last = 0
    for tick, msg in events:
        track.append(msg.copy(time=tick - last))
        last = tick
    track.append(mido.MetaMessage("end_of_track", time=480))
    mid.save(str(path))


def test_render_midi(tmp_path: Path) -> None:
    path = tmp_path / "song.mid"
    write_midi(path)
    stats: dict[str, int] = {}
    audio = render_midi(path, stats=stats)
    assert audio.dtype == np.float32 and audio.ndim == 2 and audio.shape[1] == 2
    assert stats["end_frame"] == round(mido.MidiFile(path).length * SR)  # 2 s at 120 BPM + 4.83 s at 60
    assert stats["end_frame"] <= audio.shape[0] <= stats["end_frame"] + 3 * SR
    assert stats["frames"] == audio.shape[0] and stats["dropped_events"] == 0
    assert 3 <= stats["peak_active_voices"] <= 32
    assert rms(audio) > 0.01 and np.abs(audio).max() < 1.0
    assert rms(audio[int(5.5 * SR) : int(6.5 * SR)]) > 1e-3  # the tempo change stretched bar 2
    other = render_midi(path, block_frames=333)
    assert np.array_equal(other, audio)


def test_render_midi_rejects_garbage(tmp_path: Path) -> None:
    path = tmp_path / "bad.mid"
    path.write_bytes(b"MThd not really a midi file")
    with pytest.raises(ValueError, match="cannot read MIDI file"):
        render_midi(path)


def test_synth_speed_reports_the_documented_keys() -> None:
    result = synth_speed(seconds=2.0, repeats=1)
    for key in (
        "seconds", "voices", "sample_rate_hz", "synth_render_s", "synth_x_realtime",
        "synth_peak_active_voices", "fluidsynth", "soundfont", "fluidsynth_note", "fluidsynth_x_realtime_raw",
        "fluidsynth_x_realtime_load_subtracted", "speedup_vs_fluidsynth", "target_met",
    ):  # fmt: skip
        assert key in result
    assert result["synth_peak_active_voices"] == 32
    assert isinstance(result["synth_x_realtime"], float) and result["synth_x_realtime"] > 1.0
    if result["fluidsynth_note"] == "ok":
        assert isinstance(result["fluidsynth_x_realtime_load_subtracted"], float)
        assert isinstance(result["target_met"], bool)
    else:
        assert result["target_met"] is None


def _render_s(synth: Synth, seconds: float) -> None:
    out = np.zeros((480, 2), np.float32)
    for _ in range(round(seconds * synth.sample_rate_hz / 480)):
        synth.process(out)


def test_channel_blocks_keep_players_apart() -> None:
    """Two players on blocks of 16 channels: the same (channel, note) are two voices; one
    player's note-off and All Notes Off release only its own; channel 9 of every block is drums."""
    from engine.outputs.sinks import SynthSink
    from engine.realtime.kinds import CONTROL, NOTE_OFF, NOTE_ON

    synth = Synth(SR, channels=48)
    assert synth.channels == 48
    a = SynthSink(synth, lambda t: round(t * SR), channel_offset=0)
    b = SynthSink(synth, lambda t: round(t * SR), channel_offset=32)
    for sink in (a, b):
        sink.send(0.0, NOTE_ON, 0, 60, 100)
    _render_s(synth, 0.5)
    assert synth.active_voices == 2
    a.send(0.5, CONTROL, 0, 123, 0)  # a's panic
    _render_s(synth, 1.5)
    assert synth.active_voices == 1, "one player's All Notes Off released another's note"
    b.send(2.0, NOTE_OFF, 0, 60, 0)
    _render_s(synth, 1.5)
    assert synth.active_voices == 0
    with pytest.raises(ValueError, match=r"0\.\.47"):
        synth.note_on(0, 48, 60, 100)
    blocks, one = Synth(SR, channels=48), Synth(SR)
    blocks.note_on(0, 32 + 9, 36, 120)  # a kick in the third block is the kick of channel 9
    one.note_on(0, 9, 36, 120)
    out_blocks, out_one = np.zeros((SR // 2, 2), np.float32), np.zeros((SR // 2, 2), np.float32)
    blocks.process(out_blocks)
    one.process(out_one)
    level_one, level_blocks = rms(out_one), rms(out_blocks)  # (the click's noise differs)
    assert level_one > 0.01 and abs(level_blocks - level_one) < 0.05 * level_one
