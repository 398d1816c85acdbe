"""Load and validate a composer model directory (``manifest.json`` + ONNX step graph).

A model directory holds what :func:`export.onnx_export.write_artifact` writes::

    manifest.json   vocab_version, vocab_size, num_layers, hidden_size, onnx, inputs, outputs, ...
    composer.onnx   one streaming step: (token, cond, h, c) -> (logits, h_out, c_out)
    composer.pt     the PyTorch weights (only needed by the eager benchmark)

This module never imports torch. The execution provider is chosen automatically (CUDA when this
onnxruntime build offers it, else CPU) unless overridden by the ``providers`` argument or the
``AFFETTO_ORT_PROVIDER`` environment variable (``cpu``, ``cuda`` or full provider names,
comma-separated, in order of preference).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import onnxruntime as ort

import models
from engine.tokens import vocab as V

log = logging.getLogger(__name__)

MANIFEST_NAME: Final = "manifest.json"
PROVIDER_ENV: Final = "AFFETTO_ORT_PROVIDER"
CPU: Final = "CPUExecutionProvider"
CUDA: Final = "CUDAExecutionProvider"
#: Short names accepted wherever a provider is named (case-insensitive).
PROVIDER_ALIASES: Final = {"cpu": CPU, "cuda": CUDA}
INPUTS: Final = ("token", "cond", "h", "c")
OUTPUTS: Final = ("logits", "h_out", "c_out")
COND_DIM: Final = 2
_ORT_DEFAULT_SEVERITY: Final = 2  # onnxruntime's default: warnings and above


def default_model_dir() -> Path:
    """The shipped model directory, ``<models package>/composer`` (found without importing torch)."""
    return Path(models.__file__).resolve().parent / "composer"


@dataclass(frozen=True)
class Manifest:
    """The validated fields of ``manifest.json``.

    Attributes:
        directory: the model directory.
        vocab_version: token layout the model was trained on (equals engine.tokens.vocab.VOCAB_VERSION).
        vocab_size: logits per step (equals engine.tokens.vocab.VOCAB_SIZE).
        num_layers: LSTM layers L of the state tensors.
        hidden_size: LSTM width H of the state tensors.
        onnx_path: the step graph.
        checkpoint_path: the PyTorch weights, None when the manifest names none.
        raw: the whole manifest as read.
    """

    directory: Path
    vocab_version: str
    vocab_size: int
    num_layers: int
    hidden_size: int
    onnx_path: Path
    checkpoint_path: Path | None
    raw: dict[str, Any] = field(repr=False)


def load_manifest(model_dir: str | os.PathLike[str] | None = None) -> Manifest:
    """Read and validate ``manifest.json`` of ``model_dir`` (default: :func:`default_model_dir`).

    Raises:
        FileNotFoundError: the directory, the manifest or the ONNX file it names is missing.
        ValueError: the manifest is not valid JSON, lacks a field, or was made for another
            vocabulary (version or size) than this engine's.
    """
    directory = Path(model_dir) if model_dir is not None else default_model_dir()
    if not directory.is_dir():
        raise FileNotFoundError(
            f"model directory {directory} does not exist (expected {MANIFEST_NAME} and the ONNX graph in it)"
        )
    path = directory / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no model manifest (is {directory} a model directory?)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(raw).__name__}")

    def need(key: str, kind: type) -> Any:
        if key not in raw:
            raise ValueError(f"{path}: missing field {key!r}")
        value = raw[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"{path}: field {key!r} must be {kind.__name__}, got {value!r}")
        return value

    version = need("vocab_version", str)
    if version != V.VOCAB_VERSION:
        raise ValueError(
            f"{path}: model vocabulary {version!r} does not match engine vocabulary {V.VOCAB_VERSION!r}; "
            "re-export the model for this engine or use a matching engine version"
        )
    vocab_size = need("vocab_size", int)
    if vocab_size != V.VOCAB_SIZE:
        raise ValueError(
            f"{path}: model vocab_size {vocab_size} != engine VOCAB_SIZE {V.VOCAB_SIZE} "
            f"(vocabulary {version!r})"
        )
    num_layers = need("num_layers", int)
    hidden_size = need("hidden_size", int)
    for key, value in (("num_layers", num_layers), ("hidden_size", hidden_size)):
        if value < 1:
            raise ValueError(f"{path}: {key} must be >= 1, got {value}")
    for key, expected in (("inputs", INPUTS), ("outputs", OUTPUTS)):
        if key in raw and list(raw[key]) != list(expected):
            raise ValueError(f"{path}: {key} must be {list(expected)}, got {raw[key]!r}")
    onnx_path = directory / need("onnx", str)
    if not onnx_path.is_file():
        raise FileNotFoundError(f"{onnx_path}: ONNX graph named by {path} is missing")
    checkpoint = raw.get("checkpoint")
    checkpoint_path = directory / checkpoint if isinstance(checkpoint, str) else None
    return Manifest(directory, version, vocab_size, num_layers, hidden_size, onnx_path, checkpoint_path, raw)


def resolve_providers(providers: str | Sequence[str] | None = None) -> tuple[list[str], bool]:
    """The execution providers to request, in order, and whether they were asked for explicitly.

    Args:
        providers: ``"cpu"``, ``"cuda"``, a full onnxruntime provider name, a comma-separated
            string of those, or a sequence of them. None: the ``AFFETTO_ORT_PROVIDER`` environment
            variable if set, else CUDA when available, else CPU.

    Raises:
        TypeError: ``providers`` is not a string or a sequence of strings.
        ValueError: a name is unknown or not offered by this onnxruntime build (the message lists
            the available ones).
    """
    explicit = True
    if providers is None:
        env = os.environ.get(PROVIDER_ENV, "").strip()
        if env:
            providers = env
        else:
            explicit = False
            providers = [CUDA, CPU] if CUDA in ort.get_available_providers() else [CPU]
    if isinstance(providers, str):
        names = [p.strip() for p in providers.split(",") if p.strip()]
    elif isinstance(providers, Sequence) and all(isinstance(p, str) for p in providers):
        names = list(providers)
    else:
        raise TypeError(f"providers must be a string or a sequence of strings, got {providers!r}")
    if not names:
        raise ValueError("providers must name at least one execution provider (cpu, cuda, ...)")
    available = ort.get_available_providers()
    resolved: list[str] = []
    for name in names:
        full = PROVIDER_ALIASES.get(name.lower(), name)
        if full not in ort.get_all_providers():
            raise ValueError(
                f"unknown execution provider {name!r}; use one of {sorted(PROVIDER_ALIASES)} or an "
                f"onnxruntime provider name (available here: {available})"
            )
        if full not in available:
            raise ValueError(
                f"execution provider {full} is not available in this onnxruntime build "
                f"(available: {available})"
            )
        if full not in resolved:
            resolved.append(full)
    return resolved, explicit


@dataclass
class ModelArtifact:
    """A loaded model: its manifest and a ready onnxruntime session.

    Attributes:
        manifest: the validated manifest.
        session: the inference session of the step graph.
        requested_providers: what was asked of onnxruntime, in order.
    """

    manifest: Manifest
    session: ort.InferenceSession
    requested_providers: list[str]

    @property
    def providers(self) -> list[str]:
        """Providers the session actually uses, in priority order (``session.get_providers()``)."""
        return list(self.session.get_providers())

    @property
    def provider(self) -> str:
        """The provider that runs the graph (the first one actually in use)."""
        return self.providers[0]


PRECISIONS = ("fp32", "int8")


def _graph_path(manifest: Manifest, precision: str) -> Path:
    """The ONNX file for ``precision``.

    Raises:
        ValueError: unknown precision, or "int8" for a model that ships no int8 graph.
        FileNotFoundError: the manifest names an int8 file that is missing.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp32":
        return manifest.onnx_path
    int8 = manifest.raw.get("int8")
    name = int8.get("file") if isinstance(int8, dict) else None
    if not isinstance(name, str):
        raise ValueError(f"{manifest.directory}: this model ships no int8 graph (manifest has no int8.file)")
    path = manifest.directory / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: int8 graph named in the manifest is missing")
    return path


