"""``affetto bench composer``: speed of the composer step on one CPU thread.

Measured in one run, all on ONE thread (onnxruntime intra_op = inter_op = 1, torch 1 thread):

* raw model step (ONNX Runtime ``session.run``), batch 1: per-step latency p50 / p99 / mean over
  ``steps`` steps after a warmup, the recurrent state carried from step to step;
* tokens/s of the raw model step at each batch size, and of the full :meth:`Composer.step`
  (gather + model + grammar mask + sampling + grammar advance);
* the same step in PyTorch eager mode (``models.eager_step``, needs torch and ``composer.pt``),
  as the ORT speedup at batch 1 and 64.

Targets are printed next to the numbers: batch-1 model step p50 <= 1 ms, >= 10,000 tok/s at
batch >= 64, ORT >= 2x eager at batch 1.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import onnxruntime as ort

from engine.model.artifact import CPU, ModelArtifact, load_artifact
from engine.model.composer import DEFAULT_KEY_STRENGTH, Composer
from engine.tokens import vocab as V

DEFAULT_BATCHES: Final = (1, 16, 64, 256)
LATENCY_TARGET_MS: Final = 1.0
THROUGHPUT_TARGET: Final = 10_000.0  # tokens/s
THROUGHPUT_TARGET_MIN_BATCH: Final = 64
SPEEDUP_TARGET: Final = 2.0
WARMUP_STEPS: Final = 100


@dataclass(frozen=True)
class BenchOptions:
    """What to measure.

    Attributes:
        model_dir: model directory; None: the shipped model.
        steps: batch-1 latency steps (>= 2000 recommended for a stable p99).
        batches: batch sizes for tokens/s.
        eager: also time PyTorch eager (skipped with a note when torch or composer.pt is missing).
        emotion_pieces: pieces per quadrant for the emotion table (0: skip it).
    """

    model_dir: str | os.PathLike[str] | None = None
    steps: int = 2000
    batches: Sequence[int] = DEFAULT_BATCHES
    eager: bool = True
    emotion_pieces: int = 25


def steps_for_batch(batch: int, steps: int) -> int:
    """Steps timed at ``batch`` for tokens/s: about ``steps * 6`` tokens, 40..``steps`` steps."""
    return max(40, min(steps, steps * 6 // batch))


def latency_stats(times: np.ndarray) -> dict[str, float]:
    """p50 / p99 / mean of per-step times (seconds in, milliseconds out)."""
    ms = np.asarray(times) * 1e3
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
    }


def time_model_steps(
    artifact: ModelArtifact, batch: int, steps: int, *, warmup: int = WARMUP_STEPS, seed: int = 0
) -> np.ndarray:
    """Wall time in seconds of each of ``steps`` raw ``session.run`` calls at ``batch`` streams.

    Tokens are random valid ids; the state returned by each step is fed to the next.
    """
    m = artifact.manifest
    rng = np.random.default_rng(seed)
    tokens = rng.integers(V.BAR_OFFSET, V.VOCAB_SIZE, size=(warmup + steps, batch), dtype=np.int64)
    cond = rng.uniform(-1, 1, size=(batch, 2)).astype(np.float32)
    h = np.zeros((m.num_layers, batch, m.hidden_size), dtype=np.float32)
    c = np.zeros_like(h)
    run = artifact.session.run
    names = ["logits", "h_out", "c_out"]
    times = np.empty(steps, dtype=np.float64)
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        _, h, c = run(names, {"token": tokens[i], "cond": cond, "h": h, "c": c})
        if i >= warmup:
            times[i - warmup] = time.perf_counter() - t0
    return times


def time_composer_steps(
    composer: Composer, batch: int, steps: int, *, warmup: int = WARMUP_STEPS
) -> np.ndarray:
    """Wall time in seconds of each of ``steps`` full :meth:`Composer.step` calls.

    ``batch`` fresh streams are opened for the run and closed after it.
    """
    rng = np.random.default_rng(batch)
    ids = [
        composer.open_stream(seed=i, valence=float(rng.uniform(-1, 1)), arousal=float(rng.uniform(-1, 1)))
        for i in range(batch)
    ]
    times = np.empty(steps, dtype=np.float64)
    try:
        for i in range(warmup + steps):
            t0 = time.perf_counter()
            composer.step(ids)
            if i >= warmup:
                times[i - warmup] = time.perf_counter() - t0
    finally:
        for s in ids:
            composer.close_stream(s)
    return times


STEER_CANDIDATES: Final = (8, 16)
STEER_BARS: Final = 8
#: A 4/4 bar at 160 BPM lasts 1.5 s; steering must fit in a quarter of it.
STEER_BUDGET_MS: Final = 0.25 * 4 * 60_000 / 160


def steering_section(artifact: ModelArtifact, say: Callable[[str], None]) -> dict[str, Any]:
    """Wall time of one emotion-steered bar (K candidates + recognizer) on one thread, per K.

    Returns ``{"skipped": why}`` when the recognizer cannot be loaded.
    """
    try:
        from engine.recognizer.emotion_recognizer import EmotionRecognizer

        recognizer = EmotionRecognizer.load(intra_op_threads=1)
    except (FileNotFoundError, ValueError) as exc:
        return {"skipped": f"no emotion recognizer ({exc})"}
    composer = Composer(artifact=artifact, max_streams=1, recognizer=recognizer)
    out: dict[str, Any] = {"budget_ms": STEER_BUDGET_MS, "bars": STEER_BARS, "candidates": {}}
    for k in STEER_CANDIDATES:
        say(f"steered bars, {k} candidates")
        s = composer.open_stream(0, 0.8, -0.8, tonal_prime=True, key_strength=DEFAULT_KEY_STRENGTH, steer=k)
        try:
            composer.generate_bars(s, 1)  # warmup
            times = np.empty(STEER_BARS)
            for i in range(STEER_BARS):
                t0 = time.perf_counter()
                composer.generate_bars(s, 1)
                times[i] = time.perf_counter() - t0
        finally:
            composer.close_stream(s)
        stats = latency_stats(times)
        out["candidates"][str(k)] = {**stats, "max_ms": float(times.max() * 1e3)}
    return out


def emotion_section(artifact: ModelArtifact, options: BenchOptions) -> dict[str, Any] | None:
    """Emotion follows the condition (:mod:`engine.bench.emotion`); None when not asked for.

    Returns ``{"skipped": why}`` when music21/pretty_midi are missing.
    """
    if options.emotion_pieces < 1:
        return None
    try:
        from engine.bench.emotion import emotion_table, format_table, table_json

        composer = Composer(artifact=artifact, max_streams=4 * options.emotion_pieces)
        plain = emotion_table(composer, pieces=options.emotion_pieces)
        primed = emotion_table(
            composer, pieces=options.emotion_pieces, tonal_prime=True, key_strength=DEFAULT_KEY_STRENGTH
        )
    except ImportError as exc:
        return {"skipped": f"music21/pretty_midi not installed ({exc}); pip install 'affetto[train]'"}
    return {
        **table_json(plain),
        "tonal_prime": table_json(primed),
        "table": "model alone (valence and arousal inputs only)\n"
        + format_table(plain)
        + f"\n\nwith the tonal primer and key pull {DEFAULT_KEY_STRENGTH:g} (affetto compose's default)\n"
        + format_table(primed),
    }


def run_bench(options: BenchOptions, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Measure everything; returns a JSON-ready dict (see :func:`format_report`).

    Raises:
        FileNotFoundError, ValueError: the model directory is missing or invalid.
        ValueError: ``steps`` < 1 or a batch size < 1.
    """
    if options.steps < 1 or not options.batches or min(options.batches) < 1:
        raise ValueError(f"steps and batch sizes must be >= 1, got {options.steps}, {list(options.batches)}")
    say = progress or (lambda _msg: None)
    batches = sorted(set(options.batches))
    artifact = load_artifact(options.model_dir, providers=CPU, intra_op_threads=1, inter_op_threads=1)
    m = artifact.manifest
    result: dict[str, Any] = {
        "model": {
            "dir": str(m.directory),
            "vocab_version": m.vocab_version,
            "num_layers": m.num_layers,
            "hidden_size": m.hidden_size,
            "parameters": m.raw.get("parameters"),
        },
        "runtime": {
            "onnxruntime": ort.__version__,
            "provider": artifact.provider,
            "threads": 1,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
        },
        "steps": options.steps,
    }
    say(f"model step, batch 1, {options.steps} steps")
    lat = time_model_steps(artifact, 1, options.steps)
    result["latency_batch1"] = latency_stats(lat)
    mean_step_s: dict[int, float] = {}

    def model_times(b: int) -> np.ndarray:
        say(f"model step, batch {b}")
        return time_model_steps(artifact, b, steps_for_batch(b, options.steps), warmup=10)

    result["model_tokens_per_s"] = _tokens_per_s(batches, lat, model_times, mean_step_s)

    composer = Composer(artifact=artifact, max_streams=max(batches))
    say(f"composer step, batch 1, {options.steps} steps")
    clat = time_composer_steps(composer, 1, options.steps)
    result["composer_latency_batch1"] = latency_stats(clat)

    def composer_times(b: int) -> np.ndarray:
        say(f"composer step, batch {b}")
        return time_composer_steps(composer, b, steps_for_batch(b, options.steps), warmup=10)

    result["composer_tokens_per_s"] = _tokens_per_s(batches, clat, composer_times, {})

    result["eager"] = (
        _eager_section(options, m.directory, mean_step_s, say) if options.eager else {"skipped": "--no-eager"}
    )
    result["int8"] = _int8_section(options, batches, say)
    result["targets"] = _targets(result)
    result["steering"] = steering_section(artifact, say)
    result["emotion"] = emotion_section(artifact, options)
    return result


