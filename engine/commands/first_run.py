"""The first run after an install (or an update of the engine) compiles the engine's kernels
(numba; about 50 s on a 2-core machine, two thirds of it the synth). ``demo``, ``play`` and ``serve``
say so on stderr before they start, compile what they will use right then, and say how long it
took; later runs find the kernels cached (:func:`engine.realtime.jit.needs_compiling`) and say
nothing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

#: kernels every live or rendered session uses (the composer's sampling and grammar, the event
#: queue, the tempo map)
SESSION_KERNELS: Final = (
    "engine.model.sampling",
    "engine.tokens.grammar_rows",
    "engine.realtime.event_queue",
    "engine.music.tempo_map",
)
SYNTH_KERNELS: Final = ("engine.synth.kernel",)
#: the ring that feeds ``serve``'s output process
RING_KERNELS: Final = ("engine.realtime.row_ring",)
#: about how long a first compile takes (2-core x86-64 VM), without and with the synth (s)
SESSION_ESTIMATE_S: Final = 20
SYNTH_ESTIMATE_S: Final = 50


def announce_compile(
    command: str,
    what: str,
    modules: Sequence[str],
    estimate_s: float,
    compile_now: Callable[[], None],
) -> float | None:
    """If the kernels of ``modules`` are not cached: say so on stderr, run ``compile_now``, then say
    how long it took.

    Args:
        command: the command's name, for the lines (``affetto <command>: ...``).
        what: what is compiled, in words ("the synth and scheduler").
        modules: the engine modules whose kernels ``compile_now`` compiles.
        estimate_s: about how many seconds it takes.
        compile_now: compiles them (calls each kernel once).

    Returns:
        The seconds compiling took, or None when everything was cached.
    """
    from engine.realtime.jit import needs_compiling

    if not needs_compiling(*modules):
        return None
    print(
        f"affetto {command}: compiling {what} for this machine (first run only, about {estimate_s:.0f} s)…",
        file=sys.stderr,
        flush=True,
    )
    started = time.perf_counter()
    compile_now()
    took = time.perf_counter() - started
    print(f"affetto {command}: compiled in {took:.0f} s", file=sys.stderr, flush=True)
    return took


def compile_first(composer: Any, command: str, *, synth: bool, ring: bool = False) -> float | None:
    """:func:`announce_compile` for a command's run: the session kernels, the synth's (``synth``)
    and the output process's ring (``ring``), compiled by playing one bar offline.

    Args:
        composer: the run's composer (one stream free).
        command: the command's name.
        synth: the run plays through the built-in synth.
        ring: the run feeds an output process (``serve``).

    Returns:
        The seconds compiling took, or None when everything was cached.
    """
    modules = (*SESSION_KERNELS, *(SYNTH_KERNELS if synth else ()), *(RING_KERNELS if ring else ()))
    what = "the synth and scheduler" if synth else "the scheduler"
    estimate = SYNTH_ESTIMATE_S if synth else SESSION_ESTIMATE_S
    return announce_compile(command, what, modules, estimate, lambda: _play_one_bar(composer, synth, ring))


def _play_one_bar(composer: Any, synth: bool, ring: bool) -> None:
    """Call every kernel a run uses once: a bar of music composed offline (the composer, the
    conductor, the event queue), the synth playing a note, the ring passing a row."""
    import numpy as np

    from engine.realtime.event_queue import EventQueue
    from engine.sessions.render import render

    EventQueue(capacity=512).warm_up()
    render(composer, [], 4.0, seed=0, audio=False, tail_s=0.0)
    if synth:
        from engine.synth.polysynth import Synth

        player = Synth(48_000)
        player.set_channel(0, "piano", 0.0)
        player.note_on(0, 0, 60, 100)
        player.note_off(32, 0, 60)
        player.all_notes_off(48)
        player.process(np.zeros((64, 2), dtype=np.float32))
    if ring:
        from engine.realtime.row_ring import MIN_CAPACITY, RowRing

        RowRing(MIN_CAPACITY).close()
