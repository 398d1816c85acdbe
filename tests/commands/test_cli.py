"""The ``affetto`` command line: compose end to end, bench, and bad arguments."""

from __future__ import annotations

import json
import os
import pty
import re
import shlex
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import mido
import numpy as np
import pytest
from system_parts import portaudio_missing

from engine.cli import main
from engine.model.composer import Composer
from engine.music.config import ConductorConfig, Emotion
from engine.realtime.kinds import NOTE_ON
from engine.sessions.render import render

ROOT = Path(__file__).resolve().parents[2]


def _note_ons(path: Path) -> list[tuple[int, int]]:
    """(absolute tick, pitch) of every note-on in a MIDI file."""
    out = []
    for track in mido.MidiFile(path).tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                out.append((tick, msg.note))
    return out


def test_compose_writes_requested_bars(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "calm.mid"
    argv = shlex.split(
        "compose --valence 0.7 --arousal -0.4 --bars 16 --seed 3 --tempo-bpm 90 --provider cpu"
    )
    argv += ["-o", str(out), "--model", str(model_dir)]
    assert main(argv) == 0
    summary = capsys.readouterr().out.strip()
    assert "16 bars of 4/4" in summary and "CPUExecutionProvider" in summary and "seed 3" in summary
    midi = mido.MidiFile(out)
    meta = [m for m in midi.tracks[0] if m.is_meta]
    assert any(m.type == "set_tempo" and round(mido.tempo2bpm(m.tempo)) == 90 for m in meta)
    assert [(m.numerator, m.denominator) for m in meta if m.type == "time_signature"] == [(4, 4)]
    # what the live engine plays at that emotion: a track per layer, the notes of the library's
    # offline render with the same seed, all inside the 16 bars
    names = [t.name for t in midi.tracks]
    assert {"melody", "harmony", "bass"} <= set(names) and "layers bass harmony melody" in summary
    composer = Composer(model_dir, providers="cpu", max_streams=1)
    config = ConductorConfig(fixed_tempo_bpm=90.0)
    r = render(
        composer,
        [],
        64.0,
        seed=3,
        config=config,
        start_state=None,
        start_emotion=Emotion(0.7, -0.4),
        audio=False,
    )
    played = [
        (round(r.tempo_map.beat(t) * midi.ticks_per_beat), a)
        for t, k, _, a, _ in r.recorder.events
        if k == NOTE_ON
    ]
    ons = _note_ons(out)
    assert sorted(ons) == sorted(played) and f"{len(ons)} notes" in summary
    assert all(tick < 16 * 4 * midi.ticks_per_beat for tick, _ in ons)


def test_installed_script(tiny_model_dir: Path, tmp_path: Path) -> None:
    exe = shutil.which("affetto")
    if exe is None:
        pytest.skip("the affetto console script is not installed (pip install -e .)")
    out = tmp_path / "x.mid"
    proc = subprocess.run(
        [
            exe,
            *shlex.split("compose --valence -0.5 --arousal 0.5 --bars 4 --seed 1 --meter 3"),
            *["-o", str(out), "--model", str(tiny_model_dir)],
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "4 bars of 3/4" in proc.stdout
    midi = mido.MidiFile(out)
    # no --tempo-bpm: the tempo follows arousal as live sessions' does (0.5 → 126 BPM in 72..144)
    assert [round(mido.tempo2bpm(m.tempo)) for m in midi.tracks[0] if m.type == "set_tempo"] == [126]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compose", "--valence", "2", "-o", "x.mid"], "valence must be in [-1, 1]"),
        (["compose", "--arousal", "nan", "-o", "x.mid"], "arousal must be in [-1, 1]"),
        (["compose", "--bars", "0", "-o", "x.mid"], "bars must be in 1..10000"),
        (["compose", "--seed", "-3", "-o", "x.mid"], "seed must be >= 0"),
        (["compose", "--temperature", "0", "-o", "x.mid"], "temperature must be in (0, 100]"),
        (["compose", "--top-p", "1.5", "-o", "x.mid"], "top-p must be in (0, 1]"),
        (["compose", "--tempo-bpm", "-60", "-o", "x.mid"], "tempo-bpm must be in (0, 1000]"),
        (["compose", "--provider", "tpu", "-o", "x.mid"], "invalid choice: 'tpu'"),
        (["compose", "--bars", "4"], "the following arguments are required: -o/--output"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "the following arguments are required: COMMAND"),
        (["bench", "composer", "--batches", "1,x"], "batches must be comma-separated integers"),
    ],
)
def test_bad_arguments(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_runtime_failures_are_one_line(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["compose", "-o", str(tmp_path / "x.mid"), "--model", str(tmp_path / "none")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["compose", "-o", str(tmp_path / "no" / "x.mid"), "--model", str(tiny_model_dir)]) == 1
    err = capsys.readouterr().err
    assert "cannot write" in err and "Traceback" not in err


def test_serve_without_the_audio_it_was_asked_for_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["serve", "--audio", "--hostapi", "no-such-api", "--osc-port", "0", "--ws-port", "0"]
    assert main(args) == 1
    err = capsys.readouterr().err
    expected = "PortAudio library cannot be loaded" if portaudio_missing() else "no-such-api"
    assert expected in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


NO_PORTAUDIO = """
import ctypes.util
_find = ctypes.util.find_library
ctypes.util.find_library = lambda name: None if "portaudio" in name else _find(name)
"""


def test_serve_without_portaudio_says_what_to_install(tmp_path: Path) -> None:
    """A machine without libportaudio2: sounddevice finds no library (here: in every process of the
    command, its output process too, through a sitecustomize that hides it from find_library)."""
    (tmp_path / "sitecustomize.py").write_text(NO_PORTAUDIO)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])),
    }
    cmd = [sys.executable, "-m", "engine.cli", *shlex.split("serve --audio --osc-port 0 --ws-port 0")]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and done.stdout == "" and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == (  # after the first run's compiling notice, if any
        "affetto serve: error: the PortAudio library cannot be loaded (PortAudio library not found); "
        "install it (Debian/Ubuntu: apt-get install libportaudio2, macOS: brew install portaudio)"
    )


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "compose" in capsys.readouterr().out


