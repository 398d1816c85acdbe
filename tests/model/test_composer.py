"""The batched streaming composer on a real ONNX model (tiny random weights, and the shipped one)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from engine.model.artifact import ModelArtifact
from engine.model.composer import Composer
from engine.tokens import vocab as V
from engine.tokens.codec import decode_tokens


def _decode_all(seqs: list[list[int]] | list[np.ndarray], meter: int = 4) -> None:
    for seq in seqs:
        notes, bars = decode_tokens(np.asarray(seq))
        assert set(bars) <= {meter}
        for note in notes:
            assert V.PITCH_MIN <= note.pitch <= V.PITCH_MAX


def test_masked_streams_always_decode(composer: Composer) -> None:
    """Thousands of tokens over many streams, extreme settings included: all decodable."""
    rng = np.random.default_rng(0)
    temps = [5.0, 1e-3, 0.01, 1.0, 2.5, *rng.uniform(0.05, 5, 27).tolist()]
    tops = [0.01, 1.0, 1e-6, 0.95, 0.5, *rng.uniform(0.01, 1, 27).tolist()]
    ids = [
        composer.open_stream(
            seed=i,
            valence=float(rng.uniform(-1, 1)),
            arousal=float(rng.uniform(-1, 1)),
            temperature=t,
            top_p=p,
        )
        for i, (t, p) in enumerate(zip(temps, tops, strict=True))
    ]
    seqs: list[list[int]] = [[] for _ in ids]
    for step in range(400):
        if step % 40 == 20:  # change emotion and sampling mid-stream
            s = ids[step % len(ids)]
            composer.set_emotion(
                s, float(rng.uniform(-1, 1)), float(rng.uniform(-1, 1)), immediate=step % 80 == 20
            )
            composer.set_sampling(
                s, temperature=float(rng.uniform(0.1, 5)), top_p=float(rng.uniform(0.01, 1))
            )
        active = ids if step % 3 else ids[::2]  # stepping subsets too
        tokens = composer.step(active)
        for s, t in zip(active, tokens.tolist(), strict=True):
            seqs[ids.index(s)].append(t)
    assert sum(map(len, seqs)) > 10_000
    assert all(seq[0] == V.bar_token(4) for seq in seqs)
    _decode_all(seqs)


@pytest.mark.parametrize("meter", [2, 3])
def test_other_meters(artifact: ModelArtifact, meter: int) -> None:
    composer = Composer(artifact=artifact, max_streams=4, meter_beats=meter)
    ids = [composer.open_stream(seed=s, temperature=3.0) for s in range(4)]
    outs = composer.generate_bars(ids, 3)
    _decode_all(outs, meter)
    assert all(len(decode_tokens(o)[1]) == 3 for o in outs)


def test_generate_bars_counts_and_continues(composer: Composer) -> None:
    ids = [composer.open_stream(seed=s, valence=0.3, arousal=-0.2, temperature=1.5) for s in range(6)]
    first = composer.generate_bars(ids, 3)
    second = composer.generate_bars(ids, 2)
    third = [composer.step([s])[0] for s in ids]  # the held BAR comes out of step() as well
    for a, b, c, s in zip(first, second, third, ids, strict=True):
        assert a[0] == V.bar_token(4) and b[0] == V.bar_token(4)
        assert len(decode_tokens(a)[1]) == 3 and len(decode_tokens(b)[1]) == 2
        assert c == V.bar_token(4)
        whole = np.concatenate([a, b, [c]])
        assert len(decode_tokens(whole)[1]) == 6
        assert composer.info(s).bars == 6


def test_compose_returns_requested_bars(composer: Composer) -> None:
    notes, bars = composer.compose(0.7, -0.4, 5, seed=3, temperature=1.0, top_p=0.95)
    assert bars == [4] * 5
    assert all(0 <= n.onset_step < 5 * 16 for n in notes)
    assert composer.open_streams == []  # compose closes its stream


def test_compose_reports_each_bar_and_composes_the_same_piece(composer: Composer) -> None:
    seen: list[tuple[int, int]] = []
    piece = composer.compose(0.4, 0.6, 5, seed=8, guidance=1.0, on_bar=lambda done, n: seen.append((done, n)))
    assert seen == [(done, 5) for done in range(1, 6)]
    assert piece == composer.compose(0.4, 0.6, 5, seed=8, guidance=1.0)  # progress changes nothing
    assert composer.open_streams == []


def test_same_seed_same_tokens_different_seed_different(artifact: ModelArtifact) -> None:
    def run(seeds: list[int]) -> list[list[int]]:
        c = Composer(artifact=artifact, max_streams=8)
        ids = [c.open_stream(seed=s, valence=0.5, arousal=0.5) for s in seeds]
        return [c.step(ids).tolist() for _ in range(200)]

    a, b = run([1, 2, 3]), run([1, 2, 3])
    assert a == b
    c = run([4, 5, 6])
    assert a != c
    per_stream = np.array(a).T
    assert not np.array_equal(per_stream[0], per_stream[1])


def test_stream_independent_of_batch_company(artifact: ModelArtifact) -> None:
    """On the CPU provider a stream's tokens do not depend on the other streams stepped with it
    (ORT's CPU kernels give bit-identical rows whatever the batch), nor on its slot."""
    alone = Composer(artifact=artifact, max_streams=1)
    s = alone.open_stream(seed=42, valence=-0.6, arousal=0.8, temperature=1.2, top_p=0.9)
    ref = [int(alone.step([s])[0]) for _ in range(300)]

    crowd = Composer(artifact=artifact, max_streams=40)
    others = [crowd.open_stream(seed=100 + i, valence=0.9, arousal=-0.9) for i in range(20)]
    target = crowd.open_stream(seed=42, valence=-0.6, arousal=0.8, temperature=1.2, top_p=0.9)
    more = [crowd.open_stream(seed=200 + i) for i in range(10)]
    got: list[int] = []
    rng = np.random.default_rng(9)
    for i in range(300):
        company = [x for x in others + more if rng.random() < 0.5]
        batch = [*company, target] if i % 2 else [target, *company]
        tokens = crowd.step(batch)
        got.append(int(tokens[batch.index(target)]))
    assert got == ref


def test_emotion_applies_at_next_bar(composer: Composer) -> None:
    s = composer.open_stream(seed=5, valence=0.0, arousal=0.0, temperature=2.0)
    composer.set_emotion(s, 0.5, 0.5)  # no token yet: immediate
    assert composer.info(s).emotion == (0.5, 0.5)
    composer.generate_bars([s], 1)  # now holding the BAR that opens bar 2
    composer.set_emotion(s, -1.0, 1.0)
    info = composer.info(s)
    assert info.emotion == (0.5, 0.5) and info.target == (-1.0, 1.0)
    composer.generate_bars([s], 1)  # bar 2 (its held BAR is fed now) carries the new target
    assert composer.info(s).emotion == (-1.0, 1.0)
    composer.set_emotion(s, 0.0, 0.0)  # waits for the bar line to be fed
    composer.step([s])  # the held BAR of bar 3 is returned, not fed yet
    assert composer.info(s).emotion == (-1.0, 1.0)
    composer.step([s])
    assert composer.info(s).emotion == (0.0, 0.0)
    composer.set_emotion(s, 0.25, -0.25, immediate=True)
    assert composer.info(s).emotion == (0.25, -0.25)


def test_target_reaches_the_model_at_the_bar_line(artifact: ModelArtifact) -> None:
    """Changing the target mid-bar leaves the rest of the bar unchanged, and changes what follows."""
    a, b = (Composer(artifact=artifact, max_streams=1) for _ in range(2))
    sa, sb = a.open_stream(seed=3, temperature=1.5), b.open_stream(seed=3, temperature=1.5)
    first = a.generate_bars([sa], 1)[0]
    assert np.array_equal(first, b.generate_bars([sb], 1)[0])
    b.set_emotion(sb, 1.0, -1.0)
    later_a, later_b = a.generate_bars([sa], 2)[0], b.generate_bars([sb], 2)[0]
    assert later_a[0] == later_b[0] == V.bar_token(4)  # the held BAR: sampled before the change
    assert not np.array_equal(later_a, later_b)


def test_emotion_changes_the_music(composer: Composer) -> None:
    a = composer.open_stream(seed=8, valence=-1.0, arousal=-1.0)
    b = composer.open_stream(seed=8, valence=1.0, arousal=1.0)
    out = composer.generate_bars([a, b], 2)
    assert not np.array_equal(out[0], out[1])


@pytest.mark.parametrize(
    ("valence", "arousal", "error"),
    [
        (1.5, 0.0, ValueError),
        (0.0, -1.01, ValueError),
        (math.nan, 0.0, ValueError),
        (0.0, math.inf, ValueError),
        ("0.5", 0.0, TypeError),
        (True, 0.0, TypeError),
        (None, 0.0, TypeError),
    ],
)
def test_emotion_validated(
    composer: Composer, valence: object, arousal: object, error: type[Exception]
) -> None:
    s = composer.open_stream(seed=1)
    with pytest.raises(error, match=r"\[-1, 1\]"):
        composer.set_emotion(s, valence, arousal)  # type: ignore[arg-type]
    with pytest.raises(error, match=r"\[-1, 1\]"):
        composer.open_stream(seed=1, valence=valence, arousal=arousal)  # type: ignore[arg-type]


def test_stream_arguments_validated(composer: Composer) -> None:
    with pytest.raises(ValueError, match="temperature"):
        composer.open_stream(seed=1, temperature=0.0)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        composer.open_stream(seed=1, top_p=1.5)
    with pytest.raises(ValueError, match=">= 0"):
        composer.open_stream(seed=-1)
    with pytest.raises(TypeError, match="seed"):
        composer.open_stream(seed=1.5)  # type: ignore[arg-type]
    s = composer.open_stream(seed=None)
    assert composer.info(s).seed >= 0
    with pytest.raises(ValueError, match="distinct"):
        composer.step([s, s])
    with pytest.raises(ValueError, match=r"0\.\.63"):
        composer.step([64])
    with pytest.raises(ValueError, match="not open"):
        composer.step([s + 1])
    with pytest.raises(TypeError, match="ints"):
        composer.step([0.5])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="bars must be >= 1"):
        composer.generate_bars([s], 0)
    with pytest.raises(ValueError, match="top_p"):
        composer.set_sampling(s, top_p=0.0)
    assert composer.step([]).shape == (0,)