def load_artifact(
    model_dir: str | os.PathLike[str] | None = None,
    *,
    providers: str | Sequence[str] | None = None,
    intra_op_threads: int | None = None,
    inter_op_threads: int | None = None,
    precision: str = "fp32",
) -> ModelArtifact:
    """Validate ``model_dir`` and open an inference session on its step graph.

    Args:
        model_dir: the model directory; None: :func:`default_model_dir`.
        providers: see :func:`resolve_providers`.
        precision: "fp32" (the trained weights) or "int8" (the dynamically quantized graph the
            manifest names under ``int8.file``, with its measured loss delta; CPU only).
        intra_op_threads: threads inside one operator (>= 1); None: onnxruntime's default.
        inter_op_threads: threads across operators (>= 1); None: onnxruntime's default.

    Raises:
        FileNotFoundError: see :func:`load_manifest`.
        ValueError: bad manifest, provider or precision (or no int8 graph), an unreadable graph, a
            graph whose inputs or outputs break the contract, or an explicitly requested provider
            that failed to initialise (onnxruntime would silently fall back to CPU).
        TypeError: a thread count is not an int.
    """
    manifest = load_manifest(model_dir)
    graph = _graph_path(manifest, precision)
    requested, explicit = resolve_providers(providers)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    for name, value in (("intra_op_threads", intra_op_threads), ("inter_op_threads", inter_op_threads)):
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int >= 1, got {value!r}")
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if intra_op_threads is not None:
        options.intra_op_num_threads = intra_op_threads
    if inter_op_threads is not None:
        options.inter_op_num_threads = inter_op_threads
    # A GPU build lists CUDA even on machines without a usable GPU; when CUDA was only picked
    # automatically, keep onnxruntime's loud "failed to load" log quiet and fall back to CPU.
    quiet = not explicit and requested[0] != CPU
    if quiet:
        ort.set_default_logger_severity(4)
    try:
        session = ort.InferenceSession(str(graph), options, providers=requested)
    except Exception as exc:  # onnxruntime raises its own exception types (Fail, InvalidGraph, ...)
        raise ValueError(f"{graph}: onnxruntime cannot load the graph ({exc})") from exc
    finally:
        if quiet:
            ort.set_default_logger_severity(_ORT_DEFAULT_SEVERITY)
    used = session.get_providers()
    if used[0] != requested[0]:
        if explicit:
            raise ValueError(
                f"execution provider {requested[0]} was requested but could not be initialised "
                f"(onnxruntime fell back to {used}); check the GPU, CUDA and cuDNN installation"
            )
        log.info("execution provider %s could not be initialised, running on %s", requested[0], used[0])
    _check_graph(manifest, session)
    return ModelArtifact(manifest, session, requested)


def _check_graph(manifest: Manifest, session: ort.InferenceSession) -> None:
    """Raise ValueError unless the graph's names and fixed dimensions match the manifest."""
    where = manifest.onnx_path
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    if sorted(inputs) != sorted(INPUTS) or sorted(outputs) != sorted(OUTPUTS):
        raise ValueError(
            f"{where}: graph has inputs {sorted(inputs)} and outputs {sorted(outputs)}, "
            f"expected {INPUTS} → {OUTPUTS}"
        )
    L, H = manifest.num_layers, manifest.hidden_size
    expected = {
        "cond": (None, COND_DIM),
        "h": (L, None, H),
        "c": (L, None, H),
        "logits": (None, manifest.vocab_size),
        "h_out": (L, None, H),
        "c_out": (L, None, H),
    }
    for name, dims in expected.items():
        shape = (inputs.get(name) or outputs[name]).shape
        ok = len(shape) == len(dims) and all(
            d is None or not isinstance(s, int) or s == d for s, d in zip(shape, dims, strict=True)
        )
        if not ok:
            raise ValueError(f"{where}: {name} has shape {shape}, manifest implies {dims} (None = batch)")
