"""Measure the minor key's pull profile (engine.music.keys.PULL_PROFILES) from the corpus.

The share of each pitch class above music21's tonic among the notes of the listener-labelled
*train-split* pieces (EMOPIA clips, VGMIDI labelled pieces; their first 16 bars) that music21
finds minor, averaged over pieces. The natural minor's seven degrees keep their measured shares;
the melodic minor's raised sixth and seventh get the supertonic's; every other pitch class gets
the rarest degree's (see the table's docstring). Torch-free;
needs music21 (``pip install 'affetto[train]'``). About half a minute::

    python -m models.measure_key_profile [--data ../shared/data]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from engine.bench.form import music21_key
from engine.bench.judge import file_piece, labelled_pieces, tonic_shares
from engine.music.keys import SCALES
from models.corpus import DEFAULT_DATA_DIR, SPLIT_NAMES, split_of

NATURAL_MINOR = list(SCALES["minor"])
#: The melodic minor's raised sixth and seventh (semitones above the tonic), and the degree
#: whose measured share they are given (the supertonic).
MELODIC_DEGREES, MELODIC_LIKE = [9, 11], 2


def measure(data_dir: Path) -> tuple[np.ndarray, int]:
    """(mean pitch-class share above the tonic of the train split's minor pieces, their count)."""
    train = SPLIT_NAMES.index("train")
    rows = []
    for path, _, _, group in labelled_pieces(data_dir):
        if split_of(group) != train:
            continue
        piece = file_piece(path)
        if piece is None or len(piece.notes) < 8:
            continue
        key = music21_key(piece.notes)
        if key.mode != "minor":
            continue
        rows.append(tonic_shares(piece.notes, key.tonic.pitchClass))
    return np.mean(rows, axis=0), len(rows)


def pull_profile(shares: np.ndarray) -> np.ndarray:
    """The measured shares on the natural minor's degrees, the supertonic's on the melodic minor's
    raised sixth and seventh, the rarest degree's elsewhere."""
    out = np.full(12, shares[NATURAL_MINOR].min())
    out[NATURAL_MINOR] = shares[NATURAL_MINOR]
    out[MELODIC_DEGREES] = shares[MELODIC_LIKE]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help=f"default {DEFAULT_DATA_DIR}")
    args = parser.parse_args()
    shares, pieces = measure(args.data)
    print(f"{pieces} minor train-split pieces; shares above the tonic: {np.round(shares, 3).tolist()}")
    print(f"pull profile: {tuple(np.round(pull_profile(shares), 3).tolist())}")


if __name__ == "__main__":
    main()
