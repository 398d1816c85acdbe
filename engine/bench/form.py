"""``affetto bench form``: does what the live engine plays have the form of real game music?

Plays ``pieces`` sessions per valence/arousal quadrant through the live path (a
:class:`~engine.music.conductor.Conductor` per session on one composer, stepped together by
:func:`~engine.music.conductor.compose_ahead` as the session host does; only the layers switched
on sound, drums and stingers are left out) and takes each session's first ``bars`` bars. The
same descriptors are measured on real pieces held out from the composer's training (VGMIDI game
music, the corpus's val and test splits: 16-bar excerpts in 4/4 from each piece's first note):

* muspy's pitch-class entropy, scale consistency, groove consistency and polyphony (tools we
  did not write);
* rhythm repetition: the share of bars whose onset pattern (the set of sixteenth positions with
  an onset, every part together) is that of an earlier bar of the excerpt;
* key stability: the share of 4-bar windows (one bar apart) whose key, by music21's analysis,
  is the excerpt's own.

For each descriptor the overlapping area (OA) of the two distributions (Gaussian kernel density
estimates, Silverman's bandwidth; 1: indistinguishable) and its mean over descriptors. Needs
the ``train`` extra (music21) and muspy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from engine.bench.emotion import QUADRANT_TARGETS
from engine.bench.judge import Judge, fit_judge
from engine.model.composer import Composer
from engine.music.conductor import Conductor, compose_ahead
from engine.music.config import STINGER_CHANNEL, ConductorConfig, Emotion
from engine.outputs.gm import DRUM_CHANNEL
from engine.realtime.event_queue import EventQueue
from engine.realtime.kinds import NOTE_OFF, NOTE_ON
from engine.tokens import vocab as V

BAR_STEPS: Final = 4 * V.STEPS_PER_BEAT
KEY_WINDOW_BARS: Final = 4
DESCRIPTORS: Final = (
    "pitch_class_entropy",
    "scale_consistency",
    "groove_consistency",
    "polyphony",
    "rhythm_repetition",
    "key_stability",
)
#: reported per quadrant beside the descriptors: music21's mode (1: major), notes per bar, mean
#: MIDI velocity and pitch
EXTRAS: Final = ("major", "notes_per_bar", "velocity", "pitch")


@dataclass(frozen=True)
class Excerpt:
    """Notes of a 4/4 excerpt on the sixteenth grid, onsets from its first bar line."""

    notes: list[V.Note]
    bars: int
    tempo_bpm: float = 120.0


def rhythm_repetition(excerpt: Excerpt) -> float:
    """The share of the excerpt's bars whose (non-empty) onset pattern an earlier bar had."""
    patterns = [frozenset[int]() for _ in range(excerpt.bars)]
    for n in excerpt.notes:
        bar, step = divmod(n.onset_step, BAR_STEPS)
        if bar < excerpt.bars:
            patterns[bar] = patterns[bar] | {step}
    seen: set[frozenset[int]] = set()
    repeats = 0
    for pattern in patterns:
        if pattern and pattern in seen:
            repeats += 1
        seen.add(pattern)
    return repeats / excerpt.bars


def music21_key(notes: Sequence[V.Note]) -> Any:
    """music21's key analysis of ``notes`` (a ``music21.key.Key``)."""
    import music21

    stream: Any = music21.stream.Stream()
    for n in notes:
        note = music21.note.Note(n.pitch, quarterLength=n.duration_steps / V.STEPS_PER_BEAT)
        stream.insert(n.onset_step / V.STEPS_PER_BEAT, note)
    return stream.analyze("key")


def muspy_music(notes: Sequence[V.Note]) -> Any:
    """``notes`` as one muspy track (resolution: the sixteenth grid)."""
    import muspy

    track = muspy.Track(
        notes=[muspy.Note(n.onset_step, n.pitch, n.duration_steps, n.velocity) for n in notes]
    )
    return muspy.Music(resolution=V.STEPS_PER_BEAT, tracks=[track])


def _key(notes: Sequence[V.Note]) -> str:
    """music21's key of ``notes``, e.g. ``"B- minor"``."""
    key = music21_key(notes)
    return f"{key.tonic.name} {key.mode}"


