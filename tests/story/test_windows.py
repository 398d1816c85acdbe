"""The windows a scene head reads (engine/story/windows.py), one implementation for training
and run time: contexts padded where a story starts, read-ahead windows padded past its end."""

from __future__ import annotations

import numpy as np
import pytest

from engine.story.windows import ahead_windows, context_windows


def _lines(n: int, d: int = 3) -> tuple[np.ndarray, np.ndarray]:
    emb = np.arange(1, n + 1, dtype=np.float32)[:, None].repeat(d, 1)  # line i holds i + 1
    va = -np.arange(1, n + 1, dtype=np.float32)[:, None].repeat(2, 1)
    return emb, va


def test_context_windows_pad_the_start_of_a_story_with_zeros() -> None:
    emb, va = _lines(5)
    we, wv = context_windows(emb, va, 4)
    assert we.shape == (5, 4, 3) and wv.shape == (5, 4, 2)
    assert we.dtype == np.float32 and wv.dtype == np.float32
    assert we[0, :, 0].tolist() == [0, 0, 0, 1] and we[4, :, 0].tolist() == [2, 3, 4, 5]
    assert wv[1, :, 0].tolist() == [0, 0, -1, -2]


def test_ahead_windows_hold_the_line_and_the_next_ones_farthest_first_zeros_past_the_end() -> None:
    emb, va = _lines(5)
    we, wv = ahead_windows(emb, va, 3)
    assert we.shape == (5, 3, 3) and wv.shape == (5, 3, 2)
    assert we[0, :, 0].tolist() == [3, 2, 1] and we[3, :, 0].tolist() == [0, 5, 4]
    assert we[4, :, 0].tolist() == [0, 0, 5] and wv[4, :, 1].tolist() == [0, 0, -5]


def test_ahead_windows_are_the_context_windows_of_the_text_read_backwards() -> None:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(40, 6)).astype(np.float32)
    va = rng.normal(size=(40, 2)).astype(np.float32)
    we, wv = ahead_windows(emb, va, 7)
    be, bv = context_windows(emb[::-1], va[::-1], 7)
    np.testing.assert_array_equal(we, be[::-1])
    np.testing.assert_array_equal(wv, bv[::-1])


@pytest.mark.parametrize("k", [1, 4, 32])
def test_windows_of_some_rows_are_those_rows_of_the_whole_text(k: int) -> None:
    """The runtime windows a long text a chunk of rows at a time; training windows it whole."""
    rng = np.random.default_rng(k)
    emb = rng.normal(size=(50, 5)).astype(np.float32)
    va = rng.normal(size=(50, 2)).astype(np.float32)
    for windows in (context_windows, ahead_windows):
        whole = windows(emb, va, k)
        for rows in ([0], [49], list(range(10, 30)), [3, 41, 7]):
            part = windows(emb, va, k, rows)
            np.testing.assert_array_equal(part[0], whole[0][rows])
            np.testing.assert_array_equal(part[1], whole[1][rows])


def test_a_window_longer_than_the_text_and_an_empty_text() -> None:
    emb, va = _lines(2)
    we, _ = context_windows(emb, va, 5)
    assert we[1, :, 0].tolist() == [0, 0, 0, 1, 2]
    we, _ = ahead_windows(emb, va, 5)
    assert we[0, :, 0].tolist() == [0, 0, 0, 2, 1]
    empty = np.zeros((0, 3), np.float32), np.zeros((0, 2), np.float32)
    we, wv = context_windows(*empty, 4)
    assert we.shape == (0, 4, 3) and wv.shape == (0, 4, 2)


@pytest.mark.parametrize(
    ("emb", "va", "k", "rows", "match"),
    [
        (np.zeros((3, 2)), np.zeros((3, 2)), 0, None, "k must be >= 1"),
        (np.zeros((3, 2)), np.zeros((2, 2)), 2, None, r"va \(N, 2\)"),
        (np.zeros(3), np.zeros((3, 2)), 2, None, r"emb must be \(N, D\)"),
        (np.zeros((3, 2)), np.zeros((3, 2)), 2, [3], "rows must be line indices 0..2"),
        (np.zeros((3, 2)), np.zeros((3, 2)), 2, [-1], "rows must be line indices 0..2"),
    ],
)
def test_bad_windows_are_refused(
    emb: np.ndarray, va: np.ndarray, k: int, rows: list[int] | None, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        context_windows(emb, va, k, rows)
