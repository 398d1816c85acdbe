"""The engine's numba cache: keyed on every compiled source, so a caller never runs a stale callee."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from numba.core import caching

from engine.realtime import jit

CALLEE = """
from {decorator} import njit

@njit(cache=True)
def value():
    return {value}
"""
CALLER = """
from {callee} import value
from {decorator} import njit

@njit(cache=True)
def twice():
    return 2 * value()
"""
RUN = """
from engine.realtime.jit import needs_compiling

cold = needs_compiling("engine.caller")
import engine.caller
import plain_caller

result = engine.caller.twice()
hits = sum(engine.caller.twice.stats.cache_hits.values())
print(cold, result, hits, plain_caller.twice())
"""


def _tree(root: Path) -> None:
    """A copy of the jit module in an ``engine`` package at ``root``, a caller and a callee in two
    files of it, and the same pair outside it on plain ``numba.njit``."""
    (root / "engine" / "realtime").mkdir(parents=True)
    (root / "engine" / "__init__.py").write_text("")
    (root / "engine" / "realtime" / "__init__.py").write_text("")
    shutil.copy(Path(jit.__file__), root / "engine" / "realtime" / "jit.py")
    for where, decorator in (("engine/", "engine.realtime.jit"), ("plain_", "numba")):
        callee = where.replace("/", ".") + "callee"
        (root / f"{where}callee.py").write_text(CALLEE.format(decorator=decorator, value=1))
        (root / f"{where}caller.py").write_text(CALLER.format(decorator=decorator, callee=callee))
    (root / "run.py").write_text(RUN)


@pytest.mark.parametrize("cache_dir", [True, False], ids=["NUMBA_CACHE_DIR", "__pycache__"])
def test_a_cached_caller_sees_its_edited_callee(tmp_path: Path, cache_dir: bool) -> None:
    root = tmp_path / "tree"
    _tree(root)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CACHE")}
    env.update(PYTHONPATH=str(root), PYTHONDONTWRITEBYTECODE="1")
    if cache_dir:
        env["NUMBA_CACHE_DIR"] = str(tmp_path / "cache")

    def run() -> list[str]:
        done = subprocess.run(
            [sys.executable, "run.py"], cwd=root, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    # needs compiling, caller, its cache hits, the plain caller
    assert run() == ["True", "2", "0", "2"]
    assert run() == ["False", "2", "1", "2"]  # loaded from the cache
    for callee in (root / "engine" / "callee.py", root / "plain_callee.py"):
        callee.write_text(callee.read_text().replace("return 1", "return 21"))
    # the engine caller recompiles with the new callee; numba's own stamp keeps the stale one
    assert run() == ["True", "42", "0", "2"]
    assert run() == ["False", "42", "1", "2"]
    if not cache_dir:
        assert list((root / "engine" / "__pycache__").glob("caller.twice-*.nbi"))


def test_the_stamp_covers_every_compiled_source_and_what_it_imports(tmp_path: Path) -> None:
    root = tmp_path / "engine"
    (root / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "sub/__init__.py": "",
        "kernel.py": "import numba\nfrom engine.sub import consts as C\n",
        "consts.py": "from engine.sub.deeper import X  # frozen into the kernel too\n",
        "sub/consts.py": "from engine.sub.deeper import (\n    X,  # a comment\n    Y,\n)\n",
        "sub/deeper.py": "X = 1\nY = 2\n",
        "fenced.py": "from engine.realtime.jit import njit\n",
        "unrelated.py": "from engine import consts\n",
        "command.py": "def run():\n    from engine.realtime.jit import needs_compiling\n",
    }
    for name, text in files.items():
        (root / name).write_text(text)
    names = {p.relative_to(root).as_posix() for p in jit.compiled_sources(root)}
    assert names == {"kernel.py", "sub/__init__.py", "sub/consts.py", "sub/deeper.py", "fenced.py"}
    digest = jit.source_digest(root)
    for name in ("unrelated.py", "consts.py", "command.py"):
        (root / name).write_text("X = 3\n")
    assert jit.source_digest(root) == digest  # none is compiled code or imported by it
    for name in ("sub/deeper.py", "kernel.py", "fenced.py"):
        (root / name).write_text((root / name).read_text() + "# edited\n")
        assert jit.source_digest(root) != digest, name
        digest = jit.source_digest(root)


def test_every_engine_kernel_is_cached_under_the_engine_stamp() -> None:
    from engine.synth import dsp
    from engine.tokens import grammar

    assert caching.CacheImpl._locator_classes[: len(jit.LOCATORS)] == list(jit.LOCATORS)
    dispatchers: tuple[Any, ...] = (dsp.decay_k, grammar.advance)
    for dispatcher in dispatchers:
        locator = dispatcher._cache._impl.locator
        assert isinstance(locator, jit.LOCATORS)
        assert locator.get_source_stamp()[0] == jit.source_digest()
    sources = set(jit.compiled_sources())
    engine = Path(jit.__file__).resolve().parent.parent
    assert {engine / "synth" / "layout.py", engine / "tokens" / "vocab.py"} <= sources  # constants
    for path in engine.rglob("*.py"):
        text = path.read_text()
        if re.search(r"^\s*(import numba|from numba)", text, re.M):
            assert path in sources
        if "cache=True" in text and path.name != "jit.py":  # the locator is in place first
            assert not re.search(
                r"numba\.(njit|jit|cfunc)\(|from numba import .*\b(njit|jit|cfunc)\b", text
            ), path
