"""MidiPortOutput on real JACK MIDI ports (headless jackd, see tests/jack_server.py)."""

from __future__ import annotations

import importlib.abc
import sys
import threading
import time
from collections.abc import Iterator, Sequence

import numpy as np
import pytest
from jack_server import JackServer, MidiCapture, gc_paused, measure_without_glitches

from engine.outputs.midi_port import (
    MidiPortError,
    MidiPortNotFound,
    MidiPortOutput,
    find_output_port,
    list_output_ports,
)

NOTE_COUNT = 200
SPACING_S = 0.002


@pytest.fixture
def port(jack_server: JackServer) -> Iterator[MidiPortOutput]:
    """A virtual JACK output port named ``affetto``."""
    with MidiPortOutput("affetto", virtual=True, api="jack") as out:
        yield out


@pytest.fixture
def capture(jack_server: JackServer, port: MidiPortOutput) -> Iterator[MidiCapture]:
    """A JACK MIDI capture client connected to ``port``."""
    with MidiCapture(jack_server, port.name) as cap:
        yield cap


def test_virtual_port_appears_in_jack_lsp(jack_server: JackServer) -> None:
    with MidiPortOutput("affetto", virtual=True, api="jack") as out:
        assert out.api == "jack" and out.virtual
        assert out.name.split(":")[1] == "affetto"
        assert out.name.split(":")[0].startswith("affetto")  # JACK renames duplicates affetto-01
        assert jack_server.port_types()[out.name] == "8 bit raw midi"
    assert out.closed
    assert out.name not in jack_server.ports()


