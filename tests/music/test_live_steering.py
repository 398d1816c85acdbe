"""Live steering: a steered session's bars chosen among candidates, on the shipped composer and
recognizer, through the conductor on the virtual clock (engine.sessions.render.render)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from engine.model.composer import Composer
from engine.music.conductor import Conductor, compose_ahead
from engine.music.config import ConductorConfig, Emotion
from engine.realtime.event_queue import EventQueue
from engine.realtime.kinds import NOTE_OFF, NOTE_ON
from engine.recognizer.emotion_recognizer import EmotionRecognizer, default_recognizer_dir
from engine.sessions.ops import Cue
from engine.sessions.render import Rendered, render
from engine.tokens import codec
from engine.tokens import vocab as V

pytestmark = pytest.mark.skipif(
    not (default_recognizer_dir() / "manifest.json").is_file(), reason="no shipped recognizer"
)
STEERED = ConductorConfig(steer=4)


@pytest.fixture(scope="module")
def composer() -> Iterator[Composer]:
    yield Composer(max_streams=4, intra_op_threads=1, recognizer=EmotionRecognizer.load(intra_op_threads=1))


def notes(r: Rendered) -> list[tuple[float, int, int, int]]:
    return [(round(r.tempo_map.beat(t), 6), ch, a, b) for t, k, ch, a, b in r.recorder.events if k == NOTE_ON]


def _stuck(r: Rendered) -> set[tuple[int, int]]:
    sounding: set[tuple[int, int]] = set()
    for _t, k, ch, a, _b in r.recorder.events:
        if k == NOTE_ON:
            sounding.add((ch, a))
        elif k == NOTE_OFF:
            sounding.discard((ch, a))
    return sounding


def test_a_steered_session_plays_other_bars_the_same_whatever_the_block(
    composer: Composer,
) -> None:
    cues = [Cue(9.3, "state", "combat", sync="immediate"), Cue(17.0, "state", "sorrow", sync="bar")]
    a = render(composer, cues, 28.0, seed=3, audio=False, config=STEERED, block_frames=512)
    b = render(composer, cues, 28.0, seed=3, audio=False, config=STEERED, block_frames=97)
    assert a.recorder.events == b.recorder.events
    plain = render(composer, cues, 28.0, seed=3, audio=False)
    assert notes(plain)[:8] != notes(a)[:8]  # the first bar is already another one
    assert [beat for _, beat in a.landed] == [pytest.approx(9.3), pytest.approx(20.0)]
    assert any(abs(n[0] - 20.0) < 1e-6 for n in notes(a) if n[1] != 9)  # the bar change has its note
    assert not _stuck(a)


def test_an_immediate_change_inside_a_steered_bar_sounds_at_once(
    composer: Composer,
) -> None:
    cue = Cue(6.1, "emotion", valence=-0.9, arousal=0.9, sync="immediate")
    r = render(composer, [cue], 16.0, seed=5, audio=False, config=STEERED)
    t_cue = r.tempo_map.seconds(6.1)
    assert any(k == NOTE_ON and abs(t - t_cue) < 1e-9 for t, k, *_ in r.recorder.events)
    assert not _stuck(r)
    e = r.bars[3].emotion  # the next bar is steered at the new emotion
    assert (e.valence, e.arousal) == (-0.9, 0.9)


def test_steering_moves_the_recognizers_reading_toward_the_target(composer: Composer) -> None:
    """Over a few sessions, the recognizer reads the steered bars nearer their target than the
    plain ones of the same seeds (what steering is for; the held-out judge is in bench form)."""
    rec = composer._steering.recognizer
    assert rec is not None
    target = np.asarray([-0.8, 0.8])
    dist = {}
    for steer in (0, 8):
        d = []
        for seed in range(3):
            r = render(composer, [], 32.0, seed=seed, audio=False, start_state=None,
                       start_emotion=Emotion(-0.8, 0.8), config=ConductorConfig(steer=steer))  # fmt: skip
            played = [
                V.Note(round(r.tempo_map.beat(t) * V.STEPS_PER_BEAT), a, 4, b)
                for t, k, ch, a, b in r.recorder.events
                if k == NOTE_ON and ch != 9 and V.PITCH_MIN <= a <= V.PITCH_MAX
            ]
            got = rec.classify_notes(sorted(n for n in played if n.onset_step < 128), [4] * 8,
                                     tempo_bpm=r.bars[0].tempo_bpm)  # fmt: skip
            d.append(float(np.linalg.norm(np.asarray([got.valence, got.arousal]) - target)))
        dist[steer] = float(np.mean(d))
    assert dist[8] < dist[0]


def test_search_bar_leaves_the_stream_where_it_was(composer: Composer) -> None:
    s = composer.open_stream(9, 0.5, 0.5, tonal_prime=True, key_strength=1.5)
    try:
        bar = int(composer.step(s)[0])
        assert V.BAR_OFFSET <= bar < V.POS_OFFSET
        before = composer.snapshot(s)
        rest = composer.search_bar([s], [4], [[bar]], [110.0])[0]
        again = composer.search_bar([s], [4], [[bar]], [110.0])[0]
        np.testing.assert_array_equal(rest, again)  # deterministic, and the stream did not move
        after = composer.snapshot(s)
        assert np.array_equal(before.h, after.h) and before.count == after.count
        assert V.BAR_OFFSET <= rest[-1] < V.POS_OFFSET
        for token in rest.tolist():
            composer.force_step([s], [token])  # the chosen bar is one the grammar takes
        codec.decode_tokens(np.concatenate([[bar], rest]))
    finally:
        composer.close_stream(s)


def test_search_bar_refuses_bad_requests(composer: Composer) -> None:
    s = composer.open_stream(1, 0.0, 0.0, tonal_prime=True)
    try:
        with pytest.raises(ValueError, match="holds a token"):
            composer.search_bar([s], [4], [[V.bar_token(4)]], [100.0])
        bar = int(composer.step(s)[0])
        with pytest.raises(ValueError, match=r"2\.\.32 candidates"):
            composer.search_bar([s], [1], [[bar]], [100.0])
        with pytest.raises(ValueError, match="prefix starts with"):
            composer.search_bar([s], [4], [[V.pos_token(0)]], [100.0])
        with pytest.raises(ValueError, match="one entry per stream"):
            composer.search_bar([s], [4, 4], [[bar]], [100.0])
        with pytest.raises(ValueError, match="tempo_bpm"):
            composer.search_bar([s], [4], [[bar]], [0.0])
        with pytest.raises(ValueError, match="one token per stream"):
            composer.force_step([s], [])
    finally:
        composer.close_stream(s)
    with pytest.raises(ValueError, match="steer must be in"):
        ConductorConfig(steer=33)


def _conductor(composer: Composer, seed: int, steer: int) -> Conductor:
    return Conductor(composer, EventQueue(), seed, ConductorConfig(steer=steer), state="combat")


def test_a_change_while_a_bar_is_searched_cancels_the_search(composer: Composer) -> None:
    """A search runs a token per composing round; a change that cuts the music meanwhile drops
    it (its candidate slots free again) and the session plays on."""
    free = composer._steering.free_slots
    c = _conductor(composer, 8, 4)
    try:
        rounds = 0
        while not c.searching and rounds < 200:
            compose_ahead(composer, [c], 10.0, max_tokens=1)
            rounds += 1
        assert c.searching and composer._steering.free_slots == free - 4
        c.set_emotion(0.0, 0.5, -0.5, sync="immediate")  # cuts back to the start: the bar goes
        assert not c.searching and composer._steering.free_slots == free
        compose_ahead(composer, [c], 10.0)
        assert c.frontier_beat > 10.0 and composer._steering.free_slots == free
    finally:
        c.stop(0.0)
    assert composer._steering.free_slots == free


def test_with_no_candidate_slots_free_a_bar_is_plain(composer: Composer) -> None:
    """The composer's hidden slots bound the candidates searched at once: a session that finds
    none free composes its bar plainly and still keeps time."""
    free = composer._steering.free_slots
    a, b = _conductor(composer, 1, free - 2), _conductor(composer, 2, 4)
    try:
        for _ in range(50):
            compose_ahead(composer, [a, b], 10.0, max_tokens=2)
            if a.searching:
                break
        assert a.searching and not b.searching  # b's bar opened while a held the slots
        compose_ahead(composer, [a, b], 10.0)
        assert min(a.frontier_beat, b.frontier_beat) > 10.0
    finally:
        a.stop(0.0)
        b.stop(0.0)
    assert composer._steering.free_slots == free
