"""Score a story: its arc becomes cues on the conductor, with the tempo fitted so each scene's
first downbeat lands on the scene's start time (as a film composer hits a sync point).

For each scene (start ``s_i``, length ``D_i`` up to the next scene's start), the tempo its arousal
asks for (:meth:`engine.music.config.ConductorConfig.tempo_for`) is bent to the nearest tempo that
fits a whole number of bars into ``D_i``: ``n_i = round(D_i / bar_s)``, ``tempo = n_i * meter * 60 / D_i``.
Scene ``i`` then starts on bar ``sum(n_j, j < i)``, at ``s_i`` to float precision. The change is
given half a bar early with ``sync: bar``, so it lands on that downbeat: the tempo is set there
and the emotion moves from there to the scene's over one bar (no cut of sounding notes, no reset
of the composer's stream) — the same ops a game sends (:mod:`engine.sessions.ops`), rendered by
the same conductor and synth (:func:`engine.sessions.render.render`).
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from engine.music.config import MAX_SEEK_PER_S, ConductorConfig, Emotion
from engine.music.leitmotif import Theme
from engine.music.tempo_map import MAX_TEMPO_BPM, MIN_TEMPO_BPM
from engine.sessions.ops import Cue
from engine.story.analysis import StoryAnalysis, scene_json
from engine.story.arc import Scene, scene_emotion

#: music after the last line ends, seconds (the last scene is stretched to a whole bar past it)
TAIL_S = 2.0
#: the offline clock's step (85 ms at 48 kHz): the music does not depend on it, and a long step
#: spends less on the per-step work (composing ahead, cues, handing on events) of a 30-minute render
RENDER_BLOCK_FRAMES: Final = 4096
#: how long the emotion takes to reach a new scene's, in bars
TRANSITION_BARS = 1.0


@dataclass(frozen=True)
class SyncPoint:
    """Where scene ``scene`` starts in the music."""

    scene: int
    target_s: float  # the scene's start time in the text
    beat: float  # the downbeat it starts on
    bars: int  # bars the scene lasts
    tempo_bpm: float  # the scene's fitted tempo


@dataclass(frozen=True)
class ScorePlan:
    sync_points: list[SyncPoint]
    cues: list[Cue]
    end_beat: float
    start_emotion: Emotion
    config: ConductorConfig  # the session's, with the first scene's tempo


def plan_score(
    scenes: Sequence[Scene], end_s: float, config: ConductorConfig | None = None, meter_beats: int = 4
) -> ScorePlan:
    """The cues that play ``scenes`` with each scene's first downbeat at its start time.

    Args:
        scenes: the arc's scenes, in order (the first one is played from 0 s).
        end_s: when the text ends, seconds.
        config: the session's conductor settings (tempo range, states, layers...).
        meter_beats: beats in a bar.

    Raises:
        ValueError: no scenes, or scenes out of order.
    """
    cfg = config or ConductorConfig()
    if not scenes:
        raise ValueError("a score needs at least one scene")
    starts = [0.0] + [s.start_s for s in scenes[1:]]
    if any(b <= a for a, b in itertools.pairwise(starts)):
        raise ValueError("scenes must start in order, each after the one before")
    ends = [*starts[1:], max(end_s + TAIL_S, starts[-1] + 1.0)]
    points: list[SyncPoint] = []
    beat = 0.0
    for i, (scene, start, end) in enumerate(zip(scenes, starts, ends, strict=True)):
        length_s = end - start
        wanted = cfg.tempo_for(scene_emotion(scene))
        bars = max(1, round(length_s * wanted / (60.0 * meter_beats)))
        # the last scene only needs to last past the text: round up
        if i == len(scenes) - 1:
            bars = max(1, math.ceil(length_s * wanted / (60.0 * meter_beats)))
            tempo = wanted
        else:
            tempo = bars * meter_beats * 60.0 / length_s
            while tempo > MAX_TEMPO_BPM and bars > 1:
                bars -= 1
                tempo = bars * meter_beats * 60.0 / length_s
            while tempo < MIN_TEMPO_BPM:
                bars += 1
                tempo = bars * meter_beats * 60.0 / length_s
            if tempo > MAX_TEMPO_BPM:
                raise ValueError(f"scene {i} at {start:.2f} s is too short for a bar ({length_s:.3f} s)")
        points.append(SyncPoint(i, start, beat, bars, tempo))
        beat += bars * meter_beats
    cues: list[Cue] = []
    for p in points[1:]:
        emotion = scene_emotion(scenes[p.scene])
        before = scene_emotion(scenes[p.scene - 1])
        bar_s = meter_beats * 60.0 / p.tempo_bpm
        distance = max(abs(emotion.valence - before.valence), abs(emotion.arousal - before.arousal), 0.05)
        seek = min(MAX_SEEK_PER_S, distance / (TRANSITION_BARS * bar_s))
        arrive = p.beat - meter_beats / 2
        cues.append(Cue(arrive, "tempo", tempo_bpm=p.tempo_bpm, sync="bar"))
        cues.append(Cue(arrive, "emotion", valence=emotion.valence, arousal=emotion.arousal,
                        tension=emotion.tension, sync="bar", seek_per_s=seek))  # fmt: skip
    return ScorePlan(
        points, cues, beat, scene_emotion(scenes[0]), replace(cfg, fixed_tempo_bpm=points[0].tempo_bpm)
    )


@dataclass(frozen=True)
class ScoreResult:
    wav: Path | None
    mid: Path
    cues: Path
    plot: Path | None
    duration_s: float
    render_s: float
    #: per scene change: |the downbeat it landed on − the scene's start|, seconds
    alignment_errors_s: list[float]


def score_story(
    analysis: StoryAnalysis,
    out_dir: str | os.PathLike[str],
    composer: Any,
    *,
    seed: int = 0,
    config: ConductorConfig | None = None,
    themes: Sequence[Theme] = (),
    audio: bool = True,
    plot: bool = True,
    progress: Callable[[float, float], None] | None = None,
) -> ScoreResult:
    """Render ``analysis``'s arc to ``out_dir``: score.wav, score.mid (a track per layer, the tempo
    map), cues.json (each scene: start, downbeat, bar, tempo, alignment error) and arc.png.

    Files are written beside their final names and renamed into place only when all are done:
    a failure leaves nothing half-written.

    Args:
        composer: an :class:`engine.model.composer.Composer` with a free stream.
        seed: the session seed.
        config: conductor settings (a profile's ``config``); None: the defaults.
        themes: leitmotifs to register.
        audio: write score.wav (the built-in synth).
        plot: write arc.png (needs matplotlib).
        progress: called with (music seconds rendered, total seconds) as bars sound.

    Raises:
        ValueError: the analysis has no lines.
        OSError: the directory cannot be written.
    """
    import time

    from engine.outputs.recorders import write_wav
    from engine.sessions.render import render

    if not analysis.lines:
        raise ValueError("nothing to score: the story has no lines")
    plan = plan_score(analysis.scenes, analysis.end_s, config, composer.meter_beats)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    total_s = analysis.end_s + TAIL_S
    started = time.perf_counter()
    rendered = render(
        composer, plan.cues, plan.end_beat, seed=seed, config=plan.config, start_state=None,
        start_emotion=plan.start_emotion, themes=themes, audio=audio, block_frames=RENDER_BLOCK_FRAMES,
        on_bar=None if progress is None else (lambda info, t: progress(t, total_s)),
    )  # fmt: skip
    render_s = time.perf_counter() - started
    tempo_map = rendered.tempo_map
    # where each scene's change landed (the first scene plays from the start)
    landed = [0.0, *(beat for cue, beat in rendered.landed if cue.op == "emotion")]
    errors = [abs(tempo_map.seconds(b) - p.target_s) for p, b in zip(plan.sync_points, landed, strict=True)]
    cues_doc = {
        "source": analysis.source,
        "duration_s": round(rendered.duration_s, 3),
        "scenes": [
            {
                **scene_json(analysis.scenes[p.scene]),
                "bar": round(b / composer.meter_beats),
                "downbeat_s": round(tempo_map.seconds(b), 4),
                "tempo_bpm": round(p.tempo_bpm, 3),
                "bars": p.bars,
                "error_ms": round(1000 * err, 3),
            }
            for p, b, err in zip(plan.sync_points, landed, errors, strict=True)
        ],
    }
    names = {"mid": out / "score.mid", "cues": out / "cues.json"}
    if audio:
        names["wav"] = out / "score.wav"
    if plot:
        names["plot"] = out / "arc.png"
    temps = {k: p.with_name(f".{p.stem}.partial{p.suffix}") for k, p in names.items()}
    try:
        rendered.recorder.write(temps["mid"], tempo_map)
        temps["cues"].write_text(json.dumps(cues_doc, indent=1) + "\n", encoding="utf-8")
        if audio:
            assert rendered.audio is not None
            write_wav(temps["wav"], rendered.audio, rendered.sample_rate_hz)
        if plot:
            from engine.story.plot import plot_arc

            plot_arc(analysis, temps["plot"], downbeats_s=[tempo_map.seconds(b) for b in landed])
        for key, temp in temps.items():
            temp.replace(names[key])
    finally:
        for temp in temps.values():
            temp.unlink(missing_ok=True)
    return ScoreResult(
        names.get("wav"),
        names["mid"],
        names["cues"],
        names.get("plot"),
        rendered.duration_s,
        render_s,
        errors[1:],
    )