def test_200_notes_arrive_complete_in_order_with_send_spacing(
    jack_server: JackServer, port: MidiPortOutput, capture: MidiCapture
) -> None:
    messages = [
        bytes((0x90 | (i // 2) % 16, 36 + (i // 2) % 60, 100))
        if i % 2 == 0
        else bytes((0x80 | (i // 2) % 16, 36 + (i // 2) % 60, 0))
        for i in range(NOTE_COUNT)
    ]

    def send_spaced() -> tuple[np.ndarray, list[tuple[float, bytes]]]:
        first = len(capture.events)
        sent_at = np.empty(NOTE_COUNT)
        with gc_paused():
            start = time.monotonic()
            for i, msg in enumerate(messages):
                deadline = start + i * SPACING_S
                while (left := deadline - time.monotonic()) > 0:
                    time.sleep(min(left, 0.0005))
                sent_at[i] = time.monotonic()
                port.send_bytes(msg)
        return sent_at, capture.wait_for(first + NOTE_COUNT, timeout_s=2.0)[first:]

    sent_at, events = measure_without_glitches(jack_server, send_spaced)
    assert [data for _, data in events] == messages  # complete, in order, unaltered
    arrived = np.array([t for t, _ in events])  # the capture's CLOCK_MONOTONIC, like ours
    assert np.all(np.diff(arrived) >= 0)
    # rtmidi's JACK output delivers at the next period start: each message lags its send by up
    # to a period (plus scheduling), never arrives early, and the lags stay within one period.
    latency = arrived - sent_at
    period = jack_server.period_s
    slack = 0.004
    assert latency.min() > 0 and latency.max() < 2 * period + slack, (
        f"latency {latency.min()}..{latency.max()}"
    )
    assert np.ptp(latency) < period + slack, f"timing spread {np.ptp(latency) * 1e3:.2f} ms"
    mean_gap = (arrived[-1] - arrived[0]) / (NOTE_COUNT - 1)
    assert mean_gap == pytest.approx(SPACING_S, abs=(period + slack) / (NOTE_COUNT - 1))


def test_all_notes_off_sends_cc123_and_sustain_off_on_16_channels(
    port: MidiPortOutput, capture: MidiCapture
) -> None:
    port.all_notes_off()
    got = [data for _, data in capture.wait_for(32)]
    assert sorted(got) == sorted(
        [bytes((0xB0 | ch, 123, 0)) for ch in range(16)] + [bytes((0xB0 | ch, 64, 0)) for ch in range(16)]
    )
    for ch in range(16):  # sustain released before all-notes-off on each channel
        assert got.index(bytes((0xB0 | ch, 64, 0))) < got.index(bytes((0xB0 | ch, 123, 0)))


def test_close_is_idempotent_releases_notes_and_rejects_sends(jack_server: JackServer) -> None:
    out = MidiPortOutput("affetto-close", virtual=True, api="jack")
    with MidiCapture(jack_server, out.name) as cap:
        out.send_bytes([0x90, 60, 100])
        out.close()
        out.close()
        cap.wait_for(33)
        got = [data for _, data in cap.wait_quiet()]
    assert got[0] == bytes((0x90, 60, 100))
    assert sum(data[1] == 123 for data in got[1:]) == 16 and len(got) == 33  # all-notes-off exactly once
    assert out.closed and out.name not in jack_server.ports()
    with pytest.raises(MidiPortError, match="closed"):
        out.send_bytes([0x90, 60, 100])


def test_close_from_another_thread_while_sending(port: MidiPortOutput, capture: MidiCapture) -> None:
    errors: list[BaseException] = []
    sent = 0

    def sender() -> None:
        nonlocal sent
        try:
            while True:
                port.send_bytes(b"\xf8")
                sent += 1
                time.sleep(0.0005)
        except MidiPortError as exc:
            errors.append(exc)

    thread = threading.Thread(target=sender)
    thread.start()
    time.sleep(0.05)
    port.close()
    thread.join(timeout=2)
    assert not thread.is_alive() and errors and "closed" in str(errors[0])
    capture.wait_for(sent + 32)
    got = [data for _, data in capture.wait_quiet()]
    assert got.count(b"\xf8") == sent and got[-1] == bytes((0xBF, 123, 0))


def test_channel_realtime_and_sysex_messages_pass_unchanged(
    port: MidiPortOutput, capture: MidiCapture
) -> None:
    messages = [
        b"\xfa",
        b"\xf8",
        b"\xc3\x05",
        b"\xe1\x00\x40",
        b"\xb2\x07\x64",
        b"\xf0\x7d\x01\x02\xf7",
        b"\xfc",
    ]
    for msg in messages:
        port.send_bytes(bytearray(msg))
    assert [data for _, data in capture.wait_for(len(messages))] == messages


def test_open_existing_port_by_case_insensitive_substring(jack_server: JackServer) -> None:
    with MidiCapture(jack_server) as cap:
        listed = list_output_ports("jack")
        assert cap.input_port in listed
        with MidiPortOutput(cap.client_name.upper(), api="jack") as out:  # virtual=None: existing wins
            assert not out.virtual and out.name == cap.input_port
            out.send_bytes([0x91, 64, 90])
            assert [data for _, data in cap.wait_for(1)] == [bytes((0x91, 64, 90))]


def test_nonexistent_port_raises_listing_available_ports(jack_server: JackServer) -> None:
    with MidiCapture(jack_server) as cap:
        with pytest.raises(MidiPortError, match="no MIDI output port matches 'no-such-synth'") as info:
            MidiPortOutput("no-such-synth", virtual=False, api="jack")
        assert cap.input_port in str(info.value)


def test_find_output_port_by_name_or_part_and_a_miss_lists_the_ports(jack_server: JackServer) -> None:
    with MidiCapture(jack_server) as cap:
        assert find_output_port(cap.input_port, "jack") == cap.input_port
        assert find_output_port(cap.client_name.upper(), "jack") == cap.input_port
        with pytest.raises(
            MidiPortNotFound, match="no MIDI output port matches 'Microsoft GS' on jack; available: "
        ):
            find_output_port("Microsoft GS", "jack")
        with pytest.raises(MidiPortNotFound) as info:
            MidiPortOutput("Microsoft GS", virtual=False, api="jack")
        assert repr(cap.input_port) in str(info.value)


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        ([], ValueError, "empty"),
        ([0x3C, 0x40], ValueError, "status byte must be in 0x80..0xFF"),
        ([0x90, 0x3C], ValueError, "takes 3 bytes"),
        ([0x90, 0x3C, 0x40, 0x00], ValueError, "takes 3 bytes"),
        ([0x90, 0x80, 0x40], ValueError, "data bytes must be in 0..127"),
        ([0xC0, 0x05, 0x01], ValueError, "takes 2 bytes"),
        ([0xF4], ValueError, "undefined"),
        ([0xF0, 0x01, 0x02], ValueError, "end with 0xF7"),
        ([0xF0, 0x81, 0xF7], ValueError, "0..127"),
        ([0x90, 256, 0], ValueError, "0..255"),
        ([0x90, -1, 0], ValueError, "0..255"),
        ([0x90, 60.0, 0], TypeError, "integers"),
        ("\x90<@", TypeError, "bytes or a sequence of ints"),
        (144, TypeError, "bytes or a sequence of ints"),
    ],
)
def test_invalid_bytes_are_rejected(
    port: MidiPortOutput, data: Sequence[int], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        port.send_bytes(data)


def test_bad_arguments_and_unknown_api(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TypeError, match="name must be a string"):
        MidiPortOutput(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty"):
        MidiPortOutput("  ")
    with pytest.raises(TypeError, match="virtual must be"):
        MidiPortOutput("x", virtual=1)  # type: ignore[arg-type]
    with pytest.raises(MidiPortError, match="'bogus' is not a known MIDI API"):
        MidiPortOutput("x", api="bogus")
    with pytest.raises(MidiPortError, match="not a known MIDI API"):
        list_output_ports("bogus")
    monkeypatch.setenv("AFFETTO_MIDI_API", "nope")
    with pytest.raises(MidiPortError, match="AFFETTO_MIDI_API='nope'"):
        list_output_ports()


def test_api_from_environment(jack_server: JackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFFETTO_MIDI_API", "JACK")
    with MidiPortOutput("affetto-env", virtual=True) as out:
        assert out.api == "jack" and out.name in jack_server.ports()


class _BlockImport(importlib.abc.MetaPathFinder):
    """Makes ``import <name>`` fail as if the package were not installed."""

    def __init__(self, name: str) -> None:
        self.name = name

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        if fullname == self.name:
            raise ImportError(f"No module named {fullname!r}")


def test_missing_rtmidi_is_a_midi_port_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("rtmidi", "mido.backends.rtmidi"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setattr(sys, "meta_path", [_BlockImport("rtmidi"), *sys.meta_path])
    with pytest.raises(MidiPortError, match="install python-rtmidi"):
        list_output_ports()
    with pytest.raises(MidiPortError, match="install python-rtmidi"):
        MidiPortOutput("affetto")
