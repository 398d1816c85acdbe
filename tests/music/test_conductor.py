"""The conductor on the shipped model, on the virtual clock (engine.sessions.render.render)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.model.composer import Composer
from engine.music.articulation import QUADRANT_GATE, gate, sounding_steps
from engine.music.conductor import BarInfo, Conductor, compose_ahead
from engine.music.config import (
    DEFAULT_STATES,
    HISTORY_BARS,
    MIN_HISTORY_BARS,
    STINGER_CHANNEL,
    ConductorConfig,
    Emotion,
)
from engine.music.keys import SCALES
from engine.music.leitmotif import theme_from_notes
from engine.realtime.event_queue import EventQueue
from engine.realtime.kinds import NOTE_OFF, NOTE_ON
from engine.sessions.ops import Cue
from engine.sessions.render import Rendered, render
from engine.tokens import vocab as V

THEME = ((0.0, 60, 1.0, 90), (1.0, 64, 1.0, 90), (2.0, 67, 1.0, 90), (3.0, 72, 1.0, 90))  # C major arpeggio


@pytest.fixture(scope="module")
def composer() -> Iterator[Composer]:
    yield Composer(max_streams=4, intra_op_threads=1)


def notes(r: Rendered) -> list[tuple[float, int, int, int]]:
    """(beat, channel, pitch, velocity) of every note-on."""
    return [(r.tempo_map.beat(t), ch, a, b) for t, k, ch, a, b in r.recorder.events if k == NOTE_ON]


def test_same_inputs_same_notes_whatever_the_block_and_lookahead(composer: Composer) -> None:
    cues = [
        Cue(6.3, "state", "combat", sync="immediate"),
        Cue(13.0, "stinger", "hit"),
        Cue(17.0, "state", "sorrow"),
    ]
    a = render(composer, cues, 24.0, seed=11, audio=False, block_frames=512)
    b = render(composer, cues, 24.0, seed=11, audio=False, block_frames=97)
    c = render(composer, cues, 24.0, seed=11, audio=False, config=ConductorConfig(lookahead_beats=4.0))
    assert a.recorder.events == b.recorder.events
    rounded = [[(round(b, 6), ch, p, v) for b, ch, p, v in notes(r)] for r in (a, c)]
    assert rounded[0] == rounded[1]  # composing further ahead cuts more, changes nothing
    other = render(composer, cues, 24.0, seed=12, audio=False)
    assert notes(other) != notes(a)


def test_rendered_audio_is_the_same_whatever_the_block(composer: Composer) -> None:
    """The synth renders on a worker thread a few blocks behind the composing: what it plays must
    still be exactly what rendering each block right after its events plays."""
    cues = [Cue(2.2, "state", "combat", sync="immediate"), Cue(5.0, "stinger", "hit")]
    a = render(composer, cues, 8.0, seed=4, block_frames=4096, tail_s=0.5)
    b = render(composer, cues, 8.0, seed=4, block_frames=97, tail_s=0.5)
    assert a.audio is not None and b.audio is not None
    n = min(len(a.audio), len(b.audio))  # the tail ends on a block boundary
    assert np.abs(a.audio[:n]).max() > 0.01  # heard
    assert np.array_equal(a.audio[:n], b.audio[:n])


@pytest.mark.parametrize(
    ("sync", "expected"), [("immediate", 5.3), ("beat", 6.0), ("bar", 8.0), ("phrase", 16.0)]
)
def test_transitions_land_on_their_sync_point(composer: Composer, sync: str, expected: float) -> None:
    r = render(composer, [Cue(5.3, "state", "combat", sync=sync)], 20.0, seed=3, audio=False)
    beat = r.landed[0][1]
    assert beat == pytest.approx(expected)
    drums = [b for b, ch, _, _ in notes(r) if ch == 9]
    assert drums and min(drums) >= expected - 1e-6  # explore has no drums; combat's start at the point
    if sync != "immediate":
        assert any(abs(b - expected) < 1e-6 for b, ch, _, _ in notes(r) if ch != 9)  # a note on the point


def test_immediate_change_releases_and_sounds_at_once(composer: Composer) -> None:
    r = render(
        composer,
        [Cue(6.1, "emotion", valence=-0.9, arousal=0.9, sync="immediate")],
        12.0,
        seed=5,
        audio=False,
    )
    t_cue = r.tempo_map.seconds(6.1)
    at_cue = [(k, ch) for t, k, ch, a, b in r.recorder.events if abs(t - t_cue) < 1e-9]
    assert any(k == NOTE_ON for k, _ in at_cue), "the first note of the new music sounds at the cue"
    sounding: set[tuple[int, int]] = set()
    for t, k, ch, a, _ in r.recorder.events:
        if t >= t_cue - 1e-9:
            break
        if k == NOTE_ON:
            sounding.add((ch, a))
        elif k == NOTE_OFF:
            sounding.discard((ch, a))
    offs = {(ch, a) for t, k, ch, a, _ in r.recorder.events if k == NOTE_OFF and abs(t - t_cue) < 1e-9}
    assert sounding <= offs  # whatever sounded was released at the cue


def test_layers_tempo_and_key_follow_the_state(composer: Composer) -> None:
    r = render(
        composer, [Cue(15.0, "state", "combat", sync="bar")], 32.0, seed=2, audio=False, start_state="calm"
    )
    calm = [info for i, info in r.bars.items() if i < 4]
    combat = [info for i, info in r.bars.items() if i >= 4]  # the change lands at bar 4 (beat 16)
    assert all(info.layers == ("harmony", "melody") for info in calm)
    # the seek (2 units/s) starts at the sync point, not at the onset before it: bar 4 opens calm,
    # yet its tempo and layers are those the seek reaches within it, so they land with the change
    assert combat[0].emotion == DEFAULT_STATES["calm"].emotion
    assert all(set(info.layers) == {"melody", "harmony", "bass", "drums"} for info in combat)
    assert max(i.tempo_bpm for i in calm) < min(i.tempo_bpm for i in combat)
    assert {i.tempo_bpm for i in combat} == {ConductorConfig().tempo_for(DEFAULT_STATES["combat"].emotion)}
    assert calm[0].key[1] == "major" and combat[-1].key[1] == "minor"
    channels = {ch for b, ch, _, _ in notes(r) if b >= 20}
    assert {0, 9} <= channels and channels <= {0, 1, 2, 9}
    fixed = render(composer, [Cue(5.0, "state", "combat")], 16.0, seed=2, audio=False,
                   config=ConductorConfig(fixed_tempo_bpm=100.0))  # fmt: skip
    assert {info.tempo_bpm for info in fixed.bars.values()} == {100.0}


def test_stinger_plays_on_the_next_beat_in_key(composer: Composer) -> None:
    r = render(composer, [Cue(9.4, "stinger", "rise")], 16.0, seed=4, audio=False)
    sting = [(b, a) for b, ch, a, _ in notes(r) if ch == STINGER_CHANNEL]
    assert len(sting) == 4 and sting[0][0] == pytest.approx(10.0)
    tonic, mode = r.bars[2].key
    assert {(a - tonic) % 12 for _, a in sting} <= set(SCALES[mode])


def test_leitmotif_recurs_in_the_key_and_mode_of_the_moment(composer: Composer) -> None:
    theme = theme_from_notes("arp", THEME)
    cues = [
        Cue(2.0, "leitmotif", "arp"),
        Cue(12.0, "state", "sorrow", sync="bar"),
        Cue(18.0, "leitmotif", "arp"),
    ]
    r = render(composer, cues, 32.0, seed=8, audio=False, themes=[theme])
    for bar_start in (4.0, 20.0):
        tonic, mode = r.bars[int(bar_start // 4)].key
        melody = sorted((b, a) for b, ch, a, _ in notes(r) if ch == 0 and bar_start <= b < bar_start + 4)
        assert [b - bar_start for b, _ in melody[:4]] == pytest.approx([0, 1, 2, 3])
        intervals = [(a - melody[0][1]) % 12 for _, a in melody[:4]]
        third = 4 if mode == "major" else 3
        assert intervals == [0, third, 7, 0] and melody[0][1] % 12 == tonic
    assert r.bars[1].key[1] == "major" and r.bars[5].key[1] == "minor"


def test_no_stuck_notes_after_thousands_of_random_transitions(composer: Composer) -> None:
    rng = random.Random(0)
    ops = ["state", "emotion", "stinger", "tempo"]
    cues = []
    beat = 0.0
    for _ in range(2000):
        beat += rng.choice([0.05, 0.13, 0.25, 0.5])
        op = rng.choice(ops)
        if op == "state":
            cues.append(Cue(beat, op, rng.choice(["explore", "combat", "sorrow", "stealth", "victory"]),
                            sync=rng.choice(["immediate", "beat", "bar", "phrase"])))  # fmt: skip
        elif op == "emotion":
            cues.append(
                Cue(beat, op, valence=rng.uniform(-1, 1), arousal=rng.uniform(-1, 1), sync="immediate")
            )
        elif op == "stinger":
            cues.append(Cue(beat, op, rng.choice(["hit", "rise", "fall"])))
        else:
            cues.append(Cue(beat, op, tempo_bpm=rng.choice([None, 90.0, 150.0])))
    r = render(composer, cues, beat + 1.0, seed=9, audio=False)
    assert len(r.landed) == len(cues)
    on: dict[tuple[int, int], int] = {}
    for _, k, ch, a, _ in r.recorder.events:
        if k == NOTE_ON:
            assert on.get((ch, a), 0) == 0
            on[(ch, a)] = 1
        elif k == NOTE_OFF:
            assert on.get((ch, a), 0) == 1
            on[(ch, a)] = 0
    assert sum(on.values()) == 0
    assert sum(1 for e in r.recorder.events if e[1] == NOTE_ON) > 500


def test_bad_cues_are_refused_with_clear_errors(composer: Composer) -> None:
    with pytest.raises(ValueError, match="unknown state 'boss'"):
        render(composer, [Cue(1.0, "state", "boss")], 4.0, seed=1, audio=False)
    with pytest.raises(ValueError, match=r"valence must be in \[-1, 1\]"):
        render(composer, [Cue(1.0, "emotion", valence=float("nan"))], 4.0, seed=1, audio=False)
    with pytest.raises(ValueError, match="cue op"):
        Cue(1.0, "explode")
    assert composer.open_streams == []  # every failed render released its stream


def test_midi_file_has_a_track_per_layer(composer: Composer, tmp_path: Path) -> None:
    import mido

    r = render(composer, [Cue(3.0, "state", "combat"), Cue(9.0, "stinger", "hit")], 16.0, seed=1, audio=False)
    path = r.recorder.write(tmp_path / "x.mid", r.tempo_map)
    mid = mido.MidiFile(path)
    names = [next(m.name for m in tr if m.type == "track_name") for tr in mid.tracks]
    assert names[0] == "affetto" and {"melody", "harmony", "bass", "drums", "stingers"} <= set(names)
    assert abs(mid.length - r.tempo_map.seconds(16.0)) < 1.0
    assert np.isfinite(mid.length)


def test_humanize_moves_onsets_and_velocities_deterministically(composer: Composer) -> None:
    plain = render(composer, [], 16.0, seed=6, audio=False, start_state="calm")
    cfg = ConductorConfig(humanize_ms=8.0, humanize_velocity=6.0)
    human = render(composer, [], 16.0, seed=6, audio=False, start_state="calm", config=cfg)
    again = render(composer, [], 16.0, seed=6, audio=False, start_state="calm", config=cfg)
    assert human.recorder.events == again.recorder.events
    a = [(t, ch, p, v) for t, k, ch, p, v in plain.recorder.events if k == NOTE_ON and ch != 9]
    b = [(t, ch, p, v) for t, k, ch, p, v in human.recorder.events if k == NOTE_ON and ch != 9]
    a.sort(key=lambda e: (e[1], e[2], e[0]))
    b.sort(key=lambda e: (e[1], e[2], e[0]))
    assert [(ch, p) for _, ch, p, _ in a] == [(ch, p) for _, ch, p, _ in b]  # the same notes...
    shifts = np.array([tb - ta for (ta, *_), (tb, *_) in zip(a, b, strict=True)])
    assert 0.003 < shifts.std() < 0.012 and np.abs(shifts).max() <= 0.016 + 1e-9  # ...moved, within 2 sigma
    assert any(va != vb for (*_, va), (*_, vb) in zip(a, b, strict=True))


def test_leitmotif_from_a_midi_file(tmp_path: Path) -> None:
    import mido

    from engine.music.leitmotif import theme_from_midi

    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.Message("note_on", note=1, velocity=0, time=4 * 480))  # a silent bar first
    for _, pitch, dur, vel in THEME:  # the theme is legato: each note starts where the last ends
        track.append(mido.Message("note_on", note=pitch, velocity=vel, time=0))
        track.append(mido.Message("note_off", note=pitch, velocity=0, time=round(dur * 480)))
    path = tmp_path / "theme.mid"
    mid.save(path)
    theme = theme_from_midi("arp", path)
    assert theme.notes == theme_from_notes("arp", THEME).notes
    assert (theme.tonic_pc, theme.mode) == (0, "major")


def test_a_change_never_cuts_what_the_clock_already_sent(composer: Composer) -> None:
    """A change computed from a stale clock reading (the composing thread was delayed) still lands
    after what the clock has sent: a beat tick or note is never sent twice."""
    from engine.music.conductor import Conductor, compose_ahead
    from engine.realtime.event_queue import EventQueue
    from engine.realtime.kinds import BEAT

    queue = EventQueue()
    conductor = Conductor(composer, queue, 5, state="combat")
    try:
        conductor.start(0.0)
        compose_ahead(composer, [conductor], 0.0)
        sent = queue.pop_due(0.0).rows()  # the clock sent beat 0 (and the notes on it) at t = 0
        assert any(k == BEAT and a == 0 and b == 0 for _, k, _, a, b in sent)
        conductor.set_emotion(-0.01, 0.9, 0.9, sync="immediate")  # read the clock just before t = 0
        compose_ahead(composer, [conductor], 0.0)
        later = queue.pop_due(1.0).rows()
        assert not any(k == BEAT and a == 0 and b == 0 for _, k, _, a, b in later)
        assert any(k == BEAT and a == 1 for _, k, _, a, b in later)  # the music went on
    finally:
        conductor.stop(0.0)


def test_a_flood_of_changes_to_one_sync_point_waits_as_one(composer: Composer) -> None:
    """Changes at the same beat that a later one wholly replaces are dropped as it comes (a game
    flooding state changes costs one waiting change, not a growing list kept sorted)."""
    from engine.music.conductor import Conductor, compose_ahead
    from engine.realtime.event_queue import EventQueue

    queue = EventQueue()
    conductor = Conductor(composer, queue, 5, state="explore")
    try:
        conductor.start(0.0)
        compose_ahead(composer, [conductor], 0.0)
        beats = {conductor.set_state(0.1, ("combat", "calm")[i % 2], sync="bar") for i in range(2000)}
        conductor.set_emotion(0.1, 0.2, 0.3, sync="bar")  # replaces no state: both wait
        conductor.set_tempo(0.1, 100.0)  # another kind at the bar: waits too
        assert len(beats) == 1 and len(conductor._transitions) == 3
        compose_ahead(composer, [conductor], 8.0)
        assert conductor.state == "calm" and conductor.target.valence == 0.2  # the last of each
    finally:
        conductor.stop(0.0)


@pytest.mark.parametrize("second", ["emotion", "state", "tempo"])
def test_changes_to_one_bar_all_land_though_music_was_composed_between_them(
    composer: Composer, second: str
) -> None:
    """A change cuts the music composed past its bar; one that comes later to the same bar cuts
    it again, and the first must not be lost with the music cut (the render composes ahead after
    each cue, as a live session does between messages)."""
    # given within the lookahead (1 beat) of bar 2's downbeat, so bar 2 is composed between them
    args = {
        "emotion": Cue(7.5, "emotion", valence=-0.7, arousal=-0.9, sync="bar"),
        "state": Cue(7.5, "state", "sorrow", sync="bar"),
        "tempo": Cue(7.5, "tempo", tempo_bpm=90.0, sync="bar"),  # replaces the first: the last wins
    }
    cues = [Cue(7.5, "tempo", tempo_bpm=120.0, sync="bar"), args[second]]
    r = render(composer, cues, 16.0, seed=4, audio=False)
    assert [b for _, b in r.landed] == [8.0, 8.0]
    assert r.tempo_map.tempo_at(4.0) != pytest.approx(120.0)
    assert r.tempo_map.tempo_at(8.0) == pytest.approx(90.0 if second == "tempo" else 120.0)
    bar = r.bars[2]
    assert bar.start_beat == 8.0
    if second == "state":
        assert bar.state == "sorrow"
    if second == "emotion":
        assert bar.emotion.valence < 0


def test_a_flood_of_immediate_changes_leaves_no_note_hanging(composer: Composer) -> None:
    """A pad dragged at ``immediate``: a change every 40 ms for 2 s, the clock popping every 10 ms
    as a live session's does. Each change sounds its first notes at once (ahead of their beat)
    and the next cuts from a beat before theirs: every note that sounded still has its end
    queued (popping everything queued, with no all-notes-off, leaves nothing on)."""
    import random as rand

    rng = rand.Random(0)
    queue = EventQueue()
    conductor = Conductor(composer, queue, 0, state="explore")
    sounding: dict[tuple[int, int], float] = {}
    held: list[float] = []
    try:
        conductor.start(0.0)
        for step in range(1, 1001):
            t = step / 100
            if 100 <= step < 300 and step % 4 == 0:
                conductor.set_emotion(t, rng.uniform(-1, 1), rng.uniform(-1, 1), 0.0, sync="immediate")
            compose_ahead(composer, [conductor], t)
            for when, kind, ch, pitch, _ in queue.pop_due(t).rows():
                if kind == NOTE_ON:
                    sounding[(ch, pitch)] = when
                elif kind == NOTE_OFF and (ch, pitch) in sounding:
                    held.append(when - sounding.pop((ch, pitch)))
        for _, kind, ch, pitch, _ in queue.pop_due(1e9).rows():  # what is queued, composed no further
            if kind == NOTE_ON:
                sounding[(ch, pitch)] = 0.0
            elif kind == NOTE_OFF:
                sounding.pop((ch, pitch), None)
    finally:
        conductor.stop(10.0)
    assert len(held) > 50
    assert sounding == {} and queue.sounding == 0


def test_bar_listeners_hear_the_layers_that_sound_not_those_switched_on(composer: Composer) -> None:
    """The demo's timeline said ``bass harmony melody`` while the bass played nothing: a bar's
    layers as listeners get them are those with a note sounding in it (as composed by its
    downbeat: held into it, or starting in it)."""
    from engine.sessions.scenes import DEMO_CUES, demo_theme

    cfg = ConductorConfig()
    channel_of = {layer.channel: layer.name for layer in cfg.layers}
    bars: list[tuple[BarInfo, float]] = []
    started: dict[tuple[int, int], float] = {}
    notes: list[tuple[float, float, str]] = []  # (on_s, off_s, layer)

    def on_event(t: float, kind: int, ch: int, a: int, b: int) -> None:
        if ch not in channel_of:
            return
        if kind == NOTE_ON:
            started[(ch, a)] = t
        elif kind == NOTE_OFF and (ch, a) in started:
            notes.append((started.pop((ch, a)), t, channel_of[ch]))

    render(composer, list(DEMO_CUES), 64.0, seed=3, config=cfg, themes=[demo_theme()], audio=False,
           on_event=on_event, on_bar=lambda info, t: bars.append((info, t)))  # fmt: skip
    assert len(bars) >= 15
    for (info, start), (_, end) in itertools.pairwise(bars):
        sounding = {layer for on, off, layer in notes if on < end - 1e-6 and off > start + 1e-6}
        assert set(info.layers) <= sounding, (info.index, info.layers, sounding)
        beat_s = 60.0 / info.tempo_bpm
        first_beat = {layer for on, _, layer in notes if start - 1e-6 <= on < start + beat_s - 0.01}
        assert first_beat <= set(info.layers), (info.index, first_beat, info.layers)


def _status_bar(c: Conductor, head: float) -> int:
    """The bar a session status reports (as :meth:`engine.sessions.host.SessionHost.status` reads it)."""
    bar = max(c.bars) if c.bars else 0
    while bar > 0 and bar in c.bars and c.bars[bar].start_beat > head + 1e-9:
        bar -= 1
    return bar


def _notes_kept(c: Conductor) -> int:
    return sum(len(notes) for notes in c._sounds.values())


def test_a_live_conductor_keeps_a_bounded_history_and_plays_the_same_music(composer: Composer) -> None:
    """The bar infos, the notes ``heard`` reads and the tempo changes are trimmed to
    ``history_bars`` behind the newest bar, while what the music is and what status, bar
    listeners and beat events read stay those of a conductor that keeps everything."""
    history = MIN_HISTORY_BARS
    queues = (EventQueue(), EventQueue())
    kept, whole = (
        Conductor(composer, q, 7, ConductorConfig(history_bars=h), state="combat")
        for q, h in zip(queues, (history, None), strict=True)
    )
    try:
        for c in (kept, whole):
            c.start(0.0)
        meter = kept.meter_beats
        bars = 48
        for bar in range(1, bars):
            head = whole.tempo_map.seconds(bar * meter - 1.3)
            if bar % 6 == 0:  # the tempo follows arousal as it moves: a change at each bar for a while
                arousal = 0.9 if bar % 12 else -0.9
                for c in (kept, whole):
                    c.set_emotion(head, 0.2, arousal, sync="bar", seek_per_s=0.25)
            for c in (kept, whole):  # one stream a step: the same numbers as alone
                compose_ahead(composer, [c], head)
            assert queues[0].pop_due(head).rows() == queues[1].pop_due(head).rows()
            beat = whole.playhead_beat(head)
            assert kept.playhead_beat(head) == beat and kept.tempo_map.tempo_at(
                beat
            ) == whole.tempo_map.tempo_at(beat)
            at = _status_bar(whole, beat)
            assert _status_bar(kept, beat) == kept.bar_at(beat) == whole.bar_at(beat) == at
            for b in (at - 1, at, at + 1):
                assert kept.heard(b) == whole.heard(b) and kept.bar_heard(b) == whole.bar_heard(b)
            assert len(kept.bars) <= history + 1 and len(kept._sounds) <= history + 1 + kept._reach
            assert len(kept.tempo_map) <= kept.tempo_map.capacity == 2 * (history + 2)
        assert min(kept.bars) >= max(kept.bars) - history
        assert kept.bars == {i: info for i, info in whole.bars.items() if i >= min(kept.bars)}
        # keeping everything (as every conductor did) grows with the music
        assert len(whole.bars) >= bars - 1 and len(whole.tempo_map) > kept.tempo_map.capacity
        assert len(whole._sounds) == HISTORY_BARS + 1 + whole._reach  # the notes heard reads: never all
    finally:
        for c in (kept, whole):
            c.stop(0.0)


def test_thousands_of_bars_hold_the_history_flat(composer: Composer) -> None:
    """Thousands of bars (the conductor fed tokens directly, as fast as it takes them) with tempo
    changes: the history stays the default window's size, and the recent bars read right."""
    queues = (EventQueue(), EventQueue())
    kept, whole = (
        Conductor(composer, q, 3, ConductorConfig(history_bars=h), state="combat")
        for q, h in zip(queues, (HISTORY_BARS, None), strict=True)
    )
    meter = kept.meter_beats
    rng = random.Random(4)
    try:
        for bar in range(3000):
            if bar % 40 == 20:  # sweeping arousal: the tempo changes at every bar for a while
                now, arousal = kept.tempo_map.seconds(bar * meter - 0.5), rng.choice([-0.9, 0.9])
                for c in (kept, whole):
                    c.set_emotion(now, 0.3, arousal, sync="bar", seek_per_s=0.3)
            tokens = [V.bar_token(meter)]
            for step in sorted(rng.sample(range(meter * V.STEPS_PER_BEAT), 4)):
                pitch = rng.choice([40, 55, 64, 76])  # bass, harmony, melody
                duration = 64 if rng.random() < 0.1 else rng.choice([1, 2, 4, 8])  # some held for bars
                tokens += [V.pos_token(step), V.pitch_token(pitch), V.duration_token(duration),
                           V.velocity_token(80)]  # fmt: skip
            for c in (kept, whole):
                for token in tokens:
                    c.accept(token)
                    while (forced := c.take_forced()) is not None:  # a change landed: as compose_ahead
                        c.accept(forced)
                        c.after_forced()
            assert kept._cursor.bar_index == whole._cursor.bar_index == bar
            head = kept.tempo_map.seconds(bar * meter)
            for q in queues:
                q.pop_due(head)
            assert len(kept.bars) <= HISTORY_BARS + 1
            assert len(kept._sounds) <= HISTORY_BARS + 1 + kept._reach
            assert len(kept.tempo_map) <= kept.tempo_map.capacity == 2 * (HISTORY_BARS + 2)
        newest = max(whole.bars)
        assert newest == 2999 and sorted(kept.bars) == list(range(newest - HISTORY_BARS, newest + 1))
        for b in range(newest - HISTORY_BARS, newest + 1):
            assert kept.bar_heard(b) == whole.bar_heard(b)
            start = whole.bars[b].start_beat
            for beat in (start, start + 1.75):
                assert kept.tempo_map.seconds(beat) == whole.tempo_map.seconds(beat)
            assert kept.bar_at(start + 0.5) == b
        assert any(kept.heard(b) != () for b in range(newest - 3, newest + 1))
        most = max(len(notes) for notes in whole._sounds.values())
        assert _notes_kept(kept) <= most * (HISTORY_BARS + 1 + kept._reach)
        # without trimming (as before) every bar and tempo change stays; the notes heard reads never do
        assert len(whole.bars) == 3000 and len(whole.tempo_map) > kept.tempo_map.capacity
        assert whole._sounds == kept._sounds
        assert whole.heard(newest - HISTORY_BARS - 1) == () and whole.bars[newest - HISTORY_BARS - 1]
    finally:
        for c in (kept, whole):
            c.stop(0.0)


