"""Checkpoint → ONNX streaming step, with a parity check against PyTorch.

The graph is one composer step with explicit state (dynamic batch axis ``batch``)::

    token  int64[batch]            logits float32[batch, V]
    cond   float32[batch, 2]   →   h_out  float32[L, batch, H]
    h      float32[L, batch, H]    c_out  float32[L, batch, H]
    c      float32[L, batch, H]

Usage::

    python -m export.onnx_export runs/h384/best.pt --out models/composer
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from engine.tokens import vocab as V
from models.composer_lstm import ComposerLSTM, ComposerStep, load_checkpoint

INPUTS = ["token", "cond", "h", "c"]
OUTPUTS = ["logits", "h_out", "c_out"]
PARITY_TOLERANCE = 1e-4
OPSET = 17


def export_onnx(model: ComposerLSTM, path: str | Path) -> Path:
    """Write the streaming step of ``model`` to ``path`` (opset 17, dynamic batch)."""
    model = model.eval().cpu()
    cfg = model.config
    batch = 2
    args = (
        torch.zeros(batch, dtype=torch.long),
        torch.zeros(batch, cfg.cond_dim),
        torch.zeros(cfg.num_layers, batch, cfg.hidden_size),
        torch.zeros(cfg.num_layers, batch, cfg.hidden_size),
    )
    axes = {"token": {0: "batch"}, "cond": {0: "batch"}, "logits": {0: "batch"}}
    axes.update({name: {1: "batch"} for name in ("h", "c", "h_out", "c_out")})
    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and RNN notes
        torch.onnx.export(
            ComposerStep(model),
            args,
            str(path),
            input_names=INPUTS,
            output_names=OUTPUTS,
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )
    return path


def stream_parity(
    model: ComposerLSTM, onnx_path: str | Path, *, steps: int = 256, batch: int = 4, seed: int = 0
) -> float:
    """Max |Δ logit| between PyTorch and ONNX Runtime (CPU) over ``steps`` streamed steps.

    Both run the same token stream (drawn from PyTorch's own distribution, so the state
    travels through realistic music) and carry their own state from step to step.
    """
    model = model.eval().cpu()
    cfg = model.config
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(seed)
    token = torch.full((batch,), V.BOS, dtype=torch.long)
    cond = torch.rand(batch, cfg.cond_dim, generator=gen) * 2 - 1
    h, c = model.zero_state(batch)
    h_ort, c_ort = h.numpy().copy(), c.numpy().copy()
    step = ComposerStep(model)
    worst = 0.0
    with torch.no_grad():
        for _ in range(steps):
            logits, h, c = step(token, cond, h, c)
            feed = {"token": token.numpy(), "cond": cond.numpy(), "h": h_ort, "c": c_ort}
            logits_ort, h_ort, c_ort = session.run(OUTPUTS, feed)
            worst = max(worst, float(np.abs(logits_ort - logits.numpy()).max()))
            token = torch.multinomial(torch.softmax(logits, -1), 1, generator=gen)[:, 0]
    return worst


def write_artifact(
    checkpoint: str | Path, out_dir: str | Path, *, command: str, metrics: dict[str, object]
) -> dict[str, object]:
    """Export ``checkpoint`` into ``out_dir`` (composer.onnx, composer.pt, manifest.json).

    Raises:
        RuntimeError: PyTorch and ONNX Runtime disagree by more than PARITY_TOLERANCE.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model, ckpt = load_checkpoint(str(checkpoint))
    onnx_path = export_onnx(model, out / "composer.onnx")
    worst = stream_parity(model, onnx_path)
    if worst > PARITY_TOLERANCE:
        raise RuntimeError(f"ONNX parity failed: max |Δ logit| {worst:.2e} > {PARITY_TOLERANCE}")
    torch.save({"config": model.config.to_dict(), "model": model.state_dict()}, out / "composer.pt")
    cfg = model.config
    manifest: dict[str, object] = {
        "name": "affetto-composer",
        "vocab_version": V.VOCAB_VERSION,
        "vocab_size": V.VOCAB_SIZE,
        "onnx": "composer.onnx",
        "checkpoint": "composer.pt",
        "opset": OPSET,
        "inputs": INPUTS,
        "outputs": OUTPUTS,
        "num_layers": cfg.num_layers,
        "hidden_size": cfg.hidden_size,
        "config": cfg.to_dict(),
        "parameters": model.num_parameters(),
        "conditioning": {
            "cond": ["valence", "arousal"],
            "range": [-1.0, 1.0],
            "per": "bar (every token carries its bar's target)",
        },
        "training": {"command": command, "step": ckpt.get("step"), "args": ckpt.get("args")},
        "data": "see models/README.md: VGMIDI (labelled curves + unlabelled), EMOPIA, POP909",
        "metrics": {"parity_max_abs_logit": worst, **metrics},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m export.onnx_export", description="checkpoint → ONNX artifact")
    p.add_argument("checkpoint")
    p.add_argument("--out", default="models/composer")
    p.add_argument("--command", default="", help="the training command, recorded in the manifest")
    p.add_argument("--metrics", default="{}", help="JSON object of metrics to record")
    args = p.parse_args(argv)
    manifest = write_artifact(
        args.checkpoint, args.out, command=args.command, metrics=json.loads(args.metrics)
    )
    print(json.dumps(manifest["metrics"]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