def test_slots_are_reused_and_limited(artifact: ModelArtifact) -> None:
    c = Composer(artifact=artifact, max_streams=2)
    a, b = c.open_stream(seed=1), c.open_stream(seed=2)
    with pytest.raises(RuntimeError, match="all 2 streams are open"):
        c.open_stream(seed=3)
    first = c.generate_bars([a], 1)[0]
    c.close_stream(a)
    with pytest.raises(ValueError, match="not open"):
        c.close_stream(a)
    again = c.open_stream(seed=1)
    assert again == a and c.open_streams == [a, b]
    assert np.array_equal(c.generate_bars([again], 1)[0], first)  # a reopened slot starts afresh


def test_constructor_validated(tiny_model_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"meter_beats must be one of \(2, 3, 4\)"):
        Composer(tiny_model_dir, providers="cpu", meter_beats=5)
    with pytest.raises(ValueError, match="max_streams must be >= 1"):
        Composer(tiny_model_dir, providers="cpu", max_streams=0)
    with pytest.raises(FileNotFoundError):
        Composer(tiny_model_dir / "missing", providers="cpu")


def test_valence_guidance(artifact: ModelArtifact) -> None:
    """Guidance 0 is plain sampling; guided streams stay valid, reproducible and batch-independent."""
    c = Composer(artifact=artifact, max_streams=8)
    plain = c.compose(0.8, 0.3, 4, seed=11)
    assert c.compose(0.8, 0.3, 4, seed=11, guidance=0.0) == plain
    guided = c.compose(0.8, 0.3, 4, seed=11, guidance=3.0)
    assert guided != plain and guided[1] == [4] * 4
    assert c.compose(0.8, 0.3, 4, seed=11, guidance=3.0) == guided
    # a guided stream gives the same tokens alone and beside unguided ones
    alone = c.open_stream(seed=5, valence=-0.7, arousal=0.2, guidance=2.0)
    ref = c.generate_bars([alone], 3)[0]
    c.close_stream(alone)
    ids = [c.open_stream(seed=9, valence=0.5), c.open_stream(seed=5, valence=-0.7, arousal=0.2, guidance=2.0)]
    c.set_sampling(ids[0], guidance=1.0)  # switched on mid-stream: starts from the stream's state
    outs = c.generate_bars(ids, 3)
    assert np.array_equal(outs[1], ref)
    _decode_all(outs)
    for bad, error in ((-0.5, ValueError), (9.0, ValueError), (math.nan, ValueError), ("2", TypeError)):
        with pytest.raises(error, match="guidance"):
            c.set_sampling(ids[0], guidance=bad)  # type: ignore[arg-type]


