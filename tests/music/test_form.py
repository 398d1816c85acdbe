"""Form: phrases restate their ideas (engine.music.form), on the shipped model, and the form bench's
descriptors (engine.bench.form)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from engine.bench.form import (
    BAR_STEPS,
    DESCRIPTORS,
    Excerpt,
    held_out_excerpts,
    overlap_area,
    played_excerpts,
    rhythm_repetition,
)
from engine.model.composer import Composer
from engine.music.conductor import BASS_BELOW
from engine.music.config import ConductorConfig, Emotion, Layer
from engine.music.form import head_source, rhythm_source
from engine.realtime.kinds import NOTE_ON
from engine.sessions.ops import Cue
from engine.sessions.render import render
from engine.tokens import vocab as V

DATA = Path(os.environ.get("AFFETTO_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
#: every composed note sounds (no layer waits for intensity), drums aside
ALL_HEARD = ConductorConfig(layers=(Layer("melody", 0, 0), Layer("harmony", 1, 0), Layer("bass", 2, 33)))


@pytest.fixture(scope="module")
def composer() -> Iterator[Composer]:
    yield Composer(max_streams=4, intra_op_threads=1)


def test_the_plan_states_an_idea_and_returns_to_it() -> None:
    plan = [rhythm_source(bar, 0, 4) for bar in range(17)]
    assert plan == [None, 0, None, None, 0, 4, 2, None, None, 8, 2, None, 0, 12, 2, 7, None]
    # a new section starts the plan again; cadence bars (but the return's) and one-bar phrases are free
    assert [rhythm_source(bar, 5, 4) for bar in range(5, 11)] == [None, 5, None, None, 5, 9]
    assert rhythm_source(3, 0, 1) is None


def test_free_bars_but_a_phrases_first_restate_the_head_of_the_bar_before() -> None:
    heads = [head_source(bar, 0, 4) for bar in range(17)]
    assert {bar: h for bar, h in enumerate(heads) if h is not None} == {2: 1, 3: 2, 7: 6, 11: 10}
    assert [head_source(bar, 5, 4) for bar in range(5, 10)] == [None, None, 6, 7, None]
    assert head_source(3, 0, 1) is None


def patterns(excerpt: Excerpt) -> list[frozenset[int]]:
    out = [frozenset[int]() for _ in range(excerpt.bars)]
    for n in excerpt.notes:
        bar, step = divmod(n.onset_step, BAR_STEPS)
        out[bar] = out[bar] | {step}
    return out


def test_bars_restate_their_sources_rhythm_with_new_notes(composer: Composer) -> None:
    """At a fixed emotion every bar the plan gives a source (with two onsets or more) starts its
    notes exactly where the source's did, and its pitches are the model's own again; continuation
    and cadence bars start as the bar before them did (its onsets before the middle of the bar)
    and go their own way from there."""
    excerpts = played_excerpts(composer, [(0.5, 0.3), (-0.6, 0.7)], 16, seed=3, config=ALL_HEARD)
    checked = varied = heads = own_tail = 0
    half = BAR_STEPS // 2
    for excerpt in excerpts:
        bars = patterns(excerpt)
        for bar in range(16):
            source = rhythm_source(bar, 0, 4)
            if source is not None and len(bars[source]) >= 2:
                assert bars[bar] == bars[source], (bar, source)
                checked += 1
                pitches = [
                    sorted(n.pitch for n in excerpt.notes if n.onset_step // BAR_STEPS == b)
                    for b in (bar, source)
                ]
                varied += pitches[0] != pitches[1]
            head = head_source(bar, 0, 4)
            if head is not None and any(p < half for p in bars[head]):
                assert {p for p in bars[bar] if p < half} == {p for p in bars[head] if p < half}, (bar, head)
                heads += 1
                own_tail += {p for p in bars[bar] if p >= half} != {p for p in bars[head] if p >= half}
        assert rhythm_repetition(excerpt) >= 0.4
    assert checked >= 12 and varied >= checked // 2
    assert heads >= 8 and own_tail >= 2


def test_a_change_inside_a_restating_bar_composes_the_rest_freely(composer: Composer) -> None:
    """Bar 1 restates bar 0; an immediate change at beat 5.3 cuts it and adds a note at once."""
    r = render(composer, [Cue(5.3, "emotion", valence=-0.8, arousal=0.9, sync="immediate")], 16.0,
               seed=5, audio=False, config=ALL_HEARD)  # fmt: skip
    assert r.landed[0][1] == pytest.approx(5.3)
    steps = {
        round(r.tempo_map.beat(t) * V.STEPS_PER_BEAT) for t, kind, *_ in r.recorder.events if kind == NOTE_ON
    }
    bar0 = {s for s in steps if s < BAR_STEPS}
    assert len(bar0) >= 2 and {s for s in steps if BAR_STEPS <= s < 21} == {
        s + BAR_STEPS for s in bar0 if s < 5
    }
    assert any(abs(r.tempo_map.beat(t) - 5.3) < 0.05 for t, kind, *_ in r.recorder.events if kind == NOTE_ON)
    assert set(range(4)) <= set(r.bars)


def test_rhythm_repetition_and_overlap_area() -> None:
    def note(step: int) -> V.Note:
        return V.Note(step, 60, 2, 80)

    a = Excerpt([note(0), note(4), note(16), note(20), note(32), note(48), note(52)], 4)
    assert rhythm_repetition(a) == pytest.approx(2 / 4)  # bars 1 and 3 repeat bar 0
    assert rhythm_repetition(Excerpt([], 4)) == 0.0  # silence repeats nothing
    assert overlap_area([0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4]) == pytest.approx(1.0, abs=1e-3)
    assert overlap_area([0.1, 0.2, 0.15], [5.0, 5.1, 5.2]) < 1e-3


@pytest.mark.skipif(not (DATA / "vgmidi").is_dir(), reason=f"no VGMIDI under {DATA}")
def test_held_out_game_music_restates_its_rhythms() -> None:
    excerpts = held_out_excerpts(DATA, 16)
    assert len(excerpts) >= 10
    assert all(e.notes and max(n.onset_step for n in e.notes) < 16 * BAR_STEPS for e in excerpts)
    assert sum(rhythm_repetition(e) for e in excerpts) / len(excerpts) > 0.4


def test_the_bass_plays_on_every_strong_beat_with_a_chord(composer: Composer) -> None:
    """A part of its own: every chord on beat 1 or 3 has a bass note under it (below BASS_BELOW),
    which lasts at most to the next strong beat."""
    r = render(composer, [], 32.0, seed=8, audio=False, config=ALL_HEARD, start_emotion=Emotion(0.4, 0.2))
    ons = [(r.tempo_map.beat(t), ch, a) for t, kind, ch, a, _ in r.recorder.events if kind == NOTE_ON]
    strong = sorted(
        {round(b) for b, ch, _ in ons if ch in (0, 1) and b < 32 and abs(b / 2 - round(b / 2)) < 0.02}
    )
    assert len(strong) >= 8
    bass = {round(b): p for b, ch, p in ons if ch == 2 and abs(b - round(b)) < 0.02}
    assert all(b in bass and bass[b] < BASS_BELOW for b in strong)


def test_the_judges_features_and_regression() -> None:
    """Features of a bright fast piece and a dark slow one differ where they should, and the
    regression separates what can be separated."""
    from engine.bench.judge import Piece, _Logistic, features

    up = Piece([V.Note(2 * i, 72 + (0, 4, 7, 12)[i % 4], 2, 100) for i in range(64)], 150.0)  # C major, busy
    down = Piece([V.Note(8 * i, 48 + (0, 3, 7, 3)[i % 4], 8, 50) for i in range(16)], 70.0)  # C minor, sparse
    f_up, f_down = features(up), features(down)
    assert np.isfinite(f_up).all() and f_up.shape == f_down.shape
    assert f_up[0] > f_down[0] and f_up[7] == 1.0 and f_down[7] == 0.0  # notes/s (log); music21's mode
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = (x[:, 0] - 0.5 * x[:, 2] > 0).astype(np.float64)
    model = _Logistic.fit(x, y)
    assert np.mean(model.positive(x) == (y > 0)) > 0.95


@pytest.mark.skipif(not (DATA / "vgmidi").is_dir(), reason=f"no VGMIDI under {DATA}")
def test_bench_form_reports_every_descriptor(capsys: pytest.CaptureFixture[str]) -> None:
    from engine.cli import main

    assert (
        main(["bench", "form", "--pieces", "1", "--bars", "8", "--no-judge", "--data", str(DATA), "--json"])
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert set(report["overlap_area"]) == set(DESCRIPTORS) and report["held_out_pieces"] >= 10
    assert all(0.0 <= report["overlap_area"][d] <= 1.0 + 1e-6 for d in DESCRIPTORS)
    assert set(report["per_quadrant"]) == {"1", "2", "3", "4"} and "judge" not in report


@pytest.mark.skipif(not (DATA / "vgmidi").is_dir(), reason=f"no VGMIDI under {DATA}")
def test_bench_form_over_seeds_reports_each_run_and_their_spread(capsys: pytest.CaptureFixture[str]) -> None:
    from engine.cli import main

    common = ["bench", "form", "--pieces", "1", "--bars", "8", "--no-judge", "--data", str(DATA), "--json"]
    assert main([*common, "--seed", "7", "--seeds", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["seeds"] == [7, 1007] and len(report["runs"]) == 2
    oa = report["spread"]["mean_overlap_area"]
    assert oa["per_seed"] == [r["mean_overlap_area"] for r in report["runs"]]
    assert min(oa["per_seed"]) <= oa["mean"] <= max(oa["per_seed"]) and oa["sd"] >= 0
    assert {f"overlap_area.{d}" for d in DESCRIPTORS} <= set(report["spread"])
    assert "judged.quadrant" not in report["spread"]
    # each run is the single run of its seed
    assert main([*common, "--seed", "1007"]) == 0
    single = json.loads(capsys.readouterr().out)
    assert single["mean_overlap_area"] == report["runs"][1]["mean_overlap_area"]


def test_bench_form_seeds_must_be_distinct(composer: Composer) -> None:
    from engine.bench.form import run_form_seeds

    for seeds in ([], [3, 3]):
        with pytest.raises(ValueError, match="distinct and at least one"):
            run_form_seeds(composer, DATA, seeds, judge=False)
