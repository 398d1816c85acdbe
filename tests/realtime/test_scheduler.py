"""The event queue: ordering, note bookkeeping (retrigger, cut, all-notes-off), fuzzed invariants."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.outputs.gm import midi_bytes
from engine.realtime.event_queue import EventQueue
from engine.realtime.kinds import BEAT, CONTROL, NOTE_OFF, NOTE_ON


def kinds(rows: list[tuple[float, int, int, int, int]]) -> list[tuple[float, int, int]]:
    return [(t, k, a) for t, k, _, a, _ in rows]


def test_events_come_out_in_time_order_offs_before_ons_at_equal_times() -> None:
    q = EventQueue(capacity=16)
    q.push(2.0, CONTROL, 0, 7, 100)
    q.push_note(1.0, 2.0, 0, 60, 90, origin_beat=1.0)
    q.push_note(2.0, 3.0, 0, 62, 90, origin_beat=2.0)
    q.push(0.5, BEAT, 0, 0, 0)
    rows = q.pop_due(10.0).rows()
    assert kinds(rows) == [
        (0.5, BEAT, 0), (1.0, NOTE_ON, 60), (2.0, NOTE_OFF, 60), (2.0, CONTROL, 7), (2.0, NOTE_ON, 62),
        (3.0, NOTE_OFF, 62),
    ]  # fmt: skip
    assert len(q) == 0 and q.sounding == 0


def test_pop_due_stops_at_the_deadline_and_grows_past_capacity() -> None:
    q = EventQueue(capacity=16)
    for i in range(100):
        q.push_note(i * 0.1, i * 0.1 + 0.05, 0, 60 + i % 12, 80, origin_beat=float(i))
    assert len(q) == 200
    first = q.pop_due(0.42).rows()
    assert [r[0] for r in first] == sorted(r[0] for r in first) and max(r[0] for r in first) <= 0.42
    assert len(first) == 9 and len(q) == 191  # ons at 0.0..0.4, offs at 0.05..0.35


def test_retrigger_ends_the_sounding_note_and_drops_its_stale_off() -> None:
    q = EventQueue()
    q.push_note(0.0, 2.0, 0, 60, 80, origin_beat=0.0)
    q.push_note(1.0, 3.0, 0, 60, 90, origin_beat=1.0)
    rows = q.pop_due(10.0).rows()
    assert kinds(rows) == [(0.0, NOTE_ON, 60), (1.0, NOTE_OFF, 60), (1.0, NOTE_ON, 60), (3.0, NOTE_OFF, 60)]


def test_cut_drops_notes_from_the_beat_and_can_release_sounding_ones() -> None:
    q = EventQueue()
    for beat in range(8):
        q.push_note(beat * 0.5, beat * 0.5 + 1.2, 1, 60 + beat, 80, origin_beat=float(beat))
    q.push_note(1.6, 1.7, 3, 72, 80, origin_beat=3.2, cuttable=False)  # a stinger survives
    played = q.pop_due(1.1).rows()  # beats 0, 1, 2 started
    assert [a for _, k, _, a, _ in played if k == NOTE_ON] == [60, 61, 62]
    q.cut(3.0, release_s=1.1)
    rest = q.pop_due(100.0).rows()
    ons = [a for _, k, _, a, _ in rest if k == NOTE_ON]
    assert ons == [72]  # composed notes from beat 3 on are gone, the stinger stays
    offs = {a: t for t, k, _, a, _ in rest if k == NOTE_OFF}
    assert offs[61] == 1.1 and offs[62] == 1.1  # sounding past the cut: released at the cut
    assert q.sounding == 0


def test_a_cut_never_drops_the_end_of_a_sounding_note_whatever_its_beat() -> None:
    """An immediate change's first notes sound at once, ahead of their beat (the next 16th): a
    second change before that beat cuts from a beat they belong past. They sounded, so their
    note-offs must still come (released at the second change), or the notes hang."""
    q = EventQueue()
    q.push_note(1.0, 3.0, 0, 64, 80, origin_beat=2.25)  # sounds at 1.0 s though its beat is 2.25
    q.push_note(2.5, 3.0, 0, 67, 80, origin_beat=5.0)  # not started: cut
    assert [k for _, k, _, _, _ in q.pop_due(1.05).rows()] == [NOTE_ON]
    q.cut(2.2, release_s=1.1)  # from a beat before the sounding note's own
    assert kinds(q.pop_due(10.0).rows()) == [(1.1, NOTE_OFF, 64)]
    q.push_note(2.0, 4.0, 0, 65, 80, origin_beat=9.0)
    q.pop_due(2.1)
    q.cut(8.0)  # not immediate: it ends when it was to end
    assert kinds(q.pop_due(10.0).rows()) == [(4.0, NOTE_OFF, 65)]
    assert q.sounding == 0


def test_all_notes_off_releases_exactly_what_sounds() -> None:
    q = EventQueue()
    q.push_note(0.0, 5.0, 0, 60, 80, origin_beat=0.0)
    q.push_note(0.0, 5.0, 9, 36, 80, origin_beat=0.0)
    q.push_note(4.0, 5.0, 2, 40, 80, origin_beat=8.0)
    q.pop_due(1.0)
    assert q.sounding == 2
    offs = q.all_notes_off(1.5).rows()
    assert sorted((ch, a) for _, k, ch, a, _ in offs if k == NOTE_OFF) == [(0, 60), (9, 36)]
    assert q.sounding == 0 and len(q) == 0


def test_midi_bytes() -> None:
    assert midi_bytes(NOTE_ON, 2, 60, 100) == b"\x92\x3c\x64"
    assert midi_bytes(NOTE_OFF, 9, 36, 0) == b"\x89\x24\x00"
    assert midi_bytes(CONTROL, 0, 123, 0) == b"\xb0\x7b\x00"
    assert midi_bytes(BEAT, 0, 0, 0) is None


OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("note"),
            st.floats(0, 20),
            st.floats(0.01, 3),
            st.integers(0, 3),
            st.integers(58, 62),
            st.sampled_from([0.0, 0.0, 0.25, 0.5]),
        ),
        st.tuples(st.just("pop"), st.floats(0, 2)),
        st.tuples(st.just("cut"), st.floats(0, 40), st.booleans()),
    ),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_every_note_on_gets_exactly_one_note_off(ops: list[tuple]) -> None:
    """Whatever is pushed (notes may be pulled ahead of their beat), popped and cut, the output is
    well-formed MIDI and every note ends on its own."""
    q = EventQueue(capacity=16)
    now = 0.0
    out: list[tuple[float, int, int, int, int]] = []
    for op in ops:
        if op[0] == "note":
            _, start, dur, ch, pitch, pull = op
            t = now + start
            q.push_note(t, t + dur, ch, pitch, 64, origin_beat=2 * t + pull)  # pulled ahead of its beat
        elif op[0] == "pop":
            now += op[1]
            out += q.pop_due(now).rows()
        else:
            beat = 2 * now + op[1] / 10
            q.cut(beat, release_s=now if op[2] else None)
    out += q.pop_due(now + 30.0).rows()
    assert q.sounding == 0  # every note ended on its own: no all-notes-off needed
    out += q.all_notes_off(now + 30.0).rows()
    on: dict[tuple[int, int], bool] = {}
    last_t = -1.0
    for t, k, ch, a, _ in out:
        assert t >= last_t - 1e-12 or k == NOTE_OFF
        last_t = max(last_t, t)
        if k == NOTE_ON:
            assert not on.get((ch, a)), f"double note-on {(ch, a)} at {t}"
            on[(ch, a)] = True
        elif k == NOTE_OFF:
            assert on.get((ch, a)), f"note-off without note-on {(ch, a)} at {t}"
            on[(ch, a)] = False
    assert not any(on.values()) and q.sounding == 0
    assert np.all(q.owner == -1)
