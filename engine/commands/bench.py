"""``affetto bench <what>``: benchmarks. ``composer``: speed of the composer step (see
:mod:`engine.bench.composer`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine.commands import CommandError, bounded_int, model_error
from engine.commands.ports import add_port_options, check_existing, port_choice


def _batches(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"batches must be comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1 or max(values) > 4096:
        raise argparse.ArgumentTypeError(f"batch sizes must be in 1..4096, got {text!r}")
    return values


def register(sub: Any) -> None:
    """Add the ``bench`` parser (with its own subcommands) to ``sub``."""
    bench: argparse.ArgumentParser = sub.add_parser("bench", help="benchmarks", description="Benchmarks.")
    what = bench.add_subparsers(dest="bench", metavar="BENCHMARK", required=True)
    p = what.add_parser(
        "composer",
        help="composer step speed on one CPU thread (ORT vs PyTorch eager)",
        description="Latency and tokens/s of the composer step on one CPU thread, "
        "with PyTorch eager as the baseline.",
    )
    p.add_argument("--model", type=Path, default=None, help="model directory (default: the shipped model)")
    p.add_argument(
        "--steps",
        type=bounded_int("steps", 1, 1_000_000),
        default=2000,
        help="batch-1 latency steps (default 2000)",
    )
    p.add_argument(
        "--batches",
        type=_batches,
        default=[1, 16, 64, 256],
        help="comma-separated batch sizes for tokens/s (default 1,16,64,256)",
    )
    p.add_argument("--no-eager", action="store_true", help="skip the PyTorch eager comparison")
    p.add_argument(
        "--emotion-pieces",
        type=bounded_int("emotion-pieces", 0, 256),
        default=25,
        help="eight-bar pieces per quadrant for the emotion table (default 25; 0 skips it)",
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(handler=run_composer)
    st = what.add_parser(
        "steering",
        help="plain vs emotion-steered decoding: recognizer accuracy, music21/pretty_midi, diversity",
        description="Compose eight-bar pieces per quadrant with and without steering (and with and "
        "without the tonal primer); judge them by the recognizer and external descriptors.",
    )
    st.add_argument(
        "--pieces", type=bounded_int("pieces", 1, 256), default=50, help="per quadrant (default 50)"
    )
    st.add_argument(
        "--steer", type=bounded_int("steer", 2, 32), default=8, help="candidates per bar (default 8)"
    )
    st.add_argument("--model", type=Path, default=None, help="model directory (default: the shipped model)")
    st.add_argument("--json", action="store_true", help="print the results as JSON")
    st.set_defaults(handler=run_steering)
    en = what.add_parser(
        "engine",
        help="real-time engine: event timing, control latency, synth speed vs FluidSynth, live CPU/xruns",
        description="Live event timing error, immediate control-to-note latency, synth speed (32 voices, "
        "48 kHz) against FluidSynth, and CPU/xruns of a live session on an audio device (256 frames).",
    )
    en.add_argument(
        "--seconds",
        type=bounded_int("seconds", 2, 3600),
        default=20,
        help="seconds per live run (default 20)",
    )
    en.add_argument(
        "--synth-seconds",
        type=bounded_int("synth-seconds", 1, 3600),
        default=30,
        help="audio rendered (default 30)",
    )
    en.add_argument(
        "--device", default=None, help="audio output device for the live run (default: the system's)"
    )
    en.add_argument("--hostapi", default=None, help="PortAudio host API for the live run (e.g. jack)")
    en.add_argument("--json", action="store_true", help="print the results as JSON")
    en.set_defaults(handler=run_engine)
    sv = what.add_parser(
        "server",
        help="game server: sessions held without late events, OSC messages/s, memory per idle session, fuzz",
        description="Sessions playing at once without late events, OSC messages parsed/validated/applied "
        "per second, resident memory per idle session, and a fuzz run (random OSC packets and WebSocket "
        "messages).",
    )
    sv.add_argument(
        "--seconds", type=bounded_int("seconds", 2, 3600), default=10, help="per session count (default 10)"
    )
    ports = sv.add_argument_group(
        "MIDI port", "the sessions play into it through the output process, as affetto serve's do"
    )
    add_port_options(ports, virtual_default="affetto-bench")
    ports.add_argument("--no-midi", action="store_true", help="no device: the server's clock only")
    sv.add_argument("--midi-api", default=None, help="MIDI API: alsa, jack, coremidi, winmm")
    sv.add_argument("--osc-packets", type=bounded_int("osc-packets", 0, 100_000_000), default=1_000_000)
    sv.add_argument("--ws-messages", type=bounded_int("ws-messages", 0, 10_000_000), default=100_000)
    sv.add_argument("--json", action="store_true", help="print the results as JSON")
    sv.set_defaults(handler=run_server)


def run_composer(args: argparse.Namespace) -> int:
    """Run the composer benchmark and print a table (or JSON).

    Raises:
        CommandError: the model cannot be loaded.
    """
    from engine.bench.composer import BenchOptions, format_report, run_bench

    options = BenchOptions(
        model_dir=args.model,
        steps=args.steps,
        batches=args.batches,
        eager=not args.no_eager,
        emotion_pieces=args.emotion_pieces,
    )
    progress = None if args.json else (lambda msg: print(f"  … {msg}", file=sys.stderr, flush=True))
    try:
        result = run_bench(options, progress)
    except (FileNotFoundError, ValueError) as exc:
        raise model_error(exc, args.model) from exc
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0


def run_steering(args: argparse.Namespace) -> int:
    """Run the steering benchmark and print a table (or JSON).

    Raises:
        CommandError: the model or recognizer cannot be loaded, or music21/pretty_midi is missing.
    """
    from engine.bench.steering import arms_json, format_arms, run_arms

    try:
        rows = run_arms(args.pieces, args.steer, args.model)
    except ImportError as exc:
        raise CommandError(
            f"music21/pretty_midi not installed ({exc}); pip install 'affetto[train]'"
        ) from exc
    except (FileNotFoundError, ValueError) as exc:
        raise model_error(exc, args.model) from exc
    print(json.dumps(arms_json(rows), indent=2) if args.json else format_arms(rows))
    return 0


def run_engine(args: argparse.Namespace) -> int:
    """Run the engine benchmark and print the results (JSON with --json)."""
    from engine.bench.engine import run_engine_bench

    device = int(args.device) if args.device is not None and args.device.isdigit() else args.device
    result = run_engine_bench(args.seconds, args.synth_seconds, device=device, hostapi=args.hostapi)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    t = result["timing"]
    print("event timing error vs schedule:", _fmt(t["event_timing_error"]), "(target p99 <= 1 ms)")
    print("control -> first note (immediate):", _fmt(t["control_to_first_note"]), "(target p99 <= 10 ms)")
    for key, value in result["synth"].items():
        print(f"synth {key}: {value}")
    for key, value in result["live"].items():
        print(f"live {key}: {value}")
    return 0


def _fmt(q: dict[str, Any]) -> str:
    if not q.get("n"):
        return "no samples"
    return f"p50 {q['p50_ms']:.3f} ms, p99 {q['p99_ms']:.3f} ms, max {q['max_ms']:.3f} ms (n={q['n']})"


def run_server(args: argparse.Namespace) -> int:
    """Run the server benchmark and print the results (JSON with --json)."""
    from engine.bench.server import fuzz, idle_session_memory, osc_throughput, sessions_held

    choice = None if args.no_midi else port_choice(args)
    check_existing(choice, args.midi_api)
    result = {
        "sessions": sessions_held(
            seconds=args.seconds,
            midi_port=choice.name if choice is not None else None,
            midi_virtual=choice.virtual if choice is not None else True,
            midi_api=args.midi_api,
        ),
        "osc": osc_throughput(),
        "memory": idle_session_memory(),
        "fuzz": fuzz(args.osc_packets, args.ws_messages),
    }
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    held = result["sessions"]
    print(
        held.get("device") or f"no device ({held.get('device_error', 'none asked for')}): server clock only"
    )
    for run in held["runs"]:
        m, sv = run["machine"], run["server"]
        dev = run.get("device")
        at_device = (
            f"device {dev['late']} late of {dev['events']} ({dev['late_outside_machine_stalls']} outside "
            f"machine stalls; worst {dev['max_lateness_ms']} ms, "
            f"{dev['cpu_cores']} cores, {dev['priority']}); "
            if dev
            else ""
        )
        print(
            f"{run['sessions']:4d} sessions: {at_device}server {sv['late']} late of {sv['events']} "
            f"(worst {sv['max_lateness_ms']} ms); {run['cpu_cores']} cores (server process); "
            f"lone probe process: {m['late']} of {m['wakes']} wake-ups late "
            f"(worst {m['max_lateness_ms']} ms, {m['stalls_over_1ms']} over 1 ms)"
        )
    print(
        "max sessions without late events:",
        held["max_sessions_without_late_events"],
        "; outside machine stalls:",
        held["max_sessions_without_late_events_outside_machine_stalls"],
        "(target >= 200)",
    )
    print(f"OSC messages/s parsed, validated, applied: {result['osc']['per_s']} (target >= 20000)")
    print(
        f"memory per idle session: {result['memory']['bytes_per_session'] / 1024:.0f} KiB "
        "(target <= 1024 KiB)"
    )
    f = result["fuzz"]
    print(
        f"fuzz: {f['osc_packets']} OSC packets, {f['ws_messages']} WebSocket messages: healthy={f['healthy']}"
    )
    return 0
