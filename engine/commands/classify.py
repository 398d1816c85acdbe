"""``affetto classify FILE.mid``: valence, arousal and quadrant of a MIDI file, per bar and overall
(see :mod:`engine.recognizer.emotion_recognizer`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from engine.commands import CommandError, model_error

QUADRANT_NAMES = {
    1: "+V+A (happy/excited)",
    2: "-V+A (tense/angry)",
    3: "-V-A (sad/depressed)",
    4: "+V-A (calm/content)",
}


def register(sub: Any) -> None:
    """Add the ``classify`` parser to ``sub`` (an argparse subparsers action)."""
    p: argparse.ArgumentParser = sub.add_parser(
        "classify",
        help="recognize the emotion (valence, arousal, quadrant) of a MIDI file",
        description="Recognize valence and arousal of a MIDI file, per bar and for the whole piece, "
        "with its quadrant (1 +V+A, 2 -V+A, 3 -V-A, 4 +V-A). Values are scores in [-1, 1]: the sign is "
        "the prediction, the size how sure it is. Bars are numbered from 0, as everywhere in affetto.",
    )
    p.add_argument("file", type=Path, help="MIDI file to classify")
    p.add_argument("--json", action="store_true", help="print the result as JSON (with every bar)")
    p.add_argument(
        "--model", type=Path, default=None, help="recognizer directory (default: the shipped recognizer)"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Classify the file and print a summary (or JSON).

    Raises:
        CommandError: the file cannot be read or the recognizer cannot be loaded.
    """
    from engine.input_files import InputFileError, check_input_file
    from engine.recognizer.emotion_recognizer import EmotionRecognizer
    from engine.tokens.midi_file import MidiFileError

    try:  # before the recognizer loads; a directory, FIFO or device says what it is (and never blocks)
        check_input_file(args.file, "MIDI file")
    except InputFileError as exc:
        raise CommandError(str(exc)) from exc
    try:
        recognizer = EmotionRecognizer.load(args.model)
    except (FileNotFoundError, ValueError) as exc:
        raise model_error(exc, args.model) from exc
    try:
        result = recognizer.classify_file(args.file)
    except MidiFileError as exc:
        raise CommandError(str(exc)) from exc
    except (OSError, ValueError) as exc:
        raise CommandError(f"{args.file}: cannot classify ({exc})") from exc
    if args.json:
        print(json.dumps({"file": str(args.file), **result.to_dict()}, indent=2))
        return 0
    print(
        f"{args.file}: valence {result.valence:+.2f}, arousal {result.arousal:+.2f}, "
        f"quadrant Q{result.quadrant} {QUADRANT_NAMES[result.quadrant]} ({result.bars.shape[0]} bars)"
    )
    for i, ((v, a), q) in enumerate(zip(result.bars.tolist(), result.bar_quadrants, strict=True)):
        print(f"  bar {i:>4}: valence {v:+.2f}  arousal {a:+.2f}  Q{q}")  # bar 0 is the first, as in --json
    return 0
