"""``affetto bench <what>``: benchmarks. ``composer``: speed of the composer step (see
:mod:`engine.bench.composer`); ``flood`` and ``soak``: the server under one client's flood and
a long run of many sessions (see :mod:`engine.bench.flood`, :mod:`engine.bench.soak`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Final

from engine.commands import CommandError, bounded_float, bounded_int, model_error
from engine.commands.ports import add_port_options, check_existing, port_choice

#: the shared data directory beside the checkout (../shared/data)
_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


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
    fm = what.add_parser(
        "form",
        help="the form of what the live engine plays against held-out game music (muspy, music21)",
        description="Sessions per valence/arousal quadrant through the live conductor path, first BARS bars "
        "each; muspy's pitch-class entropy, scale consistency, groove consistency and polyphony, rhythm "
        "repetition and 4-bar key stability, against VGMIDI pieces held out from training: each "
        "descriptor's distribution overlap (OA, 1 = indistinguishable) and their mean.",
    )
    fm.add_argument(
        "--pieces", type=bounded_int("pieces", 1, 256), default=25, help="per quadrant (default 25)"
    )
    fm.add_argument(
        "--bars", type=bounded_int("bars", 8, 64), default=16, help="bars per excerpt (default 16)"
    )
    fm.add_argument("--data", type=Path, default=_DATA, help=f"the shared data directory (default {_DATA})")
    fm.add_argument(
        "--no-judge", action="store_true",
        help="skip the held-out emotion judge (fitted on listener-labelled train-split pieces, ~90 s)",
    )  # fmt: skip
    fm.add_argument(
        "--steer", type=bounded_int("steer", 0, 32), default=0,
        help="the sessions steer live, this many candidates per bar (default 0: plain)",
    )  # fmt: skip
    fm.add_argument(
        "--seed", type=bounded_int("seed", 0, 10**9), default=0, help="the first run's seed (default 0)"
    )
    fm.add_argument(
        "--seeds", type=bounded_int("seeds", 1, 16), default=1,
        help="runs, seeds SEED, SEED+1000, ...: their mean and spread (one run's mean OA moves ~±0.02 "
        "with its seed; default 1)",
    )  # fmt: skip
    fm.add_argument("--json", action="store_true", help="print the results as JSON")
    fm.set_defaults(handler=run_form)
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
    sv.add_argument(
        "--steer", type=bounded_int("steer", 0, 32), default=4,
        help="also hold steered sessions, this many candidates per bar (default 4; 0: plain only)",
    )  # fmt: skip
    sv.add_argument("--json", action="store_true", help="print the results as JSON")
    sv.set_defaults(handler=run_server)
    fl = what.add_parser(
        "flood",
        help="one OSC client floods the server at its message budget: the other sessions' change "
        "latency, beat lateness and a new session's start",
        description="One OSC client (a process of its own) sends bundles of 64 emotion/state messages at "
        "exactly the per-client budget (2000 messages/s) while other sessions (WebSocket clients and one "
        "OSC client, in another process) change their emotion (sync immediate) every ~0.5 s: change "
        "latency (request to its transition event), how late their beats went out, and the time a new "
        "session takes to its first beat. --no-flood runs the same without the flooder (the baseline).",
    )
    fl.add_argument(
        "--seconds", type=bounded_int("seconds", 2, 3600), default=20, help="measured seconds (default 20)"
    )
    fl.add_argument(
        "--sessions",
        type=bounded_int("sessions", 1, 256),
        default=8,
        help="WebSocket sessions measured, besides one OSC session (default 8)",
    )
    fl.add_argument("--no-flood", action="store_true", help="no flooder: the baseline")
    fl.add_argument("--json", action="store_true", help="print the results as JSON")
    fl.set_defaults(handler=run_flood)
    sy = what.add_parser(
        "story",
        help="the text emotion model's speed, the live text op's latency, scoring a transcript",
        description="Lines per second of the text emotion model on one CPU thread (one at a time and "
        "batched), line -> text event over a real WebSocket server (p50/p99), and scoring a transcript "
        "(x real time, |downbeat - scene start| p95), as JSON, with the accuracy recorded in the model's "
        "manifest.",
    )
    sy.add_argument(
        "transcript", type=Path, nargs="?", default=None,
        help="a story file (default: the Call of the Wild episode 1 transcript, ../shared/data/dnd/ep1.csv)",
    )  # fmt: skip
    sy.add_argument("--no-audio", action="store_true", help="score without rendering audio")
    sy.set_defaults(handler=run_story)
    so = what.add_parser(
        "soak",
        help="a long run of many sessions with random changes and churn: memory, fds, hanging notes, "
        "errors (24 h: affetto bench soak --minutes 1440)",
        description="S sessions (WebSocket and OSC clients in processes of their own) with random "
        "emotion/state/param/tempo/stinger changes, subscribers joining and leaving, sessions switching "
        "names; every interval the server process's resident memory and open file descriptors. At the "
        "end: their growth after the first interval, hanging notes (every note-on the clients heard "
        "through the notes output ended by a note-off) and internal errors. The 24-hour run: "
        "affetto bench soak --minutes 1440.",
    )
    so.add_argument(
        "--sessions",
        type=bounded_int("sessions", 1, 4096),
        default=200,
        help="sessions asked for (default 200; those the server refuses as busy are reported)",
    )
    so.add_argument(
        "--minutes",
        type=bounded_float("minutes", 0.0, 100_000.0, low_open=True),
        default=30.0,
        help="how long (default 30; 1440 for a day)",
    )
    so.add_argument(
        "--interval-s",
        type=bounded_float("interval-s", 1.0, 86_400.0),
        default=60.0,
        help="seconds between samples (default 60)",
    )
    so.add_argument(
        "--max-sessions",
        type=bounded_int("max-sessions", 1, 4096),
        default=256,
        help="the server's session slots (default 256, as affetto serve)",
    )
    so.add_argument(
        "--profile", type=Path, default=None, help="game profile YAML (default: the default one, one param)"
    )
    so.add_argument("--seed", type=bounded_int("seed", 0, 2**31 - 1), default=0, help="random seed")
    so.add_argument("--json", action="store_true", help="print the samples and summary as JSON")
    so.set_defaults(handler=run_soak)


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


def run_form(args: argparse.Namespace) -> int:
    """Run the form benchmark and print a table (or JSON).

    Raises:
        CommandError: music21 or muspy is missing, or the data directory has no VGMIDI pieces.
    """
    from engine.bench.form import DESCRIPTORS, EXTRAS, SEED_SPACING, run_form_seeds
    from engine.bench.form import run_form as measure_form
    from engine.model.composer import Composer
    from engine.music.config import ConductorConfig

    if not (args.data / "vgmidi").is_dir():
        raise CommandError(f"no vgmidi/ under {args.data} (the held-out pieces); give --data")
    rows = max(32, args.steer * 4 * args.pieces)  # every steered session's candidates together
    composer = Composer(max_streams=4 * args.pieces, intra_op_threads=1, steer_rows=rows)
    config = ConductorConfig(steer=args.steer)
    try:
        if args.seeds > 1:
            seeds = [args.seed + SEED_SPACING * i for i in range(args.seeds)]
            spread = run_form_seeds(
                composer, args.data, seeds, pieces=args.pieces, bars=args.bars, judge=not args.no_judge,
                config=config,
            )  # fmt: skip
            return _print_form_spread(spread, args.json)
        result = measure_form(
            composer, args.data, pieces=args.pieces, bars=args.bars, seed=args.seed, judge=not args.no_judge,
            config=config,
        )  # fmt: skip
    except ImportError as exc:
        raise CommandError(f"music21/muspy not installed ({exc}); pip install 'affetto[train]'") from exc
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    steered = f", steered live with {args.steer} candidates per bar" if args.steer > 1 else ""
    print(
        f"{args.bars}-bar excerpts: {4 * args.pieces} played{steered}, "
        f"{result['held_out_pieces']} held-out VGMIDI"
    )
    print(f"{'descriptor':<22}{'played':>14}{'held out':>14}{'OA':>7}")
    for d in DESCRIPTORS:
        ours, real = result["played"][d], result["held_out"][d]
        print(
            f"{d:<22}{ours['mean']:>8.2f} ±{ours['sd']:.2f}{real['mean']:>8.2f} ±{real['sd']:.2f}"
            f"{result['overlap_area'][d]:>7.2f}"
        )
    print(f"mean OA {result['mean_overlap_area']:.2f}")
    print(f"{'quadrant':<10}" + "".join(f"{name:>19}" for name in EXTRAS))
    for q, row in result["per_quadrant"].items():
        cells = (row[name] for name in EXTRAS)
        print(f"Q{q:<9}" + "".join(f"{cell['mean']:>12.2f} ±{cell['sd']:<5.2f}" for cell in cells))
    if "judge" in result:
        judged = result["judge"]
        h = judged["judge_held_out"]
        print(
            f"held-out judge (right on {h['quadrant']:.0%} quadrant, {h['valence']:.0%} valence, "
            f"{h['arousal']:.0%} arousal of {judged['judge_pieces']['held_out']} held-out pieces):"
        )
        for q, r in [*judged["per_quadrant"].items(), ("all", judged["played"])]:
            print(
                f"  Q{q:<4} quadrant {r['quadrant']:.0%}  valence {r['valence']:.0%}  "
                f"arousal {r['arousal']:.0%}"
            )
    return 0


def _print_form_spread(result: dict[str, Any], as_json: bool) -> int:
    """Print :func:`engine.bench.form.run_form_seeds`'s report: per seed, then mean ± sd."""
    if as_json:
        print(json.dumps(result, indent=2))
        return 0
    spread = result["spread"]
    judged = "judged.quadrant" in spread
    for i, seed in enumerate(result["seeds"]):
        run = result["runs"][i]
        line = f"seed {seed:>10}: mean OA {run['mean_overlap_area']:.3f}"
        if judged:
            rates = " ".join(f"Q{q} {r['quadrant']:.0%}" for q, r in run["judge"]["per_quadrant"].items())
            line += f"  judged quadrant {run['judge']['played']['quadrant']:.0%} ({rates})"
        print(line)
    print(f"over {len(result['seeds'])} seeds, mean ± sd:")
    for name, row in spread.items():
        if isinstance(row, dict):
            print(f"  {name:<34}{row['mean']:>7.3f} ±{row['sd']:.3f}")
    if judged:
        print(f"  lowest judged quadrant in any seed {spread['lowest_quadrant']:.0%}")
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


