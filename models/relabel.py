"""Relabel the corpus's unlabelled music with the emotion recognizer.

The pieces without listener labels (VGMIDI unlabelled, POP909) carry ``features_ridge``
conditioning (:mod:`models.corpus`). This writes a copy of the corpus in which they carry the
recognizer's per-bar (valence, arousal) instead (``engine.recognizer.emotion_recognizer``: label source
``recognizer``), averaged over a centred window of bars (the recognizer's bar scores are noisy;
its piece scores are what it was fitted on). Listener-labelled pieces keep their labels::

    python -m models.relabel [--corpus data/corpus.npz] [--out data/corpus_recognizer.npz]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from engine.recognizer.emotion_recognizer import EmotionRecognizer
from engine.tokens.codec import decode_tokens, encode_notes
from engine.tokens.midi_file import bar_seconds, read_midi
from models.corpus import DEFAULT_DATA_DIR, Corpus, load_corpus, save_corpus

RELABELLED: tuple[str, ...] = ("features_ridge",)
RECOGNIZER_LABEL = "recognizer"


def smooth_bars(per_bar: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average over ``window`` bars (shrinking at the ends), float64[bars, 2]."""
    if window <= 1:
        return per_bar.astype(np.float64)
    n = per_bar.shape[0]
    half = window // 2
    csum = np.concatenate([np.zeros((1, per_bar.shape[1])), np.cumsum(per_bar, axis=0)])
    lo = np.clip(np.arange(n) - half, 0, n)
    hi = np.clip(np.arange(n) - half + window, 0, n)
    out: np.ndarray = (csum[hi] - csum[lo]) / (hi - lo)[:, None]
    return out


def _timing(data_dir: Path | None, name: str, beats: list[int]) -> np.ndarray | None:
    """Each bar's seconds from the piece's source file under ``data_dir`` (None: not there)."""
    path = data_dir / name if data_dir is not None else None
    if path is None or not path.is_file():
        return None
    return bar_seconds(read_midi(path), beats)


def relabel(
    corpus: Corpus,
    recognizer: EmotionRecognizer,
    *,
    window: int = 4,
    batch: int = 64,
    data_dir: Path | None = None,
) -> Corpus:
    """The corpus with every ``features_ridge`` piece labelled by ``recognizer`` (a new Corpus;
    ``corpus`` is not changed). Pieces are heard at their source file's tempo map where
    ``data_dir`` holds it, else at 120 BPM."""
    names = [str(n) for n in corpus.label_source_names]
    if RECOGNIZER_LABEL not in names:
        names.append(RECOGNIZER_LABEL)
    new_source = names.index(RECOGNIZER_LABEL)
    todo = [i for i in range(corpus.num_pieces) if names[int(corpus.label_source[i])] in RELABELLED]
    cond = corpus.cond.astype(np.float32).copy()
    label_source = corpus.label_source.copy()
    started = time.monotonic()
    for start in range(0, len(todo), batch):
        chosen = todo[start : start + batch]
        pieces = [decode_tokens(corpus.piece(i)[0]) for i in chosen]
        timing = [
            _timing(data_dir, str(corpus.piece_names[i]), beats)
            for i, (_, beats) in zip(chosen, pieces, strict=True)
        ]
        results = recognizer.classify_many(pieces, bar_seconds=timing, batch=batch)
        for i, (notes, beats), result in zip(chosen, pieces, results, strict=True):
            lo, hi = int(corpus.offsets[i]), int(corpus.offsets[i + 1])
            bar_index = encode_notes(notes, beats).bar_index
            if len(bar_index) != hi - lo:
                raise ValueError(f"piece {corpus.piece_names[i]}: tokens do not round-trip through the codec")
            cond[lo:hi] = smooth_bars(result.bars, window)[bar_index]
            label_source[i] = new_source
        done = min(start + batch, len(todo))
        print(f"relabelled {done}/{len(todo)} pieces ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    meta = dict(corpus.meta)
    meta["relabel"] = {"label_source": RECOGNIZER_LABEL, "replaced": list(RELABELLED), "pieces": len(todo),
                       "window_bars": window, "recognizer_blocks": list(recognizer.blocks)}  # fmt: skip
    return replace(
        corpus, cond=cond.astype(np.float16), label_source=label_source, label_source_names=np.asarray(names),
        meta=meta,
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.relabel", description=__doc__.split("\n")[0])
    p.add_argument("--corpus", default="data/corpus.npz")
    p.add_argument("--out", default="data/corpus_recognizer.npz")
    p.add_argument("--window", type=int, default=4, help="bars averaged per label (centred)")
    p.add_argument("--data", default=str(DEFAULT_DATA_DIR), help="data dir (source files, for their tempo)")
    args = p.parse_args(argv)
    corpus = load_corpus(args.corpus)
    out = relabel(corpus, EmotionRecognizer.load(), window=args.window, data_dir=Path(args.data))
    save_corpus(out, args.out)
    print(json.dumps(out.meta["relabel"]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
