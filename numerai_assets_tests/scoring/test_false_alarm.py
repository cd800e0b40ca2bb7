"""The KS null distribution and the thresholds that hold a false-alarm level.

Reference values come from the Gnedenko–Korolyuk formula for two samples of equal size n,
``P(D >= h / n) = 2 sum_{j >= 1} (-1)^(j+1) C(2n, n - j h) / C(2n, n)``, computed here
independently of scipy.
"""

import math

import numpy as np
import pytest
from scipy import stats

from numerai_assets.scoring.false_alarm import false_alarm_rates, observed_flag_rates
from numerai_assets.scoring.ks_null import EXACT_MAX_ROWS, count_sf, critical_count, null_method
from numerai_assets.scoring.policy import ScoringPolicy


def log_binomial(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def gnedenko_korolyuk_sf(h: int, n: int) -> float:
    total, j = 0.0, 1
    while n - j * h >= 0:
        term = math.exp(log_binomial(2 * n, n - j * h) - log_binomial(2 * n, n))
        total += term if j % 2 else -term
        j += 1
    return 2.0 * total


@pytest.mark.parametrize(("count", "n"), [(10, 2000), (60, 2000), (225, 45_000), (950, 190_000)])
def test_the_exact_null_matches_the_closed_form(count, n):
    assert count_sf(count, n) == pytest.approx(gnedenko_korolyuk_sf(count, n), abs=1e-9)


def test_the_figures_of_the_issue():
    # P(KS < 0.005) is about 0.37 at 45,000 rows and 0.98 at 190,000; P(KS <= 0.03) about 1.
    at_45k = false_alarm_rates(ScoringPolicy(), 45_000)
    assert at_45k.p_duplicate == pytest.approx(1 - gnedenko_korolyuk_sf(225, 45_000), abs=1e-9)
    assert at_45k.p_duplicate == pytest.approx(0.3728, abs=1e-4)
    assert at_45k.p_similar == pytest.approx(1.0, abs=1e-12)
    assert at_45k.above_level and at_45k.method == "exact"
    at_190k = false_alarm_rates(ScoringPolicy(), 190_000)
    assert at_190k.p_duplicate == pytest.approx(0.9827, abs=1e-4)


def test_the_critical_count_is_the_boundary_of_the_level():
    for n in (2000, 45_000):
        c = critical_count(n, 0.05)
        assert 1 - gnedenko_korolyuk_sf(c, n) <= 0.05 < 1 - gnedenko_korolyuk_sf(c + 1, n)


def test_size_aware_policy_holds_its_level():
    policy = ScoringPolicy(ks_thresholds="size-aware", false_alarm_level=0.05)
    rates = false_alarm_rates(policy, 45_000)
    assert not rates.above_level
    assert rates.p_duplicate <= 0.05 and rates.p_similar <= 0.05
    assert rates.duplicate_ks == rates.holding_duplicate_ks


def test_large_rounds_use_kolmogorovs_limit():
    n = EXACT_MAX_ROWS + 1
    assert null_method(n) == "asymptotic"
    d = 1000 / n
    assert count_sf(1000, n) == pytest.approx(stats.kstwobign.sf(d * math.sqrt(n / 2)))


def test_simulated_independent_submissions_agree_with_the_null():
    # 400 pairs of independent uniform samples of 2,000: the share with KS <= 0.03 (60 / 2000)
    # against the exact probability, within four binomial standard errors.
    rng = np.random.default_rng(11)
    n, pairs = 2000, 400
    d = np.array([stats.ks_2samp(rng.random(n), rng.random(n)).statistic for _ in range(pairs)])
    p = 1 - gnedenko_korolyuk_sf(61, n)
    share = np.mean(d * n <= 60 + 1e-9)
    assert abs(share - p) < 4 * math.sqrt(p * (1 - p) / pairs)
    assert false_alarm_rates(ScoringPolicy(), n).p_similar == pytest.approx(p, abs=1e-9)


def test_observed_flag_rates_sum_the_pairs():
    pairs = [
        {"compared": 0, "correlated": 0, "duplicate": 0, "similar": 0},
        {"compared": 3, "correlated": 0, "duplicate": 1, "similar": 2},
        {"compared": 1, "correlated": 1, "duplicate": 0, "similar": 0},
    ]
    assert observed_flag_rates(pairs) == {
        "compared_pairs": 4,
        "duplicate_share": 0.25,
        "similar_share": 0.5,
    }
    assert observed_flag_rates([])["compared_pairs"] == 0
