"""``affetto serve``: the game-facing server (OSC over UDP and WebSocket; see
bindings/PROTOCOL.md)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from engine.checks import DEFAULT_MAX_STEERED, MAX_STEER
from engine.commands import CommandError, bounded_float, bounded_int, model_error
from engine.commands.first_run import compile_first
from engine.commands.ports import add_port_options, check_existing, port_choice, port_error


def register(sub: Any) -> None:
    """Add the ``serve`` parser to ``sub`` (an argparse subparsers action)."""
    p: argparse.ArgumentParser = sub.add_parser(
        "serve",
        help="serve games over OSC (UDP) and WebSocket",
        description="Run the game-facing server: OSC over UDP and WebSocket JSON, the same operations "
        "on both (bindings/PROTOCOL.md). Binds to loopback unless --bind says otherwise; beyond "
        "loopback a WebSocket --token and an OSC --allow list are required.",
    )
    p.add_argument(
        "--osc-port", type=bounded_int("osc-port", 0, 65535), default=9000, help="UDP port (default 9000)"
    )
    p.add_argument(
        "--ws-port", type=bounded_int("ws-port", 0, 65535), default=9001, help="TCP port (default 9001)"
    )
    p.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument(
        "--midi-clock",
        action="store_true",
        help="sessions send MIDI clock (24 ppqn, Start/Stop/Continue/Song Position) on the MIDI port; "
        "meant for one session on the port (each session has its own clock)",
    )
    p.add_argument(
        "--ui", action="store_true",
        help="serve the control surface: a page to see, steer and hear every session (--ui-port)",
    )  # fmt: skip
    p.add_argument(
        "--ui-port", type=bounded_int("ui-port", 0, 65535), default=9002,
        help="TCP port of the --ui page (default 9002; on --bind, with the --token rule beyond loopback)",
    )  # fmt: skip
    p.add_argument("--token", default=None, help="WebSocket shared secret (required beyond loopback)")
    p.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="ADDR",
        help="OSC client address or network (repeatable)",
    )
    p.add_argument(
        "--max-steered", type=bounded_int("max-steered", 0, 4096), default=DEFAULT_MAX_STEERED,
        help="sessions steered at once (a profile's composer.steer > 1; each costs the CPU of many "
        "plain sessions, see affetto bench server; those beyond play unsteered; "
        f"default {DEFAULT_MAX_STEERED})",
    )  # fmt: skip
    p.add_argument(
        "--max-sessions",
        type=bounded_int("max-sessions", 1, 4096),
        default=256,
        help="session slots (default 256)",
    )
    p.add_argument(
        "--idle-timeout", type=bounded_float("idle-timeout", 1.0, 86400.0), default=60.0,
        help="seconds without requests before a session expires (default 60)",
    )  # fmt: skip
    p.add_argument(
        "--model", type=Path, default=None, help="composer model directory (default: the shipped one)"
    )
    p.add_argument("--profile", type=Path, default=None, help="game profile YAML (see examples/profiles/)")
    p.add_argument(
        "--precision", choices=("int8", "fp32"), default="int8",
        help="composer weights: int8 (default; ~4x the tokens/s on a CPU, same validation loss) or fp32",
    )  # fmt: skip
    out = p.add_argument_group(
        "outputs", "what sessions play into (each session chooses among them with the output op)"
    )
    out.add_argument("--audio", action="store_true", help="play through the built-in synth (audio device)")
    out.add_argument("--device", default=None, help="audio output device (name or index)")
    out.add_argument("--hostapi", default=None, help="PortAudio host API: jack, alsa, ... (default: any)")
    add_port_options(out)
    out.add_argument("--midi-api", default=None, help="MIDI API: alsa, jack, coremidi, winmm")
    out.add_argument(
        "--silent-sessions", action="store_true",
        help="new sessions play into no output until they choose one (default: into every output)",
    )  # fmt: skip
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted (Ctrl-C or SIGTERM); every session's notes are released on exit.

    Raises:
        CommandError: bad security settings, a port in use, or the model cannot be loaded.
    """
    from engine.model.composer import Composer
    from engine.outputs.audio_stream import AudioUnavailable, audio_available
    from engine.outputs.midi_port import MidiPortError
    from engine.outputs.output_process import OutputProcess, OutputProcessError
    from engine.server.transports import AffettoServer, ServerSettings, parse_allowlist
    from engine.sessions.host import SessionHost
    from engine.sessions.profile import DEFAULT_PROFILE
    from engine.sessions.profile_file import ProfileError, load_profile

    try:
        settings = ServerSettings(
            bind=args.bind, osc_port=args.osc_port, ws_port=args.ws_port, token=args.token,
            osc_allow=parse_allowlist(args.allow), ui_port=args.ui_port if args.ui else None,
        )  # fmt: skip
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    try:
        profile = load_profile(args.profile) if args.profile is not None else None
    except ProfileError as exc:
        raise CommandError(str(exc)) from exc
    if args.midi_clock:  # every session sends MIDI clock with its notes (one session per port, then)
        base = profile or DEFAULT_PROFILE
        profile = dataclasses.replace(base, config=dataclasses.replace(base.config, midi_clock=True))
    choice = port_choice(args)
    check_existing(choice, args.midi_api)  # before the model loads (and the first run's compile)
    device = int(args.device) if args.device is not None and args.device.isdigit() else args.device
    if args.audio:  # a missing device says so at once, not after the compile
        ok, reason = audio_available(device, hostapi=args.hostapi)
        if not ok:
            raise CommandError(reason)
    try:
        steer = (profile or DEFAULT_PROFILE).config.steer  # every steered session's candidates at once
        composer = Composer(
            args.model, max_streams=args.max_sessions, intra_op_threads=1, precision=args.precision,
            steer_rows=max(MAX_STEER, steer * min(args.max_steered, args.max_sessions)),
        )  # fmt: skip
    except (FileNotFoundError, ValueError) as exc:
        raise model_error(exc, args.model) from exc
    devices = args.audio or choice is not None  # played in a process of their own
    compile_first(composer, "serve", synth=args.audio, ring=devices)  # here, before the output process
    outputs: OutputProcess | None = None
    try:
        if devices:
            outputs = OutputProcess(
                audio=args.audio, midi_port=choice.name if choice is not None else None,
                midi_virtual=choice.virtual if choice is not None else None, midi_api=args.midi_api,
                device=device, hostapi=args.hostapi,
            )  # fmt: skip
    except MidiPortError as exc:
        raise port_error(exc) from exc
    except (AudioUnavailable, OutputProcessError) as exc:
        raise CommandError(str(exc)) from exc
    try:
        host = SessionHost(
            composer, profile, idle_timeout_s=args.idle_timeout, outputs=outputs,
            default_outputs=() if args.silent_sessions else None, on_error=ErrorLog(),
            max_steered=min(args.max_steered, args.max_sessions),
        )  # fmt: skip
        server = AffettoServer(host, settings)
        asyncio.run(_serve(server))
    except OSError as exc:
        raise CommandError(f"cannot listen on {args.bind}: {exc.strerror or exc}") from exc
    finally:
        if outputs is not None:
            outputs.close()
    return 0


