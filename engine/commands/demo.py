"""``affetto demo``: a scripted game scene (explore → danger → combat → victory → sorrow).

On speakers when the machine has an audio output; otherwise (or with ``--out DIR``) it renders
the scene to ``demo.wav`` and ``demo.mid`` (one track per layer) and says so. A timeline shows
each bar as it sounds: state, emotion, tempo, key and the layers playing.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from engine.commands import CommandError, bounded_int, model_error
from engine.commands.first_run import compile_first
from engine.commands.ports import add_port_options, checked_port_name, port_choice, port_error


def register(sub: Any) -> None:
    """Add the ``demo`` parser to ``sub`` (an argparse subparsers action)."""
    p: argparse.ArgumentParser = sub.add_parser(
        "demo",
        help="play a scripted scene (explore, danger, combat, victory, sorrow) live or to files",
        description="Play the demo scene on the speakers, or write DIR/demo.wav and DIR/demo.mid with --out. "
        "Without an audio output the files are written to the current directory.",
    )
    p.add_argument("--out", type=Path, default=None, help="write DIR/demo.wav and DIR/demo.mid, do not play")
    p.add_argument(
        "--seed", type=bounded_int("seed", 0, 2**63 - 1), default=7, help="session seed (default 7)"
    )
    add_port_options(p)
    p.add_argument(
        "--midi-api", default=None, help="MIDI API: alsa, jack, coremidi, winmm (default: automatic)"
    )
    p.add_argument(
        "--device", default=None, help="audio output device (name or index; default: the system's)"
    )
    p.add_argument(
        "--model", type=Path, default=None, help="composer model directory (default: the shipped one)"
    )
    p.add_argument(
        "--midi-clock", action="store_true", help="send MIDI clock (24 ppqn, Start/Stop) on the MIDI port"
    )
    p.add_argument("--quiet", action="store_true", help="no timeline")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Play or render the demo scene.

    Raises:
        CommandError: the model cannot be loaded, the output directory cannot be written, or a
            requested MIDI port cannot be opened.
    """
    from engine.model.composer import Composer
    from engine.outputs.audio_stream import audio_available

    choice = port_choice(args)
    midi_port = checked_port_name(choice, args.midi_api) if choice is not None and args.out is None else None
    try:
        composer = Composer(args.model, max_streams=2, intra_op_threads=1)
    except (FileNotFoundError, ValueError) as exc:
        raise model_error(exc, args.model) from exc
    compile_first(composer, "demo", synth=True)
    if args.out is not None:
        render_files(composer, args.out, args.seed, quiet=args.quiet)
        return 0
    device = _device(args.device)
    ok, reason = audio_available(device)
    if not ok:
        print(f"no audio output ({reason}); writing demo.wav and demo.mid here instead")
        render_files(composer, Path("."), args.seed, quiet=args.quiet)
        return 0
    play_live(
        composer, args.seed, device=device, midi_port=midi_port, midi_api=args.midi_api, quiet=args.quiet,
        midi_clock=args.midi_clock,
    )  # fmt: skip
    return 0


def _device(text: str | None) -> str | int | None:
    if text is None:
        return None
    return int(text) if text.isdigit() else text


def render_files(composer: Any, out_dir: Path, seed: int, *, quiet: bool = False) -> tuple[Path, Path]:
    """Render the demo scene to ``out_dir/demo.wav`` and ``out_dir/demo.mid``; returns their paths.

    Raises:
        CommandError: the directory cannot be created or written.
    """
    from engine.music.config import ConductorConfig
    from engine.outputs.recorders import write_wav
    from engine.sessions.render import render, track_names
    from engine.sessions.scenes import DEMO_CUES, DEMO_END_BEAT, DEMO_STEER, Timeline, demo_theme

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"cannot create {out_dir}: {exc.strerror or exc}") from exc
    timeline = Timeline()
    started = time.perf_counter()
    result = render(
        composer,
        DEMO_CUES,
        DEMO_END_BEAT,
        seed=seed,
        config=ConductorConfig(steer=DEMO_STEER),
        themes=[demo_theme()],
        on_bar=None if quiet else timeline.on_bar,
        on_cue=None if quiet else timeline.on_cue,
    )
    elapsed = time.perf_counter() - started
    wav_path, mid_path = out_dir / "demo.wav", out_dir / "demo.mid"
    try:
        assert result.audio is not None
        write_wav(wav_path, result.audio, result.sample_rate_hz)
        result.recorder.write(mid_path, result.tempo_map)
    except OSError as exc:
        raise CommandError(f"cannot write to {out_dir}: {exc.strerror or exc}") from exc
    names = ", ".join(track_names(ConductorConfig()).values())
    print(
        f"wrote {wav_path} ({result.duration_s:.1f} s, {result.sample_rate_hz} Hz) and {mid_path} "
        f"(tracks: {names}) in {elapsed:.1f} s"
    )
    return wav_path, mid_path


def play_live(
    composer: Any,
    seed: int,
    *,
    device: str | int | None,
    midi_port: str | None,
    midi_api: str | None = None,
    quiet: bool,
    midi_clock: bool = False,
) -> None:
    """Play the demo scene on the speakers (and a MIDI port: see
    :func:`engine.commands.ports.checked_port_name`), with the timeline.

    Raises:
        CommandError: the audio device or the MIDI port cannot be opened.
    """
    from engine.music.config import ConductorConfig
    from engine.outputs.audio_stream import AudioUnavailable
    from engine.outputs.midi_port import MidiPortError
    from engine.sessions.live_rig import LiveRig
    from engine.sessions.scenes import DEMO_CUES, DEMO_END_BEAT, DEMO_STEER, Timeline, demo_theme

    timeline = Timeline()
    try:
        rig = LiveRig(
            composer, seed, config=ConductorConfig(midi_clock=midi_clock, steer=DEMO_STEER), device=device,
            midi_port=midi_port, midi_api=midi_api, themes=[demo_theme()],
        )  # fmt: skip
    except MidiPortError as exc:
        raise port_error(exc) from exc
    except AudioUnavailable as exc:
        raise CommandError(str(exc)) from exc
    with rig:
        rig.play_script(DEMO_CUES, DEMO_END_BEAT, None if quiet else timeline.on_cue)
        if not quiet:
            rig.add_bar_listener(timeline.on_bar)
        rig.start()
        try:
            while not rig.finished.wait(0.1):
                pass
        except KeyboardInterrupt:
            print("stopped")
        rig.stop(tail_s=2.0)
    for err in rig.errors[:5]:
        print(f"warning: {err}")
