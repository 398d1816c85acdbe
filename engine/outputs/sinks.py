"""Where due events go: a live MIDI port, the built-in synth, listeners.

Every sink has ``send(time_s, kind, channel, a, b)`` (see :mod:`engine.realtime.event_queue` for kinds)
and ``close()``. Sinks are called from the engine's clock thread, in time order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from engine.outputs.gm import DRUM_CHANNEL, EXPRESSION_CC, UNITY_VOLUME, gain_db, midi_bytes, program_voice
from engine.realtime.kinds import CONTROL, NOTE_OFF, NOTE_ON, PROGRAM


class EventSink(Protocol):
    def send(self, time_s: float, kind: int, channel: int, a: int, b: int) -> None: ...


class MidiPortSink:
    """Sends events to a live MIDI output (anything with ``send_bytes``) as they fall due."""

    def __init__(self, port: object) -> None:
        self.port = port
        self._send: Callable[[bytes], None] = port.send_bytes  # type: ignore[attr-defined]

    def send(self, time_s: float, kind: int, channel: int, a: int, b: int) -> None:
        data = midi_bytes(kind, channel, a, b)
        if data is not None:
            self._send(data)


class SynthSink:
    """Feeds the built-in synth: notes with sample-accurate frames, programs and volumes.

    A program change picks the voice by the General MIDI table (or the voice its row names:
    see :func:`engine.outputs.gm.voice_code`), CC 7 and CC 11 the channel gain
    (:func:`engine.outputs.gm.gain_db`; a change applies to the notes that start after it).

    Args:
        synth: an :class:`engine.synth.polysynth.Synth`.
        frame_of: maps an engine time (s) to the synth's frame at which it should sound.
        channel_offset: MIDI channel ``ch`` plays on synth channel ``channel_offset + ch`` (each
            player sharing a synth gets its own block of 16, see :class:`engine.synth.polysynth.Synth`).
        on_forget: called by :meth:`forget`.

    All Notes Off (CC 120/123) releases the notes this sink started, not the other players'.
    """

    def __init__(
        self,
        synth: object,
        frame_of: Callable[[float], int],
        channel_offset: int = 0,
        on_forget: Callable[[], None] | None = None,
    ) -> None:
        self.synth = synth
        self.frame_of = frame_of
        self.channel_offset = channel_offset
        self.on_forget = on_forget
        self._instrument = ["drums" if ch == DRUM_CHANNEL else "piano" for ch in range(16)]
        self._volume = [UNITY_VOLUME] * 16  # CC 7
        self._expression = [127] * 16  # CC 11
        self._sounding: set[tuple[int, int]] = set()  # (synth channel, note)

    def send(self, time_s: float, kind: int, channel: int, a: int, b: int) -> None:
        synth = self.synth
        ch = self.channel_offset + channel
        if kind == NOTE_ON:
            synth.note_on(self.frame_of(time_s), ch, a, b)  # type: ignore[attr-defined]
            self._sounding.add((ch, a))
        elif kind == NOTE_OFF:
            synth.note_off(self.frame_of(time_s), ch, a)  # type: ignore[attr-defined]
            self._sounding.discard((ch, a))
        elif kind == PROGRAM:
            self._instrument[channel] = program_voice(a, channel, b)
            synth.set_channel(ch, self._instrument[channel], self._gain(channel))  # type: ignore[attr-defined]
        elif kind == CONTROL and a in (7, EXPRESSION_CC):
            if a == 7:
                self._volume[channel] = b
            else:
                self._expression[channel] = b
            synth.set_channel(ch, self._instrument[channel], self._gain(channel))  # type: ignore[attr-defined]
        elif kind == CONTROL and a in (120, 123):
            frame = self.frame_of(time_s)
            for key in [k for k in self._sounding if k[0] == ch]:
                synth.note_off(frame, *key)  # type: ignore[attr-defined]
                self._sounding.discard(key)

    def _gain(self, channel: int) -> float:
        return gain_db(self._volume[channel], self._expression[channel])

    def forget(self) -> None:
        """The player has left this synth: hand its channel block back."""
        if self.on_forget is not None:
            self.on_forget()
            self.on_forget = None


class CallbackSink:
    """Calls ``callback(time_s, kind, channel, a, b)`` for the kinds asked for (beats, notes, ...)."""

    def __init__(self, callback: Callable[[float, int, int, int, int], None], kinds: tuple[int, ...]) -> None:
        self.callback = callback
        self.kinds = frozenset(kinds)

    def send(self, time_s: float, kind: int, channel: int, a: int, b: int) -> None:
        if kind in self.kinds:
            self.callback(time_s, kind, channel, a, b)
