"""Speed of the built-in synth (:mod:`engine.synth.polysynth`) against FluidSynth on the same MIDI file.

:func:`synth_speed` writes a MIDI file that keeps ``voices`` notes sounding the whole time
(piano, pad, bass, pluck and drums, each note re-struck at its own staggered time so the count
stays at ``voices``), then, on one CPU thread each:

* renders it with :func:`engine.synth.polysynth.render_midi` (after a warm-up render, so numba compilation
  is excluded): wall-clock seconds, times real time, the most voices active at once;
* renders it with the ``fluidsynth`` command line (``-ni -F out.wav``, ``synth.cpu-cores=1``,
  reverb and chorus off since the synth has neither) with a General MIDI SoundFont, and the same
  for an almost empty MIDI file: its time is FluidSynth's start-up + SoundFont load, reported and
  subtracted. FluidSynth runs at ``synth.polyphony = 2 * voices`` (GM SoundFont presets such as
  FluidR3's play a stereo pair of sample voices per note, so that holds the same notes) and at
  its default of 256 (every release tail and layer kept).

Each timing is the best of ``repeats`` runs. Without ``fluidsynth`` or a SoundFont the dict says
so in ``fluidsynth_note`` and the FluidSynth numbers are None (no exception).

Run: ``python -m engine.bench.synth [seconds]``.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Final

import mido

from engine.synth.polysynth import render_midi

SOUNDFONT_CANDIDATES: Final = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
)
TICKS_PER_BEAT: Final = 480
TEMPO_BPM: Final = 120
FLUIDSYNTH_DEFAULT_POLYPHONY: Final = 256
# (channel, GM program, share of the voices, lowest note, note step)
_FAMILIES: Final = (
    (0, 0, 0.375, 40, 3),  # piano
    (1, 89, 0.25, 48, 4),  # warm pad
    (2, 33, 0.0625, 28, 12),  # finger bass
    (3, 25, 0.1875, 45, 5),  # steel guitar
)
_DRUM_NOTES: Final = (36, 42, 38, 51, 45, 46, 49, 39, 41, 47, 48, 50)


def _family_counts(voices: int) -> list[int]:
    """Notes per family (piano, pad, bass, pluck, drums) summing to ``voices``."""
    counts = [int(voices * share) for _, _, share, _, _ in _FAMILIES]
    counts.append(max(0, voices - sum(counts)))
    return counts


def write_bench_midi(path: str | os.PathLike[str], seconds: float, voices: int) -> None:
    """A MIDI file that keeps ``voices`` notes sounding for ``seconds`` (see module docstring).

    Melodic notes are re-struck once per bar (2 s), drum notes every eighth note (0.25 s), each
    at its own offset; a re-strike ends the previous note on the same tick.

    Raises:
        ValueError: ``seconds`` <= 0 or ``voices`` < 1.
    """
    if not seconds > 0 or voices < 1:
        raise ValueError(f"seconds must be > 0 and voices >= 1, got {seconds}, {voices}")
    beat_s = 60.0 / TEMPO_BPM
    total = round(seconds / beat_s * TICKS_PER_BEAT)
    bar = 4 * TICKS_PER_BEAT
    eighth = TICKS_PER_BEAT // 2
    events: list[tuple[int, int, mido.Message]] = []  # (tick, order, message); offs before ons
    counts = _family_counts(voices)
    for (channel, program, _, low, step), count in zip(_FAMILIES, counts, strict=False):
        events.append((0, 0, mido.Message("program_change", channel=channel, program=program)))
        for i in range(count):
            note = min(127, low + i * step)
            period = bar
            offset = (i * bar) // max(count, 1) // 2
            _strike_pattern(events, channel, note, 70 + (i * 7) % 40, offset, period, total)
    for i in range(counts[-1]):
        note = _DRUM_NOTES[i % len(_DRUM_NOTES)]
        _strike_pattern(events, 9, note, 80 + (i * 5) % 40, (i * 60) % eighth, eighth, total)
    events.sort(key=lambda e: (e[0], e[1]))
    mid = mido.MidiFile(ticks_per_beat=TICKS_PER_BEAT)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(TEMPO_BPM), time=0))
    last = 0
    for tick, _, msg in events:
        track.append(msg.copy(time=tick - last))
        last = tick
    track.append(mido.MetaMessage("end_of_track", time=max(0, total - last)))
    mid.save(os.fspath(path))


def _strike_pattern(
    events: list[tuple[int, int, mido.Message]],
    channel: int,
    note: int,
    velocity: int,
    offset: int,
    period: int,
    total: int,
) -> None:
    tick = offset
    while tick < total:
        if tick > offset:
            events.append((tick, 1, mido.Message("note_off", channel=channel, note=note, velocity=0)))
        events.append((tick, 2, mido.Message("note_on", channel=channel, note=note, velocity=velocity)))
        tick += period
    events.append((total, 1, mido.Message("note_off", channel=channel, note=note, velocity=0)))


def find_soundfont(soundfont: str | None = None) -> str | None:
    """``soundfont`` if it is a file, else the first General MIDI SoundFont found, else None."""
    for candidate in (soundfont,) if soundfont else SOUNDFONT_CANDIDATES:
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def _time_fluidsynth(
    exe: str, soundfont: str, midi: Path, out_wav: Path, sample_rate_hz: int, polyphony: int
) -> float:
    """Wall-clock seconds of one FluidSynth file render (raises CalledProcessError on failure)."""
    cmd = [
        exe, "-ni", "-q", "-F", str(out_wav), "-T", "wav", "-r", str(sample_rate_hz),
        "-o", f"synth.polyphony={polyphony}", "-o", "synth.cpu-cores=1",
        "-o", "synth.reverb.active=0", "-o", "synth.chorus.active=0",
        soundfont, str(midi),
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def synth_speed(
    seconds: float = 30.0,
    voices: int = 32,
    sample_rate_hz: int = 48_000,
    soundfont: str | None = None,
    *,
    repeats: int = 3,
) -> dict[str, object]:
    """Times real time of the synth and of FluidSynth rendering the same ``voices``-voice MIDI.

    Args:
        seconds: length of the benchmark MIDI, seconds (> 0).
        voices: notes kept sounding (also the synth's ``max_voices``), >= 1.
        sample_rate_hz: both renderers' sample rate, Hz.
        soundfont: a General MIDI .sf2; None: the first of :data:`SOUNDFONT_CANDIDATES` found.
        repeats: runs per timing (the best is kept), >= 1.

    Returns:
        ``seconds``, ``voices``, ``sample_rate_hz``, ``machine``; ``synth_render_s``,
        ``synth_x_realtime``, ``synth_audio_s`` (audio returned: the MIDI and the release tail),
        ``synth_peak_active_voices``, ``synth_dropped_events``; ``fluidsynth`` (version line or
        None), ``soundfont`` (path or None), ``fluidsynth_note`` ("ok" or why FluidSynth was not
        timed), ``fluidsynth_polyphony``, ``fluidsynth_load_s``, ``fluidsynth_render_s``,
        ``fluidsynth_audio_s``, ``fluidsynth_x_realtime_raw``,
        ``fluidsynth_x_realtime_load_subtracted``, the last two at polyphony 256 as
        ``fluidsynth_default_polyphony_x_realtime_raw`` / ``..._load_subtracted``,
        ``speedup_vs_fluidsynth`` (synth over FluidSynth load-subtracted, same polyphony) and
        ``target_met`` (synth at least as fast; None without FluidSynth). "Times real time" is
        ``seconds`` (the MIDI's length) over the wall-clock time of the render, each renderer's
        release tail included (FluidSynth renders until its voices end, the synth for at most 3 s).

    Raises:
        ValueError: ``seconds``, ``voices`` or ``repeats`` out of range.
    """
    if not seconds > 0 or voices < 1 or repeats < 1:
        raise ValueError(f"need seconds > 0, voices >= 1, repeats >= 1; got {seconds}, {voices}, {repeats}")
    result: dict[str, object] = {
        "seconds": float(seconds),
        "voices": voices,
        "sample_rate_hz": sample_rate_hz,
        "machine": f"{platform.machine()} {platform.processor() or platform.system()}, {os.cpu_count()} CPUs",
    }
    with tempfile.TemporaryDirectory(prefix="affetto_bench_synth_") as tmp:
        root = Path(tmp)
        midi = root / "bench.mid"
        empty = root / "empty.mid"
        write_bench_midi(midi, seconds, voices)
        write_bench_midi(empty, 0.05, 1)
        render_midi(empty, sample_rate_hz, max_voices=voices)  # warm-up: numba compile / cache load
        best = float("inf")
        stats: dict[str, int] = {}
        for _ in range(repeats):
            start = time.perf_counter()
            render_midi(midi, sample_rate_hz, max_voices=voices, stats=stats)
            best = min(best, time.perf_counter() - start)
        synth_x = seconds / best
        result.update(
            synth_render_s=best,
            synth_x_realtime=synth_x,
            synth_audio_s=stats["frames"] / sample_rate_hz,
            synth_peak_active_voices=stats["peak_active_voices"],
            synth_dropped_events=stats["dropped_events"],
        )
        result.update(
            _fluidsynth_speed(root, midi, empty, seconds, voices, sample_rate_hz, soundfont, repeats)
        )
    fluid = result["fluidsynth_x_realtime_load_subtracted"]
    speedup = synth_x / fluid if isinstance(fluid, float) else None
    result.update(speedup_vs_fluidsynth=speedup, target_met=None if speedup is None else speedup >= 1.0)
    return result


def _fluidsynth_speed(
    root: Path,
    midi: Path,
    empty: Path,
    seconds: float,
    voices: int,
    sample_rate_hz: int,
    soundfont: str | None,
    repeats: int,
) -> dict[str, object]:
    exe = shutil.which("fluidsynth")
    sf2 = find_soundfont(soundfont)
    keys = (
        "fluidsynth_polyphony", "fluidsynth_load_s", "fluidsynth_render_s", "fluidsynth_audio_s",
        "fluidsynth_x_realtime_raw",
        "fluidsynth_x_realtime_load_subtracted", "fluidsynth_default_polyphony_x_realtime_raw",
        "fluidsynth_default_polyphony_x_realtime_load_subtracted",
    )  # fmt: skip
    result: dict[str, object] = dict.fromkeys(keys)
    result.update(fluidsynth=None, soundfont=sf2)
    if exe is None:
        result["fluidsynth_note"] = (
            "fluidsynth not found on PATH (apt-get install fluidsynth fluid-soundfont-gm)"
        )
        return result
    version = subprocess.run(
        [exe, "--version"], capture_output=True, text=True, check=False
    ).stdout.splitlines()
    result["fluidsynth"] = version[0] if version else exe
    if sf2 is None:
        wanted = soundfont or " or ".join(SOUNDFONT_CANDIDATES)
        result["fluidsynth_note"] = f"no General MIDI SoundFont found ({wanted})"
        return result
    wav = root / "out.wav"
    try:
        for polyphony, prefix in (
            (2 * voices, "fluidsynth"),
            (FLUIDSYNTH_DEFAULT_POLYPHONY, "fluidsynth_default_polyphony"),
        ):
            load = min(
                _time_fluidsynth(exe, sf2, empty, wav, sample_rate_hz, polyphony) for _ in range(repeats)
            )
            render = min(
                _time_fluidsynth(exe, sf2, midi, wav, sample_rate_hz, polyphony) for _ in range(repeats)
            )
            result[f"{prefix}_x_realtime_raw"] = seconds / render
            result[f"{prefix}_x_realtime_load_subtracted"] = seconds / max(render - load, 1e-9)
            if prefix == "fluidsynth":
                with wave.open(str(wav)) as rendered:
                    audio_s = rendered.getnframes() / rendered.getframerate()
                result.update(
                    fluidsynth_polyphony=polyphony,
                    fluidsynth_load_s=load,
                    fluidsynth_render_s=render,
                    fluidsynth_audio_s=audio_s,
                )
    except (OSError, EOFError, wave.Error, subprocess.CalledProcessError) as exc:
        result["fluidsynth_note"] = f"fluidsynth failed: {exc}"
        return result
    result["fluidsynth_note"] = "ok"
    return result


def main(argv: list[str] | None = None) -> int:
    """Print :func:`synth_speed` (optional first argument: seconds)."""
    args = sys.argv[1:] if argv is None else argv
    result = synth_speed(seconds=float(args[0])) if args else synth_speed()
    width = max(len(k) for k in result)
    for key, value in result.items():
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
