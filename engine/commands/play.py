"""``affetto play``: live music on the speakers (and/or a MIDI port), steered from the keyboard
or by a scripted arc (``--arc FILE.yaml``, see :mod:`engine.sessions.scene_file`).

Keys: ←/→ valence, ↑/↓ arousal, [ ] tension, 1-8 states, space/h r f n stingers
(hit, rise, fall, fanfare), i immediate/beat sync, q quit.
"""

from __future__ import annotations

import argparse
import os
import select
import sys
from pathlib import Path
from typing import Any, Final

from engine.commands import CommandError, bounded_int, model_error
from engine.commands.first_run import compile_first
from engine.commands.ports import add_port_options, checked_port_name, port_choice, port_error

STEP: Final = 0.2
STINGER_KEYS: Final = {" ": "hit", "h": "hit", "r": "rise", "f": "fall", "n": "fanfare"}
ARROWS: Final = {"\x1b[A": (0.0, STEP), "\x1b[B": (0.0, -STEP), "\x1b[C": (STEP, 0.0), "\x1b[D": (-STEP, 0.0)}


def register(sub: Any) -> None:
    """Add the ``play`` parser to ``sub`` (an argparse subparsers action)."""
    p: argparse.ArgumentParser = sub.add_parser(
        "play",
        help="play live, steered from the keyboard or by a scripted arc",
        description="Play live on the speakers (built-in synth) and/or a MIDI port. Steer with the keyboard "
        "(arrows: valence/arousal, [ ]: tension, 1-8: states, space h r f n: stingers, i: sync, q: quit) "
        "or give a scripted arc with --arc FILE.yaml.",
    )
    p.add_argument("--arc", type=Path, default=None, help="a YAML scene of cues (see examples/arc.yaml)")
    p.add_argument("--state", default="explore", help="starting state (default explore)")
    p.add_argument("--seed", type=bounded_int("seed", 0, 2**63 - 1), default=None, help="session seed")
    add_port_options(p)
    p.add_argument(
        "--midi-api", default=None, help="MIDI API: alsa, jack, coremidi, winmm (default: automatic)"
    )
    p.add_argument("--no-audio", action="store_true", help="MIDI only (needs --midi-port or --virtual-port)")
    p.add_argument("--device", default=None, help="audio output device (name or index)")
    p.add_argument("--midi-clock", action="store_true", help="send MIDI clock (24 ppqn) on the MIDI port")
    p.add_argument("--record-wav", type=Path, default=None, help="record the audio to this WAV file")
    p.add_argument(
        "--record-mid", type=Path, default=None, help="record the MIDI (a track per layer) to this file"
    )
    p.add_argument(
        "--model", type=Path, default=None, help="composer model directory (default: the shipped one)"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Play until the arc ends or the user quits.

    Raises:
        CommandError: no way to steer (no terminal and no arc), bad arc file, outputs unavailable.
    """
    import secrets

    from engine.model.composer import Composer
    from engine.music.config import ConductorConfig
    from engine.outputs.audio_stream import AudioUnavailable, audio_available
    from engine.outputs.midi_port import MidiPortError
    from engine.sessions.live_rig import LiveRig
    from engine.sessions.scene_file import SceneFileError, load_scene
    from engine.sessions.scenes import Timeline

    choice = port_choice(args)
    if args.no_audio and choice is None:
        raise CommandError("--no-audio needs --midi-port or --virtual-port (else nothing would be heard)")
    scene = None
    if args.arc is not None:
        try:
            scene = load_scene(args.arc)
        except SceneFileError as exc:
            raise CommandError(str(exc)) from exc
    elif not sys.stdin.isatty():
        raise CommandError("keyboard control needs a terminal; give a scripted arc with --arc FILE.yaml")
    midi_port = checked_port_name(choice, args.midi_api) if choice is not None else None
    try:
        composer = Composer(args.model, max_streams=2, intra_op_threads=1)
    except (FileNotFoundError, ValueError) as exc:
        raise model_error(exc, args.model) from exc
    device = int(args.device) if args.device is not None and args.device.isdigit() else args.device
    audio = not args.no_audio
    if audio:  # a missing device says so at once, not after the first run's compile
        ok, reason = audio_available(device)
        if not ok and midi_port is None:
            raise CommandError(reason)
        if not ok:
            print(f"warning: no audio ({reason}); playing MIDI only")
            audio = False
    compile_first(composer, "play", synth=audio)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    start_state = scene.start_state if scene is not None else args.state
    timeline = Timeline()
    config = ConductorConfig(midi_clock=args.midi_clock)

    def open_rig(audio: bool) -> LiveRig:
        return LiveRig(
            composer, seed, audio=audio, device=device, midi_port=midi_port, midi_api=args.midi_api,
            start_state=start_state, config=config, on_error=lambda e: print(f"warning: {e}"),
            record_wav=args.record_wav if audio else None, record_mid=args.record_mid,
        )  # fmt: skip

    try:
        try:
            rig = open_rig(audio)
        except AudioUnavailable as exc:
            if midi_port is None:
                raise
            print(f"warning: no audio ({exc}); playing MIDI only")
            rig = open_rig(False)
    except MidiPortError as exc:
        raise port_error(exc) from exc
    except (AudioUnavailable, OSError) as exc:
        raise CommandError(str(exc)) from exc
    except ValueError as exc:  # an unknown state
        raise CommandError(str(exc)) from exc
    print(f"affetto play: seed {seed}" + (f", MIDI on {rig.port.name!r}" if rig.port is not None else ""))
    with rig:
        rig.add_bar_listener(timeline.on_bar)
        if scene is not None:
            rig.play_script(scene.cues, scene.end_beat, timeline.on_cue)
        rig.start()
        try:
            if scene is not None:
                while not rig.finished.wait(0.1):
                    pass
            else:
                _keyboard(rig)
        except KeyboardInterrupt:
            print("stopped")
        rig.stop(tail_s=1.5 if rig.audio is not None else 0.0)
    return 0


def _keyboard(rig: Any) -> None:
    """Read keys in raw mode and turn them into cues until q (or Ctrl-C)."""
    import termios
    import tty

    from engine.sessions.ops import Cue

    states = list(rig.config.states)
    print(
        "keys: ←/→ valence  ↑/↓ arousal  [ ] tension  "
        + "  ".join(f"{i + 1} {s}" for i, s in enumerate(states[:8]))
    )
    print("      space/h r f n stingers  i sync  q quit")
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    target = rig.config.states[rig.host.profile.start_state].emotion
    valence, arousal, tension = target.valence, target.arousal, target.tension
    sync = "beat"
    try:
        tty.setcbreak(fd)
        while not rig.finished.is_set():
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                continue
            key = os.read(fd, 8).decode(errors="ignore")
            if key in ("q", "\x03"):
                return
            if key in ARROWS or key in ("[", "]"):
                dv, da = ARROWS.get(key, (0.0, 0.0))
                dt = STEP if key == "]" else -STEP if key == "[" else 0.0
                valence = max(-1.0, min(1.0, valence + dv))
                arousal = max(-1.0, min(1.0, arousal + da))
                tension = max(-1.0, min(1.0, tension + dt))
                rig.cue(Cue(0.0, "emotion", valence=valence, arousal=arousal, tension=tension, sync=sync))
                print(f"          » V{valence:+.1f} A{arousal:+.1f} T{tension:+.1f} ({sync})")
            elif key.isdigit() and 1 <= int(key) <= min(8, len(states)):
                name = states[int(key) - 1]
                target = rig.config.states[name].emotion
                valence, arousal, tension = target.valence, target.arousal, target.tension
                rig.cue(Cue(0.0, "state", name))
                print(f"          » state {name}")
            elif key in STINGER_KEYS:
                rig.cue(Cue(0.0, "stinger", STINGER_KEYS[key]))
            elif key == "i":
                sync = "immediate" if sync == "beat" else "beat"
                print(f"          » emotion changes land: {sync}")
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
