"""A session's transport and volume on a running :class:`SessionHost`: requests while stopped are
where ``start`` begins, ``pause`` keeps the place, ``volume`` and a stop's fade-out move CC 11,
MIDI clock's Start/Stop/Continue/Song Position reach a receiver on a real JACK port, and a state
change keeps the game parameters' push."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jack_server import JackServer, MidiCapture

from engine.model.composer import Composer
from engine.outputs.gm import expression_for_level
from engine.outputs.host_outputs import HostOutputs
from engine.outputs.sinks import CallbackSink
from engine.realtime.kinds import CONTROL, NOTE_OFF, NOTE_ON
from engine.server.protocol import ProtocolError, Request, parse_json
from engine.sessions.host import SessionHost
from engine.sessions.profile import DEFAULT_PROFILE
from engine.sessions.profile_file import load_profile

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def composer() -> Iterator[Composer]:
    yield Composer(max_streams=4, intra_op_threads=1)


def wait(predicate: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def op(text: str) -> Request:
    return parse_json(text)


def test_requests_while_stopped_are_where_start_begins(composer: Composer) -> None:
    host = SessionHost(composer)
    host.start()
    try:
        s = host.open("a")
        wait(lambda: s.playing)
        host.submit(s, op('{"op": "transport", "action": "stop"}'))
        host.submit(s, op('{"op": "state", "name": "combat"}'))
        host.submit(s, op('{"op": "emotion", "valence": -0.5, "arousal": 0.75}'))
        host.submit(s, op('{"op": "transport", "action": "tempo", "value": 90}'))
        with pytest.raises(ProtocolError, match="stopped") as refused:
            host.submit(s, op('{"op": "stinger", "name": "hit"}'))
        assert refused.value.code == "not_playing"
        wait(lambda: not s.live)
        status = host.status(s)
        assert (status["playing"], status["state"], status["valence"], status["tempo_bpm"]) == (
            False, "combat", -0.5, 90.0,
        )  # fmt: skip
        host.submit(s, op('{"op": "transport", "action": "start"}'))
        wait(lambda: s.playing and 0 in s.conductor.bars)  # type: ignore[union-attr]
        c = s.conductor
        assert c is not None and c.state == "combat"
        assert (c.target.valence, c.target.arousal) == (-0.5, 0.75)
        wait(lambda: 1 in c.bars)
        assert c.bars[0].tempo_bpm == 90.0 and c.bars[1].tempo_bpm == 90.0  # the tempo sent while stopped
        assert not host.errors
    finally:
        host.stop()


def test_pause_keeps_the_place_and_resume_goes_on(composer: Composer) -> None:
    host = SessionHost(composer)
    host.start()
    events: list[dict[str, Any]] = []
    lock = threading.Lock()

    def listen(event: dict[str, Any]) -> None:
        with lock:
            events.append(event)

    try:
        s = host.open("a")
        host.subscribe(s, listen)
        host.submit(s, op('{"op": "output", "outputs": ["notes"]}'))
        wait(lambda: any(e["event"] == "beat" and e["bar"] == 1 for e in events))
        host.submit(s, op('{"op": "transport", "action": "pause"}'))
        time.sleep(0.3)
        with lock:
            before = list(events)
        assert host.status(s)["paused"] and not host.status(s)["playing"]
        time.sleep(1.0)  # more than a beat: nothing sounds while paused
        with lock:
            assert events == before
        on = {(e["channel"], e["pitch"]) for e in before if e["event"] == "note" and e["velocity"]}
        sounding: set[tuple[int, int]] = set()
        for e in (e for e in before if e["event"] == "note"):
            key = (e["channel"], e["pitch"])
            (sounding.add if e["velocity"] else sounding.discard)(key)
        assert on and sounding == set()  # every note it started has ended
        last = max((e["bar"], e["beat"]) for e in before if e["event"] == "beat")
        paused_s = s.paused_s
        assert paused_s is not None
        host.submit(s, op('{"op": "transport", "action": "resume"}'))
        wait(
            lambda: (
                len([e for e in events if e["event"] == "beat"])
                > len([e for e in before if e["event"] == "beat"])
            )
        )
        with lock:
            first = next(e for e in events[len(before) :] if e["event"] == "beat")
        bar, beat = last
        assert (first["bar"], first["beat"]) == (
            (bar, beat + 1) if beat < 3 else (bar + 1, 0)
        )  # the next beat
        assert first["time_s"] >= paused_s - 1e-6  # its clock held during the pause
        assert s.now_s() < paused_s + 2.0
        assert not host.errors
    finally:
        host.stop()


def test_volume_fades_and_a_stop_fades_out(composer: Composer) -> None:
    rows: list[tuple[float, int, int, int, int]] = []
    sink = CallbackSink(lambda t, k, ch, a, b: rows.append((t, k, ch, a, b)), (CONTROL, NOTE_ON, NOTE_OFF))
    host = SessionHost(composer, sinks_for=lambda name: [sink])
    host.start()
    heard: list[dict[str, Any]] = []
    try:
        s = host.open("a")
        host.subscribe(s, heard.append)
        wait(lambda: s.playing)
        with pytest.raises(ProtocolError, match="unknown layer 'kazoo'"):
            host.submit(s, op('{"op": "volume", "level": 0.5, "layer": "kazoo"}'))
        with pytest.raises(ProtocolError, match=r"\[0, 1\]"):
            host.submit(s, op('{"op": "volume", "level": 1.5}'))
        host.submit(s, op('{"op": "volume", "level": 0.25, "fade_s": 0.4}'))
        melody = next(layer.channel for layer in s.config.layers if layer.name == "melody")
        quarter = expression_for_level(0.25)

        def cc11(channel: int) -> list[int]:
            return [b for _, k, ch, a, b in list(rows) if k == CONTROL and a == 11 and ch == channel]

        wait(lambda: quarter in cc11(melody))
        steps = cc11(melody)
        assert len(steps) >= 10 and steps == sorted(steps, reverse=True) and steps[-1] == quarter  # a ramp
        assert any(e["event"] == "volume" and e["level"] == 0.25 and e["fade_s"] == 0.4 for e in heard)

        host.submit(s, op('{"op": "transport", "action": "stop", "value": 0.3}'))
        wait(lambda: not s.live, 3.0)
        assert cc11(melody)[-1] == 0  # faded out to silence, then stopped
        assert host.status(s)["level"] == 0.25  # the fade-out did not change the level
        n = len(rows)
        host.submit(s, op('{"op": "transport", "action": "start"}'))
        wait(lambda: len(cc11(melody)) > len([r for r in rows[:n] if r[3] == 11 and r[2] == melody]))
        assert cc11(melody)[-1] == quarter  # started again at its level
        assert not host.errors
    finally:
        host.stop()


def test_a_state_change_keeps_the_parameters_push(composer: Composer) -> None:
    profile = load_profile(ROOT / "examples" / "profiles" / "action.yaml")
    host = SessionHost(composer, profile)
    host.start()
    try:
        s = host.open("a")
        wait(lambda: s.playing)
        host.submit(s, Request("param", {"name": "health", "value": 100.0}))  # its own default
        host.submit(s, Request("state", {"name": "combat", "sync": "immediate"}))
        wait(lambda: s.conductor is not None and s.conductor.state == "combat")
        expected = s.mapper.rebase(profile.config.states["combat"].emotion)
        assert expected != profile.config.states["combat"].emotion  # health pushes it
        assert s.conductor.target == expected  # type: ignore[union-attr]
        assert not host.errors
    finally:
        host.stop()


def test_midi_clock_start_stop_continue_and_song_position_on_jack(
    jack_server: JackServer, composer: Composer
) -> None:
    config = dataclasses.replace(DEFAULT_PROFILE.config, midi_clock=True)
    profile = dataclasses.replace(DEFAULT_PROFILE, config=config)
    outputs = HostOutputs(midi_port="affetto-clock", midi_api="jack")
    host = SessionHost(composer, profile, outputs=outputs)
    try:
        assert outputs.midi_port_name is not None
        with MidiCapture(jack_server, outputs.midi_port_name) as cap:
            host.start()
            outputs.start()
            s = host.open("a")

            def realtime() -> list[int]:
                return [m[0] for _, m in cap.events if m[0] in (0xFA, 0xFB, 0xFC, 0xF2)]

            wait(lambda: sum(1 for _, m in cap.events if m == b"\xf8") >= 48)  # two beats of ticks
            host.submit(s, op('{"op": "transport", "action": "pause"}'))
            wait(lambda: 0xFC in realtime())
            host.submit(s, op('{"op": "transport", "action": "resume"}'))
            wait(lambda: 0xFB in realtime())
            host.submit(s, op('{"op": "transport", "action": "stop"}'))
            wait(lambda: realtime().count(0xFC) == 2)
            got = [m for _, m in cap.events]
            assert realtime() == [0xFA, 0xFC, 0xF2, 0xFB, 0xFC]
            first_tick = got.index(b"\xf8")
            assert got.index(b"\xfa") < first_tick  # Start before the first tick
            spp = next(m for m in got if m[0] == 0xF2)
            ticks_before_pause = sum(1 for m in got[: got.index(b"\xfc")] if m == b"\xf8")
            assert len(spp) == 3 and spp[1] + 128 * spp[2] == ticks_before_pause // 6  # sixteenths played
            assert not host.errors
    finally:
        host.stop()
        outputs.close()
