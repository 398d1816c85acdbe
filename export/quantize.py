"""Optional int8 dynamic quantization of the exported step, judged by its measured loss delta.

    python -m export.quantize models/composer --corpus data/corpus.npz

Writes ``composer.int8.onnx`` beside ``composer.onnx``, measures the validation loss per token
of both through ONNX Runtime (the same streamed windows for each) and their batch-1 step time,
and records the result in the manifest under ``int8``. The runtime keeps using the float model;
the int8 file is shipped only with ``--keep`` and only with its measured delta.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic

from engine.tokens import vocab as V
from models.corpus import load_corpus
from models.train import SPLIT_VAL, WindowSampler

INT8_NAME = "composer.int8.onnx"


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def streamed_loss(path: Path, tokens: np.ndarray, cond: np.ndarray, layers: int, hidden: int) -> float:
    """Mean next-token cross-entropy (nats) of the ONNX step run token by token over windows.

    Args:
        tokens: int64[B, T + 1] windows (PAD past a piece's end is not scored).
        cond: float32[B, T + 1, 2].
    """
    session = _session(path)
    batch, length = tokens.shape
    h = np.zeros((layers, batch, hidden), np.float32)
    c = np.zeros_like(h)
    total, count = 0.0, 0
    for t in range(length - 1):
        logits, h, c = session.run(None, {"token": tokens[:, t], "cond": cond[:, t], "h": h, "c": c})
        target = tokens[:, t + 1]
        scored = target != V.PAD
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        total -= float(log_probs[np.arange(batch), target][scored].sum())
        count += int(scored.sum())
    return total / max(count, 1)


def step_ms(path: Path, layers: int, hidden: int, steps: int = 1000) -> float:
    """Mean batch-1 step time in milliseconds on one thread."""
    session = _session(path)
    h = np.zeros((layers, 1, hidden), np.float32)
    c = np.zeros_like(h)
    feed = {"token": np.full(1, V.BOS), "cond": np.zeros((1, 2), np.float32)}
    for _ in range(50):
        _, h, c = session.run(None, {**feed, "h": h, "c": c})
    start = time.perf_counter()
    for _ in range(steps):
        _, h, c = session.run(None, {**feed, "h": h, "c": c})
    return (time.perf_counter() - start) / steps * 1e3


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m export.quantize", description=__doc__.split("\n")[0])
    p.add_argument("model_dir", type=Path)
    p.add_argument("--corpus", default="data/corpus.npz")
    p.add_argument("--windows", type=int, default=128, help="validation windows")
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--keep", action="store_true", help="ship the int8 file (else it is deleted)")
    args = p.parse_args(argv)
    manifest_path = args.model_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    layers, hidden = manifest["num_layers"], manifest["hidden_size"]
    fp32 = args.model_dir / manifest["onnx"]
    int8 = args.model_dir / INT8_NAME
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    sampler = WindowSampler(load_corpus(args.corpus), SPLIT_VAL, args.seq_len, transpose=False)
    tokens, cond = sampler.sample(np.random.default_rng(12345), args.windows)
    models = {"fp32": fp32, "int8": int8}
    loss = {name: streamed_loss(path, tokens, cond, layers, hidden) for name, path in models.items()}
    speed = {name: step_ms(path, layers, hidden) for name, path in models.items()}
    result = {
        "file": INT8_NAME if args.keep else None,
        "val_loss_fp32": loss["fp32"],
        "val_loss_int8": loss["int8"],
        "val_loss_delta": loss["int8"] - loss["fp32"],
        "step_ms_batch1_fp32": speed["fp32"],
        "step_ms_batch1_int8": speed["int8"],
        "size_mb_fp32": fp32.stat().st_size / 1e6,
        "size_mb_int8": int8.stat().st_size / 1e6,
        "windows": f"{args.windows} validation windows of {args.seq_len} tokens, streamed",
    }
    if not args.keep:
        int8.unlink()
    manifest["int8"] = result
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps(result, indent=2), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