def key_stability(excerpt: Excerpt, whole: str | None = None) -> float:
    """The share of 4-bar windows, one bar apart, in the key music21 finds for the excerpt
    (``whole``, when already known)."""
    whole = whole or _key(excerpt.notes)
    windows = range(excerpt.bars - KEY_WINDOW_BARS + 1)
    same = 0
    for w in windows:
        lo, hi = w * BAR_STEPS, (w + KEY_WINDOW_BARS) * BAR_STEPS
        inside = [n for n in excerpt.notes if lo <= n.onset_step < hi]
        same += bool(inside) and _key(inside) == whole
    return same / max(len(windows), 1)


def measure(excerpt: Excerpt) -> dict[str, float]:
    """Every descriptor of one excerpt, and the extras."""
    import muspy

    if not excerpt.notes:
        raise ValueError("an excerpt without notes has no form to measure")
    whole = _key(excerpt.notes)
    music = muspy_music(excerpt.notes)
    return {
        "pitch_class_entropy": float(muspy.pitch_class_entropy(music)),
        "scale_consistency": float(muspy.scale_consistency(music)),
        "groove_consistency": float(muspy.groove_consistency(music, BAR_STEPS)),
        "polyphony": float(muspy.polyphony(music)),
        "rhythm_repetition": rhythm_repetition(excerpt),
        "key_stability": key_stability(excerpt, whole),
        "major": float(whole.endswith("major")),
        "notes_per_bar": len(excerpt.notes) / excerpt.bars,
        "velocity": float(np.mean([n.velocity for n in excerpt.notes])),
        "pitch": float(np.mean([n.pitch for n in excerpt.notes])),
    }


