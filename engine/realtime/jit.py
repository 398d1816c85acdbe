"""numba for the engine: :data:`njit` and :data:`cfunc` with an on-disk cache that never goes stale.

numba caches a function's machine code on disk keyed on the source file of *that* function. But a
kernel that calls a kernel of another file (the synth's voices call :mod:`engine.synth.dsp`, the
grammar rows call :mod:`engine.tokens.grammar`, the rings use :mod:`engine.realtime.atomics`) has
the callee compiled into its own code, and numba freezes the module-level constants it reads
(state layouts, vocabularies) into it too. Edit the callee's file and numba would still load the
caller's cached code: the old callee, silently.

Importing this module registers a cache locator for the files of the ``engine`` package whose
source stamp is a digest of every engine module with compiled code (:func:`compiled_sources`):
any edit to any of them makes every engine cache stale, so all engine kernels recompile on their
next use. Caches stay where numba puts them: under ``NUMBA_CACHE_DIR`` when it is set, else in
``__pycache__`` next to the source, else in numba's user-wide cache directory. (Setting
``NUMBA_CACHE_LOCATOR_CLASSES`` replaces numba's locators, this one included.)

Every engine module with numba code takes :data:`njit` (and :data:`cfunc`) from here rather than
from numba, so the locator is in place before its first ``cache=True`` decorator runs.
:func:`needs_compiling` tells whether a module's kernels are cached for the current sources, so a
command can say that it is about to compile for a while.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import re
from pathlib import Path
from typing import Any, Final

import numba
from numba.core import caching

ENGINE_ROOT: Final = Path(__file__).resolve().parent.parent  # the engine package's directory

njit: Final = numba.njit  # numba.njit, once the locator is registered
cfunc: Final = numba.cfunc  # numba.cfunc, once the locator is registered

# A module has compiled code if it imports numba, or njit / cfunc from here (intrinsics count:
# they are compiled into their callers).
_USES_NUMBA: Final = re.compile(
    rb"^[ \t]*(?:import numba\b|from numba\b|from engine\.realtime\.jit import [^\n]*\b(?:njit|cfunc)\b)",
    re.M,
)
# ``from engine.a import b, c`` (or a parenthesised list) and ``import engine.a.b``
_IMPORT: Final = re.compile(
    rb"^[ \t]*(?:from[ \t]+(engine[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#]*)|import[ \t]+(engine[\w.]*))",
    re.M,
)


def compiled_sources(root: Path = ENGINE_ROOT) -> tuple[Path, ...]:
    """The source files the engine's compiled code depends on, sorted.

    These are the modules of the package at ``root`` that import numba (or :data:`njit` or
    :data:`cfunc` from here), and every module of the package they import, directly or not
    (their constants are frozen into the machine code). Imports are read from the source
    without running it.
    """
    found = {path for path in root.rglob("*.py") if _USES_NUMBA.search(path.read_bytes())}
    todo = list(found)
    while todo:
        for dep in _package_imports(todo.pop(), root):
            if dep not in found:
                found.add(dep)
                todo.append(dep)
    return tuple(sorted(found))


def _package_imports(path: Path, root: Path) -> set[Path]:
    """The files of the package at ``root`` that ``path`` imports (absolute imports, read with a
    regular expression: parsing is ten times slower, and an import in a docstring only adds a file)."""
    files = set()
    for m in _IMPORT.finditer(path.read_bytes()):
        module, names, plain = (g.decode() if g else "" for g in m.groups())
        dotted = [plain] if plain else [module]  # and ``module.name``: the name may be a module
        for name in re.sub(r"#.*", "", names).strip("() \n").split(","):
            if name.strip():
                dotted.append(f"{module}.{name.split()[0]}")
        for name in dotted:
            package, *parts = name.split(".")
            if package != root.name:
                continue
            base = root.joinpath(*parts)
            for candidate in (base / "__init__.py", base.with_name(base.name + ".py")):
                if candidate.is_file():
                    files.add(candidate)
    return files


def source_digest(root: Path = ENGINE_ROOT) -> str:
    """SHA-256 (hex) of the paths and contents of :func:`compiled_sources` of ``root``."""
    h = hashlib.sha256()
    for path in compiled_sources(root):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


@functools.cache
def _engine_digest() -> str:
    return source_digest(ENGINE_ROOT)


def _in_engine(py_file: str) -> bool:
    return os.path.realpath(py_file).startswith(str(ENGINE_ROOT) + os.sep)


class _EngineStamp(caching._CacheLocator):
    """Mixin for numba's file-backed locators: engine files only, stamped with the engine digest."""

    @classmethod
    def from_function(cls, py_func: Any, py_file: str) -> Any:
        if not _in_engine(py_file):
            return None  # not ours: numba's own locators take it
        return super().from_function(py_func, py_file)

    def get_source_stamp(self) -> Any:
        # numba's own stamp of the file (the numba locator after this mixin in the MRO), and ours
        return _engine_digest(), super().get_source_stamp()  # type: ignore[safe-super]


class EngineUserProvidedLocator(_EngineStamp, caching.UserProvidedCacheLocator):
    """Engine files, cached under ``NUMBA_CACHE_DIR``."""


class EngineInTreeLocator(_EngineStamp, caching.InTreeCacheLocator):
    """Engine files, cached in ``__pycache__`` next to the source."""


class EngineUserWideLocator(_EngineStamp, caching.UserWideCacheLocator):
    """Engine files, cached in numba's user-wide directory (when ``__pycache__`` is read-only)."""


LOCATORS: Final = (EngineUserProvidedLocator, EngineInTreeLocator, EngineUserWideLocator)


def register() -> None:
    """Put :data:`LOCATORS` first in numba's locator list (idempotent; done on import)."""
    impl = vars(caching).get("CacheImpl") or vars(caching)["_CacheImpl"]  # the latter: older numba
    classes: list[Any] = impl._locator_classes
    for locator in reversed(LOCATORS):
        if locator not in classes:
            classes.insert(0, locator)


register()


def needs_compiling(*modules: str) -> bool:
    """Whether the next run compiles kernels of these engine modules instead of loading them.

    A module counts as cached when one of its index files in numba's cache is for this numba
    version and the current sources (kernels a run never called stay uncompiled, so name modules
    whose kernels the caller is about to use).

    Args:
        modules: dotted module names, e.g. ``"engine.synth.kernel"``.
    """
    return not all(_cached(ENGINE_ROOT.joinpath(*name.split(".")[1:]).with_suffix(".py")) for name in modules)


def _cached(path: Path) -> bool:
    locator = next(
        (found for cls in LOCATORS if (found := cls.from_function(_cached, str(path))) is not None), None
    )
    if locator is None:
        return False
    stamp = locator.get_source_stamp()
    for index in Path(locator.get_cache_path()).glob(f"{path.stem}.*.nbi"):
        try:
            with index.open("rb") as f:
                if pickle.load(f) != numba.__version__:
                    continue
                saved, overloads = pickle.loads(f.read())
        except Exception:  # unreadable or half-written: numba would recompile too
            continue
        if saved == stamp and overloads:
            return True
    return False
