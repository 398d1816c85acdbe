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


def test_the_minor_pull_says_its_own_key_not_a_major_one_on_its_degrees() -> None:
    """The composer's minor pull (measured) keeps the tonic and dominant above the mediant and
    submediant, so a stream pulled by it is not heard in the relative or submediant major; no
    chromatic pitch class is likelier than the rarest scale degree but the melodic minor's raised
    sixth and seventh, which are as likely as the supertonic."""
    pull = np.asarray(E.PULL_PROFILES["minor"])
    natural_minor = list(E.SCALES["minor"])
    assert min(pull[0], pull[7]) > pull[3] > pull[8]
    assert np.delete(pull, [*natural_minor, 9, 11]).max() <= pull[natural_minor].min()
    assert pull[9] == pull[11] == pull[2] < pull[3]
    for tonic in range(12):
        assert E.estimate_key(np.roll(pull, tonic)) == (tonic, "minor")
    assert E.PULL_PROFILES["major"] == E.KK_PROFILES["major"]


def test_the_minor_pull_is_what_its_measuring_script_makes_of_the_corpus_shares() -> None:
    from models.measure_key_profile import pull_profile

    shares = np.asarray([0.201, 0.007, 0.115, 0.161, 0.008, 0.102, 0.012, 0.206, 0.064, 0.018, 0.081, 0.026])
    assert tuple(np.round(pull_profile(shares), 3).tolist()) == E.PULL_PROFILES["minor"]
