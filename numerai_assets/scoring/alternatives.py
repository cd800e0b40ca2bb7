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


def synthetic_round_submissions(rows: int, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """(what it is, predictions) of a synthetic round's submissions, oldest first: independent
    models (several of the same skill, so alike in distribution) and copies of four kinds."""
    from numerai_assets.datasets.synthetic import make_round, model_probabilities

    _, tournament = make_round(
        training_rows=1000,
        validation_rows=rows * 2 // 5,
        test_rows=rows * 2 // 5,
        live_rows=rows - 2 * (rows * 2 // 5),
        seed=seed,
    )
    rng = np.random.default_rng(seed)
    skills = (0.5, 0.5, 0.9, 0.5, 0.25, 0.5, 0.7, 0.5)
    models = [
        model_probabilities(tournament, seed=seed + 1 + k, skill=s) for k, s in enumerate(skills)
    ]
    submissions = [
        (f"independent model (skill {s})", p) for s, p in zip(skills, models, strict=True)
    ]
    noise = rng.normal(0.0, 0.002, rows)
    submissions += [
        ("copy of model 1, rows shuffled", rng.permutation(models[0])),
        ("copy of model 3 + noise (sd 0.001)", np.clip(models[2] + noise / 2, 0, 1).round(6)),
        (
            "copy of model 2, shuffled + noise (sd 0.002)",
            np.clip(rng.permutation(models[1]) + noise, 0, 1).round(6),
        ),
        ("copy of model 4, squared (monotone)", (models[3] ** 2).round(6)),
    ]
    return submissions


def main(rows: int = 45_000) -> None:
    """Print the README's table: each submission's outcome under each rule."""
    policy = ScoringPolicy()
    submissions = synthetic_round_submissions(rows)
    judged = compare_rules([p for _, p in submissions], policy)
    limits = policy.with_size_aware_ks().ks_limits(rows)
    print(
        f"{rows:,} rows; size-aware: KS < {limits.duplicate_ks:.5f}, KS <= {limits.similar_ks:.5f};"
        f" Anderson-Darling: T <= {ad_null_quantile(rows, policy.false_alarm_level):.3f}"
    )
    print("| # | submission | " + " | ".join(RULES) + " |")
    print("| ---: | --- |" + " --- |" * len(RULES))
    for k, (what, _) in enumerate(submissions):
        cells = " | ".join(outcome(judged[rule][k]) for rule in RULES)
        print(f"| {k + 1} | {what} | {cells} |")


if __name__ == "__main__":
    main()
