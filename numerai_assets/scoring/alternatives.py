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

from numerai_assets.scoring._arrays import as_vector, whole_number
from numerai_assets.scoring.correlation import correlations
from numerai_assets.scoring.originality import OriginalityMatch, OriginalityResult
from numerai_assets.scoring.policy import ScoringPolicy
from numerai_assets.scoring.sequence import Judged, judge_in_order

RULES = ("policy", "size-aware", "anderson-darling")
AD_NULL_PAIRS = 200


def ad_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """The standardized two-sample Anderson–Darling statistic of ``a`` and ``b``.

    ``scipy.stats.anderson_ksamp([a, b], variant="midrank").statistic`` (Scholz & Stephens's
    k-sample statistic, k = 2, midranks for ties): about 0 for samples of one distribution,
    negative when closer than chance, large when apart. scipy's warning that its p-value is
    capped is silenced: only the statistic is used.

    Parameters
    ----------
    a, b : array_like of shape ``(n_a,)`` and ``(n_b,)``, float
        Finite, neither empty, at least 4 values together, at least two distinct ones.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``a`` or ``b`` is not a one-dimensional array of finite numbers or is empty, or the
        two together hold fewer than 4 values or a single distinct value (where the
        statistic is not defined).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> a = rng.random(500)
    >>> round(ad_statistic(a, rng.permutation(a)), 2)  # the same values: below chance
    -1.32
    >>> round(ad_statistic(a, rng.random(500)), 2), round(ad_statistic(a, a + 0.5), 1)
    (0.1, 280.9)
    """
    a = as_vector(a, "a")
    b = as_vector(b, "b")
    if a.shape[0] + b.shape[0] < 4:
        raise ValueError(
            f"a and b must hold at least 4 values together, got {a.shape[0]} and {b.shape[0]}"
        )
    if min(a.min(), b.min()) == max(a.max(), b.max()):
        raise ValueError("a and b together must hold at least two distinct values")
    with warnings.catch_warnings():  # scipy warns that its p-value is capped; only T is used
        warnings.simplefilter("ignore", UserWarning)
        return float(stats.anderson_ksamp([a, b], variant="midrank").statistic)


@functools.lru_cache(maxsize=16)
def ad_null_quantile(n: int, level: float, pairs: int = AD_NULL_PAIRS, seed: int = 0) -> float:
    """The ``level`` quantile of the AD statistic of two independent samples of ``n`` each.

    Estimated from ``pairs`` simulated pairs of uniform samples (the statistic is rank based,
    so they stand for any continuous distribution); seeded, so the same value on every call
    (and cached). scipy gives only upper-tail critical values, and this rule needs the lower.

    Parameters
    ----------
    n : int
        Rows of each sample, at least 2.
    level : float
        In ``[0, 1]``.
    pairs : int, default ``AD_NULL_PAIRS`` (200)
    seed : int, default 0

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``n`` is not a whole number of at least 2, ``level`` is not in ``[0, 1]`` or
        ``pairs`` is not a positive whole number.

    Examples
    --------
    >>> round(ad_null_quantile(300, 0.05), 3)
    -0.905
    """
    n = whole_number(n, "n", minimum=2)
    if not 0 <= level <= 1:
        raise ValueError(f"level must be in [0, 1], got {level!r}")
    pairs = whole_number(pairs, "pairs")
    rng = np.random.default_rng(seed)
    values = [ad_statistic(rng.random(n), rng.random(n)) for _ in range(pairs)]
    return float(np.quantile(values, level))


def anderson_darling_originality(
    new: np.ndarray, earlier: np.ndarray, policy: ScoringPolicy
) -> OriginalityResult:
    """The Anderson–Darling alternative rule's originality decision (measured, not applied).

    ``correlated`` when ``|r| > max_correlation`` with any earlier submission (as computed in
    float64, without the exact re-check near the threshold); else ``similar`` when the AD
    statistic against at least ``min_similar`` of them is at most its null
    ``false_alarm_level`` quantile (:func:`ad_null_quantile`); else original.

    Parameters
    ----------
    new : ndarray of shape ``(n,)``, float
        The submission's probabilities; finite, not constant together with a row.
    earlier : ndarray of shape ``(N, n)``, float
        The earlier submissions compared, one per row, id-aligned.
    policy : ScoringPolicy

    Returns
    -------
    OriginalityResult
        Its matches carry the AD statistic in their ``ks`` field; ``pairs`` is empty.

    Raises
    ------
    ValueError
        As :func:`.correlation.correlations` and :func:`ad_statistic`.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> earlier = np.vstack([rng.random(300), rng.beta(2.0, 5.0, 300)])
    >>> result = anderson_darling_originality(rng.permutation(earlier[0]), earlier, ScoringPolicy())
    >>> result.reason, [m.index for m in result.matches]
    ('similar', [0])
    >>> anderson_darling_originality(rng.beta(5.0, 2.0, 300), earlier, ScoringPolicy()).original
    True
    """
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
    """Each submission's outcome under the policy and under each alternative rule, in order.

    Every rule judges the same list as the pipeline would (:func:`.sequence.judge_in_order`:
    oldest first, each from its own user, constant files refused), so the rules' outcomes can
    be set side by side.

    Parameters
    ----------
    predictions : sequence of ndarray of shape ``(n,)``
        The submissions, oldest first, all of one length; finite.
    policy : ScoringPolicy
        The policy; the alternatives keep its correlation and comparison rules.

    Returns
    -------
    dict of str to list of Judged
        Keyed by :data:`RULES`.

    Raises
    ------
    ValueError
        As :func:`.sequence.judge_in_order` and :func:`ad_statistic`.

    Examples
    --------
    A reordered copy, a constant file and a file of another distribution, after an original:

    >>> rng = np.random.default_rng(0)
    >>> first = rng.random(300)
    >>> files = [first, rng.permutation(first), np.full(300, 0.5), rng.beta(2.0, 5.0, 300)]
    >>> for rule, judged in compare_rules(files, ScoringPolicy()).items():
    ...     print(f"{rule:17}", [outcome(j) for j in judged])
    policy            ['original', 'duplicate', 'invalid', 'original']
    size-aware        ['original', 'duplicate', 'invalid', 'original']
    anderson-darling  ['original', 'similar', 'invalid', 'original']
    """
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
    """One word for a judged submission: ``original``, ``invalid``, or why it is not original.

    Parameters
    ----------
    judged : Judged

    Returns
    -------
    str
        ``"original"``, ``"invalid"`` (refused by the policy), ``"correlated"``,
        ``"duplicate"`` or ``"similar"``.

    Examples
    --------
    >>> [outcome(j) for j in judge_in_order([np.full(10, 0.5)], ScoringPolicy())]
    ['invalid']
    """
    if judged.refused is not None:
        return "invalid"
    return "original" if judged.result.original else judged.result.reason
