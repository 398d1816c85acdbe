"""``affetto analyze-text`` and ``affetto score``: a story's emotional arc, and music that carries it.

``analyze-text FILE`` prints each line's emotion and the scenes (``--json``: everything, one JSON
document on stdout; ``--plot arc.png``: the picture). ``score FILE -o DIR`` renders DIR/score.wav,
DIR/score.mid, DIR/arc.png and DIR/cues.json, the scene changes on bar lines at the scenes' times.
FILE is SRT, WebVTT, CSV (``start,duration,text``) or plain text (timed at ``--wpm``); ``-`` reads
lines from stdin as they come (analyze-text only), each timed when it arrives.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from engine.commands import CommandError, bounded_float, bounded_int, model_error
from engine.commands.progress import ProgressLine

FORMATS = ("srt", "vtt", "csv", "text")


def _common(p: argparse.ArgumentParser) -> None:
    from engine.story.lines import DEFAULT_WPM

    p.add_argument(
        "--format", choices=FORMATS, default=None, help="the file's format (default: by its suffix)"
    )
    p.add_argument(
        "--wpm", type=bounded_float("wpm", 40, 600), default=DEFAULT_WPM,
        help=f"plain text: reading speed in words per minute, 40..600 (default {DEFAULT_WPM})",
    )  # fmt: skip
    p.add_argument(
        "--text-model", type=Path, default=None, help="text emotion model directory (default: shipped)"
    )


def register(sub: Any) -> None:
    """Add the ``analyze-text`` and ``score`` parsers to ``sub``."""
    a: argparse.ArgumentParser = sub.add_parser(
        "analyze-text",
        help="the emotion of each line of a story and its arc of scenes",
        description="Read a story (SRT, WebVTT, CSV with start,duration,text, or plain text; - for live "
        "lines on stdin) and print each line's valence and arousal, its scene's, and the scenes.",
    )
    a.add_argument("file", help="the story file, or - to read live lines from stdin")
    a.add_argument("--json", action="store_true", help="print one JSON document: lines and scenes")
    a.add_argument("--plot", type=Path, default=None, help="also draw the arc to this PNG file")
    _common(a)
    a.set_defaults(handler=run_analyze)
    s: argparse.ArgumentParser = sub.add_parser(
        "score",
        help="score a story: music that follows its arc, aligned to the text's times",
        description="Write DIR/score.wav, DIR/score.mid (a track per layer, the tempo map), DIR/arc.png and "
        "DIR/cues.json: each scene change lands on a bar line at the scene's start time.",
    )
    s.add_argument("file", type=Path, help="the story file (SRT, WebVTT, CSV or plain text)")
    s.add_argument("-o", "--out", type=Path, required=True, help="output directory")
    s.add_argument(
        "--seed", type=bounded_int("seed", 0, 2**63 - 1), default=0, help="session seed (default 0)"
    )
    s.add_argument(
        "--profile", type=Path, default=None, help="a game profile (layers, states, tempo range, key)"
    )
    s.add_argument("--model", type=Path, default=None, help="composer model directory (default: shipped)")
    s.add_argument("--no-audio", action="store_true", help="skip score.wav (MIDI, cues and plot only)")
    _common(s)
    s.set_defaults(handler=run_score)


def _model(path: Path | None) -> Any:
    from engine.story.text_model import TextEmotionModel

    try:
        return TextEmotionModel(path)
    except (FileNotFoundError, ValueError) as exc:
        raise model_error(exc, path) from exc


def _read(args: argparse.Namespace) -> Any:
    from engine.story.lines import StoryFileError, read_lines

    try:
        return read_lines(args.file, wpm=args.wpm, format=args.format)
    except StoryFileError as exc:
        raise CommandError(str(exc)) from exc
    except OSError as exc:
        raise CommandError(f"{args.file}: {exc.strerror or exc}") from exc


def run_analyze(args: argparse.Namespace) -> int:
    """Print the analysis of a story file (or of live lines on stdin)."""
    from engine.story.analysis import analyse_lines

    if args.file == "-":
        return _analyze_live(_model(args.text_model), sys.stdin, sys.stdout, as_json=args.json)
    lines = _read(args)
    analysis = analyse_lines(lines, _model(args.text_model), source=str(args.file))
    if args.plot is not None:
        from engine.story.plot import plot_arc

        try:
            plot_arc(analysis, args.plot)
        except OSError as exc:
            raise CommandError(f"cannot write {args.plot}: {exc.strerror or exc}") from exc
    if args.json:
        print(json.dumps(analysis.to_json(), indent=1, ensure_ascii=False))
        return 0
    print(f"{args.file}: {len(analysis.lines)} lines, {len(analysis.scenes)} scenes")
    for i, scene in enumerate(analysis.scenes):
        print(
            f"scene {i}: {_clock(scene.start_s)}-{_clock(scene.end_s)} {scene.quadrant} "
            f"valence {scene.valence:+.2f} arousal {scene.arousal:+.2f}  "
            f'"{_short(analysis.lines[scene.first_line].text)}"'
        )
    return 0


def _clock(t: float) -> str:
    return f"{int(t // 60)}:{t % 60:04.1f}"


def _short(text: str, most: int = 60) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


def _analyze_live(model: Any, stream: TextIO, out: TextIO, *, as_json: bool) -> int:
    """Each line read from ``stream``, analysed when it arrives (time: seconds since the start)."""
    from engine.story.arc import LiveArc
    from engine.story.lines import LiveLines

    started = time.monotonic()
    live = LiveLines(lambda: time.monotonic() - started)
    arc = LiveArc()
    context = model.context()
    for raw in stream:
        if not raw.strip():
            continue
        try:
            line = live.add(raw.rstrip("\n"))
        except (TypeError, ValueError) as exc:
            print(f"skipped a line: {exc}", file=sys.stderr)
            continue
        emotion = context.add(line.text)
        decision = arc.add(line.start_s, line.end_s, emotion.p_scene_valence, emotion.p_scene_arousal)
        scene = decision.scene
        if as_json:
            record = {
                "start_s": round(line.start_s, 3),
                "text": line.text,
                "valence": round(emotion.valence, 3),
                "arousal": round(emotion.arousal, 3),
                "scene_valence": round(scene.valence, 3),
                "scene_arousal": round(scene.arousal, 3),
                "changed": decision.changed,
            }
            print(json.dumps(record, ensure_ascii=False), file=out, flush=True)
        else:
            mark = "  << scene change" if decision.changed else ""
            own = f"valence {emotion.valence:+.2f} arousal {emotion.arousal:+.2f}"
            arc_now = f"scene {scene.quadrant} {scene.valence:+.2f} {scene.arousal:+.2f}{mark}"
            print(f"{_clock(line.start_s)} {own} | {arc_now}", file=out, flush=True)
    return 0


def run_score(args: argparse.Namespace) -> int:
    """Score a story file to a directory."""
    from engine.model.composer import Composer
    from engine.sessions.profile_file import ProfileError, load_profile
    from engine.story.analysis import analyse_lines
    from engine.story.score import score_story

    config = None
    if args.profile is not None:
        try:
            config = load_profile(args.profile).config
        except ProfileError as exc:
            raise CommandError(str(exc)) from exc
    lines = _read(args)
    analysis = analyse_lines(lines, _model(args.text_model), source=str(args.file))
    try:
        composer = Composer(args.model, max_streams=1, intra_op_threads=1)
    except (FileNotFoundError, ValueError) as exc:
        raise model_error(exc, args.model) from exc
    progress = ProgressLine(sys.stderr, lambda done, total: f"scoring {_clock(done)} / {_clock(total)}")
    try:
        result = score_story(
            analysis,
            args.out,
            composer,
            seed=args.seed,
            config=config,
            audio=not args.no_audio,
            progress=progress,
        )
    except OSError as exc:
        raise CommandError(f"cannot write to {args.out}: {exc.strerror or exc}") from exc
    finally:
        progress.close()
    worst = max(result.alignment_errors_s, default=0.0) * 1000
    files = ", ".join(str(p) for p in (result.wav, result.mid, result.plot, result.cues) if p is not None)
    print(
        f"scored {args.file}: {len(analysis.scenes)} scenes, {result.duration_s:.1f} s of music in "
        f"{result.render_s:.1f} s ({result.duration_s / max(result.render_s, 1e-9):.0f}x real time); "
        f"scene changes within {worst:.2f} ms of their cues; wrote {files}"
    )
    return 0
