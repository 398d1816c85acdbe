"""How much a composer reads its conditioning: validation loss on listener-labelled pieces with the
true (valence, arousal), with valence negated, and with arousal negated.

A model that uses an input loses more when that input lies; the labels here are the listeners'
(VGMIDI curves, EMOPIA quadrants), never a model's, so composers trained on different labels of
the unlabelled music are compared on the same ground::

    python -m models.conditioning_check models/composer/composer.pt runs/relabel/best.pt
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from models.composer_lstm import load_checkpoint
from models.corpus import Corpus, load_corpus
from models.train import WindowSampler, evaluate

LISTENER_LABELS = ("vgmidi_curves", "emopia_quadrant")


def listener_val_batches(
    corpus: Corpus, *, windows: int = 512, length: int = 256, batch: int = 32, seed: int = 12345
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Fixed validation windows (tokens, cond) from the listener-labelled val pieces."""
    names = [str(n) for n in corpus.label_source_names]
    labelled = np.isin(corpus.label_source, [names.index(n) for n in LISTENER_LABELS if n in names])
    split = np.where(labelled, corpus.split, -1)  # only labelled pieces keep their split
    view = replace(corpus, split=split.astype(corpus.split.dtype))
    sampler = WindowSampler(view, [str(s) for s in corpus.split_names].index("val"), length, transpose=False)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(windows // batch):
        t, c = sampler.sample(rng, batch)
        out.append((torch.from_numpy(t), torch.from_numpy(c)))
    return out


def check(checkpoint: str, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, Any]:
    """Validation loss (nats/token) with true, valence-negated and arousal-negated conditioning."""
    model, _ = load_checkpoint(checkpoint)
    flips = {"true": (1.0, 1.0), "valence_negated": (-1.0, 1.0), "arousal_negated": (1.0, -1.0)}
    out: dict[str, Any] = {"checkpoint": checkpoint}
    for name, (sv, sa) in flips.items():
        scale = torch.tensor([sv, sa])
        out[name] = round(evaluate(model, [(t, c * scale) for t, c in batches]), 4)
    out["valence_gap"] = round(out["valence_negated"] - out["true"], 4)
    out["arousal_gap"] = round(out["arousal_negated"] - out["true"], 4)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    doc = (__doc__ or "").split("\n")[0]
    p = argparse.ArgumentParser(prog="python -m models.conditioning_check", description=doc)
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--corpus", default="data/corpus.npz")
    p.add_argument("--windows", type=int, default=512)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    batches = listener_val_batches(load_corpus(args.corpus), windows=args.windows)
    for ckpt in args.checkpoints:
        print(json.dumps(check(ckpt, batches)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
