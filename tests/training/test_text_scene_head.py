"""The text emotion model's scene head training (models/train_text_emotion.py), on synthetic
windows: contexts padded as a story's start is, and short contexts taught to be no opening."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engine.story.windows import ahead_windows, context_windows  # noqa: E402
from models.text_emotion_model import TextEmotionConfig  # noqa: E402
from models.train_text_emotion import (  # noqa: E402
    scene_probabilities,
    shorten_contexts,
    train_scene_head,
)


def test_the_read_ahead_head_hears_what_comes_and_the_live_head_cannot() -> None:
    """Synthetic episodes whose scene is told by a line three lines later: the live head, which
    reads only the past, is at chance; the read-ahead head, which reads the next lines, learns it."""
    cfg = TextEmotionConfig(hidden=8, scene_width=16, context_lines=4, read_ahead_lines=6)
    rng = np.random.default_rng(2)

    def episode() -> tuple[np.ndarray, ...]:
        emb = rng.normal(size=(60, cfg.hidden)).astype(np.float32)
        va = np.zeros((60, 2), np.float32)
        labels = np.zeros((60, 2), np.float32)
        labels[:-3, 0] = emb[3:, 0] > 0  # the valence of line i is told by line i + 3
        labels[:, 1] = 1.0
        return (*context_windows(emb, va, 6), *ahead_windows(emb, va, 6), labels)

    train = [episode() for _ in range(30)]
    held = episode()
    live = train_scene_head(cfg, train, seed=0, epochs=15, short_share=0.0)
    ahead = train_scene_head(cfg, train, seed=0, epochs=15, read_ahead=True, short_share=0.0)

    def right(p: np.ndarray) -> float:
        return float(np.mean((p[:-3, 0] > 0.5) == (held[-1][:-3, 0] > 0.5)))

    assert right(scene_probabilities(live, *held[:2])) < 0.65
    assert right(scene_probabilities(ahead, *held[:4])) > 0.85


def test_shortened_contexts_keep_the_current_line_and_blank_the_oldest() -> None:
    gen = torch.Generator().manual_seed(0)
    e = torch.ones(2000, 16, 3)
    v = torch.ones(2000, 16, 2)
    se, sv = shorten_contexts(e, v, 0.3, gen)
    kept = (se[:, :, 0] != 0).sum(1)
    assert bool((se[:, -1] == 1).all()) and bool((sv[:, -1] == 1).all())  # the current line stays
    shortened = kept < 16
    assert 0.25 < float(shortened.float().mean()) < 0.35
    assert int(kept.min()) == 1 and int(kept[shortened].max()) == 15
    # blanks only before the kept lines: each row is zeros, then ones
    assert bool((se[:, 1:, 0] >= se[:, :-1, 0]).all())
    same_e, same_v = shorten_contexts(e, v, 0.0, gen)
    assert torch.equal(same_e, e) and torch.equal(same_v, v)


def test_a_short_context_is_not_read_as_the_opening_once_taught() -> None:
    """Synthetic episodes that open in one scene (their first 16 lines: label 1) and go on in
    another (label 0) with lines that look the same: without shortening, a 2-line context says
    "opening"; with it, blanks no longer tell the opening apart."""
    cfg = TextEmotionConfig(hidden=8, scene_width=16, context_lines=16)
    rng = np.random.default_rng(0)
    windows = []
    for _ in range(40):
        n = 40
        emb = rng.normal(size=(n, cfg.hidden)).astype(np.float32)
        va = np.zeros((n, 2), np.float32)
        labels = np.zeros((n, 2), np.float32)
        labels[:16] = 1.0
        we, wv = context_windows(emb, va, cfg.context_lines)
        windows.append((we, wv, labels))
    probe_e = np.zeros((200, 16, cfg.hidden), np.float32)
    probe_e[:, -2:] = rng.normal(size=(200, 2, cfg.hidden))
    probe_v = np.zeros((200, 16, 2), np.float32)
    plain = train_scene_head(cfg, windows, seed=0, epochs=12, short_share=0.0)
    taught = train_scene_head(cfg, windows, seed=0, epochs=12, short_share=0.5)
    p_plain = scene_probabilities(plain, probe_e, probe_v)[:, 0].mean()
    p_taught = scene_probabilities(taught, probe_e, probe_v)[:, 0].mean()
    assert p_plain > 0.7  # the padding alone says "opening"
    assert p_taught < p_plain - 0.25


def test_the_scene_ensemble_averages_heads_trained_from_different_seeds(tmp_path) -> None:
    """Each seed gives its own head; the ensemble answers their mean logits, and the export
    reads the saved heads back as the same ensemble."""
    from export.text_emotion import load_scene_heads
    from models.train_text_emotion import train_scene_ensemble

    cfg = TextEmotionConfig(hidden=8, scene_width=16, context_lines=4)
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(60, cfg.hidden)).astype(np.float32)
    va = rng.normal(size=(60, 2)).astype(np.float32)
    labels = (emb[:, :2] > 0).astype(np.float32)
    we, wv = context_windows(emb, va, cfg.context_lines)
    ensemble = train_scene_ensemble(cfg, [(we, wv, labels)], seeds=[0, 1, 2], epochs=2)
    e, v = torch.from_numpy(we), torch.from_numpy(wv)
    with torch.no_grad():
        each = [head(e, v) for head in ensemble.heads]
        assert not torch.allclose(each[0], each[1])  # the seeds differ
        assert torch.allclose(ensemble(e, v), torch.stack(each).mean(0))
        torch.save(
            {"config": cfg.to_dict(), "scene_heads": [h.state_dict() for h in ensemble.heads]},
            tmp_path / "scene.pt",
        )
        loaded = load_scene_heads(tmp_path / "scene.pt", cfg)
        assert len(loaded.heads) == 3 and torch.allclose(loaded(e, v), ensemble(e, v))
        # a single-head run's checkpoint is an ensemble of one
        torch.save(
            {"config": cfg.to_dict(), "scene_head": ensemble.heads[0].state_dict()}, tmp_path / "one.pt"
        )
        one = load_scene_heads(tmp_path / "one.pt", cfg)
        assert len(one.heads) == 1 and torch.allclose(one(e, v), each[0])
    # the read-ahead heads are saved beside the live ones and read back as their own ensemble
    pe, pv = context_windows(emb, va, cfg.read_ahead_lines)
    ae, av = ahead_windows(emb, va, cfg.read_ahead_lines)
    ahead = train_scene_ensemble(cfg, [(pe, pv, ae, av, labels)], seeds=[0, 1], epochs=2, read_ahead=True)
    inputs = [torch.from_numpy(x) for x in (pe, pv, ae, av)]
    torch.save(
        {
            "config": cfg.to_dict(),
            "scene_heads": [h.state_dict() for h in ensemble.heads],
            "read_ahead_heads": [h.state_dict() for h in ahead.heads],
        },
        tmp_path / "both.pt",
    )
    with torch.no_grad():
        loaded_ahead = load_scene_heads(tmp_path / "both.pt", cfg, read_ahead=True)
        assert len(loaded_ahead.heads) == 2 and torch.allclose(loaded_ahead(*inputs), ahead(*inputs))
        assert torch.allclose(load_scene_heads(tmp_path / "both.pt", cfg)(e, v), ensemble(e, v))
    with pytest.raises(KeyError):
        load_scene_heads(tmp_path / "scene.pt", cfg, read_ahead=True)  # a run of live heads only


WORDS = ["wolves", "storm", "tavern", "sword", "rest", "night", "fire", "calm", "battle", "song"]


def tiny_corpus(tmp_path, monkeypatch):
    """A few sentences in EmoBank's and XED's formats and three short transcripts in Call of the
    Wild's, with the MiniLM weights left out (the encoder starts from its own seeded
    initialisation); returns the data directory and the training module."""
    import shutil
    from pathlib import Path

    import models.train_text_emotion as tte

    words = WORDS
    data = tmp_path / "data"
    (data / "emobank").mkdir(parents=True)
    (data / "xed").mkdir()
    (data / "dnd").mkdir()
    rows = ["id,split,V,A,D,text"] + [
        f"s{i},{('dev', 'test', 'train', 'train', 'train')[i % 5]},{1 + i % 5},{1 + (i * 3) % 5},3.0,"
        f"{words[i % 10]} {words[(i * 7) % 10]}"
        for i in range(40)
    ]
    (data / "emobank" / "emobank.csv").write_text("\n".join(rows) + "\n")
    (data / "xed" / "en-annotated.tsv").write_text(
        "".join(f"{words[i % 10]} and {words[(i + 3) % 10]}\t{1 + i % 8}\n" for i in range(40))
    )
    (data / "xed" / "neu_en.txt").write_text("".join(f"9\t{w} again\n" for w in words))
    for ep in (1, 2, 3):
        lines = ["start,duration,text,valence,arousal"] + [
            f"{2.5 * i:.1f},2.0,{words[(i + ep) % 10]} {words[(i * 3) % 10]},{int(i >= 12)},{(i // 6) % 2}"
            for i in range(24)
        ]
        (data / "dnd" / f"ep{ep}.csv").write_text("\n".join(lines) + "\n")
    base = tmp_path / "minilm"
    base.mkdir()
    shutil.copy(Path(tte.__file__).parent / "text_emotion" / "tokenizer.json", base / "tokenizer.json")
    monkeypatch.setattr(tte, "minilm_dir", lambda: base)
    monkeypatch.setattr(tte, "load_minilm", lambda encoder, path: None)
    return data, tte


def test_a_rerun_of_the_fine_tune_makes_the_same_encoder(tmp_path, monkeypatch) -> None:
    """The line head is the one part of the encoder not loaded from MiniLM: it is seeded, so two
    runs (whatever torch's default generator says: each process seeds it at random) end with the
    same weights."""
    data, tte = tiny_corpus(tmp_path, monkeypatch)
    states = []
    for run in ("a", "b"):
        torch.manual_seed(len(run) * 7 + ord(run))  # a different default generator each run
        out = tmp_path / run
        argv = ["finetune", "--out", str(out), "--data", str(data), "--epochs", "1", "--batch", "8"]
        assert tte.main([*argv, "--warmup", "2", "--threads", "1"]) == 0
        states.append(torch.load(out / "finetune.pt", weights_only=False)["model"])
    assert states[0].keys() == states[1].keys()
    for name, tensor in states[0].items():
        assert torch.equal(tensor, states[1][name]), name


def test_the_scene_stage_scores_every_fold_resumes_and_encodes_once_when_not_adapting(
    tmp_path, monkeypatch
) -> None:
    """``scene`` leaves each episode out in turn, then trains the shipped heads on every episode;
    with ``--domain-epochs 0`` the encoder is the fine-tuned one throughout, so the transcripts
    are encoded once, not once per fold; a rerun keeps the finished folds and trains only the
    shipped heads again."""
    import json

    data, tte = tiny_corpus(tmp_path, monkeypatch)
    out = tmp_path / "run"
    common = ["--out", str(out), "--data", str(data), "--threads", "1", "--batch", "8"]
    assert tte.main(["finetune", *common, "--epochs", "1", "--warmup", "2"]) == 0
    encoded, trained = [], []
    real_windows, real_train = tte._windows, tte.train_scene_ensemble
    monkeypatch.setattr(tte, "_windows", lambda *a: encoded.append(1) or real_windows(*a))
    monkeypatch.setattr(tte, "train_scene_ensemble", lambda *a, **k: trained.append(1) or real_train(*a, **k))
    scene = ["scene", *common, "--epochs", "1", "--heads", "2"]
    assert tte.main(scene) == 0
    assert (len(encoded), len(trained)) == (1, 8)  # three folds and the shipped heads, of both kinds
    metrics = json.loads((out / "metrics.json").read_text())["call_of_the_wild_leave_one_episode_out"]
    assert [f["episode"] for f in metrics["folds"]] == [1, 2, 3]
    assert 0.0 <= metrics["mean"]["arc_valence"] <= 1.0
    assert len(metrics["mean"]["single_head_arc_valence"]) == 2  # one per head
    assert 0.0 <= metrics["mean_read_ahead"]["arc_arousal"] <= 1.0
    assert all("arc_valence" in f["read_ahead"] for f in metrics["folds"])
    saved = torch.load(out / "scene.pt", weights_only=False)
    assert len(saved["scene_heads"]) == len(saved["read_ahead_heads"]) == 2
    assert (out / "scene.pt").is_file() and (out / "encoder.pt").is_file()
    encoded.clear()
    trained.clear()
    assert tte.main(scene) == 0
    assert (len(encoded), len(trained)) == (1, 2)  # the folds are kept
