"""Emotion-steered decoding (Composer ``steer``) on the tiny model, scored by the shipped recognizer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.checks import MAX_STEER
from engine.model.artifact import ModelArtifact, load_artifact
from engine.model.composer import Composer
from engine.recognizer.emotion_recognizer import EmotionRecognizer, default_recognizer_dir
from engine.tokens import codec
from engine.tokens import vocab as V

pytestmark = pytest.mark.skipif(
    not (default_recognizer_dir() / "manifest.json").is_file(), reason="no shipped recognizer"
)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path) -> ModelArtifact:
    return load_artifact(tiny_model_dir, providers="cpu", intra_op_threads=1, inter_op_threads=1)


@pytest.fixture(scope="module")
def recognizer() -> EmotionRecognizer:
    return EmotionRecognizer.load(intra_op_threads=1)


@pytest.fixture
def composer(tiny: ModelArtifact, recognizer: EmotionRecognizer) -> Composer:
    return Composer(artifact=tiny, max_streams=8, recognizer=recognizer)


def _bars(tokens: np.ndarray) -> int:
    return int(((tokens >= V.BAR_OFFSET) & (tokens < V.POS_OFFSET)).sum())


def test_steered_bars_decode_and_are_deterministic(composer: Composer) -> None:
    outs = []
    for _ in range(2):
        s = composer.open_stream(7, -0.8, 0.8, tonal_prime=True, key_strength=1.5, steer=4)
        outs.append(composer.generate_bars(s, 3)[0])
        assert composer.info(s).steer == 4
        composer.close_stream(s)
    np.testing.assert_array_equal(outs[0], outs[1])
    assert _bars(outs[0]) == 3 and outs[0][0] == V.bar_token(4)
    _notes, beats = codec.decode_tokens(outs[0])
    assert beats == [4, 4, 4]


def test_steered_compose_reports_each_bar_and_composes_the_same_piece(composer: Composer) -> None:
    seen: list[int] = []
    piece = composer.compose(-0.5, 0.5, 3, seed=4, steer=3, on_bar=lambda done, _n: seen.append(done))
    assert seen == [1, 2, 3]
    assert piece == composer.compose(-0.5, 0.5, 3, seed=4, steer=3)


def test_steering_changes_output_and_k1_is_plain(composer: Composer) -> None:
    def run(steer: int, seed: int = 11) -> np.ndarray:
        s = composer.open_stream(seed, 0.5, -0.5, guidance=1.0, steer=steer)
        try:
            return composer.generate_bars(s, 2)[0]
        finally:
            composer.close_stream(s)

    plain = run(0)
    np.testing.assert_array_equal(run(1), plain)  # K = 1 is no steering at all
    assert any(not np.array_equal(run(8, seed), run(0, seed)) for seed in range(3))


def test_carried_state_continues_validly(composer: Composer) -> None:
    steered = composer.open_stream(3, 0.8, 0.8, steer=3)
    plain = composer.open_stream(3, 0.8, 0.8)
    first = composer.generate_bars([steered, plain], 2)  # mixed batch: plain and steered together
    second = composer.generate_bars([steered], 2)[0]
    whole = np.concatenate([first[0], second])
    codec.decode_tokens(whole)  # the chosen candidate's grammar and held BAR carried over
    assert _bars(whole) == 4 and composer.info(steered).bars == 5  # 4 output + the held next BAR
    with pytest.raises(ValueError, match="steered"):
        composer.step(steered)
    alone = Composer(artifact=composer.artifact, max_streams=1)
    s = alone.open_stream(3, 0.8, 0.8)
    np.testing.assert_array_equal(alone.generate_bars(s, 2)[0], first[1])  # plain rows unaffected


def test_many_steered_streams_in_groups(tiny: ModelArtifact, recognizer: EmotionRecognizer) -> None:
    one = Composer(artifact=tiny, max_streams=3, recognizer=recognizer)
    ids = [one.open_stream(i, 0.0, 0.0, steer=20) for i in range(3)]  # 60 candidates > 32 rows
    together = one.generate_bars(ids, 1)
    solo = Composer(artifact=tiny, max_streams=1, recognizer=recognizer)
    s = solo.open_stream(2, 0.0, 0.0, steer=20)
    np.testing.assert_array_equal(solo.generate_bars(s, 1)[0], together[2])


@pytest.mark.parametrize("bad", [-1, MAX_STEER + 1, 100])
def test_bad_steer_rejected(composer: Composer, bad: int) -> None:
    with pytest.raises(ValueError, match="steer must be in"):
        composer.open_stream(0, steer=bad)
    with pytest.raises(TypeError, match="steer must be an int"):
        composer.open_stream(0, steer=2.0)  # type: ignore[arg-type]
    assert composer.open_streams == []


def test_steering_hears_the_tempo(composer: Composer) -> None:
    """A steered stream is judged at its tempo: the same seed and target choose other bars when
    the notes will be played three times as fast."""

    def run(tempo_bpm: float) -> list[np.ndarray]:
        return [
            composer.generate_bars(composer.open_stream(seed, 0.0, 0.9, steer=8, tempo_bpm=tempo_bpm), 2)[0]
            for seed in range(3)
        ]

    slow, fast = run(60.0), run(180.0)
    for s in composer.open_streams:
        composer.close_stream(s)
    assert any(not np.array_equal(a, b) for a, b in zip(slow, fast, strict=True))
    with pytest.raises(ValueError, match="tempo_bpm"):
        composer.open_stream(0, steer=2, tempo_bpm=0.0)
    with pytest.raises(TypeError, match="tempo_bpm"):
        composer.open_stream(0, steer=2, tempo_bpm="fast")  # type: ignore[arg-type]
    assert composer.open_streams == []


def test_compose_steer(composer: Composer) -> None:
    notes, beats = composer.compose(-0.5, -0.5, 2, seed=5, steer=2)
    assert beats == [4, 4]
    assert (notes, beats) == composer.compose(-0.5, -0.5, 2, seed=5, steer=2)


def test_bench_steering_command(capsys: pytest.CaptureFixture[str]) -> None:
    """The steering benchmark runs end to end on the shipped model and recognizer."""
    pytest.importorskip("music21")
    from engine.cli import main

    assert main(["bench", "steering", "--pieces", "1", "--steer", "2", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert {(r["tonal_prime"], r["steer"]) for r in rows} == {(True, 0), (True, 2), (False, 0), (False, 2)}
    assert len(rows) == 16 and all(0 <= r["accuracy"] <= 1 and r["notes_per_bar"] >= 0 for r in rows)