class ErrorLog:
    """Prints the host's problems to stderr, at most one line every ``interval_s`` (the others are
    counted into the next line): a broken output must not flood the terminal or slow the clock."""

    def __init__(self, interval_s: float = 1.0) -> None:
        self.interval_s = interval_s
        self._next = 0.0
        self._held = 0
        self._lock = threading.Lock()

    def __call__(self, message: str) -> None:
        now = time.monotonic()
        with self._lock:
            if now < self._next:
                self._held += 1
                return
            held, self._held = self._held, 0
            self._next = now + self.interval_s
        more = f" (and {held} more problems since the last line)" if held else ""
        print(f"affetto serve: {message}{more}", file=sys.stderr, flush=True)


async def _serve(server: Any) -> None:
    await server.start()
    if server.host.outputs is not None:
        server.host.outputs.start()  # after the host has loaded its hot loops (no stall while audio runs)
    print(
        f"affetto serve: OSC udp://{server.settings.bind}:{server.osc_port}  "
        f"WebSocket ws://{server.settings.bind}:{server.ws_port}  "
        f"outputs: {', '.join(server.host.output_names)}  (Ctrl-C to stop)",
        flush=True,
    )
    if server.page is not None:
        host = server.settings.bind if ":" not in server.settings.bind else f"[{server.settings.bind}]"
        token = "/?token=<the token>" if server.page.token_required else "/"
        print(f"affetto serve: control surface http://{host}:{server.page.bound_port}{token}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.close()
        print("affetto serve: stopped; every session's notes released", flush=True)