def _sounding_beats(r: Rendered) -> list[float]:
    """How long each melody/harmony note sounded, in beats (each note-on paired with its note-off)."""
    on: dict[tuple[int, int], float] = {}
    out: list[float] = []
    for t, k, ch, p, _ in r.recorder.events:
        if ch in (9, STINGER_CHANNEL):
            continue
        if k == NOTE_ON:
            assert (ch, p) not in on  # every note ends before its key sounds again
            on[(ch, p)] = t
        elif k == NOTE_OFF and (ch, p) in on:
            out.append(r.tempo_map.beat(t) - r.tempo_map.beat(on.pop((ch, p))))
    assert not on  # nothing left sounding
    return out


@pytest.mark.parametrize(("valence", "arousal", "longer"), [(-0.8, 0.8, True), (0.8, -0.8, False)])
def test_articulation_holds_driving_music_and_shortens_calm(
    composer: Composer, valence: float, arousal: float, longer: bool
) -> None:
    start = Emotion(valence, arousal)
    played = render(composer, [], 32.0, seed=4, audio=False, start_state=None, start_emotion=start)
    as_written = render(
        composer, [], 32.0, seed=4, audio=False, start_state=None, start_emotion=start,
        config=ConductorConfig(articulation=False),
    )  # fmt: skip
    assert notes(played) == notes(as_written)  # the same notes, sounding for other lengths
    a, w = np.mean(_sounding_beats(played)), np.mean(_sounding_beats(as_written))
    assert (a > 1.4 * w) if longer else (a < 0.8 * w)
    assert max(_sounding_beats(played)) <= max(V.DURATION_STEPS) / V.STEPS_PER_BEAT + 1e-6


