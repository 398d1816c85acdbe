"""One session on the session host (engine.sessions.live_rig, as ``affetto play``/``demo`` run): a
script played live gives the notes its offline render gives (one op dispatcher, one conductor:
real time and offline differ only in where "now" comes from), and bad cues are answered."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from engine.model.composer import Composer
from engine.realtime.kinds import NOTE_ON
from engine.sessions.live_rig import LiveRig
from engine.sessions.ops import Cue
from engine.sessions.render import render

CUES = [
    Cue(2.0, "stinger", "hit"),
    Cue(4.0, "state", "victory", sync="bar"),
    Cue(6.5, "emotion", valence=-0.7, arousal=0.8, sync="immediate"),
    Cue(8.0, "tempo", tempo_bpm=150.0),
]
END_BEAT = 12.0


@pytest.fixture(scope="module")
def composer() -> Iterator[Composer]:
    yield Composer(max_streams=4, intra_op_threads=1)


class NoteLog:
    """The note-ons a sink was sent: (time_s, channel, pitch, velocity)."""

    def __init__(self) -> None:
        self.notes: list[tuple[float, int, int, int]] = []
        self.lock = threading.Lock()

    def send(self, time_s: float, kind: int, channel: int, a: int, b: int) -> None:
        if kind == NOTE_ON:
            with self.lock:
                self.notes.append((time_s, channel, a, b))


def test_a_script_live_plays_the_notes_of_its_render(composer: Composer) -> None:
    offline = NoteLog()
    landed_offline: list[tuple[str, float]] = []
    render(composer, CUES, END_BEAT, seed=11, start_state="combat", audio=False, on_event=offline.send,
           on_cue=lambda cue, beat: landed_offline.append((cue.op, beat)))  # fmt: skip
    live = NoteLog()
    landed_live: list[tuple[str, float]] = []
    rig = LiveRig(composer, 11, audio=False, sinks=[live], start_state="combat")
    rig.play_script(CUES, END_BEAT, on_cue=lambda cue, beat: landed_live.append((cue.op, beat)))
    rig.start()
    try:
        assert rig.finished.wait(30.0)
    finally:
        rig.stop()
    assert rig.sounding == 0 and not rig.errors
    assert landed_live == landed_offline  # each cue lands on the same beat
    assert len(offline.notes) > 40
    # the same notes at the same times (simultaneous notes may be queued in another order)
    assert sorted((round(t, 6), *n) for t, *n in live.notes) == sorted(
        (round(t, 6), *n) for t, *n in offline.notes
    )


def test_a_bad_cue_is_refused_and_the_music_goes_on(composer: Composer) -> None:
    with pytest.raises(ValueError, match="not a known state"):
        LiveRig(composer, 1, audio=False, start_state="not a known state")
    log = NoteLog()
    rig = LiveRig(composer, 2, audio=False, sinks=[log], start_state="explore")
    rig.play_script([], 6.0)
    with pytest.raises(RuntimeError, match="not running"):
        rig.cue(Cue(0.0, "stinger", "hit"))
    rig.start()
    try:
        with pytest.raises(ValueError, match="unknown state 'nowhere'"):
            rig.cue(Cue(0.0, "state", "nowhere"))
        with pytest.raises(ValueError, match="unknown stinger"):
            rig.cue(Cue(0.0, "stinger", "kazoo"))
        rig.cue(Cue(0.0, "emotion", valence=5.0, arousal=0.0))  # out of range: reported, nothing else
        rig.cue(Cue(0.0, "state", "combat"))
        assert rig.finished.wait(30.0)
    finally:
        rig.stop()
    assert log.notes and rig.sounding == 0
    assert any("valence" in e and "[-1, 1]" in e for e in rig.errors), rig.errors
    assert not any("composing" in e for e in rig.errors)  # the composing thread was not interrupted