def overlap_area(a: Sequence[float], b: Sequence[float]) -> float:
    """Overlapping area of two samples' Gaussian kernel density estimates (Silverman bandwidth)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if x.size < 2 or y.size < 2:
        return math.nan

    def bandwidth(v: np.ndarray) -> float:
        return max(1.06 * float(v.std()) * v.size ** (-0.2), 1e-3 * (1 + abs(float(v.mean()))))

    hx, hy = bandwidth(x), bandwidth(y)
    lo = min(x.min() - 4 * hx, y.min() - 4 * hy)
    hi = max(x.max() + 4 * hx, y.max() + 4 * hy)
    grid = np.linspace(lo, hi, 2048)

    def density(v: np.ndarray, h: float) -> np.ndarray:
        z = (grid[:, None] - v[None, :]) / h
        out: np.ndarray = np.exp(-0.5 * z * z).sum(axis=1) / (v.size * h * math.sqrt(2 * math.pi))
        return out

    return float(np.trapezoid(np.minimum(density(x, hx), density(y, hy)), grid))


def played_excerpts(
    composer: Composer, targets: Sequence[tuple[float, float]], bars: int, seed: int,
    config: ConductorConfig | None = None,
) -> list[Excerpt]:  # fmt: skip
    """The first ``bars`` bars each session plays at each target (one session per target)."""
    cfg = config or ConductorConfig()
    queues = [EventQueue() for _ in targets]
    conductors = [
        Conductor(composer, q, seed + i, cfg, state=None, emotion=Emotion(v, a))
        for i, (q, (v, a)) in enumerate(zip(queues, targets, strict=True))
    ]
    end_beat = bars * 4.0
    ons: list[list[tuple[float, int, int, int]]] = [[] for _ in targets]  # beat, channel, pitch, velocity
    notes: list[list[V.Note]] = [[] for _ in targets]
    head = 0.0
    try:
        while any(c.frontier_beat < end_beat + 1 for c in conductors):
            head += 1.0
            compose_ahead(composer, conductors, head)
            for i, (c, q) in enumerate(zip(conductors, queues, strict=True)):
                _collect(q.pop_due(head - 0.5).rows(), c, ons[i], notes[i])
    finally:
        for c in conductors:
            c.stop(head)
    for i, (c, q) in enumerate(zip(conductors, queues, strict=True)):
        _collect(q.pop_due(math.inf).rows(), c, ons[i], notes[i])
    return [
        Excerpt(
            sorted(n for n in piece if n.onset_step < bars * BAR_STEPS), bars, cfg.tempo_for(Emotion(v, a))
        )
        for piece, (v, a) in zip(notes, targets, strict=True)
    ]


def _collect(
    rows: list[tuple[float, int, int, int, int]],
    conductor: Conductor,
    sounding: list[tuple[float, int, int, int]],
    out: list[V.Note],
) -> None:
    """Pair NOTE_ON/NOTE_OFF rows into grid notes (pitched layers only)."""
    for time_s, kind, channel, a, b in rows:
        if channel in (DRUM_CHANNEL, STINGER_CHANNEL):
            continue
        beat = conductor.tempo_map.beat(time_s)
        if kind == NOTE_ON:
            sounding.append((beat, channel, a, b))
        elif kind == NOTE_OFF:
            k = next((j for j, s in enumerate(sounding) if s[1] == channel and s[2] == a), None)
            if k is None:
                continue
            on, _, pitch, velocity = sounding.pop(k)
            step = round(on * V.STEPS_PER_BEAT)
            length = max(1, round((beat - on) * V.STEPS_PER_BEAT))
            out.append(V.Note(step, pitch, V.quantize_duration(length), velocity))


def held_out_excerpts(data_dir: Path, bars: int) -> list[Excerpt]:
    """``bars``-bar 4/4 excerpts of the VGMIDI pieces the composer did not train on."""
    from engine.tokens.codec import quantize
    from engine.tokens.midi_file import MidiFileError, read_midi
    from models.corpus import SPLIT_NAMES, split_of, vgmidi_group  # torch-free

    held = {SPLIT_NAMES.index("val"), SPLIT_NAMES.index("test")}
    out: list[Excerpt] = []
    for path in sorted((data_dir / "vgmidi").glob("*/midi/*.mid")):
        if split_of(vgmidi_group(path.name)) not in held:
            continue
        try:
            notes, bar_beats = quantize(read_midi(path))
        except MidiFileError:
            continue
        first = notes[0].onset_step // BAR_STEPS if notes else 0
        if len(bar_beats) < first + bars or any(b != 4 for b in bar_beats[: first + bars]):
            continue
        lo, hi = first * BAR_STEPS, (first + bars) * BAR_STEPS
        kept = [
            V.Note(n.onset_step - lo, n.pitch, n.duration_steps, n.velocity)
            for n in notes
            if lo <= n.onset_step < hi
        ]
        out.append(Excerpt(kept, bars))
    return out


def run_form(
    composer: Composer, data_dir: Path, *, pieces: int = 25, bars: int = 16, seed: int = 0,
    config: ConductorConfig | None = None, judge: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """Measure played and held-out excerpts; the report ``affetto bench form --json`` prints.

    With ``judge``, the played excerpts are also judged by the held-out emotion judge
    (:mod:`engine.bench.judge`, fitted here: about a minute and a half on this machine).
    """
    real = [measure(e) for e in held_out_excerpts(data_dir, bars)]
    fitted = fit_judge(data_dir) if judge else None
    return _report(composer, real, fitted, pieces=pieces, bars=bars, seed=seed, config=config)


def _report(
    composer: Composer, real: list[dict[str, float]], judge: Judge | None, *, pieces: int, bars: int,
    seed: int, config: ConductorConfig | None,
) -> dict[str, Any]:  # fmt: skip
    """:func:`run_form`'s report for one seed, given the held-out pieces' measures and the judge."""
    targets = [t for t in QUADRANT_TARGETS.values() for _ in range(pieces)]
    played = played_excerpts(composer, targets, bars, seed, config)
    quadrant_of = [q for q in QUADRANT_TARGETS for _ in range(pieces)]
    quadrant_of = [q for q, e in zip(quadrant_of, played, strict=True) if e.notes]
    ours = [measure(e) for e in played if e.notes]

    def stats(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
        return {d: {"mean": float(np.mean([r[d] for r in rows])), "sd": float(np.std([r[d] for r in rows]))}
                for d in (*DESCRIPTORS, *EXTRAS)}  # fmt: skip

    oa = {d: overlap_area([r[d] for r in ours], [r[d] for r in real]) for d in DESCRIPTORS}
    report: dict[str, Any] = {}
    if judge is not None:
        report["judge"] = _judged(judge, [e for e in played if e.notes], quadrant_of)
    return {
        **report,
        "bars": bars,
        "pieces_per_quadrant": pieces,
        "held_out_pieces": len(real),
        "silent_pieces": len(played) - len(ours),
        "played": stats(ours),
        "per_quadrant": {
            str(q): stats([r for r, qq in zip(ours, quadrant_of, strict=True) if qq == q])
            for q in QUADRANT_TARGETS
        },
        "held_out": stats(real),
        "overlap_area": oa,
        "mean_overlap_area": float(np.nanmean(list(oa.values()))),
    }


def _judged(judge: Judge, played: list[Excerpt], quadrant_of: list[int]) -> dict[str, Any]:
    """The held-out judge's accuracy on the played excerpts, per quadrant and overall."""
    from engine.bench.judge import Piece, accuracy

    valence, arousal = judge.judge([Piece(e.notes, e.tempo_bpm) for e in played])
    want_v = np.asarray([QUADRANT_TARGETS[q][0] > 0 for q in quadrant_of])
    want_a = np.asarray([QUADRANT_TARGETS[q][1] > 0 for q in quadrant_of])
    quadrants = np.asarray(quadrant_of)

    def rates(keep: np.ndarray) -> dict[str, float]:
        return accuracy(valence[keep], arousal[keep], want_v[keep], want_a[keep])

    return {
        "judge_held_out": judge.held_out,
        "judge_pieces": judge.pieces,
        "played": rates(np.ones(len(played), dtype=np.bool_)),
        "per_quadrant": {str(q): rates(quadrants == q) for q in QUADRANT_TARGETS},
    }