def test_the_gate_is_each_quadrants_measured_ratio_at_its_corner() -> None:
    for q, (v, a) in {1: (1.0, 1.0), 2: (-1.0, 1.0), 3: (-1.0, -1.0), 4: (1.0, -1.0)}.items():
        assert gate(v, a) == pytest.approx(QUADRANT_GATE[q])
    assert gate(0.0, 0.0) == pytest.approx(sum(QUADRANT_GATE.values()) / 4)
    assert gate(5.0, 5.0) == gate(1.0, 1.0)  # out of range clamps
    assert sounding_steps(64, -1.0, 1.0) == 64 and sounding_steps(1, 1.0, -1.0) == 1


def test_the_key_pull_eases_for_bright_music_and_between_beats_for_danger(
    composer: Composer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bright music gets room for colour (a weaker key pull, none at valence +1, but the
    parallel mode's notes keep all of it); -V+A gets chromatic passing tones between beats (a
    weaker off-beat pull), but never loses more than half of it, so its minor is still heard
    (with none, the held-out judge heard -V+A right far less often)."""
    pulls: list[tuple[float, float]] = []
    guards: list[float] = []
    real_open = composer.open_stream

    def spy(*args: Any, **kwargs: Any) -> int:
        pulls.append((kwargs["key_strength"], kwargs["offbeat_pull"]))
        guards.append(kwargs["mode_guard"])
        return real_open(*args, **kwargs)

    monkeypatch.setattr(composer, "open_stream", spy)
    first: dict[tuple[float, float], tuple[float, float]] = {}
    for v, a in [(1.0, 0.5), (-1.0, 1.0), (-1.0, -1.0), (0.0, 0.0)]:
        pulls.clear()
        render(composer, [], 1.0, seed=1, audio=False, start_state=None, start_emotion=Emotion(v, a))
        first[v, a] = pulls[0]
    full = ConductorConfig()
    bright, danger, sorrow, neutral = (first[k] for k in [(1.0, 0.5), (-1.0, 1.0), (-1.0, -1.0), (0.0, 0.0)])
    assert neutral == sorrow == (full.key_strength, full.offbeat_pull)
    assert bright[0] == 0.0 and bright[1] == full.offbeat_pull
    assert guards == [full.key_strength] * 4
    assert danger[0] == full.key_strength
    assert 0.5 * full.offbeat_pull <= danger[1] < full.offbeat_pull


def test_danger_is_heard_in_its_own_minor_key() -> None:
    """-V+A sessions stay in the minor key they were primed in, as music21 hears 16 bars of them.
    Pulled by Krumhansl-Kessler's minor profile (mediant and submediant rated near the tonic),
    they drifted to the submediant's major: 15 of the first 24 kept their key; with the measured
    pull (engine.music.keys.PULL_PROFILES), 22 (45 of these 48). With the form's head
    restatements (engine.music.form.head_source) 38 of these 48 (17 of the first 24): over 120
    sessions (seeds 100-400) 86 % against 89 %, within what a seed moves."""
    pytest.importorskip("music21")
    from engine.bench.form import music21_key, played_excerpts
    from engine.model.tonal_primer import choose_key

    sessions, seed = 48, 100
    played = played_excerpts(
        Composer(max_streams=sessions, intra_op_threads=1), [(-0.8, 0.8)] * sessions, 16, seed
    )
    heard = [music21_key(e.notes) for e in played]
    own = sum((k.tonic.pitchClass, k.mode) == choose_key(seed + i, -0.8) for i, k in enumerate(heard))
    assert own >= 36, f"{own} of {sessions} -V+A sessions heard in their own key"


def test_a_major_keys_contrasting_phrase_moves_to_the_dominant_and_the_return_comes_home(
    composer: Composer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Form group of 4 phrases of 4 bars: phrases 0, 1 and 3 at home, the contrast (bars 8-11)
    in the dominant, the stream pulled there as each of its bars opens and home again for the
    return; minor keys stay home; ``modulate=False`` keeps every bar home.

    The pull is soft and bright music eases it (to none at valence +1), so in the notes the
    modulation does not show: of the notes on F or F# in four sessions at valence 0.8 (seeds
    5-8), 16 % are F# at home and 8 % in the contrast (home / contrast 14 / 21 % before the
    full bright release, 7 / 22 % before the form's head restatements)."""
    bright = Emotion(0.8, 0.3)
    end = 16 * 4.0 + 1.0

    def keys(r: Rendered) -> list[tuple[int, str]]:
        return [r.bars[b].key for b in range(16)]

    tonics: list[int] = []  # the tonic of each pull the stream is given after it opens
    real_set_key = composer.set_key

    def spy(stream: int, tonic: int, *args: Any, **kwargs: Any) -> None:
        tonics.append(tonic)
        real_set_key(stream, tonic, *args, **kwargs)

    monkeypatch.setattr(composer, "set_key", spy)
    r = render(composer, [], end, seed=5, audio=False, start_state=None, start_emotion=bright,
               config=ConductorConfig(key_tonic_pc=0, mode_policy="major"))  # fmt: skip
    assert keys(r) == [(0, "major")] * 8 + [(7, "major")] * 4 + [(0, "major")] * 4
    assert tonics == [7, 0]  # into the contrast and home again
    monkeypatch.undo()
    dark = render(composer, [], end, seed=5, audio=False, start_state=None, start_emotion=Emotion(-0.8, -0.5),
                  config=ConductorConfig(key_tonic_pc=0, mode_policy="minor"))  # fmt: skip
    assert keys(dark) == [(0, "minor")] * 16
    home = render(composer, [], end, seed=5, audio=False, start_state=None, start_emotion=bright,
                  config=ConductorConfig(key_tonic_pc=0, mode_policy="major", modulate=False))  # fmt: skip
    assert keys(home) == [(0, "major")] * 16


def test_a_change_starts_the_form_and_its_keys_again(
    composer: Composer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan counts from the section (the bar after a change of emotion or state): a change
    in bar 6 puts the contrast at bars 15-18. A change that cuts into the contrast composes the
    rest of its bar again in the contrast's key; the new section starts at home."""
    cfg = ConductorConfig(key_tonic_pc=0, mode_policy="major")
    start = {"start_state": None, "start_emotion": Emotion(0.8, 0.3), "config": cfg, "audio": False}
    cues = [Cue(6 * 4 + 1.3, "emotion", valence=0.7, arousal=0.5, sync="immediate")]
    r = render(composer, cues, 22 * 4.0, seed=2, **start)
    assert r.landed[0][1] == pytest.approx(6 * 4 + 1.3)
    assert [b for b in range(22) if r.bars[b].key == (7, "major")] == [15, 16, 17, 18]
    pulled: list[int] = []
    real_set_key = composer.set_key
    monkeypatch.setattr(
        composer, "set_key", lambda s, tonic, *a, **k: (pulled.append(tonic), real_set_key(s, tonic, *a, **k))
    )
    cut = 9 * 4 + 1.3
    cues = [Cue(cut, "emotion", valence=0.7, arousal=0.5, sync="immediate")]
    r = render(composer, cues, 20 * 4.0, seed=2, **start)
    assert [b for b in range(20) if r.bars[b].key == (7, "major")] == [8, 9, 18, 19]
    # bar 8 opens the contrast; the new emotion lands in bar 9 and pulls in the contrast's key
    # there; bar 10 starts the new section at home; bar 18 its contrast
    assert pulled == [7, 7, 0, 7]


def test_a_stinger_sounds_in_the_key_of_its_beat_and_a_bar_keeps_its_key_through_a_change() -> None:
    """The music is composed ahead of the playhead (here four beats): a stinger on the last beat
    of bar 7 is in the home key though bar 8 (the dominant's) is composed already. A change that
    lands inside bar 9 (the contrast), seeking, starts a new section from bar 10: the rest of
    bar 9 stays in the dominant, and so does a stinger on it."""
    composer = Composer(max_streams=2, intra_op_threads=1)
    cfg = ConductorConfig(key_tonic_pc=0, mode_policy="major", lookahead_beats=4.0)
    cues = [
        Cue(30.2, "stinger", "hit"),  # lands on beat 31: bar 7
        Cue(37.3, "emotion", valence=0.7, arousal=0.5, sync="immediate", seek_per_s=0.5),
        Cue(38.2, "stinger", "hit"),  # lands on beat 39: bar 9
    ]
    r = render(composer, cues, 44.0, seed=2, audio=False, start_state=None,
               start_emotion=Emotion(0.8, 0.3), config=cfg)  # fmt: skip
    assert [beat for _, beat in r.landed] == pytest.approx([31.0, 37.3, 39.0])
    stings = [(b, p) for b, ch, p, _ in notes(r) if ch == STINGER_CHANNEL]
    tonic_of = {beat: min(p for b, p in stings if b == pytest.approx(beat)) % 12 for beat in (31.0, 39.0)}
    assert tonic_of == {31.0: 0, 39.0: 7}
    assert [r.bars[b].key[0] for b in range(7, 11)] == [0, 7, 7, 0]


def test_a_theme_that_runs_into_the_contrast_keeps_the_key_it_began_in(composer: Composer) -> None:
    """A two-bar leitmotif landing on bar 7 (home) goes on through bar 8, where the contrast
    would begin: its second bar is heard, and reported, in the key its notes were placed in; the
    contrast starts with the bar after it."""
    two_bars = [*THEME, *((b + 4.0, p, d, v) for b, p, d, v in reversed(THEME))]
    cfg = ConductorConfig(key_tonic_pc=0, mode_policy="major")
    theme = theme_from_notes("arp2", two_bars)
    r = render(composer, [Cue(26.0, "leitmotif", "arp2")], 44.0, seed=8, audio=False, start_state=None,
               start_emotion=Emotion(0.8, 0.3), config=cfg, themes=[theme])  # fmt: skip
    assert r.landed[0][1] == pytest.approx(28.0)
    melody = [p % 12 for b, ch, p, _ in notes(r) if ch == 0 and 32.0 <= b < 36.0]
    assert len(melody) >= 4 and set(melody) <= {0, 4, 7}  # the theme's second bar, in C
    assert [r.bars[b].key[0] for b in range(7, 11)] == [0, 0, 7, 7]
