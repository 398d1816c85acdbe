"""Vocabulary, grammar and MIDI codec: round trips over every file in ../shared/data."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import mido
import numpy as np
import pytest

from engine.tokens import grammar
from engine.tokens import vocab as V
from engine.tokens.codec import (
    bar_layout,
    decode_tokens,
    encode_file,
    encode_notes,
    quantize,
    write_notes_midi,
)
from engine.tokens.midi_file import MAX_BEATS, MAX_MIDI_BYTES, MidiFileError, read_midi

DATA = Path(os.environ.get("AFFETTO_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
ALL_MIDI = sorted(DATA.glob("**/*.mid"))


def test_vocabulary_tables_are_consistent() -> None:
    names = [V.token_name(t) for t in range(V.VOCAB_SIZE)]
    assert len(set(names)) == V.VOCAB_SIZE
    assert names[V.pitch_token(60)] == "PITCH_60"
    assert names[V.bar_token(3)] == "BAR_3"
    assert V.quantize_duration(17) == 16 and V.quantize_duration(100) == 64
    with pytest.raises(ValueError, match=r"0\.\.148"):
        V.token_name(V.VOCAB_SIZE)
    with pytest.raises(ValueError, match=r"21\.\.108"):
        V.pitch_token(20)


@pytest.mark.skipif(not ALL_MIDI, reason=f"no MIDI files under {DATA}")
def test_round_trip_every_shared_file() -> None:
    """Every file encodes; decoding gives back its notes up to grid quantization."""
    assert len(ALL_MIDI) > 2000
    for path in ALL_MIDI:
        parsed = read_midi(path)
        notes, bars = quantize(parsed)
        encoded = encode_notes(notes, bars)
        decoded, decoded_bars = decode_tokens(encoded.tokens)
        assert decoded == notes, path
        assert decoded_bars == bars, path
        assert encoded.tokens.size == encoded.bar_index.size
        # Quantization moves an onset by at most half a step; every raw note is represented.
        scale = V.STEPS_PER_BEAT / parsed.ticks_per_beat
        kept = {(n.onset_step, n.pitch) for n in decoded}
        for raw in parsed.notes:
            exact = raw.onset_tick * scale
            step = round(exact)
            assert abs(step - exact) <= 0.5
            pitch = raw.pitch
            while pitch < V.PITCH_MIN:
                pitch += 12
            while pitch > V.PITCH_MAX:
                pitch -= 12
            assert (step, pitch) in kept, (path, raw)


def test_bar_layout_follows_supported_meters() -> None:
    tpb = 480
    assert bar_layout([(0, 3, 4)], tpb, 40) == [3, 3, 3, 3]
    # 4/4 then 3/4 from bar 2 (tick 2 * 4 * 480)
    assert bar_layout([(0, 4, 4), (3840, 3, 4)], tpb, 50) == [4, 4, 3, 3]
    assert bar_layout([(0, 6, 8)], tpb, 20) == [3, 3]
    # unsupported meters fall back to 4/4 throughout
    assert bar_layout([(0, 1, 4)], tpb, 33) == [4, 4, 4]
    assert bar_layout([(0, 4, 4), (1920, 5, 4)], tpb, 10) == [4]


def test_encode_orders_chords_high_to_low_and_decodes_exactly() -> None:
    notes = [V.Note(0, 60, 4, 68), V.Note(0, 67, 4, 76), V.Note(6, 62, 2, 44), V.Note(20, 59, 16, 100)]
    encoded = encode_notes(notes, [4, 4])
    names = [V.token_name(t) for t in encoded.tokens]
    assert names[:6] == ["BOS", "BAR_4", "POS_0", "PITCH_67", "DUR_4", "VEL_76"]
    assert names[-1] == "EOS"
    decoded, bars = decode_tokens(encoded.tokens)
    assert decoded == sorted(notes, key=lambda n: (n.onset_step, -n.pitch))
    assert bars == [4, 4]
    assert encoded.bar_index.tolist()[-5:] == [1, 1, 1, 1, 1]


@pytest.mark.parametrize(
    "names",
    [
        ["BAR_4", "PITCH_60"],  # pitch without position
        ["BAR_4", "POS_3", "POS_4"],  # position without a note
        ["BAR_4", "POS_3", "PITCH_60", "DUR_4", "VEL_76", "POS_3"],  # position not increasing
        ["BAR_4", "POS_0", "PITCH_60", "DUR_4", "VEL_76", "PITCH_60"],  # same pitch twice at an onset
        ["BAR_3", "POS_12"],  # position outside a 3-beat bar
        ["BAR_4", "EOS", "BAR_4"],  # after the end
        ["BAR_4", "PAD"],
    ],
)
def test_decode_rejects_grammar_violations(names: list[str]) -> None:
    lookup = {V.token_name(t): t for t in range(V.VOCAB_SIZE)}
    with pytest.raises(grammar.GrammarError, match="not allowed"):
        decode_tokens([lookup[n] for n in names])


def test_mask_and_advance_agree() -> None:
    """Random walks under the mask are always accepted, and every masked-out token is refused."""
    rng = np.random.default_rng(0)
    states = grammar.new_states(8)
    mask = np.zeros((8, V.VOCAB_SIZE), dtype=np.bool_)
    sequences: list[list[int]] = [[] for _ in range(8)]
    for _ in range(400):
        grammar.fill_masks(states, grammar.all_bars(), False, mask)
        for b in range(8):
            allowed = np.flatnonzero(mask[b])
            refused = np.flatnonzero(~mask[b])
            refused = refused[refused != V.EOS]  # allowed by the grammar, masked by policy here
            probe = states[b].copy()
            assert not grammar.advance(probe, int(rng.choice(refused)))
            token = int(rng.choice(allowed))
            assert grammar.advance(states[b], token)
            sequences[b].append(token)
    for seq in sequences:
        decode_tokens(seq)


def test_a_bar_with_a_rhythm_starts_its_notes_exactly_there() -> None:
    """Random walks that fix each bar's rhythm (or its head's) as it opens: mask and advance
    agree on every token, and every bar's onsets before its free tail are exactly its rhythm's
    positions (chords free)."""
    rng = np.random.default_rng(1)
    states = grammar.new_states(6, after_bos=True)
    mask = np.zeros((6, V.VOCAB_SIZE), dtype=np.bool_)
    full = np.zeros_like(mask)  # every bar length and EOS: what the grammar itself allows
    sequences: list[list[int]] = [[] for _ in range(6)]
    rhythms: list[list[tuple[list[int], int] | None]] = [[] for _ in range(6)]
    for _ in range(900):
        grammar.fill_masks(states, grammar.only_bar(4), False, mask)
        grammar.fill_masks(states, grammar.all_bars(), True, full)
        for b in range(6):
            for token in range(V.VOCAB_SIZE):  # the mask is exactly what advance accepts
                assert grammar.advance(states[b].copy(), token) == full[b, token]
            token = int(rng.choice(np.flatnonzero(mask[b])))
            assert grammar.advance(states[b], token)
            sequences[b].append(token)
            if token == V.bar_token(4):
                free_from = 16 if rng.random() < 0.5 else int(rng.integers(1, 16))
                if rng.random() < 0.3:
                    rhythms[b].append(None)
                    continue
                count = rng.integers(1, min(6, free_from) + 1)
                chosen = sorted(int(p) for p in rng.choice(free_from, count, replace=False))
                grammar.set_rhythm(states[b], chosen, None if free_from == 16 else free_from)
                rhythms[b].append((chosen, free_from))
    checked = tails = 0
    for seq, bar_rhythms in zip(sequences, rhythms, strict=True):
        notes, _ = decode_tokens(seq)
        for index, rhythm in enumerate(bar_rhythms[:-1]):  # the last bar may be unfinished
            if rhythm is not None:
                onsets = sorted(
                    {
                        n.onset_step - 16 * index
                        for n in notes
                        if 16 * index <= n.onset_step < 16 * (index + 1)
                    }
                )
                chosen, free_from = rhythm
                assert [p for p in onsets if p < free_from] == chosen
                checked += 1
                tails += any(p >= free_from for p in onsets)
    assert checked > 20 and tails > 5  # free tails are taken, not only allowed


def test_a_rhythm_is_set_only_on_an_open_bar_inside_it() -> None:
    state = grammar.new_states(1, after_bos=True)[0]
    with pytest.raises(ValueError, match="right after the bar opens"):
        grammar.set_rhythm(state, [0])
    assert grammar.advance(state, V.bar_token(3))
    with pytest.raises(ValueError, match=r"0\.\.11"):
        grammar.set_rhythm(state, [0, 12])
    with pytest.raises(ValueError, match="at least one"):
        grammar.set_rhythm(state, [])
    grammar.set_rhythm(state, [4])
    assert grammar.advance(state, V.pos_token(4))
    with pytest.raises(ValueError, match="right after the bar opens"):
        grammar.set_rhythm(state, [8])
    grammar.set_rhythm(state, None)  # freeing the rest of a bar is always allowed
    assert state[grammar.STATE_RHYTHM] == 0


def test_a_head_rhythm_frees_the_bar_from_its_middle() -> None:
    """A rhythm on the first half of a 4/4 bar: its onsets first, in order; then the bar may
    close or take any onset from the middle on, but none before it that the head did not have."""
    state = grammar.new_states(1, after_bos=True)[0]
    assert grammar.advance(state, V.bar_token(4))
    for bad, error in ((0, ValueError), (17, ValueError), (True, TypeError), (7.5, TypeError)):
        with pytest.raises(error, match=r"free_from must be (an int )?in 1\.\.16"):
            grammar.set_rhythm(state, [0], bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"0\.\.7"):
        grammar.set_rhythm(state, [0, 8], 8)
    grammar.set_rhythm(state, [0, 4], 8)
    assert not grammar.advance(state.copy(), V.pos_token(2))
    assert not grammar.advance(state.copy(), V.bar_token(4))  # the head is not played yet
    note = [V.pitch_token(60), V.DUR_OFFSET + 1, V.VEL_OFFSET + 10]
    for token in [V.pos_token(0), *note, V.pos_token(4), *note]:
        assert grammar.advance(state, token)
    assert not grammar.advance(state.copy(), V.pos_token(6))  # before the middle: the head's
    assert grammar.advance(state.copy(), V.bar_token(4))
    assert grammar.advance(state, V.pos_token(11))
    for token in note:
        assert grammar.advance(state, token)
    assert grammar.advance(state.copy(), V.pos_token(14))
    assert grammar.advance(state, V.bar_token(4))
    assert state[grammar.STATE_RHYTHM] == 0 and state[grammar.STATE_FREE_FROM] == 16


def test_meter_mask_only_opens_the_engine_meter() -> None:
    states = grammar.new_states(1, after_bos=True)
    mask = np.zeros((1, V.VOCAB_SIZE), dtype=np.bool_)
    grammar.fill_masks(states, grammar.only_bar(4), True, mask)
    assert np.flatnonzero(mask[0]).tolist() == [V.bar_token(4)]


def test_transpose_keeps_sequences_valid_and_refuses_leaving_the_range() -> None:
    encoded = encode_notes([V.Note(0, 100, 4, 64), V.Note(0, 30, 4, 64)], [4])
    up = V.transpose_tokens(encoded.tokens, 8)
    assert [n.pitch for n in decode_tokens(up)[0]] == [108, 38]
    with pytest.raises(ValueError, match=r"leaves 21\.\.108"):
        V.transpose_tokens(encoded.tokens, 9)


def test_bad_and_empty_midi_files_give_clear_errors(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mid"
    garbage.write_bytes(b"this is not a midi file")
    with pytest.raises(MidiFileError, match="not a readable MIDI file"):
        read_midi(garbage)
    short = tmp_path / "short.mid"
    short.write_bytes(b"garbage")  # mido raises a bare EOFError: the message still says why
    with pytest.raises(MidiFileError, match=r"not a readable MIDI file \(EOFError\)"):
        read_midi(short)
    with pytest.raises(MidiFileError, match="no such file"):
        read_midi(tmp_path / "missing.mid")
    truncated = tmp_path / "truncated.mid"
    truncated.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\x01\x00\x00\x90")
    with pytest.raises(MidiFileError):
        read_midi(truncated)
    empty = tmp_path / "empty.mid"
    mido.MidiFile().save(empty)
    with pytest.raises(MidiFileError, match="no pitched notes"):
        encode_file(empty)
    drums = tmp_path / "drums.mid"
    midi = mido.MidiFile()
    track = mido.MidiTrack(
        [
            mido.Message("note_on", channel=9, note=36, velocity=100),
            mido.Message("note_off", channel=9, note=36, time=240),
        ]
    )
    midi.tracks.append(track)
    midi.save(drums)
    with pytest.raises(MidiFileError, match="no pitched notes"):
        read_midi(drums)


def test_written_midi_reads_back_to_the_same_notes(tmp_path: Path) -> None:
    notes = [V.Note(0, 72, 4, 100), V.Note(0, 60, 16, 44), V.Note(13, 65, 3, 84), V.Note(14, 65, 2, 84)]
    path = tmp_path / "out.mid"
    write_notes_midi(path, notes, [3, 3], tempo_bpm=96.0)
    back, bars = quantize(read_midi(path))
    assert back == sorted(notes, key=lambda n: (n.onset_step, -n.pitch))
    assert bars == [3, 3]
    with pytest.raises(ValueError, match="tempo_bpm"):
        write_notes_midi(path, notes, [4], tempo_bpm=0.0)


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    while n := n >> 7:
        out.append(n & 0x7F | 0x80)
    return bytes(reversed(out))


def gap_midi(ticks_per_beat: int, gap_ticks: int) -> bytes:
    """A one-track file: a note, then ``gap_ticks`` of silence (a 4-byte delta time at most), then
    a second note: 45 bytes however long the gap."""
    events = (
        b"\x00\x90\x3c\x40" + b"\x01\x80\x3c\x00"
        + _vlq(gap_ticks) + b"\x90\x3e\x40" + b"\x01\x80\x3e\x00" + b"\x00\xff\x2f\x00"
    )  # fmt: skip
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, ticks_per_beat)
    return header + b"MTrk" + struct.pack(">I", len(events)) + events


@pytest.mark.parametrize("ticks_per_beat", [1, 96, 480])
def test_a_file_that_expands_past_max_beats_is_refused_at_once(tmp_path: Path, ticks_per_beat: int) -> None:
    """A few bytes of delta time name 2**28 ticks: the reader refuses the note past MAX_BEATS
    rather than hand on a file of millions of bars (classify took 37 s and 5.8 GB, then died)."""
    path = tmp_path / "gap.mid"
    path.write_bytes(gap_midi(ticks_per_beat, 0x0FFFFFFF))
    assert path.stat().st_size == 45
    beat = (0x0FFFFFFF + 1) // ticks_per_beat
    with pytest.raises(MidiFileError) as info:
        read_midi(path)
    assert str(info.value) == (
        f"{path}: too long: a note starts at beat {beat} "
        f"(allowed: notes starting before beat {MAX_BEATS}, 10000 bars of 4/4)"
    )
    for last, ok in ((MAX_BEATS - 1, True), (MAX_BEATS, False)):  # the bound, on either side
        path.write_bytes(gap_midi(ticks_per_beat, last * ticks_per_beat - 1))
        if not ok:
            with pytest.raises(MidiFileError, match=f"starts at beat {MAX_BEATS} "):
                read_midi(path)
            continue
        notes, bars = quantize(read_midi(path))
        assert notes[-1].onset_step == last * V.STEPS_PER_BEAT and len(bars) == MAX_BEATS // 4


def test_read_midi_refuses_what_is_not_a_regular_file_without_opening_it(tmp_path: Path, fifo: Path) -> None:
    def refused(path: Path | str, why: str) -> None:
        with pytest.raises(MidiFileError) as info:
            read_midi(path)
        assert str(info.value) == f"{path}{why}"

    refused(tmp_path, " is a directory, not a MIDI file")
    refused(fifo, " is a FIFO (named pipe), not a MIDI file")  # opening it would block until a writer came
    for device in ("/dev/zero", "/dev/null"):  # /dev/zero never ends
        if os.path.exists(device):
            refused(device, " is a device, not a MIDI file")
    refused(tmp_path / "missing.mid", ": cannot read (no such file)")
    big = tmp_path / "big.mid"
    big.write_bytes(gap_midi(96, 1).ljust(MAX_MIDI_BYTES + 1, b"\x00"))
    refused(big, f": too large (allowed: at most {MAX_MIDI_BYTES} bytes)")
