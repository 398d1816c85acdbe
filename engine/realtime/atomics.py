"""Memory fences for lock-free rings shared between threads or processes (numba intrinsics).

A single-producer / single-consumer ring publishes with ``release_fence()`` after writing a slot
and before moving its write index, and reads with ``acquire_fence()`` after reading the other
side's index and before touching the slots. Both compile to nothing on x86-64 (whose stores
and loads are already ordered that way) but stop the compiler from moving memory accesses
across them; on weaker machines (ARM) they emit the barriers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from numba import types
from numba.extending import intrinsic


def _make_fence(ordering: str) -> Callable[..., Any]:
    """An intrinsic emitting an LLVM ``fence`` of ``ordering``."""

    @intrinsic
    def fence(typingctx):  # pragma: no cover - numba
        def codegen(context, builder, signature, args):
            builder.fence(ordering)
            return context.get_dummy_value()

        return types.void(), codegen

    return fence


acquire_fence = _make_fence("acquire")
release_fence = _make_fence("release")