def _int8_section(options: BenchOptions, batches: list[int], say: Callable[[str], None]) -> dict[str, Any]:
    """The shipped int8 graph's batch-1 latency, tokens/s and recorded loss delta, or ``{"skipped": why}``."""
    try:
        int8 = load_artifact(
            options.model_dir, providers=CPU, intra_op_threads=1, inter_op_threads=1, precision="int8"
        )
    except (FileNotFoundError, ValueError) as exc:
        return {"skipped": str(exc)}
    say(f"int8 model step, batch 1, {options.steps} steps")
    lat = time_model_steps(int8, 1, options.steps)

    def times(b: int) -> np.ndarray:
        say(f"int8 model step, batch {b}")
        return time_model_steps(int8, b, steps_for_batch(b, options.steps), warmup=10)

    recorded = int8.manifest.raw.get("int8", {})
    return {
        "latency_batch1": latency_stats(lat),
        "model_tokens_per_s": _tokens_per_s(batches, lat, times, {}),
        "val_loss_delta": recorded.get("val_loss_delta"),
    }


def _eager_section(
    options: BenchOptions, model_dir: Path, ort_mean_s: dict[int, float], say: Callable[[str], None]
) -> dict[str, Any]:
    """PyTorch eager timings and ORT speedups at batch 1 and 64, or ``{"skipped": why}``."""
    try:
        from models.eager_step import EagerStep  # torch: only here, only when asked
    except ImportError as exc:
        return {"skipped": f"PyTorch not installed ({exc})"}
    try:
        eager = EagerStep(model_dir, threads=1)
    except (FileNotFoundError, ValueError) as exc:
        return {"skipped": str(exc)}
    out: dict[str, Any] = {"threads": 1}
    for b in (1, 64):
        steps = options.steps if b == 1 else steps_for_batch(b, options.steps)
        say(f"torch eager step, batch {b}")
        times = eager.time_steps(b, steps, warmup=WARMUP_STEPS if b == 1 else 10)
        if b == 1:
            out["latency_batch1"] = latency_stats(times)
        out[f"tokens_per_s_{b}"] = b / float(times.mean())
        if b not in ort_mean_s:  # batch not in the ORT run: time it now for the ratio
            ort_mean_s[b] = float(np.mean(_ort_times_for(options, b)))
        out[f"speedup_batch{b}"] = float(times.mean()) / ort_mean_s[b]
    return out