#: ``affetto bench form --seeds N`` plays seeds ``seed, seed + SEED_SPACING, ...``: a run's
#: sessions take seeds ``seed .. seed + 4 * pieces - 1``, so runs never share a session's seed
SEED_SPACING: Final = 1000


def run_form_seeds(
    composer: Composer, data_dir: Path, seeds: Sequence[int], *, pieces: int = 25, bars: int = 16,
    config: ConductorConfig | None = None, judge: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """:func:`run_form` once per seed (the judge fitted and the held-out pieces measured once), and
    how far the seeds spread.

    One run's mean OA moves by about ±0.02 with its seed (25 sessions a quadrant; a session is 4
    points of a quadrant's judged accuracy), about as much as a change to the engine is expected
    to move it: compare engines over a few seeds.

    Returns:
        ``runs`` (one :func:`run_form` report per seed), ``seeds``, and ``spread``: for the mean
        OA, each descriptor's OA and (with ``judge``) the judged quadrant, valence and arousal
        rates, their ``mean``, ``sd`` and ``per_seed`` values; ``lowest_quadrant``: the lowest
        judged rate of any quadrant in any seed.

    Raises:
        ValueError: ``seeds`` is empty or repeats a seed.
    """
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and at least one, not {list(seeds)!r}")
    real = [measure(e) for e in held_out_excerpts(data_dir, bars)]
    fitted = fit_judge(data_dir) if judge else None
    runs = [_report(composer, real, fitted, pieces=pieces, bars=bars, seed=s, config=config) for s in seeds]

    def spread(values: list[float]) -> dict[str, Any]:
        return {"mean": float(np.mean(values)), "sd": float(np.std(values)), "per_seed": values}

    out: dict[str, Any] = {
        "mean_overlap_area": spread([r["mean_overlap_area"] for r in runs]),
        **{f"overlap_area.{d}": spread([r["overlap_area"][d] for r in runs]) for d in DESCRIPTORS},
    }
    if judge:
        for rate in ("quadrant", "valence", "arousal"):
            out[f"judged.{rate}"] = spread([r["judge"]["played"][rate] for r in runs])
        out["lowest_quadrant"] = min(q["quadrant"] for r in runs for q in r["judge"]["per_quadrant"].values())
    return {"seeds": list(seeds), "spread": out, "runs": runs}
