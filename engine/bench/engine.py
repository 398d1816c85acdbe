"""``affetto bench engine``: timing, control latency, synth speed and live CPU/xruns.

* **Event timing**: a live session (combat: all layers and drums, plus random immediate
  changes) runs on the session host's clock thread (as ``affetto play`` and ``serve`` do);
  every event's send time is compared with its schedule.
* **Control latency**: immediate emotion changes at random moments; the time from the call to
  the first note of the new music leaving the clock thread. The audio path adds
  ``AUDIO_DELAY_BLOCKS`` blocks of scheduling margin plus the device's own buffering, reported
  separately (it is a fixed delay, not jitter).
* **Synth speed**: :func:`engine.bench.synth.synth_speed` (32 voices, 48 kHz, against FluidSynth).
* **Live CPU and xruns**: the same performance through the built-in synth on an audio device
  (e.g. JACK's dummy driver) at a 256-frame buffer; process CPU per second of music and the
  underflows PortAudio reports.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import numpy as np

from engine.model.composer import Composer
from engine.outputs.host_outputs import AUDIO_DELAY_BLOCKS
from engine.realtime.kinds import NOTE_ON
from engine.sessions.live_rig import LiveRig
from engine.sessions.ops import Cue


class _Capture:
    """A sink that notes when each event arrived (wall clock)."""

    def __init__(self) -> None:
        self.rows: list[tuple[float, float, int]] = []  # (wall_s, time_s, kind)
        self.lock = threading.Lock()

    def send(self, time_s: float, kind: int, channel: int, a: int, b: int) -> None:
        with self.lock:
            self.rows.append((time.perf_counter(), time_s, kind))


def _quantiles_ms(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    arr = np.asarray(values) * 1000.0
    return {
        "n": int(arr.size),
        "p50_ms": round(float(np.percentile(arr, 50)), 3),
        "p99_ms": round(float(np.percentile(arr, 99)), 3),
        "max_ms": round(float(arr.max()), 3),
    }


def timing_and_latency(
    composer: Composer, seconds: float = 20.0, changes: int = 40, seed: int = 1
) -> dict[str, Any]:
    """Run a live session with random immediate changes; event timing error and control latency."""
    capture = _Capture()
    rig = LiveRig(composer, seed, audio=False, sinks=[capture], start_state="combat", timing_samples=200_000)
    rng = random.Random(seed)
    sent: list[tuple[float, float]] = []  # (wall_s, engine time_s) of each change
    rig.start()
    try:
        time.sleep(max(0.0, rig.t0 - time.perf_counter()) + 1.0)
        gap = max(0.2, (seconds - 1.0) / max(1, changes))
        for _ in range(changes):
            time.sleep(rng.uniform(0.5, 1.5) * gap)
            cue = Cue(
                0.0, "emotion", valence=rng.uniform(-1, 1), arousal=rng.uniform(-0.2, 1), sync="immediate"
            )
            wall = time.perf_counter()
            sent.append((wall, wall - rig.t0))
            rig.cue(cue)
        time.sleep(0.5)
    finally:
        rig.stop()
    latencies = []
    with capture.lock:
        rows = list(capture.rows)
    for wall, at_s in sent:
        first = next((w for w, t, k in rows if k == NOTE_ON and w >= wall and t >= at_s - 1e-3), None)
        if first is not None:
            latencies.append(first - wall)
    return {
        "event_timing_error": _quantiles_ms([abs(e) for e in rig.timing.samples_s]),
        "control_to_first_note": _quantiles_ms(latencies),
        "changes": changes,
        "changes_answered": len(latencies),
        "errors": [str(e) for e in rig.errors[:5]],
    }


def live_cpu_and_xruns(
    composer: Composer, seconds: float = 20.0, block_frames: int = 256, device: str | int | None = None,
    hostapi: str | None = None, seed: int = 2,
) -> dict[str, Any]:  # fmt: skip
    """One live session through the synth on an audio device: CPU share and xruns."""
    from engine.outputs.audio_stream import AudioUnavailable, audio_available

    ok, reason = audio_available(device, hostapi=hostapi)
    if not ok:
        return {"skipped": f"no audio output: {reason}"}
    try:
        rig = LiveRig(
            composer, seed, device=device, hostapi=hostapi, block_frames=block_frames, start_state="combat"
        )
    except AudioUnavailable as exc:
        return {"skipped": str(exc)}
    rng = random.Random(seed)
    with rig:
        rig.start()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        end = wall0 + seconds
        while time.perf_counter() < end:
            time.sleep(rng.uniform(0.5, 2.0))
            rig.cue(Cue(0.0, "state", rng.choice(["combat", "danger", "victory", "explore"])))
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - wall0
        xruns = rig.audio.xruns
        latency = rig.audio.latency_s
        device_name = rig.audio.device_name
        voices = rig.synth.active_voices
        rig.stop()
    return {
        "device": device_name,
        "block_frames": block_frames,
        "seconds": round(wall, 2),
        "cpu_percent_of_one_core": round(100.0 * cpu / wall, 1),
        "xruns": int(xruns),
        "device_latency_ms": round(1000.0 * latency, 2),
        "scheduling_margin_ms": round(1000.0 * AUDIO_DELAY_BLOCKS * block_frames / rig.sample_rate_hz, 2),
        "voices_at_end": int(voices),
    }


def run_engine_bench(
    seconds: float = 20.0,
    synth_seconds: float = 30.0,
    device: str | int | None = None,
    hostapi: str | None = None,
) -> dict[str, Any]:
    """All four measurements (see the module docstring)."""
    from engine.bench.synth import synth_speed

    composer = Composer(max_streams=4, intra_op_threads=1)
    timing_and_latency(composer, 2.0, 2)  # warm-up: numba's cache loads, first-call costs
    result: dict[str, Any] = {"timing": timing_and_latency(composer, seconds)}
    result["synth"] = synth_speed(seconds=synth_seconds)
    result["live"] = live_cpu_and_xruns(composer, seconds, device=device, hostapi=hostapi)
    return result
