"""Relabelling the unlabelled music with the recognizer, and the conditioning check."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.recognizer.emotion_recognizer import EmotionRecognizer
from engine.tokens.codec import decode_tokens
from models import corpus as C
from models.relabel import RECOGNIZER_LABEL, main, relabel, smooth_bars


def test_smooth_bars_is_a_centred_moving_average() -> None:
    bars = np.asarray([[0.0, 1.0], [1.0, 1.0], [2.0, -1.0], [3.0, -1.0], [4.0, 1.0]])
    out = smooth_bars(bars, 3)
    assert out[:, 0].tolist() == pytest.approx([0.5, 1.0, 2.0, 3.0, 3.5])
    assert out[2, 1] == pytest.approx(-1 / 3)
    assert smooth_bars(bars, 1).tolist() == bars.tolist()
    assert smooth_bars(bars, 4)[0, 0] == pytest.approx(0.5)  # bars 0..1 (window -2..1)


def test_relabel_replaces_only_feature_labels(tiny_corpus: Path, tmp_path: Path) -> None:
    corpus = C.load_corpus(tiny_corpus)
    ridge = list(C.LABEL_SOURCE_NAMES).index("features_ridge")
    corpus.label_source[[1, 4]] = ridge  # as if two pieces had no listener labels
    recognizer = EmotionRecognizer.load()
    out = relabel(corpus, recognizer, window=3, batch=2)
    names = [str(n) for n in out.label_source_names]
    assert names[-1] == RECOGNIZER_LABEL
    assert out.label_source.tolist() == [0, len(names) - 1, 0, 0, len(names) - 1, 0]
    for i in range(corpus.num_pieces):
        old, new = corpus.piece(i)[1], out.piece(i)[1]
        if i in (1, 4):
            expected = smooth_bars(recognizer.classify_notes(*decode_tokens(corpus.piece(i)[0])).bars, 3)
            # BOS is in the first bar, EOS in the last (float16 storage)
            assert np.allclose(new[0].astype(float), expected[0], atol=2e-3)
            assert np.allclose(new[-1].astype(float), expected[-1], atol=2e-3)
            assert not np.array_equal(old, new)
        else:
            assert np.array_equal(old, new)
    path = tmp_path / "relabelled.npz"
    C.save_corpus(out, path)
    back = C.load_corpus(path)
    assert back.meta["relabel"]["pieces"] == 2 and [str(n) for n in back.label_source_names] == names


def test_relabel_command_writes_a_loadable_corpus(tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.npz"
    assert main(["--corpus", str(tiny_corpus), "--out", str(out)]) == 0  # nothing to relabel here
    back = C.load_corpus(out)
    assert back.meta["relabel"]["pieces"] == 0
    assert json.dumps(back.meta)
    assert np.array_equal(back.cond, C.load_corpus(tiny_corpus).cond)


def test_conditioning_check_sees_what_the_model_reads(
    tiny_model_dir: Path, tiny_corpus: Path, tmp_path: Path
) -> None:
    torch = pytest.importorskip("torch")
    from models.composer_lstm import load_checkpoint, save_checkpoint
    from models.conditioning_check import check, listener_val_batches

    batches = listener_val_batches(C.load_corpus(tiny_corpus), windows=4, length=64, batch=2)
    assert len(batches) == 2
    reads = check(str(tiny_model_dir.parent / "init.pt"), batches)
    assert reads["valence_gap"] != 0 and reads["arousal_gap"] != 0  # random weights read the input
    model, _ = load_checkpoint(str(tiny_model_dir.parent / "init.pt"))
    with torch.no_grad():
        model.cond_in.weight.zero_()
        model.cond_out.weight.zero_()
    deaf = tmp_path / "deaf.pt"
    save_checkpoint(str(deaf), model)
    ignores = check(str(deaf), batches)
    assert ignores["valence_gap"] == 0 and ignores["arousal_gap"] == 0
