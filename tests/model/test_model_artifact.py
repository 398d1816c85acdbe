"""Model directory validation and execution-provider selection."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import onnxruntime as ort
import pytest

from engine.model.artifact import (
    CPU,
    CUDA,
    PROVIDER_ENV,
    default_model_dir,
    load_artifact,
    load_manifest,
    resolve_providers,
)
from engine.tokens import vocab as V


def _copy(src: Path, dst: Path, **manifest_changes: object) -> Path:
    shutil.copytree(src, dst)
    manifest = json.loads((dst / "manifest.json").read_text())
    manifest.update(manifest_changes)
    (dst / "manifest.json").write_text(json.dumps(manifest))
    return dst


def test_loads_and_reports_provider(model_dir: Path) -> None:
    art = load_artifact(model_dir, providers="cpu", intra_op_threads=1)
    m = art.manifest
    assert (m.vocab_version, m.vocab_size) == (V.VOCAB_VERSION, V.VOCAB_SIZE)
    assert art.providers == [CPU] and art.provider == CPU
    assert art.session.get_providers() == [CPU]
    assert [i.name for i in art.session.get_inputs()] == ["token", "cond", "h", "c"]


def test_vocab_version_mismatch_names_both(tiny_model_dir: Path, tmp_path: Path) -> None:
    bad = _copy(tiny_model_dir, tmp_path / "m", vocab_version="remi8-v0")
    with pytest.raises(ValueError, match=r"'remi8-v0'.*'remi16-v1'") as info:
        load_artifact(bad, providers="cpu")
    assert V.VOCAB_VERSION in str(info.value)


def test_vocab_size_mismatch(tiny_model_dir: Path, tmp_path: Path) -> None:
    bad = _copy(tiny_model_dir, tmp_path / "m", vocab_size=V.VOCAB_SIZE + 1)
    with pytest.raises(ValueError, match="vocab_size 150 != engine VOCAB_SIZE 149"):
        load_manifest(bad)


def test_missing_and_malformed(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_manifest(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no model manifest"):
        load_manifest(tmp_path / "empty")
    no_onnx = _copy(tiny_model_dir, tmp_path / "no_onnx")
    (no_onnx / "composer.onnx").unlink()
    with pytest.raises(FileNotFoundError, match=r"composer\.onnx"):
        load_manifest(no_onnx)
    broken = _copy(tiny_model_dir, tmp_path / "broken")
    (broken / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_manifest(broken)
    no_field = _copy(tiny_model_dir, tmp_path / "no_field")
    manifest = json.loads((no_field / "manifest.json").read_text())
    del manifest["hidden_size"]
    (no_field / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="missing field 'hidden_size'"):
        load_manifest(no_field)


def test_manifest_disagreeing_with_graph(tiny_model_dir: Path, tmp_path: Path) -> None:
    bad = _copy(tiny_model_dir, tmp_path / "m", hidden_size=999)
    with pytest.raises(ValueError, match="manifest implies"):
        load_artifact(bad, providers="cpu")


def test_provider_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PROVIDER_ENV, raising=False)
    auto, explicit = resolve_providers(None)
    assert not explicit
    assert auto[0] == (CUDA if CUDA in ort.get_available_providers() else CPU)
    assert resolve_providers("CPU") == ([CPU], True)
    assert resolve_providers([CPU]) == ([CPU], True)
    monkeypatch.setenv(PROVIDER_ENV, "cpu")
    assert resolve_providers(None) == ([CPU], True)
    monkeypatch.setenv(PROVIDER_ENV, "tpu")
    with pytest.raises(ValueError, match="unknown execution provider 'tpu'"):
        resolve_providers(None)
    with pytest.raises(ValueError, match=r"unknown execution provider 'gpu'.*cpu.*cuda"):
        resolve_providers("gpu")
    with pytest.raises(TypeError, match="providers"):
        resolve_providers(3)  # type: ignore[arg-type]


def test_env_override_is_used(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PROVIDER_ENV, "cpu")
    assert load_artifact(tiny_model_dir).requested_providers == [CPU]
    monkeypatch.setenv(PROVIDER_ENV, "nonsense")
    with pytest.raises(ValueError, match="nonsense"):
        load_artifact(tiny_model_dir)
    # The argument wins over the environment.
    assert load_artifact(tiny_model_dir, providers="cpu").provider == CPU


def test_explicit_cuda_is_used_or_refused(tiny_model_dir: Path) -> None:
    """No silent CPU fallback when CUDA was asked for explicitly."""
    try:
        art = load_artifact(tiny_model_dir, providers="cuda")
    except ValueError as exc:
        assert "CUDAExecutionProvider" in str(exc)
    else:
        assert art.provider == CUDA


def test_automatic_choice_always_loads(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PROVIDER_ENV, raising=False)
    art = load_artifact(tiny_model_dir)
    assert art.provider in (CUDA, CPU)


def test_thread_arguments_validated(tiny_model_dir: Path) -> None:
    with pytest.raises(ValueError, match="intra_op_threads must be >= 1"):
        load_artifact(tiny_model_dir, providers="cpu", intra_op_threads=0)
    with pytest.raises(TypeError, match="inter_op_threads"):
        load_artifact(tiny_model_dir, providers="cpu", inter_op_threads=1.5)  # type: ignore[arg-type]


def test_default_dir_and_engine_import_without_torch() -> None:
    assert default_model_dir() == Path(__file__).resolve().parents[2] / "models" / "composer"
    code = (
        "import sys, engine.cli, engine.model.composer, engine.bench.composer, engine.model.artifact as m;"
        "m.default_model_dir(); engine.cli.build_parser();"
        "assert 'torch' not in sys.modules, 'engine imported torch'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_int8_precision(tiny_model_dir: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    """The int8 graph loads only when the manifest ships one; it runs the same contract."""
    from engine.model.composer import Composer
    from export.quantize import main as quantize

    with pytest.raises(ValueError, match="no int8 graph"):
        load_artifact(tiny_model_dir, providers="cpu", precision="int8")
    with pytest.raises(ValueError, match="precision"):
        load_artifact(tiny_model_dir, providers="cpu", precision="fp16")
    art = tmp_path / "art"
    shutil.copytree(tiny_model_dir, art)
    assert (
        quantize([str(art), "--corpus", str(tiny_corpus), "--windows", "2", "--seq-len", "16", "--keep"]) == 0
    )
    composer = Composer(art, providers="cpu", max_streams=2, precision="int8")
    _, bars = composer.compose(0.5, 0.5, 2, seed=1)
    assert bars == [4, 4]
    (art / "composer.int8.onnx").unlink()
    with pytest.raises(FileNotFoundError, match="int8"):
        load_artifact(art, providers="cpu", precision="int8")
