"""Every threshold decided as the rule is written, at sizes where float rounding would not be.

Expected values are stated from arithmetic done by hand (fractions, products of powers of two),
never from the code under test.
"""

import math
from fractions import Fraction

import numpy as np
import pytest

from numerai_assets.scoring.concordance import RoundClusters, concordance
from numerai_assets.scoring.consistency import consistency
from numerai_assets.scoring.exact import (
    abs_correlation_exceeds,
    as_written,
    count_at_most,
    count_below,
)
from numerai_assets.scoring.originality import decide_originality, originality

SIZES = (800, 801, 1337)


# Consistency: era logloss vs ln 2


@pytest.mark.parametrize("rows", SIZES)
def test_an_era_of_one_half_never_beats_a_coin_flip(rows):
    # Its logloss is exactly ln 2. Summed one by one, copies of fl(ln 2) come out below it.
    assert sum([math.log(2)] * rows) / rows < math.log(2)  # the trap, for the record
    eras = np.repeat(["era1", "era2", "era3"], rows)
    targets = np.arange(eras.size) % 2
    result = consistency(np.full(eras.size, 0.5), targets, eras)
    assert result.percent == 0.0


@pytest.mark.parametrize("rows", SIZES)
@pytest.mark.parametrize(("nudge", "beats"), [(+(2.0**-40), True), (-(2.0**-40), False)])
def test_one_row_off_one_half_decides_the_era(rows, nudge, beats):
    # One row gives its outcome probability 1/2 + nudge, the others 1/2: prod(2 q) = 1 + 2 nudge,
    # so the era beats ln 2 exactly when the nudge is positive (by ~1e-15 / rows in logloss).
    p = np.full(rows, 0.5)
    p[rows // 2] = 0.5 + nudge
    y = np.ones(rows)
    result = consistency(p, y, np.zeros(rows))
    assert result.percent == (100.0 if beats else 0.0)


def test_consistency_does_not_depend_on_row_order():
    rng = np.random.default_rng(5)
    p = np.round(rng.uniform(0.45, 0.55, 1337 * 4), 3)
    y = rng.integers(0, 2, p.size)
    eras = np.repeat(["a", "b", "c", "d"], 1337)
    first = consistency(p, y, eras)
    order = rng.permutation(p.size)
    again = consistency(p[order], y[order], eras[order])
    assert again == first  # every era mean bit for bit, and the percentage


# Concordance: mean of the clusters' KS vs 0.12


def clusters_with_ks(counts_and_sizes):
    """One cluster per (count, m): m validation and m test rows whose KS is exactly count / m."""
    labels, splits, values = [], [], []
    for c, (count, m) in enumerate(counts_and_sizes):
        base = np.arange(m) / m
        moved = base.copy()
        moved[:count] = 2.0 + np.arange(count)  # the `count` smallest move above everything
        labels += [c] * (2 * m)
        splits += [0] * m + [1] * m
        values += [*base, *moved]
    clusters = RoundClusters(np.array(labels), np.array(splits), len(counts_and_sizes))
    return np.clip(np.array(values) / 4.0, 0.0, 1.0), clusters


# KS values whose exact mean is 3/25 = 0.12; in float, np.mean puts the first one below 0.12
# (0.11999999999999998) and the second above (0.12000000000000001).
EXACTLY_012 = [[(3, 100), (29, 100), (1, 25)], [(7, 50), (1, 10)], [(3, 25)], [(6, 50), (6, 50)]]


@pytest.mark.parametrize("clusters", EXACTLY_012)
def test_a_mean_of_exactly_012_is_not_concordant(clusters):
    assert sum(Fraction(c, m) for c, m in clusters) / len(clusters) == Fraction(3, 25)
    if clusters == EXACTLY_012[0]:
        assert np.mean([c / m for c, m in clusters]) < 0.12  # the trap, for the record
    p, rounds = clusters_with_ks(clusters)
    result = concordance(p, rounds)
    assert not result.concordant
    assert result.score == pytest.approx(0.12, abs=1e-15)


def test_a_mean_just_below_012_is_concordant():
    # (0.14 + 0.0999) / 2 = 0.11995
    p, rounds = clusters_with_ks([(7, 50), (999, 10_000)])
    assert concordance(p, rounds).concordant


# Originality: KS vs 0.005 and 0.03, as integer counts


@pytest.mark.parametrize(
    ("n", "duplicate_below", "similar_at_most"),
    # 0.005 n and 0.03 n: 4 and 24 at 800 (ties), 4.005 and 24.03 at 801, 6.685 and 40.11 at
    # 1,337, 225 and 1350 at 45,000 (ties).
    [(800, 4, 24), (801, 5, 24), (1337, 7, 40), (45_000, 225, 1350)],
)
def test_ks_limits_are_exact_counts(n, duplicate_below, similar_at_most):
    assert count_below(0.005, n) == duplicate_below
    assert count_at_most(0.03, n) == similar_at_most
    assert as_written(0.005) == Fraction(1, 200) and as_written(0.03) == Fraction(3, 100)


def shuffled_with_gap(base, gap, rng):
    copy = np.sort(base)
    copy[:gap] = 2.0 + np.arange(gap)
    return rng.permutation(copy) / 4.0


@pytest.mark.parametrize("n", SIZES)
def test_ks_on_either_side_of_each_threshold(n):
    rng = np.random.default_rng(n)
    new = rng.random(n)
    below, at_most = count_below(0.005, n), count_at_most(0.03, n)
    cases = [
        (below - 1, "duplicate"),
        (below, "similar"),
        (at_most, "similar"),
        (at_most + 1, None),
    ]
    for gap, reason in cases:
        earlier = shuffled_with_gap(new, gap, rng)
        result = originality(new / 4.0, earlier[None, :])
        assert result.reason == reason, (n, gap)
        if reason:
            assert result.matches[0].ks == gap / n


# Originality: |r| vs 0.95


def correlated_pair(n, v):
    """x, y with Pearson r = 19 / sqrt(361 + v) exactly: x = (19, -19, 0...), y = x + z with z
    = +-1 on ``2 v`` other rows (orthogonal to x, zero mean). r = 0.95 exactly when v = 39."""
    x = np.zeros(n)
    x[:2] = 19, -19
    z = np.zeros(n)
    z[2 : 2 + 2 * v] = np.tile([1.0, -1.0], v)
    # Dyadic scaling into [0, 1] keeps every value, and so r, exact.
    return 0.5 + x / 64, 0.5 + (x + z) / 64


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize(("v", "correlated"), [(38, True), (39, False), (40, False)])
def test_correlation_on_either_side_of_095(n, v, correlated):
    x, y = correlated_pair(n, v)
    assert (361 * (361 + v) < 19**2 * 400) is correlated  # r^2 > 0.95^2, by hand
    assert abs_correlation_exceeds(x, y, 0.95) is correlated
    rng = np.random.default_rng(n + v)
    order = rng.permutation(n)
    result = originality(x[order], y[order][None, :])
    assert (result.reason == "correlated") is correlated


def test_the_float_correlation_of_the_tie_is_not_trusted():
    # Whatever side of 0.95 float arithmetic puts the exact tie, the decision is "not above".
    x, y = correlated_pair(1337, 39)
    r = np.corrcoef(x, y)[0, 1]
    assert abs(r - 0.95) < 1e-12
    assert not abs_correlation_exceeds(x, y, 0.95)
    assert not abs_correlation_exceeds(x, 1.0 - y, 0.95)  # |r|: a negative tie too
    assert not abs_correlation_exceeds(x, np.full(x.size, 0.5), 0.0)  # constant: no correlation


def test_a_float_r_one_ulp_above_the_tie_is_decided_exactly():
    # np.corrcoef puts this tie at 0.9500000000000001: taken as computed, it would be "above".
    x, y = correlated_pair(1337, 39)
    above = np.nextafter(0.95, 1.0)
    exact = decide_originality(
        np.array([above]),
        np.array([1337]),
        1337,
        exact_correlated=lambda k: abs_correlation_exceeds(x, y, 0.95),
    )
    assert exact.original and exact.pairs["correlated"] == 0
    taken_as_computed = decide_originality(np.array([above]), np.array([1337]), 1337)
    assert taken_as_computed.reason == "correlated"
