"""Masked temperature / top-p sampling and the per-stream random numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.model.sampling import (
    BatchSampler,
    UniformBank,
    check_temperature,
    check_top_p,
    sample_tokens,
)


@pytest.mark.parametrize("bad", [0, 0.0, -1, math.nan, math.inf])
def test_temperature_out_of_range(bad: float) -> None:
    with pytest.raises(ValueError, match="> 0"):
        check_temperature(bad)


@pytest.mark.parametrize("bad", ["1.0", None, True, [1.0]])
def test_temperature_wrong_type(bad: object) -> None:
    with pytest.raises(TypeError, match="temperature"):
        check_temperature(bad)


@pytest.mark.parametrize("bad", [0, 0.0, -0.5, 1.0000001, 2, math.nan, math.inf])
def test_top_p_out_of_range(bad: float) -> None:
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        check_top_p(bad)


def test_top_p_wrong_type() -> None:
    with pytest.raises(TypeError, match="top_p"):
        check_top_p("0.9")
    assert check_top_p(1) == 1.0
    assert check_top_p(np.float32(0.5)) == 0.5


def test_sample_tokens_validates_arguments() -> None:
    logits = np.zeros((2, 5))
    mask = np.ones((2, 5), dtype=bool)
    u = np.array([0.1, 0.9])
    with pytest.raises(ValueError, match="temperature"):
        sample_tokens(logits, mask, [1.0, 0.0], 1.0, u)
    with pytest.raises(ValueError, match="top_p"):
        sample_tokens(logits, mask, 1.0, 0.0, u)
    with pytest.raises(ValueError, match="uniforms"):
        sample_tokens(logits, mask, 1.0, 1.0, np.array([0.1, 1.0]))
    with pytest.raises(TypeError, match="boolean"):
        sample_tokens(logits, mask.astype(int), 1.0, 1.0, u)
    mask[1] = False
    with pytest.raises(ValueError, match="at least one True"):
        sample_tokens(logits, mask, 1.0, 1.0, u)


@pytest.mark.parametrize("temperature", [1e-9, 1e-3, 0.5, 1.0, 5.0, 100.0])
@pytest.mark.parametrize("top_p", [1e-6, 0.01, 0.5, 0.95, 1.0])
def test_masked_tokens_never_chosen(temperature: float, top_p: float) -> None:
    rng = np.random.default_rng(7)
    b, v = 256, 149
    mask = rng.random((b, v)) < 0.1
    mask[np.arange(b), rng.integers(0, v, b)] = True
    # Masked tokens get the largest logits: any leak would show up at once.
    logits = np.where(mask, rng.normal(0, 3, (b, v)), 50.0 + rng.normal(0, 1, (b, v))).astype(np.float32)
    for _ in range(5):
        tokens = BatchSampler(b, v).sample(
            logits, mask, np.full(b, temperature), np.full(b, top_p), rng.random(b)
        )
        assert mask[np.arange(b), tokens].all()
    # Edge uniforms: 0 and the largest double below 1.
    for u in (0.0, np.nextafter(1.0, 0.0)):
        tokens = sample_tokens(logits, mask, temperature, top_p, np.full(b, u))
        assert mask[np.arange(b), tokens].all()


def test_cold_or_narrow_sampling_is_argmax_of_allowed() -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(64, 30))
    mask = rng.random((64, 30)) < 0.5
    mask[:, 0] = True
    best = np.where(mask, logits, -np.inf).argmax(axis=1)
    u = rng.random(64)
    assert (sample_tokens(logits, mask, 1e-6, 1.0, u) == best).all()
    assert (sample_tokens(logits, mask, 1.0, 1e-9, u) == best).all()


def test_non_finite_logits_stay_inside_mask() -> None:
    logits = np.array(
        [[np.nan, np.inf, 1.0, -np.inf], [np.nan, np.nan, np.nan, np.nan], [np.inf, 0, np.inf, 0]]
    )
    mask = np.array([[True, False, True, True], [False, True, False, True], [False, True, True, False]])
    for u in np.linspace(0, 0.999, 20):
        tokens = sample_tokens(logits, mask, 1.0, 0.9, np.full(3, u))
        assert mask[np.arange(3), tokens].all()
        assert tokens[2] == 2  # the only allowed +inf logit wins


def test_frequencies_follow_softmax() -> None:
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]]))
    mask = np.ones((1, 4), dtype=bool)
    sampler = BatchSampler(1, 4)
    rng = np.random.default_rng(0)
    n = 20_000
    counts = np.bincount(
        [int(sampler.sample(logits, mask, np.ones(1), np.ones(1), rng.random(1))[0]) for _ in range(n)],
        minlength=4,
    )
    assert np.allclose(counts / n, [0.5, 0.3, 0.15, 0.05], atol=0.015)


def test_top_p_keeps_smallest_nucleus() -> None:
    logits = np.log(np.array([[0.05, 0.5, 0.15, 0.3]]))  # order 1, 3, 2, 0
    mask = np.ones((1, 4), dtype=bool)
    us = np.linspace(0, 0.9999, 400)
    seen_079 = {int(sample_tokens(logits, mask, 1.0, 0.79, np.array([u]))[0]) for u in us}
    seen_081 = {int(sample_tokens(logits, mask, 1.0, 0.81, np.array([u]))[0]) for u in us}
    assert seen_079 == {1, 3}
    assert seen_081 == {1, 3, 2}


def test_per_row_settings_are_independent() -> None:
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(8, 20))
    mask = np.ones((8, 20), dtype=bool)
    temps = rng.uniform(0.2, 3, 8)
    tops = rng.uniform(0.1, 1, 8)
    u = rng.random(8)
    together = sample_tokens(logits, mask, temps, tops, u)
    alone = [
        int(sample_tokens(logits[i : i + 1], mask[i : i + 1], temps[i], tops[i], u[i : i + 1])[0])
        for i in range(8)
    ]
    assert together.tolist() == alone


def test_uniform_bank_matches_default_rng_per_slot() -> None:
    bank = UniformBank(4)
    bank.reset(0, 11)
    bank.reset(2, 12)
    bank.reset(3, 11)
    out = np.empty(3)
    a, b, c = [], [], []
    for i in range(700):  # crosses block refills
        if i % 3 == 0:
            bank.draw(np.array([0, 2, 3]), out)
            a.append(out[0])
            b.append(out[1])
            c.append(out[2])
        else:
            bank.draw(np.array([2]), out[:1])
            b.append(out[0])
    assert np.array_equal(a, np.random.default_rng(11).random(len(a)))
    assert np.array_equal(c, a)
    assert np.array_equal(b, np.random.default_rng(12).random(len(b)))
    with pytest.raises(ValueError, match="never reset"):
        bank.draw(np.array([1]), out[:1])


def test_sampler_reports_the_drawn_tokens_log_probability() -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(64, 12)).astype(np.float32)
    mask = rng.random((64, 12)) < 0.7
    mask[:, 0] = True
    sampler = BatchSampler(64, 12)
    for t, p in ((1.0, 1.0), (0.7, 0.6)):
        temperature, top_p = np.full(64, t), np.full(64, p)
        tokens = sampler.sample(logits, mask, temperature, top_p, rng.random(64))
        for b, token in enumerate(tokens.tolist()):
            x = np.where(mask[b], logits[b].astype(np.float64) / t, -np.inf)
            probs = np.exp(x - x.max())
            ordered = np.sort(probs)[::-1]
            before = np.cumsum(ordered) - ordered
            kept = ordered[before < p * probs.sum()].sum()
            assert sampler.logprob[b] == pytest.approx(np.log(probs[token] / kept), abs=1e-9)
