"""Alternative originality rules, measured beside the policy's: they decide nothing.

The original contributors proposed two replacements for the fixed KS thresholds, whose false-
alarm rate grows with the round's size (:mod:`.false_alarm`):

- ``size-aware``: the policy with ``ks_thresholds="size-aware"``, i.e. each KS threshold lowered
  to the critical value at which two independent same-distribution submissions are flagged with
  probability at most ``false_alarm_level``.
- ``anderson-darling``: the k-sample Anderson–Darling statistic
  (``scipy.stats.anderson_ksamp``, k = 2) instead of KS: ``similar`` when it is at most its null
  ``false_alarm_level`` quantile at the round's size. scipy gives only upper-tail critical values,
  so the lower quantile is estimated from ``AD_NULL_PAIRS`` simulated independent pairs (the
  statistic is rank based, so uniform samples stand for any continuous distribution).

Both keep the correlation rule and the comparison rule of the policy. :func:`compare_rules`
judges one round's submissions under each, in order, as the pipeline would.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import stats

from numerai_assets.scoring.correlation import correlations
from numerai_assets.scoring.originality import OriginalityMatch, OriginalityResult
from numerai_assets.scoring.policy import ScoringPolicy
from numerai_assets.scoring.sequence import Judged, judge_in_order

RULES = ("policy", "size-aware", "anderson-darling")
AD_NULL_PAIRS = 200


def ad_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """The standardized two-sample Anderson–Darling statistic of ``a`` and ``b``."""
    with warnings.catch_warnings():  # scipy warns that its p-value is capped; only T is used
        warnings.simplefilter("ignore", UserWarning)
        return float(stats.anderson_ksamp([a, b], variant="midrank").statistic)


@functools.lru_cache(maxsize=16)
def ad_null_quantile(n: int, level: float, pairs: int = AD_NULL_PAIRS, seed: int = 0) -> float:
    """The ``level`` quantile of the AD statistic of two independent samples of ``n`` each,
    estimated from ``pairs`` simulated pairs (seeded: the same value on every call)."""
    rng = np.random.default_rng(seed)
    values = [ad_statistic(rng.random(n), rng.random(n)) for _ in range(pairs)]
    return float(np.quantile(values, level))


def anderson_darling_originality(
    new: np.ndarray, earlier: np.ndarray, policy: ScoringPolicy
) -> OriginalityResult:
    """``correlated`` as the policy says; else ``similar`` when the AD statistic against at least
    ``min_similar`` earlier submissions is at most its null ``false_alarm_level`` quantile."""
    if earlier.shape[0] == 0:
        return OriginalityResult(True, None)
    r = correlations(new, earlier)
    with np.errstate(invalid="ignore"):
        correlated = np.abs(r) > policy.max_correlation
    limit = ad_null_quantile(new.shape[0], policy.false_alarm_level)
    ad = np.array([ad_statistic(new, row) for row in earlier])
    similar = ad <= limit
    if correlated.any():
        reason, hits = "correlated", correlated
    elif similar.sum() >= policy.min_similar:
        reason, hits = "similar", similar
    else:
        return OriginalityResult(True, None, compared=len(ad))
    matches = tuple(
        OriginalityMatch(int(k), None if np.isnan(r[k]) else float(r[k]), float(ad[k]))
        for k in np.flatnonzero(hits)
    )
    return OriginalityResult(False, reason, matches, compared=len(ad))


def compare_rules(
    predictions: Sequence[np.ndarray], policy: ScoringPolicy
) -> dict[str, list[Judged]]:
    """Each submission's outcome under the policy and each alternative (``RULES``), in order."""
    return {
        "policy": judge_in_order(predictions, policy),
        "size-aware": judge_in_order(predictions, policy.with_size_aware_ks()),
        "anderson-darling": judge_in_order(
            predictions,
            policy,
            lambda new, earlier: anderson_darling_originality(new, earlier, policy),
        ),
    }


def outcome(judged: Judged) -> str:
    """``original``, ``invalid``, or the reason it is not original."""
    if judged.refused is not None:
        return "invalid"
    return "original" if judged.result.original else judged.result.reason
