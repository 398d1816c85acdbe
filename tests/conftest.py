"""Shared fixtures: real ONNX composer artifacts.

* ``tiny_model_dir``: a freshly initialised, tiny :class:`models.composer_lstm.ComposerLSTM`
  exported with :func:`export.onnx_export.write_artifact` (needs torch; built once per session).
* ``model_dir``: parametrised over the tiny model and, when ``models/composer/manifest.json``
  exists, the shipped model too — tests using it (or ``artifact`` / ``composer``) run on both.
  ``AFFETTO_TEST_MODEL=DIR`` points the second run at another model directory.
* ``fifo``: a FIFO with no writer, for the readers of user-named files (they must refuse it
  without opening it: opening it for reading blocks).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.model.artifact import ModelArtifact, default_model_dir, load_artifact
from engine.model.composer import Composer
from engine.tokens.codec import encode_file

TINY_CONFIG: dict[str, Any] = {
    "embed_dim": 16,
    "cond_embed_dim": 8,
    "hidden_size": 32,
    "num_layers": 2,
    "dropout": 0.0,
}
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHIPPED_DIR = Path(os.environ.get("AFFETTO_TEST_MODEL") or default_model_dir())
MODEL_PARAMS = ["tiny", "shipped"] if (SHIPPED_DIR / "manifest.json").is_file() else ["tiny"]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight tiny composer artifact (composer.onnx, composer.pt, manifest.json)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from export.onnx_export import write_artifact
    from models.composer_lstm import ComposerConfig, ComposerLSTM, save_checkpoint

    torch.manual_seed(1234)
    torch.set_num_threads(1)  # tiny model: threads only add contention (the export's parity check runs eager)
    root = tmp_path_factory.mktemp("tiny_composer")
    save_checkpoint(str(root / "init.pt"), ComposerLSTM(ComposerConfig(**TINY_CONFIG)))
    out = root / "artifact"
    write_artifact(root / "init.pt", out, command="tests/conftest.py", metrics={})
    return out


@pytest.fixture(scope="session", params=MODEL_PARAMS)
def model_dir(request: pytest.FixtureRequest) -> Path:
    """The tiny model dir, then (if present) the shipped one."""
    if request.param == "shipped":
        return SHIPPED_DIR
    return Path(request.getfixturevalue("tiny_model_dir"))


@pytest.fixture(scope="session")
def artifact(model_dir: Path) -> ModelArtifact:
    """``model_dir`` loaded on the CPU provider, one thread (sessions are stateless: shared)."""
    return load_artifact(model_dir, providers="cpu", intra_op_threads=1, inter_op_threads=1)


@pytest.fixture
def composer(artifact: ModelArtifact) -> Iterator[Composer]:
    """A fresh Composer (64 slots, 4/4) on the shared artifact."""
    yield Composer(artifact=artifact, max_streams=64)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six real EMOPIA clips (tests/fixtures; 4 train, 2 val) with their quadrant targets."""
    from models import corpus as C

    files = sorted(FIXTURES.glob("Q*.mid"))
    assert len(files) == 6
    tokens, cond, offsets = [], [], [0]
    for path in files:
        encoded = encode_file(path)
        quadrant = int(path.name[1])
        tokens.append(encoded.tokens)
        cond.append(np.tile(C.quadrant_targets(quadrant, 1)[0], (encoded.tokens.size, 1)))
        offsets.append(offsets[-1] + encoded.tokens.size)
    corpus = C.Corpus(
        tokens=np.concatenate(tokens),
        cond=np.concatenate(cond).astype(np.float16),
        offsets=np.asarray(offsets),
        split=np.asarray([0, 0, 0, 0, 1, 1], dtype=np.int8),
        source=np.full(6, list(C.SOURCE_NAMES).index("emopia"), dtype=np.int8),
        label_source=np.zeros(6, dtype=np.int8),
        piece_names=np.asarray([p.name for p in files]),
    )
    path = tmp_path_factory.mktemp("tiny") / "corpus.npz"
    C.save_corpus(corpus, path)
    return path


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    """A FIFO (named pipe) no one writes to. A test still blocked opening it after 20 s fails
    (SIGALRM interrupts the open) rather than hanging the suite."""
    if not hasattr(os, "mkfifo") or not hasattr(signal, "SIGALRM"):
        pytest.skip("FIFOs and SIGALRM are POSIX only")
    path = tmp_path / "pipe"
    os.mkfifo(path)

    def blocked(signum: int, frame: object) -> None:
        pytest.fail(f"blocked for 20 s opening the FIFO {path}", pytrace=False)

    previous = signal.signal(signal.SIGALRM, blocked)
    signal.alarm(20)
    try:
        yield path
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def special_files(tmp_path: Path, fifo: Path) -> list[tuple[Path, str]]:
    """Paths that are not regular files, each with what the readers call it: a directory, a FIFO
    (opening it blocks) and the devices /dev/zero (never ends; its size reads 0) and /dev/null."""
    devices = [(Path(d), "is a device") for d in ("/dev/zero", "/dev/null") if os.path.exists(d)]
    return [(tmp_path, "is a directory"), (fifo, "is a FIFO (named pipe)"), *devices]


@pytest.fixture(scope="session")
def portaudio() -> None:
    """Skip unless the PortAudio library is installed (``libportaudio2``), but fail instead under
    ``AFFETTO_REQUIRE_JACK=1`` (CI sets it: the audio tests must run there)."""
    from system_parts import portaudio_missing

    reason = portaudio_missing()
    if reason is not None:
        if os.environ.get("AFFETTO_REQUIRE_JACK") == "1":
            pytest.fail(f"AFFETTO_REQUIRE_JACK=1 but {reason}", pytrace=False)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def jack_server() -> Iterator[Any]:
    """A headless JACK server (dummy driver, 48 kHz, 512-frame periods) for real MIDI/audio ports.

    ``JACK_DEFAULT_SERVER`` names it in ``os.environ`` while it runs. Skips when jackd2 is not
    installed or cannot start, but fails instead under ``AFFETTO_REQUIRE_JACK=1`` (CI sets it).
    """
    from jack_server import jack_server_or_skip

    with jack_server_or_skip(os.environ.get("AFFETTO_REQUIRE_JACK") == "1") as server:
        yield server
