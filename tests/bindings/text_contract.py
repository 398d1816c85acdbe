"""The ``text`` event as bindings/PROTOCOL.md gives it, for the bindings' parsing tests."""

from __future__ import annotations

from typing import Any, Final

#: the quadrants of a scene
SCENES: Final = ("+V+A", "-V+A", "-V-A", "+V-A")

#: a ``text`` event as the reference shows it (its numbers exact in 32-bit floats)
TEXT_EVENT: Final[dict[str, Any]] = {
    "event": "text", "session": "s", "valence": -0.40625, "arousal": 0.625, "confidence": 0.71875,
    "scene_valence": -0.8125, "scene_arousal": 0.6875, "scene": "-V+A", "changed": True, "sync": "bar",
    "time_s": 12.5, "id": 3,
}  # fmt: skip

#: its OSC form, byte for byte: ``/affetto/text ,fffffis`` valence arousal confidence
#: scene_valence scene_arousal changed scene
TEXT_OSC: Final = bytes.fromhex(
    "2f6166666574746f2f74657874000000"  # "/affetto/text", padded to 16
    "2c6666666666697300000000"  # ",fffffis", padded to 12
    "bed00000 3f200000 3f380000 bf500000 3f300000"  # -0.40625 0.625 0.71875 -0.8125 0.6875
    "00000001"  # changed: 1
    "2d562b4100000000"  # "-V+A", padded to 8
)

#: the same reading of a line that did not change the scene, in the scene "+V-A"
TEXT_OSC_UNCHANGED: Final = TEXT_OSC[:-12] + bytes(4) + b"+V-A\0\0\0\0"