#: steered session counts ``affetto bench server`` tries
STEERED_COUNTS: Final = (4, 8, 16, 32)


def run_server(args: argparse.Namespace) -> int:
    """Run the server benchmark and print the results (JSON with --json)."""
    from engine.bench.server import fuzz, idle_session_memory, osc_throughput, sessions_held

    choice = None if args.no_midi else port_choice(args)
    check_existing(choice, args.midi_api)
    port = {
        "midi_port": choice.name if choice is not None else None,
        "midi_virtual": choice.virtual if choice is not None else True,
        "midi_api": args.midi_api,
    }
    result = {
        "sessions": sessions_held(seconds=args.seconds, **port),
        "osc": osc_throughput(),
        "memory": idle_session_memory(),
        "fuzz": fuzz(args.osc_packets, args.ws_messages),
    }
    if args.steer > 1:
        result["steered"] = sessions_held(STEERED_COUNTS, seconds=args.seconds, steer=args.steer, **port)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    first = result["sessions"]
    print(
        first.get("device") or f"no device ({first.get('device_error', 'none asked for')}): server clock only"
    )
    for label, runs in (("plain", result["sessions"]), ("steered", result.get("steered"))):
        if runs is None:
            continue
        held = runs
        if label == "steered":
            print(f"steered sessions ({held['steer']} candidates per bar):")
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
                + (f"; bars searched {run['bars_searched']}, searches given up {run['searches_given_up']}"
                   if "bars_searched" in run else "")
            )  # fmt: skip
        print(
            f"max {label} sessions without late events:",
            held["max_sessions_without_late_events"],
            "; outside machine stalls:",
            held["max_sessions_without_late_events_outside_machine_stalls"],
            "(target >= 200)" if label == "plain" else "",
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


def run_flood(args: argparse.Namespace) -> int:
    """Run the flood benchmark and print the results (JSON with --json)."""
    from engine.bench.flood import under_flood

    r = under_flood(args.seconds, args.sessions, flood=not args.no_flood)
    if args.json:
        print(json.dumps(r, indent=2, default=str))
        return 0
    f = r["flooder"]
    print(
        f"flooder: {f['messages']} messages in {f['bundles']} bundles of 64 ({f['per_s']}/s; budget "
        f"{r['budget_per_s']:g}/s), refused: {f['refused'] or 'none'}"
        if f
        else "no flooder (baseline)"
    )
    lat, late, m = r["change_latency"], r["lateness"], r["machine"]
    print(
        f"change latency ({r['sessions']} WebSocket + 1 OSC sessions, immediate): {_fmt(lat)}, "
        f"{lat['unanswered']} unanswered (target <= sync point + {lat['target_ms']:g} ms)"
    )
    print(f"  WebSocket: {_fmt(lat['websocket'])}; OSC: {_fmt(lat['osc'])}")
    print(
        f"other sessions' events: {late['late']} late of {late['events']} "
        f"({late['late_outside_machine_stalls']} outside machine stalls), lateness {_fmt(late)} "
        f"(target p99 <= {late['target_p99_ms']:g} ms)"
    )
    print(
        f"lone probe process: {m['late']} of {m['wakes']} wake-ups late (worst {m['max_lateness_ms']} ms, "
        f"{m['stalls_over_1ms']} over 1 ms)"
    )
    ns = r["new_session_start"]
    print(
        f"new session to its first beat: {_fmt(ns)}; {ns['tries_refused_busy']} tries refused busy, "
        f"{ns['never_started']} never started"
    )
    sv = r["server"]
    print(
        f"server: {sv['cpu_cores']} cores, {sv['requests_applied']} requests applied, "
        f"{sv['errors']} errors; targets met: {r['meets_targets']}"
    )
    return 0


def run_soak(args: argparse.Namespace) -> int:
    """Run the soak benchmark: a progress line per interval, then the summary (JSON with --json).

    Raises:
        CommandError: fewer than two intervals, or the profile cannot be read.
    """
    from engine.bench.soak import format_summary, soak
    from engine.sessions.profile_file import ProfileError, load_profile

    if args.minutes * 60 < 2 * args.interval_s:
        raise CommandError(
            f"--minutes {args.minutes:g} holds fewer than two intervals of {args.interval_s:g} s "
            "(the first is the warm-up)"
        )
    try:
        profile = load_profile(args.profile) if args.profile is not None else None
    except ProfileError as exc:
        raise CommandError(str(exc)) from exc
    out = sys.stderr if args.json else sys.stdout
    result = soak(
        args.sessions, args.minutes, args.interval_s, max_sessions=args.max_sessions, profile=profile,
        seed=args.seed, progress=lambda line: print(line, file=out, flush=True),
    )  # fmt: skip
    print(json.dumps(result, indent=2, default=str) if args.json else format_summary(result))
    return 0


def run_story(args: argparse.Namespace) -> int:
    """Run the story benchmark.

    Raises:
        CommandError: no transcript given and the default one is not there.
    """
    from engine.bench.story import run

    transcript = args.transcript
    if transcript is None:
        transcript = _DATA / "dnd" / "ep1.csv"
        if not transcript.is_file():
            raise CommandError(f"{transcript} is not here: name a transcript (SRT, WebVTT, CSV or text)")
    result = run(transcript, audio=not args.no_audio)
    print(json.dumps(result, indent=2, default=str))
    return 0
