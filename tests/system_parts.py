"""Which of the system parts the tests use are there (the README lists them; ``.ci/run`` installs
them). JACK (``jackd2``): :mod:`jack_server`; mono, node, g++, liblo's tools: the bindings' tests
look for the programs on PATH; PortAudio (``libportaudio2``): here."""

from __future__ import annotations

import ctypes.util
import platform


def portaudio_missing() -> str | None:
    """Why sounddevice cannot load PortAudio here, or None when it can.

    Looks the library up as sounddevice does first (``find_library("portaudio")``) without
    loading it: importing sounddevice scans the audio devices once, which a test that starts a
    JACK server afterwards must not have happen yet. macOS and Windows wheels ship the library.
    """
    if ctypes.util.find_library("portaudio") is not None or platform.system() in ("Darwin", "Windows"):
        return None
    return "the PortAudio library is not installed (apt-get install libportaudio2)"
