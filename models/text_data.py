"""Story-text training data: EmoBank, XED and the Call of the Wild transcripts, as valence/arousal.

* EmoBank — sentences rated 1..5 for valence and arousal; mapped to [-1, 1] by ``(x - 3) / 1.5``
  (clipped; EmoBank's ratings seldom leave 2..4). Its own train/dev/test split is kept.
* XED — movie-subtitle lines with Plutchik emotions (several per line). A line's target is the
  mean of its emotions' points in :data:`PLUTCHIK_VA` (our mapping, read off the NRC VAD lexicon's
  entries for the emotion words and rounded; surprise is put near neutral valence, as it is as
  often bad as good); XED's neutral lines are ``(0, -0.2)``: calm and neither good nor bad.
* Call of the Wild — episodes of a D&D campaign, one line of speech per row, each with the
  binary valence and arousal of its scene (0/1). Used only for the scene head, leave-one-episode-out.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

#: Plutchik emotion (XED label number) → (name, valence, arousal) in [-1, 1].
PLUTCHIK_VA: dict[int, tuple[str, float, float]] = {
    1: ("anger", -0.65, 0.75),
    2: ("anticipation", 0.4, 0.3),
    3: ("disgust", -0.75, 0.35),
    4: ("fear", -0.8, 0.7),
    5: ("joy", 0.9, 0.55),
    6: ("sadness", -0.8, -0.45),
    7: ("surprise", 0.1, 0.75),
    8: ("trust", 0.7, -0.1),
}
NEUTRAL_VA = (0.0, -0.2)


@dataclass(frozen=True)
class Sentence:
    text: str
    valence: float
    arousal: float
    source: str  # "emobank" or "xed"
    split: str  # "train", "dev" or "test"


def _scale(rating: str) -> float:
    return max(-1.0, min(1.0, (float(rating) - 3.0) / 1.5))


def emobank(data_dir: Path) -> list[Sentence]:
    """EmoBank's sentences with its own split."""
    with open(data_dir / "emobank" / "emobank.csv", newline="", encoding="utf-8") as f:
        return [
            Sentence(row["text"].strip(), _scale(row["V"]), _scale(row["A"]), "emobank", row["split"])
            for row in csv.DictReader(f)
            if row["text"].strip()
        ]


def xed(data_dir: Path, *, neutral: int = 4000, seed: int = 0) -> list[Sentence]:
    """XED's English lines (10 % held out as ``test``, 5 % as ``dev``) and ``neutral`` neutral lines."""
    rng = random.Random(seed)
    out: list[Sentence] = []

    def split() -> str:
        u = rng.random()
        return "test" if u < 0.10 else "dev" if u < 0.15 else "train"

    with open(data_dir / "xed" / "en-annotated.tsv", encoding="utf-8") as f:
        for line in f:
            text, _, labels = line.rstrip("\n").rpartition("\t")
            codes = [
                int(x) for x in labels.replace(" ", "").split(",") if x.isdigit() and int(x) in PLUTCHIK_VA
            ]
            if not text.strip() or not codes:
                continue
            v = sum(PLUTCHIK_VA[c][1] for c in codes) / len(codes)
            a = sum(PLUTCHIK_VA[c][2] for c in codes) / len(codes)
            out.append(Sentence(text.strip(), v, a, "xed", split()))
    with open(data_dir / "xed" / "neu_en.txt", encoding="utf-8") as f:
        lines = [x.strip() for x in f if x.strip()]
    rng.shuffle(lines)
    for text in lines[:neutral]:
        # neu_en.txt rows are "9<TAB>text" (9: XED's neutral label)
        out.append(Sentence(text.partition("\t")[2].strip() or text, *NEUTRAL_VA, "xed", split()))
    return out


@dataclass(frozen=True)
class TranscriptLine:
    start_s: float
    duration_s: float
    text: str
    valence: int  # the scene's: 0 or 1
    arousal: int


def call_of_the_wild(data_dir: Path) -> dict[int, list[TranscriptLine]]:
    """Episodes 1.. of the Call of the Wild transcripts present in ``data_dir/dnd``."""
    episodes: dict[int, list[TranscriptLine]] = {}
    for path in sorted((data_dir / "dnd").glob("ep*.csv"), key=lambda p: int(p.stem[2:])):
        with open(path, newline="", encoding="utf-8") as f:
            episodes[int(path.stem[2:])] = [
                TranscriptLine(
                    float(r["start"]), float(r["duration"]), r["text"], int(r["valence"]), int(r["arousal"])
                )
                for r in csv.DictReader(f)
            ]
    return episodes
