"""The text emotion model at run time: ONNX Runtime and a torch-free tokenizer.

A model directory (written by :mod:`export.text_emotion`) holds::

    manifest.json          config, files, data, the command that made it, measured metrics
    encoder.int8.onnx      (input_ids, attention_mask) -> (embedding, line_va, line_logvar)
    scene_head.onnx        (embeddings, line_va) over the last K lines -> scene_logits
    read_ahead_head.onnx   (embeddings, line_va, ahead_embeddings, ahead_line_va): the R lines
                           before and the R after -> scene_logits (a whole text only; optional:
                           older models lack it)
    tokenizer.json         the encoder's WordPiece tokenizer (the ``tokenizers`` library)

Each line is encoded once. Its scene probabilities read the embeddings of the lines before it
(:class:`TextContext` for live lines), and for a whole text (:meth:`TextEmotionModel.analyse`) those
of the lines after it too (the whole text is known). Runs on the CPU: a line is a few milliseconds,
and the int8 encoder is CPU-only in onnxruntime. The int8 encoder quantizes its activations with
each batch's range (a line read beside others would read differently: by up to 0.07 in valence), so
it reads one line at a time (~320 lines/s on one thread); a float encoder reads ``MAX_BATCH_LINES``
at once, which gives the same numbers.
"""

from __future__ import annotations

import json
import math
import os
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import onnxruntime as ort

import models
from engine.story.windows import ahead_windows, context_windows

MANIFEST_NAME: Final = "manifest.json"
ENCODER_INPUTS: Final = ("input_ids", "attention_mask")
ENCODER_OUTPUTS: Final = ("embedding", "line_va", "line_logvar")
SCENE_INPUTS: Final = ("embeddings", "line_va")
READ_AHEAD_INPUTS: Final = ("embeddings", "line_va", "ahead_embeddings", "ahead_line_va")
SCENE_OUTPUTS: Final = ("scene_logits",)
MAX_BATCH_LINES: Final = 64


def default_text_model_dir() -> Path:
    """The shipped text emotion model, ``<models package>/text_emotion``."""
    return Path(models.__file__).resolve().parent / "text_emotion"


@dataclass(frozen=True)
class LineEmotion:
    """One line's emotion.

    Attributes:
        valence, arousal: the line's own, in [-1, 1].
        confidence: how sure the line head is of them, in (0, 1].
        p_scene_valence, p_scene_arousal: the probability that the line's scene (the line read
            after the lines before it; in a whole text, and before the lines after it) is
            positive in valence / arousal.
    """

    valence: float
    arousal: float
    confidence: float
    p_scene_valence: float
    p_scene_arousal: float


def _session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types (Fail, InvalidGraph, ...)
        raise ValueError(f"{path}: onnxruntime cannot load the graph ({exc})") from exc


def _check_io(
    path: Path, session: ort.InferenceSession, inputs: tuple[str, ...], outputs: tuple[str, ...]
) -> None:
    got_in = tuple(i.name for i in session.get_inputs())
    got_out = tuple(o.name for o in session.get_outputs())
    if sorted(got_in) != sorted(inputs) or sorted(got_out) != sorted(outputs):
        raise ValueError(f"{path}: graph has {got_in} -> {got_out}, expected {inputs} -> {outputs}")


def confidence_of(logvar: np.ndarray) -> np.ndarray:
    """(N, 2) log-variances → (N,) confidence ``1 / (1 + sigma)``, sigma the mean standard deviation."""
    sigma = np.exp(0.5 * logvar).mean(axis=-1)
    return 1.0 / (1.0 + sigma)


