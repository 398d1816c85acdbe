"""The one General MIDI table (engine.outputs.gm): every program sounds the same live and offline,
a layer's named voice is heard, and the CC 7 law is one law."""

from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pytest

from engine.music.conductor import channel_setup
from engine.music.config import ConductorConfig, Layer
from engine.outputs import gm
from engine.outputs.sinks import SynthSink
from engine.realtime.kinds import CONTROL, NOTE_OFF, NOTE_ON, PROGRAM
from engine.synth import layout as L
from engine.synth.polysynth import Synth, render_midi

SR = 48_000
NOTE_S = 0.25
TOTAL_S = 0.5


def test_gm_families() -> None:
    programs = (0, 19, 25, 33, 46, 48, 52, 56, 66, 73, 81, 89, 105, 115)
    assert [gm.voice_for_program(p, 0) for p in programs] == [
        "piano", "pad", "pluck", "bass", "pluck", "pad", "pad", "pad", "pad", "pad", "pad", "pad", "pluck",
        "piano",
    ]  # fmt: skip
    assert all(gm.voice_for_program(p, gm.DRUM_CHANNEL) == "drums" for p in range(128))
    assert set(gm.INSTRUMENTS) == {"piano", "pad", "bass", "pluck", "drums"}
    assert gm.INSTRUMENTS.index("piano") == L.PIANO and gm.INSTRUMENTS.index("drums") == L.DRUMS
    with pytest.raises(ValueError, match=r"0\.\.127"):
        gm.voice_for_program(128, 0)


def _live(rows: list[tuple[float, int, int, int, int]]) -> np.ndarray:
    """What the live path plays (a SynthSink feeding the synth, as sessions and the output process do)."""
    synth = Synth(SR)
    sink = SynthSink(synth, lambda t: round(t * SR))
    for row in rows:
        sink.send(*row)
    out = np.zeros((round(TOTAL_S * SR), 2), dtype=np.float32)
    synth.process(out)
    return out


def _file(tmp_path: Path, program: int, channel: int) -> Path:
    mid = mido.MidiFile(ticks_per_beat=480)  # 120 BPM: a beat is 0.5 s
    track = mido.MidiTrack()
    track.append(mido.Message("program_change", channel=channel, program=program, time=0))
    track.append(mido.Message("note_on", channel=channel, note=60, velocity=100, time=0))
    track.append(
        mido.Message("note_off", channel=channel, note=60, velocity=0, time=round(480 * NOTE_S / 0.5))
    )
    mid.tracks.append(track)
    path = tmp_path / f"p{program}.mid"
    mid.save(path)
    return path


@pytest.mark.parametrize("channel", [0, gm.DRUM_CHANNEL])
def test_every_program_plays_the_same_voice_live_and_offline(tmp_path: Path, channel: int) -> None:
    mismatched = []
    for program in range(128):
        offline = render_midi(_file(tmp_path, program, channel), SR)
        live = _live([(0.0, PROGRAM, channel, program, 0), (0.0, NOTE_ON, channel, 60, 100),
                      (NOTE_S, NOTE_OFF, channel, 60, 0)])  # fmt: skip
        n = min(len(offline), len(live))
        assert np.abs(offline[:n]).max() > 1e-3, f"program {program} is silent offline"
        if not np.allclose(offline[:n], live[:n], atol=1e-6):
            mismatched.append(program)
    assert mismatched == []


def test_a_layers_instrument_is_the_voice_it_plays() -> None:
    plucked = ConductorConfig(layers=(Layer("melody", 0, 0, "pluck"),))
    setup = [row for row in channel_setup(plucked) if row[1] == 0]
    assert (PROGRAM, 0, 0, gm.voice_code("pluck")) in setup
    note = [(0.0, NOTE_ON, 0, 60, 100), (NOTE_S, NOTE_OFF, 0, 60, 0)]
    named = _live([(0.0, *setup[0]), *note])
    as_gm_pluck = _live([(0.0, PROGRAM, 0, 24, 0), *note])  # nylon guitar: the GM table's pluck
    as_program = _live([(0.0, PROGRAM, 0, 0, 0), *note])  # what program 0 alone would play
    assert np.allclose(named, as_gm_pluck, atol=1e-6)
    assert not np.allclose(named, as_program, atol=1e-3)
    # no instrument: the program's own voice
    default = [row for row in channel_setup(ConductorConfig()) if row[0] == PROGRAM]
    assert all(b == 0 for _, _, _, b in default)
    # drums moved off channel 10 still play the kit in the synth (channel 10 keeps its own)
    moved = ConductorConfig(layers=(Layer("melody", 0, 0), Layer("drums", 5, 0)))
    drum_rows = [row for row in channel_setup(moved) if row[1] == 5]
    assert (PROGRAM, 5, 0, gm.voice_code("drums")) in drum_rows
    kick = [(0.0, NOTE_ON, 5, 36, 110), (NOTE_S, NOTE_OFF, 5, 36, 0)]
    as_kit = _live([(0.0, *drum_rows[0]), *kick])
    on_ten = _live([(0.0, NOTE_ON, 9, 36, 110), (NOTE_S, NOTE_OFF, 9, 36, 0)])
    as_piano = _live([(0.0, PROGRAM, 5, 0, 0), *kick])
    rms = [float(np.sqrt(np.mean(x**2))) for x in (as_kit, on_ten)]
    assert rms[0] == pytest.approx(rms[1], rel=0.05)  # the kick (its noise burst is seeded per channel)
    assert np.allclose(as_kit[4800:], on_ten[4800:], atol=1e-4)  # and its body, sample for sample
    assert not np.allclose(as_kit, as_piano, atol=1e-3)


def test_one_gain_law_for_cc7_live_and_offline() -> None:
    assert gm.gain_db(100) == 0.0
    assert gm.gain_db(50) == pytest.approx(40 * np.log10(0.5))
    assert gm.gain_db(0) == gm.MIN_GAIN_DB  # silent, live and offline alike
    assert gm.gain_db(127, 0) == gm.MIN_GAIN_DB
    for db in (-30.0, -6.0, 0.0, 4.0):
        assert gm.gain_db(gm.volume_for_gain_db(db)) == pytest.approx(db, abs=0.35)
    half = _live([(0.0, CONTROL, 0, 7, 50), (0.0, NOTE_ON, 0, 60, 100), (NOTE_S, NOTE_OFF, 0, 60, 0)])
    full = _live([(0.0, NOTE_ON, 0, 60, 100), (NOTE_S, NOTE_OFF, 0, 60, 0)])
    ratio = np.abs(half).max() / np.abs(full).max()
    assert ratio == pytest.approx(10 ** (gm.gain_db(50) / 20), rel=1e-3)