def test_tonal_primer_sets_key_and_is_not_output(artifact: ModelArtifact) -> None:
    from engine.model.tonal_primer import choose_key, primer_tokens

    c = Composer(artifact=artifact, max_streams=4)
    s = c.open_stream(seed=3, valence=0.9, arousal=0.0, tonal_prime=True)
    info = c.info(s)
    assert info.key == choose_key(3, 0.9) and info.bars == 1 and info.tokens == 1
    out = c.generate_bars([s], 2)[0]
    assert out[0] == V.bar_token(4) and len(decode_tokens(out)[1]) == 2  # primer bar not in the output
    with pytest.raises(ValueError, match="already started"):
        c.prime(s, primer_tokens(0, "major", 4))
    fresh = c.open_stream(seed=4)
    with pytest.raises(ValueError, match="BAR_4"):
        c.prime(fresh, primer_tokens(0, "minor", 3))  # wrong meter
    bad = np.asarray([V.bar_token(4), V.pitch_token(60)])  # a pitch without a position
    with pytest.raises(ValueError, match="not allowed"):
        c.prime(fresh, bad)
    assert fresh not in c.open_streams  # a half-primed stream is closed
    # primed composition is reproducible and differs from the unprimed one
    a = c.compose(-0.8, 0.2, 3, seed=8)
    assert a == c.compose(-0.8, 0.2, 3, seed=8) != c.compose(-0.8, 0.2, 3, seed=8, tonal_prime=False)


