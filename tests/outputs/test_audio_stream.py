"""AudioOutput on PortAudio's JACK host API (headless jackd, see tests/jack_server.py)."""

from __future__ import annotations

import importlib.abc
import sys
import time

import numpy as np
import pytest
from jack_server import AudioCapture, JackServer, gc_paused, measure_without_glitches

from engine.outputs.audio_stream import AudioOutput, AudioRenderError, AudioUnavailable, audio_available
from engine.outputs.midi_port import MidiPortOutput

FREQ_HZ = 440.0


class Sine:
    """A stereo sine renderer that allocates nothing per block (reads a 1 s periodic table)."""

    def __init__(self, sample_rate_hz: int, freq_hz: float = FREQ_HZ, amplitude: float = 0.5) -> None:
        t = np.arange(2 * sample_rate_hz) / sample_rate_hz  # two periods of the 1 s table: no wrap in a slice
        self.table = (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)[:, None]
        self.size = sample_rate_hz
        self.pos = 0
        self.calls = 0

    def __call__(self, out: np.ndarray) -> None:
        n = out.shape[0]
        out[:] = self.table[self.pos : self.pos + n]
        self.pos = (self.pos + n) % self.size
        self.calls += 1


def dominant_hz(x: np.ndarray, sample_rate_hz: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.argmax(spectrum) * sample_rate_hz / x.size)


