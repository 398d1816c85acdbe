"""The corpus builder on a small copy of the real data (a dozen files, encoded in-process)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.tokens import vocab as V
from models import corpus as C

DATA = C.DEFAULT_DATA_DIR  # the shared data next to the repository
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="shared data directory not available")

VGMIDI_LABELLED = [
    "Banjo-Kazooie_N64_Banjo-Kazooie_Boggys Igloo Happy.mid",
    "Banjo-Kazooie_N64_Banjo-Kazooie_Boggys Igloo Sad.mid",
    "The Legend of Zelda_N64_The Legend of Zelda Ocarina of Time_Prelude of Light.mid",
    "The Legend of Zelda_N64_The Legend of Zelda Ocarina of Time_Serenade of Water.mid",
    "Final Fantasy_PS1_Final Fantasy VII_Who Are You.mid",
]
VGMIDI_UNLABELLED = ["Tales_GCN_Tales of Symphonia_A Wood Carving Star.mid"]
EMOPIA = [
    "Q3_Oku8sIpTMAE_0.mid",
    "Q3_Oku8sIpTMAE_1.mid",
    "Q3_Oku8sIpTMAE_2.mid",
    "Q4_ltNK_MY1HkM_1.mid",  # song id with an underscore
    "Q4_ltNK_MY1HkM_2.mid",
    "Q1_60LLKmpgzRM_0.mid",
    "Q4_JP3QKZlyQz4_0.mid",
    "Q4_JP3QKZlyQz4_2.mid",
]
POP909 = "098"


def _make_data_dir(root: Path) -> Path:
    """Mirror the data layout with a few real files (copied; annotations/labels filtered)."""
    src, dst = DATA, root / "data"
    (dst / "vgmidi/labelled/midi").mkdir(parents=True)
    (dst / "vgmidi/unlabelled/midi").mkdir(parents=True)
    (dst / "emopia/midi").mkdir(parents=True)
    (dst / f"pop909/{POP909}").mkdir(parents=True)
    for name in VGMIDI_LABELLED:
        shutil.copy(src / "vgmidi/labelled/midi" / name, dst / "vgmidi/labelled/midi" / name)
    for name in VGMIDI_UNLABELLED:
        shutil.copy(src / "vgmidi/unlabelled/midi" / name, dst / "vgmidi/unlabelled/midi" / name)
    annotations = json.loads((src / "vgmidi/labelled/annotations.json").read_text(encoding="utf-8"))
    (dst / "vgmidi/labelled/annotations.json").write_text(
        json.dumps({k: annotations[k] for k in VGMIDI_LABELLED}), encoding="utf-8"
    )
    for name in EMOPIA:
        shutil.copy(src / "emopia/midi" / name, dst / "emopia/midi" / name)
    with (src / "emopia/labels.csv").open(encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["file"] in EMOPIA]
    with (dst / "emopia/labels.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["file", "split", "quadrant"])
        writer.writeheader()
        writer.writerows(rows)
    shutil.copy(src / f"pop909/{POP909}/{POP909}.mid", dst / f"pop909/{POP909}/{POP909}.mid")
    return dst


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, C.Corpus]:
    root = tmp_path_factory.mktemp("corpus")
    data_dir = _make_data_dir(root)
    out = root / "out" / "corpus.npz"
    assert C.main(["--data", str(data_dir), "--out", str(out), "--workers", "1"]) == 0
    return data_dir, out, C.load_corpus(out)


def _index(corpus: C.Corpus, name: str) -> int:
    return [str(n) for n in corpus.piece_names].index(name)


def test_every_file_becomes_a_piece_with_bos_eos(built: tuple[Path, Path, C.Corpus]) -> None:
    _, _, corpus = built
    expected = len(VGMIDI_LABELLED) + len(VGMIDI_UNLABELLED) + len(EMOPIA) + 1
    assert corpus.num_pieces == expected
    assert corpus.tokens.dtype == np.int16 and corpus.cond.dtype == np.float16
    assert corpus.offsets[0] == 0 and corpus.offsets[-1] == corpus.tokens.size
    assert (np.diff(corpus.offsets) > 2).all()
    for i in range(corpus.num_pieces):
        tokens, cond = corpus.piece(i)
        assert tokens[0] == V.BOS and tokens[-1] == V.EOS
        assert (tokens[1:-1] != V.BOS).all() and (tokens[1:-1] != V.EOS).all()
        assert V.BAR_OFFSET <= tokens[1] < V.POS_OFFSET
        assert cond.shape == (tokens.size, 2)
    assert np.isfinite(corpus.cond).all()
    assert (np.abs(corpus.cond.astype(np.float32)) <= 1.0).all()


def test_sources_and_label_sources(built: tuple[Path, Path, C.Corpus]) -> None:
    _, _, corpus = built
    names = [str(n) for n in corpus.source_names]
    label_names = [str(n) for n in corpus.label_source_names]
    for i, piece in enumerate(corpus.piece_names):
        source = names[corpus.source[i]]
        label = label_names[corpus.label_source[i]]
        if str(piece).startswith("vgmidi/labelled/"):
            assert (source, label) == ("vgmidi_labelled", "vgmidi_curves")
        elif str(piece).startswith("vgmidi/unlabelled/"):
            assert (source, label) == ("vgmidi_unlabelled", "features_ridge")
        elif str(piece).startswith("emopia/"):
            assert (source, label) == ("emopia", "emopia_quadrant")
        else:
            assert (source, label) == ("pop909", "features_ridge")
            assert piece == f"pop909/{POP909}/{POP909}.mid"


def test_splits_are_by_piece(built: tuple[Path, Path, C.Corpus]) -> None:
    _, _, corpus = built
    by_song: dict[str, set[int]] = {}
    for i, name in enumerate(corpus.piece_names):
        if str(name).startswith("emopia/"):
            by_song.setdefault(C.emopia_group(Path(str(name)).name), set()).add(int(corpus.split[i]))
    assert len(by_song) == 4 and all(len(s) == 1 for s in by_song.values())
    assert by_song["emopia:ltNK_MY1HkM"] == {C.split_of("emopia:ltNK_MY1HkM")}
    happy = _index(corpus, "vgmidi/labelled/midi/" + VGMIDI_LABELLED[0])
    sad = _index(corpus, "vgmidi/labelled/midi/" + VGMIDI_LABELLED[1])
    assert corpus.split[happy] == corpus.split[sad]
    assert set(np.unique(corpus.split)) <= {C.TRAIN, C.VAL, C.TEST}


def test_split_hash_is_deterministic_and_roughly_90_5_5() -> None:
    keys = [f"piece-{i}" for i in range(4000)]
    splits = np.asarray([C.split_of(k) for k in keys])
    assert [C.split_of(k) for k in keys[:50]] == splits[:50].tolist()
    fractions = np.bincount(splits, minlength=3) / splits.size
    assert abs(fractions[0] - 0.90) < 0.02 and abs(fractions[1] - 0.05) < 0.015
    assert C.emopia_group("Q2_a_b_c_12.mid") == "emopia:a_b_c"
    assert C.vgmidi_group("X_Y_Z Happy.mid") == C.vgmidi_group("X_Y_Z Sad.mid") == "vgmidi:x_y_z"
    with pytest.raises(ValueError):
        C.emopia_group("clip.mid")


def test_vgmidi_bars_carry_listener_means(built: tuple[Path, Path, C.Corpus]) -> None:
    data_dir, _, corpus = built
    name = VGMIDI_LABELLED[4]
    entry = json.loads((data_dir / "vgmidi/labelled/annotations.json").read_text(encoding="utf-8"))[name]
    tokens, cond = corpus.piece(_index(corpus, "vgmidi/labelled/midi/" + name))
    bar_positions = np.flatnonzero((tokens >= V.BAR_OFFSET) & (tokens < V.POS_OFFSET))
    bar = 3
    expected_v = np.mean([curve[bar] for curve in entry["valence"]])
    expected_a = np.mean([curve[bar] for curve in entry["arousal"]])
    start = bar_positions[bar]
    end = bar_positions[bar + 1] if bar + 1 < bar_positions.size else tokens.size
    assert np.allclose(cond[start:end, 0], expected_v, atol=1e-3)
    assert np.allclose(cond[start:end, 1], expected_a, atol=1e-3)
    assert np.allclose(cond[0], cond[1])  # BOS takes bar 0


def test_curve_targets_average_ragged_listeners_and_clamp() -> None:
    entry = {"measures": 2, "valence": [[0.2, 0.4, 0.9], [0.0, 0.2]], "arousal": [[-1.0, 1.0], [0.0, 0.0]]}
    got = C.curve_targets(entry, 4)
    assert np.allclose(got[:, 0], [0.1, 0.3, 0.3, 0.3])  # third value > measures ignored
    assert np.allclose(got[:, 1], [-0.5, 0.5, 0.5, 0.5])  # bars past the last measure keep it


def test_emopia_clips_carry_their_quadrant(built: tuple[Path, Path, C.Corpus]) -> None:
    _, _, corpus = built
    for name, expected in [("Q3_Oku8sIpTMAE_0.mid", (-0.75, -0.75)), ("Q1_60LLKmpgzRM_0.mid", (0.75, 0.75))]:
        _, cond = corpus.piece(_index(corpus, "emopia/midi/" + name))
        assert np.array_equal(
            cond.astype(np.float32), np.tile(np.asarray(expected, np.float32), (cond.shape[0], 1))
        )
    _, cond = corpus.piece(_index(corpus, "emopia/midi/Q4_ltNK_MY1HkM_1.mid"))
    assert np.array_equal(cond[0].astype(np.float32), np.asarray([0.75, -0.75], np.float32))


def test_meta_and_label_model_are_stored(built: tuple[Path, Path, C.Corpus]) -> None:
    _, out, corpus = built
    with np.load(out, allow_pickle=False) as z:
        assert {"tokens", "cond", "offsets", "split", "source", "source_names", "piece_names"} <= set(z.files)
        assert {"label_source", "label_source_names", "vocab_version", "meta_json", "label_coef"} <= set(
            z.files
        )
        assert str(z["vocab_version"]) == V.VOCAB_VERSION
    meta = corpus.meta
    assert meta["tokens"] == corpus.tokens.size and meta["pieces"] == corpus.num_pieces
    assert sum(v["tokens"] for s in meta["counts"].values() for v in s.values()) == corpus.tokens.size
    assert corpus.label_model is not None  # labelled train pieces exist in this selection
    assert meta["label_fit"]["train_pieces"] >= 5
    assert meta["label_fit"]["val"] is not None  # the JP3QKZlyQz4 clips hash to val
    pop = _index(corpus, f"pop909/{POP909}/{POP909}.mid")
    assert corpus.pieces_in("train").dtype == np.int64 and pop in corpus.pieces_in(
        str(corpus.split_names[corpus.split[pop]])
    )


def test_vocab_mismatch_raises(built: tuple[Path, Path, C.Corpus], tmp_path: Path) -> None:
    _, out, _ = built
    with np.load(out, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["vocab_version"] = np.asarray("remi16-v0")
    stale = tmp_path / "stale.npz"
    np.savez_compressed(stale, **arrays)
    with pytest.raises(ValueError, match="rebuild"):
        C.load_corpus(stale)


def test_missing_sources_are_skipped_without_labelled_data(tmp_path: Path) -> None:
    (tmp_path / f"pop909/{POP909}").mkdir(parents=True)
    shutil.copy(DATA / f"pop909/{POP909}/{POP909}.mid", tmp_path / f"pop909/{POP909}/{POP909}.mid")
    (tmp_path / "pop909/999").mkdir()
    (tmp_path / "pop909/999/999.mid").write_bytes(b"not a midi file")
    messages: list[str] = []
    corpus = C.build_corpus(tmp_path, workers=1, log=messages.append)
    assert corpus.num_pieces == 1 and corpus.label_model is None
    assert corpus.meta["skipped_files"] == 1
    assert not corpus.cond.astype(np.float32).any()
    assert any("skipping emopia" in m for m in messages)
    assert any("skipping pop909/999/999.mid" in m for m in messages)
