"""Fuzzing the parsers: arbitrary input raises only the documented errors."""

from __future__ import annotations

from pathlib import Path

import mido
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.tokens import grammar
from engine.tokens import vocab as V
from engine.tokens.codec import decode_tokens, encode_notes, quantize
from engine.tokens.midi_file import MAX_BEATS, MidiFileError, read_midi

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SEED_MIDI = next(iter(sorted(FIXTURES.glob("*.mid")))).read_bytes()


@settings(max_examples=500, deadline=None)
@given(st.lists(st.integers(min_value=-5, max_value=V.VOCAB_SIZE + 5), max_size=64))
def test_decode_raises_only_grammar_errors(tokens: list[int]) -> None:
    try:
        notes, bars = decode_tokens(tokens)
    except grammar.GrammarError:
        return
    assert all(V.PITCH_MIN <= n.pitch <= V.PITCH_MAX and n.duration_steps in V.DURATION_STEPS for n in notes)
    assert all(b in V.BAR_BEATS for b in bars)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_read_midi_raises_only_midi_file_errors(tmp_path: Path, data: st.DataObject) -> None:
    """Random bytes and mutated real files: read, quantize and encode, or a MidiFileError."""
    if data.draw(st.booleans()):
        blob = data.draw(st.binary(max_size=256))
    else:  # flip bytes of a real file, so the header parses and the damage is deeper
        mutated = bytearray(SEED_MIDI)
        for _ in range(data.draw(st.integers(1, 8))):
            mutated[data.draw(st.integers(0, len(mutated) - 1))] = data.draw(st.integers(0, 255))
        blob = bytes(mutated[: data.draw(st.integers(14, len(mutated)))])
    path = tmp_path / "fuzz.mid"
    path.write_bytes(blob)
    try:
        parsed = read_midi(path)
    except MidiFileError:
        return
    notes, bars = quantize(parsed)
    decoded, decoded_bars = decode_tokens(encode_notes(notes, bars).tokens)
    assert decoded == notes and decoded_bars == bars


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ticks_per_beat=st.integers(1, 960),
    notes=st.lists(  # (delta time before the note, its length): up to the largest delta a file holds
        st.tuples(st.integers(0, 0x0FFFFFFF), st.integers(0, 0x0FFFFFFF)), min_size=1, max_size=4
    ),
)
def test_long_silences_and_notes_stay_within_max_beats(
    tmp_path: Path, ticks_per_beat: int, notes: list[tuple[int, int]]
) -> None:
    """Whatever the delta times, a file reads to at most MAX_BEATS of music or is refused."""
    track = mido.MidiTrack()
    for gap, length in notes:
        track += [
            mido.Message("note_on", note=60, velocity=80, time=gap),
            mido.Message("note_off", note=60, time=length),
        ]
    midi = mido.MidiFile(ticks_per_beat=ticks_per_beat)
    midi.tracks.append(track)
    path = tmp_path / "gaps.mid"
    midi.save(path)
    onsets = [sum(g + n for g, n in notes[:i]) + notes[i][0] for i in range(len(notes))]
    try:
        parsed = read_midi(path)
    except MidiFileError as exc:
        assert "too long" in str(exc) and max(onsets) >= MAX_BEATS * ticks_per_beat
        return
    assert max(onsets) < MAX_BEATS * ticks_per_beat
    quantized, bars = quantize(parsed)
    assert len(bars) <= MAX_BEATS // 2 + 1 and quantized[-1].onset_step <= MAX_BEATS * V.STEPS_PER_BEAT


def test_midi_with_note_off_before_on_and_hanging_notes(tmp_path: Path) -> None:
    midi = mido.MidiFile(ticks_per_beat=96)
    midi.tracks.append(
        mido.MidiTrack(
            [
                mido.Message("note_off", note=60, time=0),  # release with nothing held: ignored
                mido.Message("note_on", note=62, velocity=90, time=0),
                mido.Message("note_on", note=62, velocity=70, time=48),  # re-strike while held
                mido.Message("note_off", note=62, time=48),
                mido.Message("note_on", note=64, velocity=50, time=0),  # never released
                mido.MetaMessage("end_of_track", time=96),
            ]
        )
    )
    path = tmp_path / "odd.mid"
    midi.save(path)
    notes, _ = quantize(read_midi(path))
    assert [(n.onset_step, n.pitch) for n in notes] == [(0, 62), (2, 62), (4, 64)]
    assert notes[-1].duration_steps == 4  # the hanging note ends with its track