def test_tonal_primer_bars() -> None:
    from engine.model.tonal_primer import choose_key, mode_for_valence, primer_tokens

    for meter in V.BAR_BEATS:
        notes, bars = decode_tokens(primer_tokens(9, "minor", meter, velocity=100))
        assert bars == [meter]
        pcs = {(n.pitch - 9) % 12 for n in notes}
        assert 3 in pcs and 4 not in pcs and {n.velocity for n in notes} == {100}
    rng = np.random.default_rng(0)
    assert sum(mode_for_valence(0.8, rng) == "major" for _ in range(400)) > 380
    assert sum(mode_for_valence(-0.8, rng) == "major" for _ in range(400)) < 20
    assert choose_key(5, 0.3) == choose_key(5, 0.3)
    with pytest.raises(ValueError, match=r"0\.\.11"):
        primer_tokens(12, "major", 4)


def test_key_pull(artifact: ModelArtifact) -> None:
    """The key bias follows the Krumhansl–Kessler hierarchy and only acts on primed streams."""
    from engine.model.tonal_primer import key_bias

    bias = key_bias(2, "major", 1.5)  # D major
    pcs = {p % 12: float(bias[V.pitch_token(p)]) for p in range(60, 72)}
    assert pcs[2] == 0.0 and max(pcs.values()) == 0.0
    assert pcs[9] > pcs[3] and pcs[6] > pcs[5]  # the fifth and the major third beat chromatic notes
    non_tonic = sum(p % 12 != 2 for p in range(V.PITCH_MIN, V.PITCH_MAX + 1))
    assert np.count_nonzero(bias) == non_tonic  # every pitch but the tonic's is pulled down
    c = Composer(artifact=artifact, max_streams=2)
    a = c.compose(0.5, 0.0, 3, seed=2, key_strength=0.0)
    assert c.compose(0.5, 0.0, 3, seed=2, key_strength=4.0) != a
    assert c.compose(0.5, 0.0, 3, seed=2, tonal_prime=False, key_strength=4.0) == c.compose(
        0.5, 0.0, 3, seed=2, tonal_prime=False, key_strength=0.0
    )
    for bad, error in ((-1.0, ValueError), (8.5, ValueError), (math.inf, ValueError), (None, TypeError)):
        with pytest.raises(error, match="key_strength"):
            c.open_stream(seed=1, tonal_prime=True, key_strength=bad)  # type: ignore[arg-type]


def test_notes_between_beats_may_leave_the_key_but_not_the_mode(artifact: ModelArtifact) -> None:
    """``offbeat_pull`` frees passing tones (between beats) from the key pull, except the degrees
    that would say the parallel mode; notes on the beat keep the full pull."""
    from engine.model.tonal_primer import key_bias, offbeat_bias

    full, free = key_bias(0, "major", 2.0), offbeat_bias(0, "major", 2.0, 0.0)
    for p in range(60, 72):
        t = V.pitch_token(p)
        assert free[t] == (full[t] if p % 12 in (3, 8) else 0.0)  # C major: E-flat and A-flat stay pulled
    assert np.array_equal(offbeat_bias(0, "major", 2.0, 1.0), full)
    c = Composer(artifact=artifact, max_streams=12)
    scale = {0, 2, 4, 5, 7, 9, 11}

    def chromatic_share(pull: float) -> tuple[float, float]:
        ids = [
            c.open_stream(
                seed=s, valence=0.6, tonal_prime=True, key=(0, "major"), key_strength=4.0, offbeat_pull=pull
            )
            for s in range(12)
        ]
        seqs = c.generate_bars(ids, 6)
        for s in ids:
            c.close_stream(s)
        notes = [n for seq in seqs for n in decode_tokens(seq)[0]]
        on = [n.pitch % 12 not in scale for n in notes if n.onset_step % V.STEPS_PER_BEAT == 0]
        off = [n.pitch % 12 not in scale for n in notes if n.onset_step % V.STEPS_PER_BEAT]
        return float(np.mean(on)), float(np.mean(off))

    on_full, off_full = chromatic_share(1.0)
    on_free, off_free = chromatic_share(0.0)
    assert off_free > off_full + 0.03
    assert on_free < 0.08 and on_full < 0.08
    with pytest.raises(ValueError, match="offbeat_pull"):
        c.open_stream(seed=1, offbeat_pull=1.5)


