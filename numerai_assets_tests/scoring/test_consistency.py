import math

import numpy as np
import pytest

from numerai_assets.scoring.consistency import EraGroups, consistency


def test_hand_computed_eras():
    # era1: p=0.6, y=1 -> -ln 0.6 = 0.511 < ln 2 (beats); era2: p=0.6, y=0 -> -ln 0.4 = 0.916;
    # era3: p=0.2 and 0.9 with y=0 and 1 -> (-ln 0.8 - ln 0.9) / 2 = 0.164 (beats).
    p = np.array([0.6, 0.6, 0.6, 0.6, 0.2, 0.9])
    y = np.array([1, 1, 0, 0, 0, 1])
    eras = np.array(["era1", "era1", "era2", "era2", "era3", "era3"])
    result = consistency(p, y, eras)
    assert result.percent == pytest.approx(200 / 3)
    assert result.era_loglosses["era2"] == pytest.approx(-math.log(0.4))
    expected = (-2 * math.log(0.6) - 2 * math.log(0.4) - math.log(0.8) - math.log(0.9)) / 6
    assert result.validation_logloss == pytest.approx(expected)


def test_coin_flip_does_not_beat_itself_and_extremes_stay_finite():
    assert consistency(np.full(4, 0.5), np.array([0, 1, 0, 1]), np.arange(4)).percent == 0.0
    wrong = consistency(np.array([1.0, 0.0]), np.array([0, 1]), np.array(["a", "a"]))
    assert np.isfinite(wrong.validation_logloss) and wrong.percent == 0.0


def test_on_the_sample_submission(sample_round, sample_submission):
    validation = sample_round.tournament["data_type"] == "validation"
    merged = sample_round.tournament[validation].merge(sample_submission, on="id")
    result = consistency(merged["probability"], merged["target"], merged["era"])
    p = np.clip(merged["probability"].to_numpy(), 1e-15, 1 - 1e-15)
    y = merged["target"].to_numpy()
    by_hand = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert result.validation_logloss == pytest.approx(by_hand, rel=1e-12)
    assert result.percent == (100.0 if by_hand < math.log(2) else 0.0)  # one validation era


@pytest.mark.parametrize(
    ("p", "y", "message"),
    [
        ([0.5, 0.5], [0, 2], "targets must be 0 or 1"),
        ([0.5], [0, 1], "same length"),
        ([np.nan], [1], "probabilities contains NaN"),
    ],
)
def test_bad_input(p, y, message):
    with pytest.raises(ValueError, match=message):
        consistency(np.array(p), np.array(y), np.zeros(len(y)))


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_probabilities_outside_zero_one_are_refused(bad):
    """They were clipped into [1e-15, 1 - 1e-15] and scored."""
    with pytest.raises(ValueError, match=r"probabilities must be in \[0, 1\]"):
        consistency(np.array([0.5, bad]), np.array([0, 1]), np.zeros(2))


@pytest.mark.parametrize("seed", range(30))
def test_eras_grouped_once_give_the_same_result(seed):
    """A batch groups the eras once (``EraGroups``): every submission's result is the one the
    eras as an array give, eras of any names, sizes and order (ties at ln 2 included)."""
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 300))
    eras = rng.choice(np.array(["b", "a", "era10", "era2", "7"], dtype=object), m)
    targets = rng.integers(0, 2, m).astype(float)
    groups = EraGroups.of(eras)
    for _ in range(5):
        probabilities = rng.choice([rng.random(m), np.full(m, 0.5), np.round(rng.random(m), 1)])
        assert consistency(probabilities, targets, groups) == consistency(
            probabilities, targets, eras
        )


def test_grouped_eras_of_another_length_are_refused():
    groups = EraGroups.of(["a", "b", "a"])
    with pytest.raises(ValueError, match="same length, got 2, 2 and 3"):
        consistency([0.1, 0.2], [0, 1], groups)
    with pytest.raises(ValueError, match="one-dimensional"):
        EraGroups.of([["a"], ["b"]])
