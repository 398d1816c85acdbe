"""The live engine on real JACK ports (headless jackd, see tests/jack_server.py): MIDI arrives
complete, in order and on time; the synth is heard; no note is left hanging after thousands of
random transitions, stops and restarts."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import mido
import numpy as np
import pytest
from jack_server import AudioCapture, JackServer, MidiCapture, measure_without_glitches

from engine.model.composer import Composer
from engine.music.config import ConductorConfig
from engine.outputs.gm import midi_bytes
from engine.outputs.midi_port import MidiPortOutput
from engine.outputs.recorders import read_wav
from engine.outputs.sinks import MidiPortSink
from engine.sessions.live_rig import LiveRig
from engine.sessions.ops import Cue


@pytest.fixture(scope="module")
def composer() -> Iterator[Composer]:
    yield Composer(max_streams=4, intra_op_threads=1)


class SentLog:
    """Records what the engine hands to its outputs: (wall time due, MIDI bytes), the wall time
    being ``t0`` (the session's beat 0, known once it has started) + the event's time."""

    def __init__(self) -> None:
        self._rows: list[tuple[float, bytes]] = []
        self.t0 = 0.0
        self.lock = threading.Lock()

    def send(self, time_s: float, kind: int, channel: int, a: int, b: int) -> None:
        data = midi_bytes(kind, channel, a, b)
        if data is not None:
            with self.lock:
                self._rows.append((time_s, data))

    @property
    def rows(self) -> list[tuple[float, bytes]]:
        with self.lock:
            return [(self.t0 + t, data) for t, data in self._rows]


def balance(messages: list[bytes]) -> dict[tuple[int, int], int]:
    """Sounding notes per (channel, pitch) after ``messages`` (note-on +1, note-off -1)."""
    on: dict[tuple[int, int], int] = {}
    for m in messages:
        kind, ch = m[0] & 0xF0, m[0] & 0x0F
        if kind == 0x90 and m[2] > 0:
            assert on.get((ch, m[1]), 0) == 0, f"note-on while sounding: {m.hex()}"
            on[(ch, m[1])] = 1
        elif kind == 0x80 or (kind == 0x90 and m[2] == 0):
            assert on.get((ch, m[1]), 0) == 1, f"note-off of a silent note: {m.hex()}"
            on[(ch, m[1])] = 0
    return {k: v for k, v in on.items() if v}


def test_notes_arrive_on_a_jack_port_complete_in_order_and_on_time(
    jack_server: JackServer, composer: Composer
) -> None:
    cues = [Cue(2.0, "stinger", "hit"), Cue(5.3, "emotion", valence=0.8, arousal=0.9, sync="immediate")]

    def run() -> tuple[SentLog, list[tuple[float, bytes]]]:
        log = SentLog()
        rig = LiveRig(composer, 5, audio=False, midi_port="affetto-engine", midi_api="jack", sinks=[log],
                      start_state="combat", config=ConductorConfig(midi_clock=True))  # fmt: skip
        with MidiCapture(jack_server, rig.port.name) as cap:
            rig.play_script(cues, end_beat=12.0)
            rig.start()
            assert rig.finished.wait(20.0)
            log.t0 = rig.t0
            rig.stop()
            got = cap.wait_quiet(quiet_s=0.3)
        return log, got

    log, got = measure_without_glitches(jack_server, run)
    sent = [data for _, data in log.rows]
    assert len(sent) > 300  # notes, drums, controls and 24 ppqn clock for 12 beats
    assert [data for _, data in got[: len(sent)]] == sent  # complete, in order, unaltered
    tail = [data for _, data in got[len(sent) :]]
    assert sorted(m for m in tail if m[1] == 123) == sorted(bytes((0xB0 | ch, 123, 0)) for ch in range(16))
    assert balance([data for _, data in got if data[0] & 0xF0 in (0x80, 0x90)]) == {}
    # on time: JACK delivers at the next period boundary, so arrivals trail the schedule by 0..1 period
    lateness = np.array([t_got - t_due for (t_due, _), (t_got, _) in zip(log.rows, got, strict=False)])
    period = jack_server.period_s
    assert np.percentile(lateness, 1) > -0.001
    assert np.percentile(lateness, 99) < 2 * period + 0.004, np.percentile(lateness, [50, 99, 100])


@pytest.mark.usefixtures("portaudio")
def test_the_synth_is_heard_through_jack_without_xruns(
    jack_server: JackServer, composer: Composer, tmp_path: Path
) -> None:
    rate = jack_server.sample_rate_hz
    wav, mid = tmp_path / "live.wav", tmp_path / "live.mid"

    def run() -> tuple[LiveRig, np.ndarray]:
        others = jack_server.ports()
        rig = LiveRig(
            composer,
            3,
            hostapi="jack",
            sample_rate_hz=rate,
            block_frames=256,
            start_state="combat",
            record_wav=wav,
            record_mid=mid,
        )
        # what this rig plays (not another client the machine runs), recorded before it starts
        ours = [port for port in jack_server.ports() if port not in others]
        assert len(ours) == 2, (others, ours)
        with AudioCapture(jack_server, ours, duration_s=4.0) as cap:
            rig.play_script([Cue(4.0, "stinger", "fanfare")], end_beat=8.0)
            rig.start()
            assert rig.finished.wait(20.0)
            rig.stop(tail_s=0.3)
            return rig, cap.wait()

    rig, samples = measure_without_glitches(jack_server, run, ours="PortAudio")
    assert rig.audio.xruns == 0, jack_server.log()[-600:]
    mono = samples.mean(axis=1)
    loud = np.flatnonzero(np.abs(mono) > 1e-3)
    assert loud.size, "nothing was heard"
    played = mono[loud[0] : loud[-1] + 1]
    assert played.size > 2.0 * rate  # about 8 beats of combat at 144 BPM = 3.3 s
    rms_db = 20 * np.log10(np.sqrt(np.mean(played**2)))
    assert -40 < rms_db < -6
    assert np.abs(samples).max() <= 0.81  # the synth's limiter
    spectrum = np.abs(np.fft.rfft(played[: 2 * rate]))
    freqs = np.fft.rfftfreq(2 * rate, 1 / rate)
    band = [
        spectrum[(freqs >= lo) & (freqs < hi)].sum() for lo, hi in ((30, 200), (200, 2000), (2000, 12000))
    ]
    assert min(band) > 0.01 * max(band)  # bass, midrange and drums' highs all present
    recorded, recorded_rate = read_wav(wav)  # the recording is what was played
    assert recorded_rate == rate and rig.tap is not None and rig.tap.overruns == 0
    assert recorded.shape[0] == rig.audio.frames_rendered
    rec_mono = recorded.mean(axis=1)
    rec_loud = np.flatnonzero(np.abs(rec_mono) > 1e-3)
    rec_played = rec_mono[rec_loud[0] : rec_loud[-1] + 1]
    assert rec_played.size >= played.size - rate // 10  # the capture may stop first, never the recording
    assert abs(20 * np.log10(np.sqrt(np.mean(rec_played**2))) - rms_db) < 3.0
    tracks = [next(m.name for m in t if m.type == "track_name") for t in mido.MidiFile(mid).tracks]
    assert {"melody", "drums", "stingers"} <= set(tracks)


def test_no_stuck_notes_after_thousands_of_transitions_stops_and_restarts(
    jack_server: JackServer, composer: Composer
) -> None:
    rng = random.Random(7)
    port_name = None
    transitions = 0
    with (
        MidiPortOutput("affetto-stress", virtual=True, api="jack") as port,
        MidiCapture(jack_server, port.name) as cap,
    ):
        port_name = port.name
        log = SentLog()
        for run in range(5):
            perf = LiveRig(composer, run, audio=False, sinks=[log, MidiPortSink(port)],
                           start_state=rng.choice(["combat", "explore"]))  # fmt: skip
            perf.start()
            end = time.perf_counter() + 1.2
            while time.perf_counter() < end:
                op = rng.random()
                if op < 0.5:
                    cue = Cue(0.0, "emotion", valence=rng.uniform(-1, 1), arousal=rng.uniform(-1, 1),
                              sync=rng.choice(["immediate", "beat", "bar"]))  # fmt: skip
                elif op < 0.8:
                    cue = Cue(0.0, "state", rng.choice(["combat", "sorrow", "victory", "stealth"]),
                              sync=rng.choice(["immediate", "beat"]))  # fmt: skip
                else:
                    cue = Cue(0.0, "stinger", rng.choice(["hit", "rise", "fall"]))
                perf.cue(cue)
                transitions += 1
                time.sleep(rng.uniform(0.0, 0.004))
            perf.stop()
            assert perf.sounding == 0 and not perf.errors
        got = cap.wait_quiet(quiet_s=0.5)
    messages = [data for _, data in got]
    sent = [data for _, data in log.rows]
    assert port_name and transitions >= 1000
    notes = [m for m in sent if m[0] & 0xF0 in (0x80, 0x90)]
    assert sum(1 for m in notes if m[0] & 0xF0 == 0x90) > 100
    assert balance(notes) == {}  # the engine: every note-on got its note-off, none was doubled
    assert sum(1 for m in sent if m[0] & 0xF0 == 0xB0 and m[1] == 123) == 5 * 16  # CC 123 at each stop
    # the port: rtmidi's JACK output reorders (and under load mixes up) messages within a burst
    # (see the issue note), so order and completeness are checked by the first test at normal
    # density; under this stress the port must still deliver nearly everything and end with the
    # final stop's CC 123s, which silence the receiver.
    delivered = sum((Counter(messages) & Counter(sent)).values())
    assert delivered >= 0.95 * len(sent), (delivered, len(sent))
    final = {bytes((0xB0 | ch, 123, 0)) for ch in range(16)}
    assert final <= set(messages[-48:])
