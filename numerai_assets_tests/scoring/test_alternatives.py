"""The measured alternatives: size-aware KS and two-sample Anderson–Darling, beside the policy."""

import numpy as np
import pytest
from scipy import stats

from numerai_assets.scoring.alternatives import (
    ad_null_quantile,
    ad_statistic,
    compare_rules,
    outcome,
)
from numerai_assets.scoring.policy import ScoringPolicy

N = 5000


def test_the_ad_statistic_is_scipys_and_its_null_quantile_is_seeded():
    rng = np.random.default_rng(2)
    a, b = rng.random(300), rng.random(300)
    assert ad_statistic(a, b) == stats.anderson_ksamp([a, b], variant="midrank").statistic
    assert ad_null_quantile(300, 0.05) == ad_null_quantile(300, 0.05, seed=0)
    # Under the null the standardized statistic has mean 0 and sd 1: its 5 % quantile is
    # well below 0, and a sample against its own reordering sits below that.
    assert -1.5 < ad_null_quantile(300, 0.05) < -0.5
    assert ad_statistic(a, rng.permutation(a)) < ad_null_quantile(300, 0.05)


def test_independent_alike_models_are_flagged_only_by_the_fixed_thresholds():
    rng = np.random.default_rng(4)
    # Two independent submissions drawn from one distribution (so KS ~ 1/sqrt(N) < 0.03) and a
    # reordered copy of the first.
    first, second = rng.beta(2, 3, N), rng.beta(2, 3, N)
    judged = compare_rules([first, second, rng.permutation(first)], ScoringPolicy())
    table = {rule: [outcome(j) for j in outcomes] for rule, outcomes in judged.items()}
    assert table["policy"] == ["original", "similar", "duplicate"]
    assert table["size-aware"][:2] == ["original", "original"]
    assert table["size-aware"][2] == "duplicate"
    assert table["anderson-darling"] == ["original", "original", "similar"]


@pytest.mark.parametrize("rule", ["policy", "size-aware", "anderson-darling"])
def test_constant_files_are_refused_under_every_rule(rule):
    judged = compare_rules([np.full(N, 0.5), np.linspace(0, 1, N)], ScoringPolicy())
    assert [outcome(j) for j in judged[rule]] == ["invalid", "original"]
