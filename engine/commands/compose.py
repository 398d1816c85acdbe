"""``affetto compose``: write one piece at a fixed emotion to a MIDI file, or to a WAV file
rendered by the built-in synth.

The piece is what a game hears at that emotion: one session of the live engine on the offline
clock (:func:`engine.sessions.render.render`: the conductor's form, layers and drums, a MIDI
track per layer, the profile's settings with ``--profile``), ``--steer`` the live engine's
steering (each bar chosen among K candidates, as a session with ``composer: {steer: K}`` plays).
``--guidance`` and ``--no-tonal-prime`` are research settings of the composer alone, which the
live engine does not have: with either the piece is the composer's bare stream, one piano track
(steered by the composer itself with ``--steer``).

The file's extension chooses what is written: ``.mid``/``.midi`` a MIDI file, ``.wav`` audio
(16-bit stereo at 48 kHz); any other is refused before composing. While composing, the bars done
are shown on stderr when stderr is a terminal (rewritten in place); nothing else is written to
stderr, and stdout carries only the one-line summary.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from engine.commands import CommandError, bounded_float, bounded_int, model_error
from engine.commands.progress import ProgressLine

if TYPE_CHECKING:
    from engine.music.conductor import BarInfo
    from engine.music.config import ConductorConfig

MAX_BARS = 10_000
MAX_TEMPERATURE = 100.0
MIDI_SUFFIXES: Final = (".mid", ".midi")
WAV_SUFFIX: Final = ".wav"
WAV_RATE_HZ: Final = 48_000


def register(sub: Any) -> None:
    """Add the ``compose`` parser to ``sub`` (an argparse subparsers action)."""
    p: argparse.ArgumentParser = sub.add_parser(
        "compose",
        help="compose a piece at a given emotion and write it as MIDI (or WAV)",
        description="Compose a piece at a fixed (valence, arousal) and write it as a MIDI file (.mid) or "
        "as audio rendered by the built-in synth (.wav). On a terminal the bars done are shown on stderr.",
    )
    p.add_argument(
        "--valence",
        type=bounded_float("valence", -1, 1),
        default=0.0,
        help="valence in [-1, 1]: sad/dark (-1) .. happy/bright (+1) (default 0)",
    )
    p.add_argument(
        "--arousal",
        type=bounded_float("arousal", -1, 1),
        default=0.0,
        help="arousal in [-1, 1]: calm (-1) .. energetic (+1) (default 0)",
    )
    p.add_argument(
        "--bars", type=bounded_int("bars", 1, MAX_BARS), default=16, help="bars to compose (default 16)"
    )
    p.add_argument(
        "--seed", type=bounded_int("seed", 0), default=None, help="random seed >= 0 (default: random)"
    )
    p.add_argument(
        "-o", "--output", required=True, type=Path,
        help="file to write: .mid/.midi (MIDI) or .wav (audio through the built-in synth)",
    )  # fmt: skip
    p.add_argument(
        "--tempo-bpm",
        type=bounded_float("tempo-bpm", 0, 1000, low_open=True),
        default=None,
        help="tempo in quarter notes per minute, (0, 1000] (default: follows arousal, 72 at -1 .. 144 at +1)",
    )
    p.add_argument("--meter", type=int, choices=(2, 3, 4), default=4, help="beats per bar (default 4)")
    p.add_argument(
        "--temperature",
        type=bounded_float("temperature", 0, MAX_TEMPERATURE, low_open=True),
        default=1.0,
        help=f"sampling temperature in (0, {MAX_TEMPERATURE:g}] (default 1.0)",
    )
    p.add_argument(
        "--top-p",
        type=bounded_float("top-p", 0, 1, low_open=True),
        default=0.95,
        help="nucleus mass in (0, 1] (default 0.95)",
    )
    p.add_argument(
        "--guidance",
        type=bounded_float("guidance", 0, 8),
        default=0.0,
        help="valence guidance in [0, 8]: amplify the difference valence makes (default 0: off)",
    )
    p.add_argument(
        "--key-strength",
        type=bounded_float("key-strength", 0, 8),
        default=None,
        help="pull toward the primed key's tonal hierarchy, in nats, [0, 8] (default 1.5; 0: off)",
    )
    p.add_argument(
        "--no-tonal-prime",
        action="store_true",
        help="do not start from a silent bar in a key whose mode follows the valence",
    )
    p.add_argument(
        "--steer",
        type=bounded_int("steer", 0, 32),
        default=None,
        help="emotion-steered decoding: sample K candidates per bar, keep the one the emotion "
        "recognizer puts closest to the target (weighed with its likelihood); 0..32 (default: the "
        "profile's, else 0/1: off), as the live engine steers",
    )
    p.add_argument(
        "--profile", type=Path, default=None,
        help="a game profile (layers, tempo range, key, composer settings) to play the piece with",
    )  # fmt: skip
    p.add_argument("--model", type=Path, default=None, help="model directory (default: the shipped model)")
    p.add_argument(
        "--provider",
        choices=("cpu", "cuda"),
        default=None,
        help="onnxruntime execution provider (default: cuda if available, else cpu)",
    )
    p.add_argument(
        "--precision",
        choices=("fp32", "int8"),
        default="fp32",
        help="model weights: fp32 (as trained) or int8 (quantized, ~3x faster on CPU; default fp32)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Compose and write the file; prints a one-line summary.

    Raises:
        CommandError: the model cannot be loaded or the file cannot be written.
    """
    from engine.model.composer import DEFAULT_KEY_STRENGTH, Composer, check_seed
    from engine.music.config import Emotion
    from engine.music.tempo_map import tempo_for_emotion
    from engine.tokens import codec

    if not args.output.parent.is_dir():
        raise CommandError(f"cannot write {args.output}: directory {args.output.parent} does not exist")
    suffix = args.output.suffix.lower()
    if suffix not in (*MIDI_SUFFIXES, WAV_SUFFIX):
        raise CommandError(
            f"cannot write {args.output}: unknown file type {args.output.suffix or '(no extension)'!r}; "
            "use .mid or .midi (MIDI) or .wav (audio through the built-in synth)"
        )
    seed = check_seed(args.seed)
    config = _config(args)
    bare = args.guidance > 0 or args.no_tonal_prime
    if args.steer is None:
        args.steer = 0 if bare else config.steer
    if args.tempo_bpm is None:
        args.tempo_bpm = (
            tempo_for_emotion(args.arousal) if bare else config.tempo_for(Emotion(args.valence, args.arousal))
        )
    try:
        composer = Composer(
            args.model,
            providers=args.provider,
            max_streams=1,
            meter_beats=args.meter,
            precision=args.precision,
        )
    except (FileNotFoundError, ValueError) as exc:
        raise model_error(exc, args.model) from exc
    if args.steer > 1:
        from engine.recognizer.emotion_recognizer import EmotionRecognizer

        try:
            composer = Composer(
                artifact=composer.artifact,
                max_streams=1,
                meter_beats=args.meter,
                recognizer=EmotionRecognizer.load(),
            )
        except (FileNotFoundError, ValueError) as exc:
            raise CommandError(f"--steer needs the emotion recognizer: {exc}") from exc
    progress = ProgressLine(sys.stderr, lambda done, total: f"composing: {done}/{total} bars")
    if not bare:
        return _play(
            args, composer, replace(config, fixed_tempo_bpm=args.tempo_bpm, steer=args.steer), seed, progress
        )
    notes, bar_beats = composer.compose(
        args.valence,
        args.arousal,
        args.bars,
        seed=seed,
        temperature=args.temperature,
        top_p=args.top_p,
        guidance=args.guidance,
        tonal_prime=not args.no_tonal_prime,
        key_strength=DEFAULT_KEY_STRENGTH if args.key_strength is None else args.key_strength,
        steer=args.steer,
        tempo_bpm=args.tempo_bpm,
        on_bar=progress,
    )
    progress.close()
    try:
        if suffix == WAV_SUFFIX:
            seconds = _write_wav(args.output, notes, bar_beats, args.tempo_bpm)
            what = f"{seconds:.1f} s of audio from "
        else:
            codec.write_notes_midi(args.output, notes, bar_beats, tempo_bpm=args.tempo_bpm)
            what = ""
    except OSError as exc:
        raise CommandError(f"cannot write {args.output}: {exc.strerror or exc}") from exc
    print(
        f"wrote {args.output}: {what}{len(notes)} notes, {len(bar_beats)} bars of {args.meter}/4 "
        f"at {args.tempo_bpm:g} BPM (valence {args.valence:+.2f}, arousal {args.arousal:+.2f}, "
        f"seed {seed}, provider {composer.provider}"
        + (f", steered with {args.steer} candidates/bar" if args.steer > 1 else "")
        + ", the composer alone)",
        file=sys.stdout,
    )
    return 0


