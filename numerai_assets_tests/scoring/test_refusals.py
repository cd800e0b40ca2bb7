"""Bad input to the scoring functions is refused with a ValueError that names the argument.

Each case was, before, numpy's, scipy's, scikit-learn's or Python's own error (naming no
argument: "could not convert string to float", "math domain error", "cannot convert NaN to
integer ratio"...), an IndexError, or a silent wrong answer.
"""

from __future__ import annotations

import numpy as np
import pytest

from numerai_assets.scoring.alternatives import ad_null_quantile, ad_statistic
from numerai_assets.scoring.concordance import cluster_round, fit_clusters
from numerai_assets.scoring.correlation import correlation_block, standardized
from numerai_assets.scoring.exact import (
    abs_correlation_exceeds,
    as_written,
    count_at_most,
    count_below,
    mean_logloss_below_ln2,
)
from numerai_assets.scoring.ks import ks_statistic, ks_statistics
from numerai_assets.scoring.ks_null import count_sf, critical_count
from numerai_assets.scoring.reasons import join_within
from numerai_assets.scoring.round_decisions import InMemoryPairStatistics
from numerai_assets.scoring.submission import read_submission
from numerai_assets.scoring.submission_format import size_limit

FEATURES = np.random.default_rng(0).random((20, 3))
TYPES = np.array(["validation", "test", "live"] * 2)

CASES = [
    # Arrays that are not numbers: numpy's error, now with the argument's name.
    (ks_statistics, (["a", "b"], [[0.1, 0.2]]), r"new must be an array of numbers \(could not"),
    (ks_statistics, ([0.1, 0.2], [[0.1, 0.2], [0.3]]), "earlier must be an array of numbers"),
    (ks_statistic, ([0.1], {"x": 1}), "b must be an array of numbers"),
    (standardized, ([["x"]],), "rows must be an array of numbers"),
    (standardized, (np.empty((3, 0)),), r"at least one column, got shape \(3, 0\)"),
    (standardized, (np.ones(3),), r"rows must be two-dimensional .*, got shape \(3,\)"),
    (
        correlation_block,
        (np.ones((2, 3)), np.ones((2, 4))),
        r"same number of columns, got shapes \(2, 3\) and \(2, 4\)",
    ),
    # Exact comparisons.
    (as_written, ("abc",), "threshold must be a finite number, got 'abc'"),
    (as_written, ("nan",), "threshold must be a finite number, got 'nan'"),
    (as_written, (None,), "threshold must be a finite number, got None"),
    (as_written, (float("inf"),), "threshold must be a finite number, got inf"),
    (count_below, (0.005, 0), "n must be a positive whole number, got 0"),
    (count_at_most, (0.03, 2.5), "n must be a positive whole number, got 2.5"),
    (abs_correlation_exceeds, ([0.5, np.nan], [0.1, 0.2], 0.9), "x contains NaN or infinite"),
    (abs_correlation_exceeds, ([0.5, 0.2], [[0.1, 0.2]], 0.9), "y must be one-dimensional"),
    (abs_correlation_exceeds, ([0.5, 0.2], [0.1, 0.2], -0.5), "threshold must be at least 0"),
    (mean_logloss_below_ln2, ([0.5, np.nan], [0, 1]), "probabilities contains NaN"),
    (mean_logloss_below_ln2, ([0.5], [0, 1]), "same length, got 1 and 2"),
    (mean_logloss_below_ln2, ([1.5, 0.5], [0, 1]), r"probabilities must be in \[0, 1\]"),
    (mean_logloss_below_ln2, ([0.5, 0.5], [0, 2]), "targets must be 0 or 1"),
    (mean_logloss_below_ln2, ([], []), "probabilities is empty"),
    # The KS null distribution.
    (count_sf, (10, 0), "n must be a positive whole number, got 0"),
    (count_sf, (10, 10.5), "n must be a positive whole number, got 10.5"),
    (critical_count, (-5, 0.05), "n must be a positive whole number, got -5"),
    (critical_count, (100, 1.0), r"level must be in \(0, 1\), got 1.0"),
    # The Anderson–Darling alternative.
    (ad_statistic, ([0.1], [0.2]), "at least 4 values together, got 1 and 1"),
    (ad_statistic, ([0.5, 0.5], [0.5, 0.5]), "at least two distinct values"),
    (ad_statistic, ([0.1, 0.2], [0.3, np.nan]), "b contains NaN or infinite values"),
    (ad_null_quantile, (1, 0.05), "n must be a whole number of at least 2, got 1"),
    (ad_null_quantile, (10, 1.5), r"level must be in \[0, 1\], got 1.5"),
    (ad_null_quantile, (10, 0.05, 0), "pairs must be a positive whole number, got 0"),
    # Clusters.
    (fit_clusters, ([["a", "b"]] * 6,), "features must be an array of numbers"),
    (
        cluster_round,
        (FEATURES, FEATURES[:6, :2], TYPES, np.arange(6)),
        r"tournament_features must have shape \(n, 3\) like all_features, got \(6, 2\)",
    ),
    (
        cluster_round,
        (FEATURES, np.full((6, 3), np.nan), TYPES, np.arange(6)),
        "tournament_features contain NaN or infinite values",
    ),
    (
        cluster_round,
        (FEATURES, FEATURES[:6], TYPES[:5], np.arange(6)),
        r"data_types must have one value per tournament row \(6\), got shape \(5,\)",
    ),
    (
        cluster_round,
        (FEATURES, FEATURES[:6], TYPES, np.arange(7)),
        r"tournament_ids must have one value per tournament row \(6\), got shape \(7,\)",
    ),
    # Pair statistics in memory.
    (
        InMemoryPairStatistics,
        ({"a": [0.1, 0.2], "b": [0.1, 0.2, 0.3]},),
        r"predictions\['b'\] must have the 2 values of predictions\['a'\], got 3",
    ),
    (InMemoryPairStatistics, ({"a": [0.1, np.nan]},), r"predictions\['a'\] contains NaN"),
    # Reasons and files.
    (join_within, (["abc"], 0), r"limit must be at least len\(ellipsis\) \(1\), got 0"),
    (size_limit, (-1,), "rows must be a whole number of at least 0, got -1"),
    (size_limit, ("45000",), "rows must be a whole number of at least 0, got '45000'"),
]


@pytest.mark.parametrize(
    ("function", "args", "message"), CASES, ids=lambda v: getattr(v, "__name__", None)
)
def test_bad_input_is_refused_naming_the_argument(function, args, message):
    with pytest.raises(ValueError, match=message):
        function(*args)


def test_a_directory_given_as_the_submission_is_not_called_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"submission file {tmp_path} is not a file"):
        read_submission(tmp_path, np.array(["n1"]))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_submission(tmp_path / "absent.csv", np.array(["n1"]))
