"""Keys and modes (engine.music.keys): key finding, the mode score, key names and checks."""

from __future__ import annotations

import numpy as np
import pytest

from engine.music import keys as E


def test_mode_score_is_transposition_invariant_and_zero_when_flat() -> None:
    hist = np.zeros(12)
    hist[[0, 4, 7]] = [3.0, 1.0, 2.0]
    shifted = np.roll(hist, 5)
    assert E.mode_score(hist) == pytest.approx(float(E.mode_score(shifted)))
    assert E.mode_score(np.zeros(12)) == 0.0 and E.mode_score(np.ones(12)) == 0.0
    assert E.mode_score(np.stack([hist, shifted])).shape == (2,)


@pytest.mark.parametrize("tonic", range(12))
@pytest.mark.parametrize("mode", E.MODES)
def test_estimate_key_finds_the_key_of_its_own_profile(tonic: int, mode: str) -> None:
    histogram = np.roll(np.asarray(E.KK_PROFILES[mode]), tonic)
    assert E.estimate_key(histogram) == (tonic, mode)
    assert np.sign(E.mode_score(histogram)) == (1 if mode == "major" else -1)


def test_key_names_and_checks() -> None:
    assert E.key_name((10, "major")) == "Bb major" and E.key_name((2, "minor")) == "D minor"
    assert E.check_key(11, "minor") == (11, "minor")
    with pytest.raises(ValueError, match=r"0\.\.11"):
        E.check_key(12, "major")
    with pytest.raises(ValueError, match="major, minor"):
        E.check_key(0, "dorian")
    with pytest.raises(TypeError, match="int"):
        E.check_key(1.5, "major")
