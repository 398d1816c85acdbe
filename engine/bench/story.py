"""``affetto bench story``: the text emotion model's speed, the live ``text`` op's latency over a real
server, and scoring a long transcript (speed and how close the scene changes land to their cues).

Accuracy lives with the model: the leave-one-episode-out figures of the Call of the Wild episodes
and EmoBank's test split are measured when the model is made and kept in its manifest
(``models/text_emotion/manifest.json``, :mod:`models.train_text_emotion`); they are printed here too.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.story.lines import Line, read_lines
from engine.story.text_model import TextEmotionModel


def _percentiles(xs: list[float]) -> dict[str, float]:
    a = np.asarray(xs) * 1000
    return {"p50_ms": round(float(np.percentile(a, 50)), 2), "p99_ms": round(float(np.percentile(a, 99)), 2),
            "max_ms": round(float(a.max()), 2)}  # fmt: skip


def model_speed(texts: list[str], model_dir: Path | None = None) -> dict[str, Any]:
    """Lines per second on one CPU thread: one at a time (a live line, with its context) and a
    whole text at once (batched)."""
    model = TextEmotionModel(model_dir, threads=1)
    model.analyse(texts[:32])  # warm up
    context = model.context()
    one = texts[:300]
    t0 = time.perf_counter()
    times = []
    for text in one:
        t = time.perf_counter()
        context.add(text)
        times.append(time.perf_counter() - t)
    single = len(one) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    model.analyse(texts)
    batched = len(texts) / (time.perf_counter() - t0)
    return {
        "lines": len(texts),
        "batch1_lines_per_s": round(single, 1),
        "batched_lines_per_s": round(batched, 1),
        "batch1": _percentiles(times),
    }


async def _live_latency(texts: list[str], interval_s: float) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    from engine.model.composer import Composer
    from engine.server.transports import AffettoServer, ServerSettings
    from engine.sessions.host import SessionHost

    host = SessionHost(Composer(max_streams=2, intra_op_threads=1))
    server = AffettoServer(host, ServerSettings(osc_port=0, ws_port=0, bind="127.0.0.1"))
    await server.start()
    latencies: list[float] = []
    changes = 0
    try:
        async with connect(f"ws://127.0.0.1:{server.ws_port}") as ws:
            await ws.send(json.dumps({"op": "hello", "session": "bench-story"}))
            await ws.recv()
            for i, text in enumerate(texts):
                sent = time.perf_counter()
                await ws.send(json.dumps({"op": "text", "text": text, "id": i}))
                while True:
                    event = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    if event.get("event") == "text" and event.get("id") == i:
                        break
                latencies.append(time.perf_counter() - sent)
                changes += bool(event["changed"])
                await asyncio.sleep(interval_s)
    finally:
        await server.close()
    return {"lines": len(texts), "scene_changes": changes, "line_to_decision": _percentiles(latencies)}


def live_latency(texts: list[str], interval_s: float = 0.05) -> dict[str, Any]:
    """Line sent → ``text`` event received, over a real WebSocket to a real server (loopback)."""
    return asyncio.run(_live_latency(texts, interval_s))


def scoring(lines: list[Line], source: str, audio: bool = True) -> dict[str, Any]:
    """Score ``lines``: × real time and the scene changes' distance from their cues."""
    import tempfile

    from engine.model.composer import Composer
    from engine.story.analysis import analyse_lines
    from engine.story.score import score_story

    t0 = time.perf_counter()
    analysis = analyse_lines(lines, source=source)
    analyse_s = time.perf_counter() - t0
    composer = Composer(max_streams=1, intra_op_threads=1)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        result = score_story(analysis, out, composer, audio=audio, plot=True)
        total = time.perf_counter() - t0
    errors = np.asarray(result.alignment_errors_s or [0.0]) * 1000
    return {
        "source": source,
        "text_minutes": round(analysis.end_s / 60, 1),
        "scenes": len(analysis.scenes),
        "analyse_s": round(analyse_s, 2),
        "render_s": round(result.render_s, 2),
        "total_s": round(total, 2),
        "x_real_time": round(result.duration_s / total, 1),
        "alignment_ms": {
            "p95": round(float(np.percentile(errors, 95)), 4),
            "max": round(float(errors.max()), 4),
        },
    }


def run(transcript: Path, *, audio: bool = True, live_lines: int = 200) -> dict[str, Any]:
    """Everything: the model's speed and its recorded accuracy, the live op, scoring ``transcript``."""
    lines = read_lines(transcript)
    texts = [line.text for line in lines]
    model = TextEmotionModel()
    return {
        "accuracy (recorded when the model was made)": model.manifest.get("metrics", {}),
        "model_speed": model_speed(texts),
        "live_text_op": live_latency(texts[:live_lines]),
        "scoring": scoring(lines, str(transcript), audio=audio),
    }
