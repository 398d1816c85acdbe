"""Does the music follow the condition? Judged by tools we did not write.

Generates ``pieces`` eight-bar pieces per valence/arousal quadrant (all streams in one batch),
then measures each with music21's key analysis (mode) and pretty_midi (notes per bar, mean
velocity, mean pitch). Valence should move the mode toward major; arousal should move density
and loudness up. Needs the ``train`` extra (music21, pretty_midi).
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.model.composer import Composer
from engine.tokens import codec

#: (valence, arousal) targets per quadrant (1: +V+A, 2: -V+A, 3: -V-A, 4: +V-A).
QUADRANT_TARGETS = {1: (0.8, 0.8), 2: (-0.8, 0.8), 3: (-0.8, -0.8), 4: (0.8, -0.8)}


@dataclass(frozen=True)
class QuadrantRow:
    quadrant: int
    valence: float
    arousal: float
    pieces: int
    major_share: float  # music21 key analysis says major
    notes_per_bar: float  # pretty_midi
    mean_velocity: float  # pretty_midi
    mean_pitch: float  # pretty_midi


def descriptors(path: Path, bars: int) -> tuple[bool, float, float, float]:
    import music21
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(path))
    notes = [n for inst in pm.instruments for n in inst.notes]
    velocity = float(np.mean([n.velocity for n in notes])) if notes else 0.0
    pitch = float(np.mean([n.pitch for n in notes])) if notes else 0.0
    key = music21.converter.parse(str(path)).analyze("key")
    return key.mode == "major", len(notes) / bars, velocity, pitch


def emotion_table(
    composer: Composer,
    *,
    pieces: int = 25,
    bars: int = 8,
    seed: int = 0,
    temperature: float = 1.0,
    top_p: float = 0.95,
    guidance: float = 0.0,
    tonal_prime: bool = False,
    key_strength: float = 0.0,
    tempo_bpm: float = 110.0,
) -> list[QuadrantRow]:
    """Generate ``pieces`` pieces per quadrant and describe each quadrant.

    With ``tonal_prime`` each stream starts from a silent bar whose mode follows its valence
    (what ``affetto compose`` does by default); without, the model alone is judged.

    Raises:
        ImportError: music21 or pretty_midi is missing (install the ``train`` extra).
        RuntimeError: the composer has fewer than ``4 * pieces`` free stream slots.
    """
    import music21  # noqa: F401  (fail early with a clear ImportError)
    import pretty_midi  # noqa: F401

    streams: list[tuple[int, int]] = []  # (quadrant, stream id)
    try:
        for q, (valence, arousal) in QUADRANT_TARGETS.items():
            for i in range(pieces):
                sid = composer.open_stream(
                    seed + 1000 * q + i,
                    valence,
                    arousal,
                    temperature=temperature,
                    top_p=top_p,
                    guidance=guidance,
                    tonal_prime=tonal_prime,
                    key_strength=key_strength,
                )
                streams.append((q, sid))
        sequences = composer.generate_bars([sid for _, sid in streams], bars)
    finally:
        for _, sid in streams:
            composer.close_stream(sid)
    measured: dict[int, list[tuple[bool, float, float, float]]] = {q: [] for q in QUADRANT_TARGETS}
    with tempfile.TemporaryDirectory() as tmp:
        for k, ((q, _), tokens) in enumerate(zip(streams, sequences, strict=True)):
            notes, bar_beats = codec.decode_tokens(tokens)
            path = Path(tmp) / f"{k}.mid"
            if not notes:
                measured[q].append((False, 0.0, 0.0, 0.0))
                continue
            codec.write_notes_midi(path, notes, bar_beats, tempo_bpm=tempo_bpm)
            measured[q].append(descriptors(path, bars))
    rows = []
    for q, (valence, arousal) in QUADRANT_TARGETS.items():
        m = np.asarray(measured[q], dtype=np.float64)
        rows.append(QuadrantRow(q, valence, arousal, len(m), *(float(x) for x in m.mean(axis=0))))
    return rows


def effects(rows: list[QuadrantRow]) -> dict[str, float]:
    """High minus low: valence on major share; arousal on density, velocity (should be > 0)."""
    by = {r.quadrant: r for r in rows}

    def contrast(field: str, high: tuple[int, int], low: tuple[int, int]) -> float:
        value = {q: float(getattr(by[q], field)) for q in (*high, *low)}
        return (value[high[0]] + value[high[1]] - value[low[0]] - value[low[1]]) / 2

    return {
        "valence_major_share": contrast("major_share", (1, 4), (2, 3)),
        "arousal_notes_per_bar": contrast("notes_per_bar", (1, 2), (3, 4)),
        "arousal_velocity": contrast("mean_velocity", (1, 2), (3, 4)),
    }


def format_table(rows: list[QuadrantRow]) -> str:
    lines = [
        "quadrant  valence  arousal  pieces  major%  notes/bar  velocity  pitch",
        *(
            f"Q{r.quadrant}        {r.valence:+.1f}     {r.arousal:+.1f}     {r.pieces:>4}"
            f"  {100 * r.major_share:5.0f}%  {r.notes_per_bar:9.1f}"
            f"  {r.mean_velocity:8.1f}  {r.mean_pitch:5.1f}"
            for r in rows
        ),
    ]
    fx = effects(rows)
    lines.append(
        f"valence → major share {fx['valence_major_share']:+.2f} (want > 0); arousal → notes/bar "
        f"{fx['arousal_notes_per_bar']:+.1f}, velocity {fx['arousal_velocity']:+.1f} (want > 0)"
    )
    return "\n".join(lines)


def table_json(rows: list[QuadrantRow]) -> dict[str, Any]:
    return {"quadrants": [asdict(r) for r in rows], "effects": effects(rows)}