def test_bench_composer_json(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("music21")
    argv = [
        *shlex.split("bench composer --steps 60 --batches 1,8 --emotion-pieces 2 --json"),
        "--model",
        str(tiny_model_dir),
    ]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["runtime"]["threads"] == 1 and result["runtime"]["provider"] == "CPUExecutionProvider"
    assert set(result["latency_batch1"]) == {"p50_ms", "p99_ms", "mean_ms"}
    assert set(result["model_tokens_per_s"]) == {"1", "8"} == set(result["composer_tokens_per_s"])
    assert result["eager"]["speedup_batch1"] > 0 and result["eager"]["speedup_batch64"] > 0
    assert {row["target"] for row in result["targets"]} >= {"ORT >= 2x eager at batch 1"}
    emotion = result["emotion"]
    assert [row["quadrant"] for row in emotion["quadrants"]] == [1, 2, 3, 4]
    assert all(row["pieces"] == 2 and row["notes_per_bar"] > 0 for row in emotion["quadrants"])
    assert set(emotion["effects"]) == {"valence_major_share", "arousal_notes_per_bar", "arousal_velocity"}


def test_bench_composer_table(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        *shlex.split("bench composer --steps 40 --batches 1,64 --no-eager --emotion-pieces 0"),
        "--model",
        str(tiny_model_dir),
    ]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "p50" in table and "batch 64" in table and "eager comparison skipped" in table
    assert ">= 10,000 tok/s at batch >= 64" in table


def test_compose_steered(tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "steered.mid"
    argv = [*shlex.split("compose --valence -0.5 --arousal 0.5 --bars 2 --seed 1 --steer 3"), "-o", str(out)]
    assert main([*argv, "--model", str(tiny_model_dir)]) == 0
    said = capsys.readouterr().out
    assert "steered with 3 candidates/bar" in said and "layers" in said  # the live path steers
    assert len(mido.MidiFile(out).tracks) > 1  # a track per layer
    assert main([*shlex.split("compose --steer 33 -o x.mid")]) == 2
    assert "steer" in capsys.readouterr().err


def test_compose_to_wav_writes_audio_through_the_synth(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "calm.wav"
    argv = [
        *shlex.split("compose --valence 0.5 --arousal 0.2 --bars 2 --seed 4 --tempo-bpm 120 -o"),
        str(out),
    ]
    assert main([*argv, "--model", str(tiny_model_dir)]) == 0
    summary = capsys.readouterr().out
    assert summary.startswith(f"wrote {out}: ") and " s of audio from " in summary
    assert out.read_bytes()[:4] == b"RIFF" and out.read_bytes()[8:12] == b"WAVE"
    with wave.open(str(out), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, 48_000)
        frames = w.getnframes()
        pcm = np.frombuffer(w.readframes(frames), dtype="<i2")
    assert frames / 48_000 >= 2 * 4 * 60 / 120  # two bars of 4/4 at 120 BPM, and the release tail
    assert np.abs(pcm).max() > 300  # not silent (-40 dBFS)


@pytest.mark.parametrize("name", ["x.mp3", "x.WAVE", "x"])
def test_compose_refuses_an_unknown_file_type_before_composing(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / name
    assert main(["compose", "-o", str(out), "--model", str(tmp_path / "no-model-needed")]) == 1
    err = capsys.readouterr().err
    assert "unknown file type" in err and ".mid" in err and ".wav" in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_compose_shows_progress_on_a_terminal_and_keeps_stdout_clean(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """stderr on a pseudo-terminal: the bars done are shown there; stdout (a pipe) has the summary only."""
    out = tmp_path / "p.mid"
    cmd = [sys.executable, "-m", "engine.cli", *shlex.split("compose --bars 6 --seed 2 -o"), str(out)]
    cmd += ["--model", str(tiny_model_dir)]
    leader, follower = pty.openpty()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=follower, cwd=ROOT) as proc:
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        stdout = proc.stdout.read() if proc.stdout else b""
    os.close(leader)
    assert proc.returncode == 0, shown.decode(errors="replace")
    assert stdout.decode().splitlines() == [stdout.decode().strip()] and stdout.startswith(b"wrote ")
    text = shown.decode()
    assert "composing: 6/6 bars (" in text and text.rstrip().endswith(")")
    counts = [int(m) for m in re.findall(r"composing: (\d+)/6 bars", text)]
    assert counts == sorted(counts) and counts[-1] == 6


def test_compose_shows_no_progress_when_stderr_is_not_a_terminal(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        *shlex.split("compose --bars 3 --seed 2 -o"),
        str(tmp_path / "q.mid"),
        "--model",
        str(tiny_model_dir),
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out.startswith("wrote ")


def test_compose_plays_with_a_profile(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--profile plays the piece with the profile's layers (their programs, a track each)."""
    out = tmp_path / "horror.mid"
    argv = [
        *shlex.split("compose --valence -0.6 --arousal 0.9 --bars 2 --seed 1 --profile"),
        str(ROOT / "examples/profiles/horror.yaml"),
    ]
    assert main([*argv, "-o", str(out), "--model", str(tiny_model_dir)]) == 0
    assert "layers " in capsys.readouterr().out
    midi = mido.MidiFile(out)
    programs = {m.channel: m.program for t in midi.tracks for m in t if m.type == "program_change"}
    assert programs[0] == 94 and programs[1] == 92  # the profile's melody and harmony pads
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 2\n", encoding="utf-8")
    assert main(["compose", "--profile", str(bad), "-o", str(out), "--model", str(tiny_model_dir)]) == 1
    assert "version" in capsys.readouterr().err