def _tokens_per_s(
    batches: Sequence[int],
    batch1_times: np.ndarray,
    time_at: Callable[[int], np.ndarray],
    mean_step_s: dict[int, float],
) -> dict[str, float]:
    """Tokens/s at each batch size (batch 1 reuses the latency run); fills ``mean_step_s``."""
    out: dict[str, float] = {}
    for b in batches:
        times = batch1_times if b == 1 else time_at(b)
        mean_step_s[b] = float(times.mean())
        out[str(b)] = b / mean_step_s[b]
    return out


def _ort_times_for(options: BenchOptions, batch: int) -> np.ndarray:
    artifact = load_artifact(options.model_dir, providers=CPU, intra_op_threads=1, inter_op_threads=1)
    return time_model_steps(artifact, batch, steps_for_batch(batch, options.steps), warmup=10)


def _targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with the measured value and whether it is met (None: not measured)."""
    rows: list[dict[str, Any]] = [
        {
            "target": "batch-1 model step p50 <= 1 ms",
            "value": result["latency_batch1"]["p50_ms"],
            "unit": "ms",
            "met": result["latency_batch1"]["p50_ms"] <= LATENCY_TARGET_MS,
        },
        {
            "target": "batch-1 composer step p50 <= 1 ms",
            "value": result["composer_latency_batch1"]["p50_ms"],
            "unit": "ms",
            "met": result["composer_latency_batch1"]["p50_ms"] <= LATENCY_TARGET_MS,
        },
    ]
    for key, label in (("model_tokens_per_s", "model"), ("composer_tokens_per_s", "composer")):
        big = {int(b): v for b, v in result[key].items() if int(b) >= THROUGHPUT_TARGET_MIN_BATCH}
        worst = min(big.values()) if big else None
        rows.append(
            {
                "target": f"{label} >= 10,000 tok/s at batch >= {THROUGHPUT_TARGET_MIN_BATCH}",
                "value": worst,
                "unit": "tok/s",
                "met": None if worst is None else worst >= THROUGHPUT_TARGET,
            }
        )
    speedup = result["eager"].get("speedup_batch1")
    rows.append(
        {
            "target": "ORT >= 2x eager at batch 1",
            "value": speedup,
            "unit": "x",
            "met": None if speedup is None else speedup >= SPEEDUP_TARGET,
        }
    )
    return rows


def format_report(result: dict[str, Any]) -> str:
    """A readable table of :func:`run_bench`'s result."""
    m, rt = result["model"], result["runtime"]
    lines = [
        f"composer benchmark — {m['dir']} (L={m['num_layers']}, H={m['hidden_size']}, "
        f"{m['parameters'] or '?'} params, {m['vocab_version']})",
        f"onnxruntime {rt['onnxruntime']} {rt['provider']}, 1 thread; {rt['cpus']} CPUs, {rt['machine']}",
        "",
        f"batch-1 step latency over {result['steps']} steps     p50       p99      mean",
    ]

    def lat(name: str, d: dict[str, float]) -> str:
        return f"  {name:<38}{d['p50_ms']:7.3f} ms {d['p99_ms']:6.3f} ms {d['mean_ms']:6.3f} ms"

    lines.append(lat("model step (ORT session.run)", result["latency_batch1"]))
    lines.append(lat("composer step (+ mask, sample)", result["composer_latency_batch1"]))
    eager = result["eager"]
    if "latency_batch1" in eager:
        lines.append(lat("PyTorch eager step", eager["latency_batch1"]))
    lines += [
        "",
        f"  {'tokens/s':<14}" + "".join(f"{'batch ' + b:>12}" for b in result["model_tokens_per_s"]),
    ]
    lines.append(
        f"  {'model step':<14}" + "".join(f"{v:12,.0f}" for v in result["model_tokens_per_s"].values())
    )
    lines.append(
        f"  {'composer step':<14}" + "".join(f"{v:12,.0f}" for v in result["composer_tokens_per_s"].values())
    )
    int8 = result.get("int8", {})
    if "latency_batch1" in int8:
        lines.append(
            f"  {'int8 model':<14}" + "".join(f"{v:12,.0f}" for v in int8["model_tokens_per_s"].values())
        )
        delta = int8["val_loss_delta"]
        lines.append(
            f"  int8 graph: batch-1 step p50 {int8['latency_batch1']['p50_ms']:.3f} ms, val loss delta "
            + ("n/a" if delta is None else f"{delta:+.4f} nats/token")
        )
    lines.append("")
    if "skipped" in eager:
        lines.append(f"PyTorch eager comparison skipped: {eager['skipped']}")
    else:
        lines.append(
            f"ORT speedup over PyTorch eager (1 thread): batch 1 {eager['speedup_batch1']:.2f}x, "
            f"batch 64 {eager['speedup_batch64']:.2f}x"
        )
    lines += ["", "targets"]
    for row in result["targets"]:
        value = (
            "n/a"
            if row["value"] is None
            else f"{row['value']:,.3f} {row['unit']}"
            if row["unit"] != "tok/s"
            else f"{row['value']:,.0f} {row['unit']}"
        )
        mark = {True: "ok", False: "MISSED", None: "not measured"}[row["met"]]
        lines.append(f"  {row['target']:<44}{value:>16}   {mark}")
    steering = result.get("steering")
    if steering is not None:
        lines += ["", "emotion-steered decoding, one bar of K candidates + recognizer (1 thread)"]
        if "skipped" in steering:
            lines.append(f"  skipped: {steering['skipped']}")
        else:
            budget = steering["budget_ms"]
            for k, d in steering["candidates"].items():
                mark = "ok" if d["max_ms"] <= budget else "OVER"
                lines.append(
                    f"  K={k:<3} p50 {d['p50_ms']:7.1f} ms  mean {d['mean_ms']:7.1f} ms"
                    f"  max {d['max_ms']:7.1f} ms  budget {budget:.0f} ms (25% of a 4/4 bar, 160 BPM): {mark}"
                )
    emotion = result.get("emotion")
    if emotion is not None:
        lines += ["", "emotion follows the condition (music21 key analysis, pretty_midi; 8 bars each)"]
        lines.append(emotion.get("table") or f"skipped: {emotion.get('skipped')}")
    return "\n".join(lines)
