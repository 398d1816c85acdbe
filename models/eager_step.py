"""The composer step in PyTorch eager mode: the baseline the ONNX Runtime path is benchmarked against.

Loads ``composer.pt`` (``{"config": dict, "model": state_dict}``) from a model directory and
times :class:`models.composer_lstm.ComposerStep` with the state carried from step to step.
Imported lazily by :mod:`engine.bench.composer` only (the engine never needs torch).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch

from engine.tokens import vocab as V
from models.composer_lstm import ComposerStep, load_checkpoint

CHECKPOINT_NAME = "composer.pt"


class EagerStep:
    """One streaming step of the composer in eager PyTorch on the CPU.

    Args:
        model_dir: directory holding ``composer.pt``.
        threads: torch intra-op threads (>= 1); set process-wide with ``torch.set_num_threads``.

    Raises:
        FileNotFoundError: ``composer.pt`` is missing.
        ValueError: it was made for another vocabulary, or ``threads`` < 1.
    """

    def __init__(self, model_dir: str | os.PathLike[str], *, threads: int = 1) -> None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        path = Path(model_dir) / CHECKPOINT_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no PyTorch checkpoint for the eager baseline")
        torch.set_num_threads(threads)
        model, _ = load_checkpoint(str(path))
        config = model.config
        self.config = config
        self.step = ComposerStep(model.eval())
        self.threads = threads

    def time_steps(self, batch: int, steps: int, *, warmup: int = 20, seed: int = 0) -> np.ndarray:
        """Wall time of each of ``steps`` consecutive steps at ``batch`` streams, in seconds.

        Tokens are random valid ids; the recurrent state is carried from step to step.

        Raises:
            ValueError: ``batch`` or ``steps`` < 1, or ``warmup`` < 0.
        """
        if batch < 1 or steps < 1 or warmup < 0:
            raise ValueError(f"batch and steps must be >= 1 and warmup >= 0, got {batch}, {steps}, {warmup}")
        cfg = self.config
        gen = torch.Generator().manual_seed(seed)
        tokens = torch.randint(V.BAR_OFFSET, V.VOCAB_SIZE, (warmup + steps, batch), generator=gen)
        cond = torch.rand(batch, cfg.cond_dim, generator=gen) * 2 - 1
        h = torch.zeros(cfg.num_layers, batch, cfg.hidden_size)
        c = torch.zeros_like(h)
        times = np.empty(steps, dtype=np.float64)
        with torch.inference_mode():
            for i in range(warmup + steps):
                t0 = time.perf_counter()
                _, h, c = self.step(tokens[i], cond, h, c)
                if i >= warmup:
                    times[i - warmup] = time.perf_counter() - t0
        return times
