"""Text emotion checkpoints → ONNX (encoder int8 where it measurably costs nothing, scene head).

    python -m export.text_emotion runs/text --out models/text_emotion

Reads ``RUN/encoder.pt`` (the fine-tuned encoder), ``RUN/scene.pt`` (the live scene heads and the
read-ahead ones, trained on every episode; each kind exported as one graph, their logits averaged)
and ``RUN/metrics.json``; writes the
directory :mod:`engine.story.text_model` loads. Checks parity of both graphs against PyTorch,
quantizes the encoder (dynamic int8, per-channel), measures the held-out EmoBank / XED Pearson r
and the scene heads' agreement for both precisions, and ships int8 only if its r is within
``--int8-tolerance`` of the float graph's (else the float graph).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic

from engine.story.text_model import (
    ENCODER_INPUTS,
    ENCODER_OUTPUTS,
    READ_AHEAD_INPUTS,
    SCENE_INPUTS,
    SCENE_OUTPUTS,
    TextEmotionModel,
)
from models.text_data import PLUTCHIK_VA, call_of_the_wild, emobank, xed
from models.text_emotion_model import (
    LineEncoder,
    ReadAheadSceneHead,
    SceneEnsemble,
    SceneHead,
    TextEmotionConfig,
)
from models.train_text_emotion import DATA_DIR, MINILM_SHA256, minilm_dir, pearson

OPSET = 17
#: the files besides the encoder (whose precision the export chooses)
GRAPHS_AND_TOKENIZER = ("scene_head.onnx", "read_ahead_head.onnx", "tokenizer.json")
PARITY_TOLERANCE = 1e-4


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_scene_heads(path: Path, cfg: TextEmotionConfig, *, read_ahead: bool = False) -> SceneEnsemble:
    """The live scene heads of ``path`` (``scene_heads``: a list of state dicts; a single-head
    run's ``scene_head`` is an ensemble of one), or with ``read_ahead`` its read-ahead heads
    (``read_ahead_heads``).

    Raises:
        KeyError: ``path`` has no heads of that kind.
    """
    state = torch.load(path, weights_only=False)
    saved = state["read_ahead_heads"] if read_ahead else state.get("scene_heads") or [state["scene_head"]]
    heads: list[SceneHead | ReadAheadSceneHead] = []
    for weights in saved:
        head = ReadAheadSceneHead(cfg) if read_ahead else SceneHead(cfg)
        head.load_state_dict(weights)
        heads.append(head)
    return SceneEnsemble(heads).eval()


@torch.no_grad()
def _head_error(
    path: Path, module: SceneEnsemble, inputs: tuple[torch.Tensor, ...], names: tuple[str, ...]
) -> float:
    """The largest difference between a scene head's ONNX graph and its PyTorch module."""
    import onnxruntime as ort

    graph = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = graph.run(None, {n: t.numpy() for n, t in zip(names, inputs, strict=True)})[0]
    return float(np.abs(got - module(*inputs).numpy()).max())


def export_graphs(run: Path, out: Path) -> TextEmotionConfig:
    state = torch.load(run / "encoder.pt", weights_only=False)
    cfg = TextEmotionConfig(**state["config"])
    encoder = LineEncoder(cfg).eval()
    encoder.load_state_dict(state["model"])
    head = load_scene_heads(run / "scene.pt", cfg)
    ahead = load_scene_heads(run / "scene.pt", cfg, read_ahead=True)
    ids = torch.randint(1000, 20000, (2, 12))
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    window = (torch.randn(3, cfg.context_lines, cfg.hidden), torch.randn(3, cfg.context_lines, 2))
    r = cfg.read_ahead_lines
    ahead_window = tuple(torch.randn(3, r, d) for d in (cfg.hidden, 2, cfg.hidden, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            encoder,
            (ids, mask),
            str(out / "encoder.onnx"),
            input_names=list(ENCODER_INPUTS),
            output_names=list(ENCODER_OUTPUTS),
            opset_version=OPSET,
            dynamo=False,
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens"},
                **{o: {0: "batch"} for o in ENCODER_OUTPUTS},
            },
        )
        for module, inputs, names, file in (
            (head, window, SCENE_INPUTS, "scene_head.onnx"),
            (ahead, ahead_window, READ_AHEAD_INPUTS, "read_ahead_head.onnx"),
        ):
            torch.onnx.export(
                module,
                inputs,
                str(out / file),
                input_names=list(names),
                output_names=list(SCENE_OUTPUTS),
                opset_version=OPSET,
                dynamo=False,
                dynamic_axes={name: {0: "batch"} for name in (*names, *SCENE_OUTPUTS)},
            )
    import onnxruntime as ort

    enc = ort.InferenceSession(str(out / "encoder.onnx"), providers=["CPUExecutionProvider"])
    got = enc.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
    with torch.no_grad():
        want = [t.numpy() for t in encoder(ids, mask)]
    err_scene = _head_error(out / "scene_head.onnx", head, window, SCENE_INPUTS)
    err_ahead = _head_error(out / "read_ahead_head.onnx", ahead, ahead_window, READ_AHEAD_INPUTS)
    err = max(float(np.abs(a - b).max()) for a, b in zip(got, want, strict=True))
    if max(err, err_scene, err_ahead) > PARITY_TOLERANCE:
        raise SystemExit(
            f"parity: ONNX differs from PyTorch by {err:.2e} / {err_scene:.2e} / {err_ahead:.2e}"
        )
    print(
        f"parity: encoder {err:.1e}, scene head {err_scene:.1e}, read-ahead head {err_ahead:.1e}",
        file=sys.stderr,
    )
    return cfg


def write_manifest(out: Path, cfg: TextEmotionConfig, encoder_file: str, metrics: dict, command: str) -> None:
    manifest = {
        "name": "affetto-text-emotion",
        "format": 1,
        "files": {
            "encoder": encoder_file,
            "scene_head": "scene_head.onnx",
            "read_ahead_head": "read_ahead_head.onnx",
            "tokenizer": "tokenizer.json",
        },
        "sha256": {f: sha256(out / f) for f in (encoder_file, *GRAPHS_AND_TOKENIZER)},
        "config": cfg.to_dict(),
        "base": {"model": "sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0)", "sha256": MINILM_SHA256},
        "data": {
            "encoder": "EmoBank train split (CC BY-SA 4.0), XED English train lines + 4000 neutral "
            "(CC BY 4.0)"
            + (
                f"; then adapted to Call of the Wild episodes 1-6 for {metrics['domain_epochs']} epochs "
                "(scene labels, bardo-composer, MIT)"
                if metrics.get("domain_epochs", 0)
                else ""
            ),
            "scene_head": "Call of the Wild episodes 1-6 (the read-ahead head: likewise)"
            + (
                f"; {metrics['scene_heads']} heads (seeds {metrics['scene_head_seeds'][0]}-"
                f"{metrics['scene_head_seeds'][-1]}), their logits averaged"
                if metrics.get("scene_heads", 1) > 1
                else ""
            )
            + (
                f" ({round(100 * metrics['short_share'])} % of the training windows shortened to a story "
                "begun 1-15 lines ago)"
                if metrics.get("short_share", 0)
                else ""
            ),
            "xed_to_valence_arousal": {name: [v, a] for name, v, a in PLUTCHIK_VA.values()},
        },
        "command": command,
        "metrics": metrics,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


def measure(model_dir: Path, data_dir: Path, seed: int) -> dict:
    """Held-out line r (EmoBank test, XED test) and both scene heads' probabilities on every episode."""
    model = TextEmotionModel(model_dir)
    test = [s for s in emobank(data_dir) + xed(data_dir, seed=seed) if s.split == "test"]
    result: dict = {}
    for src in ("emobank", "xed"):
        rows = [s for s in test if s.source == src]
        _, va, _ = model.encode([s.text for s in rows])
        result[src] = {
            "valence_r": round(pearson(va[:, 0], np.array([s.valence for s in rows])), 4),
            "arousal_r": round(pearson(va[:, 1], np.array([s.arousal for s in rows])), 4),
        }
    for key, read_ahead in (("scene_p", False), ("read_ahead_p", True)):
        scene = []
        for _, lines in call_of_the_wild(data_dir).items():
            texts = [x.text for x in lines]
            scene += [
                (e.p_scene_valence, e.p_scene_arousal) for e in model.analyse(texts, read_ahead=read_ahead)
            ]
        result[key] = np.array(scene)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m export.text_emotion", description=__doc__.split("\n")[0])
    p.add_argument("run", type=Path)
    p.add_argument("--out", type=Path, default=Path("models/text_emotion"))
    p.add_argument("--data", type=Path, default=DATA_DIR)
    p.add_argument("--int8-tolerance", type=float, default=0.01, help="largest Pearson r drop int8 may cost")
    p.add_argument("--command", default="models/make_text_emotion.sh")
    args = p.parse_args(argv)
    seed = torch.load(args.run / "finetune.pt", weights_only=False)["args"]["seed"]
    metrics = json.loads((args.run / "metrics.json").read_text())
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        cfg = export_graphs(args.run, tmp)
        shutil.copy(minilm_dir() / "tokenizer.json", tmp / "tokenizer.json")
        # per-channel scales: per-tensor int8 cost 0.014 Pearson r on XED valence, per-channel 0.002
        quantize_dynamic(
            str(tmp / "encoder.onnx"),
            str(tmp / "encoder.int8.onnx"),
            weight_type=QuantType.QInt8,
            per_channel=True,
        )
        write_manifest(tmp, cfg, "encoder.onnx", metrics, args.command)
        fp32 = measure(tmp, args.data, seed)
        write_manifest(tmp, cfg, "encoder.int8.onnx", metrics, args.command)
        int8 = measure(tmp, args.data, seed)
        drop = max(fp32[s][k] - int8[s][k] for s in ("emobank", "xed") for k in ("valence_r", "arousal_r"))
        agree = float(np.mean((fp32["scene_p"] > 0.5) == (int8["scene_p"] > 0.5)))
        agree_ahead = float(np.mean((fp32["read_ahead_p"] > 0.5) == (int8["read_ahead_p"] > 0.5)))
        keep_int8 = drop <= args.int8_tolerance
        metrics["int8"] = {
            "fp32": {s: fp32[s] for s in ("emobank", "xed")},
            "int8": {s: int8[s] for s in ("emobank", "xed")},
            "largest_r_drop": round(drop, 4),
            "scene_decisions_agree": round(agree, 4),
            "read_ahead_decisions_agree": round(agree_ahead, 4),
            "bytes": {
                "fp32": (tmp / "encoder.onnx").stat().st_size,
                "int8": (tmp / "encoder.int8.onnx").stat().st_size,
            },
            "shipped": "int8" if keep_int8 else "fp32",
        }
        encoder_file = "encoder.int8.onnx" if keep_int8 else "encoder.onnx"
        write_manifest(tmp, cfg, encoder_file, metrics, args.command)
        args.out.mkdir(parents=True, exist_ok=True)
        for f in (encoder_file, *GRAPHS_AND_TOKENIZER, "manifest.json"):
            shutil.copy(tmp / f, args.out / f)
        for stale in {"encoder.onnx", "encoder.int8.onnx"} - {encoder_file}:
            (args.out / stale).unlink(missing_ok=True)
    print(json.dumps(metrics["int8"], indent=1), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