def longest_silence(x: np.ndarray, threshold: float = 1e-4) -> int:
    """Longest run of consecutive near-zero samples."""
    quiet = np.concatenate(([0], (np.abs(x) < threshold).astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(quiet))
    return int((edges[1::2] - edges[::2]).max()) if edges.size else 0


@pytest.mark.usefixtures("portaudio")
def test_sine_plays_into_jack_without_xruns(jack_server: JackServer) -> None:
    rate = jack_server.sample_rate_hz

    def play() -> tuple[AudioOutput, Sine, np.ndarray]:
        sine = Sine(rate)
        # The recorder joins the JACK graph first: a client joining or leaving makes JACK
        # report one xrun to every client, which is not ours to count.
        with gc_paused(), AudioCapture(jack_server, duration_s=3.0) as cap:
            out = AudioOutput(sine, sample_rate_hz=rate, block_frames=256, hostapi="jack")
            assert not out.running
            assert 0 < out.latency_s < 0.1
            out.start()
            assert out.running
            time.sleep(2.0)
            out.stop()
            assert not out.running
            out.close()
        return out, sine, cap.wait()

    out, sine, samples = measure_without_glitches(jack_server, play, ours="PortAudio")
    assert out.xruns == 0 and out.underflows == 0 and out.render_errors == 0, jack_server.log()[-600:]
    assert out.frames_rendered >= 1.9 * rate and out.frames_rendered == sine.calls * 256
    assert samples.shape == (3 * rate, 2)
    for channel in samples.T:
        sounding = np.flatnonzero(np.abs(channel) > 1e-4)
        played = channel[sounding[0] : sounding[-1] + 1]
        assert played.size == pytest.approx(out.frames_rendered, abs=2 * out.block_frames)
        assert np.sqrt(np.mean(played**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)
        assert dominant_hz(played, rate) == pytest.approx(FREQ_HZ, abs=1.0)
        assert longest_silence(played) < 4  # no dropouts: a sine only touches zero briefly


@pytest.mark.usefixtures("portaudio")
def test_render_error_is_counted_stream_survives_and_stop_reports(jack_server: JackServer) -> None:
    rate = jack_server.sample_rate_hz
    sine = Sine(rate)

    def flaky(out: np.ndarray) -> None:
        sine(out)
        if sine.calls % 4 == 0:
            raise ValueError("synth exploded")

    with AudioCapture(jack_server, duration_s=1.0) as cap:
        out = AudioOutput(flaky, sample_rate_hz=rate, block_frames=256, hostapi="jack")
        out.start()
        time.sleep(0.5)
        assert out.running  # the stream survived every failing block
        frames = out.frames_rendered
        time.sleep(0.05)
        assert out.frames_rendered > frames
        assert out.render_errors >= 10 and out.xruns == out.underflows + out.render_errors
        assert isinstance(out.render_error, ValueError)
        with pytest.raises(AudioRenderError, match="synth exploded") as info:
            out.stop()
        assert isinstance(info.value.__cause__, ValueError)
        out.stop()  # reported once
        out.close()
        out.close()
    samples = cap.wait()[:, 0]
    # Failing blocks were played as silence (256-frame gaps), the others as the sine.
    sounding = np.flatnonzero(np.abs(samples) > 1e-4)
    played = samples[sounding[0] : sounding[-1] + 1]
    assert 250 <= longest_silence(played) <= 260
    assert np.sqrt(np.mean(played**2)) == pytest.approx(0.5 * np.sqrt(3 / 4) / np.sqrt(2), rel=0.05)


@pytest.mark.usefixtures("portaudio")
def test_midi_port_opened_before_audio_starts_causes_no_xruns(jack_server: JackServer) -> None:
    # python-rtmidi creates/deletes its JACK client holding the GIL: do it outside the audio run.
    def play_with_midi() -> AudioOutput:
        with MidiPortOutput("affetto-audio", virtual=True, api="jack") as midi, gc_paused():
            out = AudioOutput(Sine(jack_server.sample_rate_hz), hostapi="jack")
            out.start()
            for i in range(100):
                midi.send_bytes([0x90, 40 + i % 40, 90])
                time.sleep(0.005)
            out.stop()
            out.close()
        return out

    out = measure_without_glitches(jack_server, play_with_midi, ours="PortAudio")
    assert out.xruns == 0, jack_server.log()[-600:]


@pytest.mark.usefixtures("portaudio")
def test_jack_device_is_available(jack_server: JackServer) -> None:
    ok, reason = audio_available(hostapi="jack", sample_rate_hz=jack_server.sample_rate_hz)
    assert ok, reason
    assert "JACK" in reason


@pytest.mark.usefixtures("portaudio")
def test_wrong_sample_rate_for_jack_is_unavailable(jack_server: JackServer) -> None:
    other = 44_100 if jack_server.sample_rate_hz != 44_100 else 48_000
    ok, reason = audio_available(hostapi="jack", sample_rate_hz=other)
    assert not ok and str(other) in reason
    with pytest.raises(AudioUnavailable, match=f"cannot open at {other} Hz"):
        AudioOutput(Sine(other), sample_rate_hz=other, hostapi="jack")


@pytest.mark.parametrize("device", ["no-such-device-xyz", 9999])
def test_absurd_device_is_unavailable(device: str | int) -> None:
    ok, reason = audio_available(device)
    assert not ok and reason
    with pytest.raises(AudioUnavailable):
        AudioOutput(Sine(48_000), device=device)


def test_unknown_host_api_is_unavailable() -> None:
    ok, reason = audio_available(hostapi="no-such-hostapi")
    assert not ok and ("no-such-hostapi" in reason or "PortAudio" in reason)
    with pytest.raises(AudioUnavailable):
        AudioOutput(Sine(48_000), hostapi="no-such-hostapi")


def test_bad_arguments_raise_type_and_value_errors() -> None:
    with pytest.raises(TypeError, match="render must be callable"):
        AudioOutput(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"block_frames must be in 16\.\.8192"):
        AudioOutput(Sine(48_000), block_frames=0)
    with pytest.raises(ValueError, match="sample_rate_hz must be in"):
        AudioOutput(Sine(48_000), sample_rate_hz=1)
    with pytest.raises(TypeError, match="channels must be an int"):
        AudioOutput(Sine(48_000), channels=2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="device must be"):
        audio_available(1.5)  # type: ignore[arg-type]


class _BlockImport(importlib.abc.MetaPathFinder):
    """Makes ``import <name>`` fail the way a missing shared library does."""

    def __init__(self, name: str, error: Exception) -> None:
        self.name, self.error = name, error

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        if fullname == self.name:
            raise self.error


def test_missing_portaudio_is_reported_as_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    blocker = _BlockImport("sounddevice", OSError("PortAudio library not found"))
    monkeypatch.setattr(sys, "meta_path", [blocker, *sys.meta_path])
    ok, reason = audio_available()
    assert not ok and "libportaudio2" in reason
    with pytest.raises(AudioUnavailable, match="PortAudio library cannot be loaded"):
        AudioOutput(Sine(48_000))