def test_an_eased_pull_keeps_the_mode(artifact: ModelArtifact) -> None:
    """``mode_guard`` keeps the parallel mode's pitch classes pulled when the key pull eases:
    with no pull at all, C major streams play E-flat and A-flat; guarded, far less often."""
    from engine.model.tonal_primer import key_bias, offbeat_bias

    eased, guarded = key_bias(0, "major", 0.5), key_bias(0, "major", 0.5, 3.0)
    full = key_bias(0, "major", 3.0)
    for p in range(60, 72):
        t = V.pitch_token(p)
        assert guarded[t] == (full[t] if p % 12 in (3, 8) else eased[t])
    assert np.array_equal(key_bias(0, "major", 3.0, 1.0), full)  # a guard weaker than the pull: none
    assert np.array_equal(
        offbeat_bias(0, "major", 0.5, 0.0, 3.0),
        np.where(
            np.isin(
                np.arange(V.VOCAB_SIZE),
                [V.pitch_token(p) for p in range(V.PITCH_MIN, V.PITCH_MAX + 1) if p % 12 in (3, 8)],
            ),
            full,
            0.0,
        ),
    )
    c = Composer(artifact=artifact, max_streams=12)

    def parallel_share(guard: float, late: bool) -> float:
        ids = [
            c.open_stream(seed=s, valence=0.8, tonal_prime=True, key=(0, "major"), key_strength=0.0,
                          mode_guard=0.0 if late else guard)
            for s in range(12)
        ]  # fmt: skip
        if late:  # set on a stream already open
            for s in ids:
                c.set_key(s, 0, "major", 0.0, mode_guard=guard)
        seqs = c.generate_bars(ids, 6)
        for s in ids:
            c.close_stream(s)
        notes = [n for seq in seqs for n in decode_tokens(seq)[0]]
        return float(np.mean([n.pitch % 12 in (3, 8) for n in notes]))

    free = parallel_share(0.0, late=False)
    assert free > 0.04
    assert parallel_share(4.0, late=False) < free / 3
    assert parallel_share(4.0, late=True) < free / 3
    for bad in (-1.0, 8.5):
        with pytest.raises(ValueError, match="mode_guard"):
            c.open_stream(seed=1, mode_guard=bad)
        s = c.open_stream(seed=1)
        with pytest.raises(ValueError, match="mode_guard"):
            c.set_key(s, 0, "major", 1.0, mode_guard=bad)
        c.close_stream(s)

    def after_set_key(refused_first: bool) -> list[int]:
        """A refused set_key changes nothing: the next one keeps the guard it had (none)."""
        fresh = Composer(artifact=artifact, max_streams=1)
        s = fresh.open_stream(seed=3, valence=0.8, tonal_prime=True, key=(0, "major"), key_strength=0.0)
        if refused_first:
            with pytest.raises(ValueError, match=r"0\.\.11"):
                fresh.set_key(s, 99, "major", 0.0, mode_guard=8.0)
        fresh.set_key(s, 0, "major", 0.0)
        return list(fresh.generate_bars([s], 4)[0])

    assert after_set_key(refused_first=True) == after_set_key(refused_first=False)


def test_a_reopened_slot_carries_no_key_pull_into_a_mixed_batch(artifact: ModelArtifact) -> None:
    """A stream without a pull, opened in the slot of a closed pulled one, composes the same
    beside a pulled stream as alone: the batch adds no stale bias to it."""

    def plain_beside_pulled(reuse: bool) -> list[int]:
        c = Composer(artifact=artifact, max_streams=2)  # fresh slots for each
        if reuse:
            c.close_stream(c.open_stream(seed=9, tonal_prime=True, key=(0, "major"), key_strength=8.0))
        plain = c.open_stream(seed=4, valence=0.2)
        pulled = c.open_stream(seed=5, tonal_prime=True, key=(6, "major"), key_strength=8.0)
        return list(c.generate_bars([plain, pulled], 3)[0])

    assert plain_beside_pulled(reuse=True) == plain_beside_pulled(reuse=False)