class TextEmotionModel:
    """The encoder and scene head of a model directory, ready to run."""

    def __init__(self, model_dir: str | os.PathLike[str] | None = None, *, threads: int = 1) -> None:
        """Open a model directory.

        Args:
            model_dir: None: the shipped model (:func:`default_text_model_dir`).
            threads: onnxruntime threads per operator (>= 1).

        Raises:
            FileNotFoundError: the directory, its manifest or a file it names is missing.
            ValueError: a bad manifest or graph.
        """
        from tokenizers import Tokenizer

        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise ValueError(f"threads must be an int >= 1, not {threads!r}")
        directory = Path(model_dir) if model_dir is not None else default_text_model_dir()
        manifest_path = directory / MANIFEST_NAME
        if not manifest_path.is_file():
            raise FileNotFoundError(f"{manifest_path}: no text emotion model manifest")
        try:
            manifest: dict[str, Any] = json.loads(manifest_path.read_text(encoding="utf-8"))
            files = manifest["files"]
            config = manifest["config"]
            self.context_lines = int(config["context_lines"])
            self.read_ahead_lines = int(config.get("read_ahead_lines", self.context_lines))
            self.hidden = int(config["hidden"])
            max_tokens = int(config["max_tokens"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{manifest_path}: not a text emotion manifest ({exc})") from exc
        paths = {key: directory / str(files[key]) for key in ("encoder", "scene_head", "tokenizer")}
        for path in paths.values():
            if not path.is_file():
                raise FileNotFoundError(f"{path}: named in {manifest_path} but missing")
        self.manifest = manifest
        self.directory = directory
        self.encoder = _session(paths["encoder"], threads)
        self.scene_head = _session(paths["scene_head"], threads)
        _check_io(paths["encoder"], self.encoder, ENCODER_INPUTS, ENCODER_OUTPUTS)
        _check_io(paths["scene_head"], self.scene_head, SCENE_INPUTS, SCENE_OUTPUTS)
        #: None: the model has no read-ahead head; a whole text is read as live lines are
        self.read_ahead_head: ort.InferenceSession | None = None
        if "read_ahead_head" in files:
            path = directory / str(files["read_ahead_head"])
            if not path.is_file():
                raise FileNotFoundError(f"{path}: named in {manifest_path} but missing")
            self.read_ahead_head = _session(path, threads)
            _check_io(path, self.read_ahead_head, READ_AHEAD_INPUTS, SCENE_OUTPUTS)
        #: lines per encoder call: 1 for an int8 graph (see the module docstring)
        self.batch_lines = 1 if str(files["encoder"]).endswith(".int8.onnx") else MAX_BATCH_LINES
        self.tokenizer = Tokenizer.from_file(str(paths["tokenizer"]))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_tokens)

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Encode lines (batched by length).

        Returns:
            embeddings (N, D) float32, valence/arousal (N, 2) in [-1, 1], confidence (N,).
        """
        n = len(texts)
        emb = np.zeros((n, self.hidden), np.float32)
        va = np.zeros((n, 2), np.float32)
        conf = np.zeros(n, np.float32)
        if n == 0:
            return emb, va, conf
        encoded = self.tokenizer.encode_batch(list(texts))
        order = sorted(range(n), key=lambda i: len(encoded[i].ids))
        for s in range(0, n, self.batch_lines):
            idx = order[s : s + self.batch_lines]
            width = max(len(encoded[i].ids) for i in idx)
            ids = np.zeros((len(idx), width), np.int64)
            mask = np.zeros((len(idx), width), np.int64)
            for row, i in enumerate(idx):
                ids[row, : len(encoded[i].ids)] = encoded[i].ids
                mask[row, : len(encoded[i].ids)] = 1
            e, v, lv = self.encoder.run(None, {"input_ids": ids, "attention_mask": mask})
            emb[idx], va[idx], conf[idx] = e, v, confidence_of(lv)
        return emb, va, conf

    def scene_probabilities(self, embeddings: np.ndarray, line_va: np.ndarray) -> np.ndarray:
        """(B, K, D) and (B, K, 2) windows (oldest first, zeros before the start) → (B, 2) probabilities."""
        return _probabilities(self.scene_head, SCENE_INPUTS, (embeddings, line_va))

    def analyse(self, texts: Sequence[str], *, read_ahead: bool = True) -> list[LineEmotion]:
        """Every line of a whole text.

        Args:
            texts: the lines, in order.
            read_ahead: read each line's scene from the lines before it and after it (the
                read-ahead head; where the model has none, as if False). False: from the lines
                before it only, as :class:`TextContext` reads live lines.
        """
        emb, va, conf = self.encode(texts)
        head = self.read_ahead_head if read_ahead else None
        n = len(texts)
        k = self.read_ahead_lines if head is not None else self.context_lines
        out: list[LineEmotion] = []
        for s in range(0, n, MAX_BATCH_LINES * 4):
            rows = np.arange(s, min(n, s + MAX_BATCH_LINES * 4))
            past = context_windows(emb, va, k, rows)
            if head is None:
                p = self.scene_probabilities(*past)
            else:
                p = _probabilities(head, READ_AHEAD_INPUTS, (*past, *ahead_windows(emb, va, k, rows)))
            out += [_line(va[i], conf[i], p[j]) for j, i in enumerate(rows)]
        return out

    def context(self) -> TextContext:
        """A live context: lines added one by one, each read after the ones before it."""
        return TextContext(self)


def _probabilities(
    head: ort.InferenceSession, names: Sequence[str], windows: Sequence[np.ndarray]
) -> np.ndarray:
    """A scene head's (B, 2) probabilities on its input windows (named ``names``, in order)."""
    feeds = {name: w.astype(np.float32) for name, w in zip(names, windows, strict=True)}
    (logits,) = head.run(None, feeds)
    return 1.0 / (1.0 + np.exp(-logits))


def _line(va: np.ndarray, confidence: float, p: np.ndarray) -> LineEmotion:
    def clean(x: float, lo: float, hi: float) -> float:
        x = float(x)
        return min(hi, max(lo, x)) if math.isfinite(x) else 0.5 * (lo + hi)

    return LineEmotion(
        valence=clean(va[0], -1.0, 1.0),
        arousal=clean(va[1], -1.0, 1.0),
        confidence=clean(confidence, 0.0, 1.0),
        p_scene_valence=clean(p[0], 0.0, 1.0),
        p_scene_arousal=clean(p[1], 0.0, 1.0),
    )


class TextContext:
    """The last ``context_lines`` lines of one live story (a session's), in fixed memory."""

    def __init__(self, model: TextEmotionModel) -> None:
        self.model = model
        self._emb: deque[np.ndarray] = deque(maxlen=model.context_lines)
        self._va: deque[np.ndarray] = deque(maxlen=model.context_lines)

    def add(self, text: str) -> LineEmotion:
        """Read one more line (after the ones before it) and keep it as context for the next."""
        emb, va, conf = self.model.encode([text])
        self._emb.append(emb[0])
        self._va.append(va[0])
        last = [len(self._emb) - 1]
        window = context_windows(np.stack(self._emb), np.stack(self._va), self.model.context_lines, last)
        p = self.model.scene_probabilities(*window)
        return _line(va[0], float(conf[0]), p[0])

    def clear(self) -> None:
        self._emb.clear()
        self._va.clear()