def _config(args: argparse.Namespace) -> ConductorConfig:
    """The conductor settings: the profile's (or the defaults), with the options given.

    Raises:
        CommandError: the profile cannot be read.
    """
    from engine.music.config import ConductorConfig
    from engine.sessions.profile_file import ProfileError, load_profile

    config = ConductorConfig()
    if args.profile is not None:
        try:
            config = load_profile(args.profile).config
        except ProfileError as exc:
            raise CommandError(str(exc)) from exc
    config = replace(config, temperature=args.temperature, top_p=args.top_p)
    if args.key_strength is not None:
        config = replace(config, key_strength=args.key_strength)
    return config


def _play(
    args: argparse.Namespace, composer: Any, config: ConductorConfig, seed: int, progress: ProgressLine
) -> int:
    """Play the piece on the live engine's offline clock and write it (a track per layer).

    Raises:
        CommandError: the file cannot be written.
    """
    from engine.music.config import Emotion
    from engine.outputs.recorders import write_wav
    from engine.realtime.kinds import NOTE_ON
    from engine.sessions.render import render

    bars, meter = args.bars, composer.meter_beats
    wav = args.output.suffix.lower() == WAV_SUFFIX

    def on_bar(info: BarInfo, _time_s: float) -> None:
        if info.index < bars:
            progress(info.index + 1, bars)

    rendered = render(
        composer, [], float(bars * meter), seed=seed, config=config, start_state=None,
        start_emotion=Emotion(args.valence, args.arousal), audio=wav, sample_rate_hz=WAV_RATE_HZ,
        on_bar=on_bar,
    )  # fmt: skip
    progress.close()
    notes = sum(1 for _, kind, *_ in rendered.recorder.events if kind == NOTE_ON)
    heard = sorted({name for b in rendered.bars.values() if b.index < bars for name in b.layers})
    try:
        if wav:
            assert rendered.audio is not None
            write_wav(args.output, rendered.audio, rendered.sample_rate_hz)
            what = f"{rendered.duration_s:.1f} s of audio from "
        else:
            rendered.recorder.write(args.output, rendered.tempo_map, meter)
            what = ""
    except OSError as exc:
        raise CommandError(f"cannot write {args.output}: {exc.strerror or exc}") from exc
    print(
        f"wrote {args.output}: {what}{notes} notes, {bars} bars of {meter}/4 at {args.tempo_bpm:g} BPM "
        f"(valence {args.valence:+.2f}, arousal {args.arousal:+.2f}, seed {seed}, "
        f"provider {composer.provider}; layers {' '.join(heard)}"
        + (f"; steered with {config.steer} candidates/bar" if config.steer > 1 else "")
        + ")",
        file=sys.stdout,
    )
    return 0


def _write_wav(path: Path, notes: list[Any], bar_beats: list[int], tempo_bpm: float) -> float:
    """Render the piece through the built-in synth to a 16-bit stereo WAV file; returns its seconds.

    Raises:
        OSError: the file cannot be written.
    """
    from engine.outputs.recorders import write_wav
    from engine.synth.polysynth import render_midi
    from engine.tokens import codec

    with tempfile.TemporaryDirectory(prefix="affetto-compose-") as tmp:
        midi = Path(tmp) / "piece.mid"
        codec.write_notes_midi(midi, notes, bar_beats, tempo_bpm=tempo_bpm)
        audio = render_midi(midi, WAV_RATE_HZ)
    write_wav(path, audio, WAV_RATE_HZ)
    return audio.shape[0] / WAV_RATE_HZ
