"""``affetto bench steering``: plain conditional sampling against emotion-steered decoding.

For each arm (tonal primer on/off × steering off/K) it composes ``pieces`` eight-bar pieces
per quadrant in one batch and judges them by the recognizer (whole-piece quadrant accuracy)
and by tools we did not write (music21 key mode, pretty_midi notes per bar and velocity), next
to two diversity measures: the share of distinct pitch-class sets among a piece's bars (higher
is more varied) and the 4-gram repetition rate of its tokens (lower is more varied).
Needs the ``train`` extra (music21, pretty_midi).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from engine.bench.emotion import QUADRANT_TARGETS, descriptors
from engine.checks import MAX_STEER
from engine.model.artifact import load_artifact
from engine.model.composer import DEFAULT_KEY_STRENGTH, Composer
from engine.recognizer.emotion_recognizer import EmotionRecognizer
from engine.tokens import codec
from engine.tokens import vocab as V

BARS = 8


@dataclass(frozen=True)
class ArmRow:
    tonal_prime: bool
    steer: int
    quadrant: int
    accuracy: float  # recognizer puts the piece in the target quadrant
    valence: float  # recognizer, mean over pieces
    arousal: float
    major_share: float  # music21
    notes_per_bar: float  # pretty_midi
    velocity: float  # pretty_midi
    distinct_pc_sets: float
    four_gram_repetition: float
    seconds: float  # generating the whole arm (all quadrants in one batch)


def _diversity(notes: list[V.Note], bar_beats: list[int], tokens: np.ndarray) -> tuple[float, float]:
    edges = np.cumsum([0, *(b * V.STEPS_PER_BEAT for b in bar_beats)])
    sets = [
        frozenset(n.pitch % 12 for n in notes if edges[i] <= n.onset_step < edges[i + 1])
        for i in range(len(bar_beats))
    ]
    seq = tokens.tolist()
    grams = [tuple(seq[i : i + 4]) for i in range(len(seq) - 3)]
    return len(set(sets)) / max(len(sets), 1), 1 - len(set(grams)) / max(len(grams), 1)


#: Every piece is steered, judged and written at this one tempo, whatever its target, so the
#: judge hears only the notes (``compose`` plays, and steers, at a tempo following arousal).
TEMPO_BPM: Final = 110.0


def run_arms(pieces: int = 50, steer: int = 8, model_dir: str | None = None) -> list[ArmRow]:
    """Measure every arm; ``pieces`` per quadrant, ``steer`` candidates per bar when steered.

    Raises:
        ImportError: music21 or pretty_midi is missing.
    """
    recognizer = EmotionRecognizer.load(intra_op_threads=1)
    artifact = load_artifact(model_dir, providers="cpu", intra_op_threads=1, inter_op_threads=1)
    composer = Composer(
        artifact=artifact,
        max_streams=4 * pieces,
        recognizer=recognizer,
        steer_rows=max(4 * pieces * steer, MAX_STEER),
    )
    rows: list[ArmRow] = []
    for primed in (True, False):
        for k in (0, steer):
            started = time.perf_counter()
            streams = [
                (q, composer.open_stream(
                    1000 * q + i, v, a, tonal_prime=primed,
                    key_strength=DEFAULT_KEY_STRENGTH if primed else 0.0, steer=k,
                    tempo_bpm=TEMPO_BPM,
                ))
                for q, (v, a) in QUADRANT_TARGETS.items()
                for i in range(pieces)
            ]  # fmt: skip
            try:
                sequences = composer.generate_bars([s for _, s in streams], BARS)
            finally:
                for _, s in streams:
                    composer.close_stream(s)
            seconds = time.perf_counter() - started
            decoded = [codec.decode_tokens(t) for t in sequences]
            judged = recognizer.classify_many(decoded, tempo_bpm=TEMPO_BPM)
            per_q: dict[int, list[tuple[float, ...]]] = {q: [] for q in QUADRANT_TARGETS}
            with tempfile.TemporaryDirectory() as tmp:
                for j, ((q, _), (notes, beats), verdict, tokens) in enumerate(
                    zip(streams, decoded, judged, sequences, strict=True)
                ):
                    path = Path(tmp) / f"{j}.mid"
                    major, density, velocity = False, 0.0, 0.0
                    if notes:
                        codec.write_notes_midi(path, notes, beats, tempo_bpm=TEMPO_BPM)
                        major, density, velocity, _ = descriptors(path, BARS)
                    distinct, repetition = _diversity(notes, beats, tokens)
                    per_q[q].append(
                        (verdict.quadrant == q, verdict.valence, verdict.arousal, major, density, velocity,
                         distinct, repetition)
                    )  # fmt: skip
            for q, values in per_q.items():
                acc, val, aro, major_share, density, vel, distinct, repetition = (
                    float(x) for x in np.asarray(values, dtype=np.float64).mean(axis=0)
                )
                rows.append(
                    ArmRow(
                        primed, k, q, acc, val, aro, major_share, density, vel, distinct, repetition, seconds
                    )
                )
    return rows


def format_arms(rows: list[ArmRow]) -> str:
    lines = ["primer steer  Q  acc    V      A   major  notes/bar  vel  pc-sets  4gram-rep"]
    for r in rows:
        lines.append(
            f"{'on ' if r.tonal_prime else 'off'}    {r.steer:>5}  {r.quadrant}  {r.accuracy:4.2f}  "
            f"{r.valence:+.2f}  {r.arousal:+.2f}  {100 * r.major_share:4.0f}%  {r.notes_per_bar:9.1f}  "
            f"{r.velocity:4.0f}  {r.distinct_pc_sets:7.2f}  {r.four_gram_repetition:9.3f}"
        )
    for primed in (True, False):
        for k in sorted({r.steer for r in rows}):
            arm = [r for r in rows if r.tonal_prime == primed and r.steer == k]
            if arm:
                lines.append(
                    f"primer {'on ' if primed else 'off'} steer {k}: quadrant accuracy "
                    f"{np.mean([r.accuracy for r in arm]):.3f}, generated in {arm[0].seconds:.1f} s"
                )
    return "\n".join(lines)


def arms_json(rows: list[ArmRow]) -> dict[str, Any]:
    return {"rows": [asdict(r) for r in rows]}
