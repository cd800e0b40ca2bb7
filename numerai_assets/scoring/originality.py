"""Originality: is a submission a copy of another user's earlier one?

Checked, in this order, against the earlier submissions the comparison rule picks (the caller
chooses them and aligns them by id), with the thresholds of the :class:`ScoringPolicy`:

1. ``|r| > max_correlation`` with any of them: not original, ``correlated``;
2. KS ``< duplicate_ks`` with any: not original, ``duplicate`` (a reordered copy);
3. KS ``<= similar_ks`` with at least ``min_similar`` of them: not original, ``similar``.

Every comparison is exact (:mod:`.exact`): KS is an integer count compared with integer
limits, and an ``|r|`` within rounding distance of its threshold is decided again in integer
arithmetic. So a submission sitting on a threshold is decided the same way on every machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from numerai_assets.scoring._arrays import as_matrix, as_vector, pick_rows
from numerai_assets.scoring.exact import CORRELATION_TIE_BAND, abs_correlation_exceeds
from numerai_assets.scoring.policy import ScoringPolicy

# The kernels (numba) are imported where pairs are computed: the decisions' types and rules load
# without numba, and so does the code location that names them (the daemon, a run's start).


@dataclass(frozen=True)
class OriginalityMatch:
    """An earlier submission that made this one not original.

    Attributes
    ----------
    index : int
        Its position among the compared rows (in ``rows`` when given).
    correlation : float or None
        Pearson's r with it; None where undefined (a constant file).
    ks : float
        The KS statistic with it, ``D`` in ``[0, 1]`` (a count over ``n``). In the measured
        Anderson–Darling alternative (:mod:`.alternatives`) this holds the AD statistic.

    Examples
    --------
    >>> decide_originality([0.2], [100], 45_000).matches[0]
    OriginalityMatch(index=0, correlation=0.2, ks=0.0022222222222222222)
    """

    index: int
    correlation: float | None
    ks: float


@dataclass(frozen=True)
class OriginalityResult:
    """One submission's originality decision.

    Attributes
    ----------
    original : bool
    reason : str or None
        ``"correlated"``, ``"duplicate"`` or ``"similar"``: the first rule that held (in that
        order); None when original.
    matches : tuple of OriginalityMatch
        The compared submissions that met the deciding rule, in compared order.
    compared : int
        How many earlier submissions were compared.
    pairs : dict of str to int
        How many compared pairs met each rule, whichever decided (keys ``"compared"``,
        ``"correlated"``, ``"duplicate"``, ``"similar"``): the round's observed flag rates
        (:func:`.false_alarm.observed_flag_rates`). Empty from the measured alternatives.

    Examples
    --------
    >>> decide_originality([0.1, 0.3], [2000, 1500], 45_000)
    OriginalityResult(original=True, reason=None, matches=(), compared=2, pairs={'compared': 2, 'correlated': 0, 'duplicate': 0, 'similar': 0})
    """  # noqa: E501

    original: bool
    reason: str | None  # "correlated", "duplicate", "similar", or None when original
    matches: tuple[OriginalityMatch, ...] = field(default=())
    compared: int = 0
    # How many compared pairs met each test, whichever decided: the round's observed flag rates.
    pairs: dict[str, int] = field(default_factory=dict)


def originality(
    new: np.ndarray,
    earlier: np.ndarray,
    *,
    earlier_sorted_rows: np.ndarray | None = None,
    rows: np.ndarray | None = None,
    policy: ScoringPolicy | None = None,
) -> OriginalityResult:
    """Decide whether a submission is original against earlier ones, from their predictions.

    Computes Pearson's r (:func:`.correlation.correlations`) and the exact KS count
    (:func:`.ks.ks_counts`) against each compared row and decides by
    :func:`decide_originality`, an ``|r|`` near ``max_correlation`` again in exact arithmetic
    (:func:`.exact.abs_correlation_exceeds`). The caller picks the rows (the comparison rule,
    :mod:`.comparison`) and aligns them by id.

    Parameters
    ----------
    new : array_like of shape ``(n,)``, float
        The submission's probabilities in the round's id order; finite, not empty.
    earlier : array_like of shape ``(N, n)``, float
        The earlier submissions, one per row, id-aligned; the compared rows finite.
    earlier_sorted_rows : array_like of shape ``(N, n)``, optional
        ``np.sort(earlier, axis=1)`` kept from before (the pipeline stores it), which saves
        sorting every row again.
    rows : array_like of ints, shape ``(m,)``, optional
        Compare against these rows of ``earlier`` only; match indices then count positions in
        ``rows``.
    policy : ScoringPolicy, optional
        The thresholds; by default ``ScoringPolicy()``.

    Returns
    -------
    OriginalityResult
        With no earlier submission to compare (``N == 0`` or empty ``rows``): original.

    Raises
    ------
    ValueError
        If ``new`` is not a one-dimensional array of finite numbers or is empty; ``earlier``
        is not of shape ``(N, n)`` or a compared row is not finite; ``earlier_sorted_rows``
        has another shape than ``earlier``; ``rows`` is not a one-dimensional array of
        integers within ``earlier``'s rows.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> earlier = rng.random((3, 1000))
    >>> result = originality(earlier[1][::-1], earlier)  # a reordered copy of row 1
    >>> result.original, result.reason, [(m.index, m.ks) for m in result.matches]
    (False, 'duplicate', [(1, 0.0)])
    >>> result = originality(0.5 * earlier[2] + 0.2, earlier)  # rescaled: r = 1
    >>> result.reason, [(m.index, round(m.correlation, 12)) for m in result.matches]
    ('correlated', [(2, 1.0)])

    KS compares distributions, not predictions: an independent file drawn from the same
    distribution is ``similar`` (see :mod:`.false_alarm`), one from another is original:

    >>> originality(rng.random(1000), earlier).reason
    'similar'
    >>> originality(rng.beta(2.0, 5.0, 1000), earlier).original
    True
    """
    from numerai_assets.scoring.correlation import correlations
    from numerai_assets.scoring.ks import ks_counts

    # Checked before the early return, so nothing to compare with does not mean not checked.
    new = as_vector(new, "new")
    earlier = as_matrix(earlier, "earlier", n_columns=new.shape[0], check_finite=False)
    pick = pick_rows(rows, earlier.shape[0])
    if pick.shape[0] == 0:
        return decide_originality(np.empty(0), np.empty(0, np.int64), new.shape[0], policy)
    r = correlations(new, earlier, rows=rows)
    if earlier_sorted_rows is None:
        counts = ks_counts(new, earlier, rows=rows)
    else:
        if np.shape(earlier_sorted_rows) != earlier.shape:
            raise ValueError(
                f"earlier_sorted_rows must have the shape of earlier {earlier.shape}, "
                f"got {np.shape(earlier_sorted_rows)}"
            )
        counts = ks_counts(new, earlier_sorted_rows, earlier_sorted=True, rows=rows)
    rules = policy or ScoringPolicy()
    return decide_originality(
        r,
        counts,
        new.shape[0],
        rules,
        exact_correlated=lambda k: abs_correlation_exceeds(
            new, earlier[pick[k]], rules.max_correlation
        ),
    )


def decide_originality(
    correlation: np.ndarray,
    ks_count: np.ndarray,
    n_rows: int,
    policy: ScoringPolicy | None = None,
    *,
    exact_correlated: Callable[[int], bool] | None = None,
) -> OriginalityResult:
    """The originality decision from the statistics of the compared pairs.

    Separate from computing them, so a caller can compute them in chunks (bounded memory) or
    read them from the round's pair store, and decide once. The rules, in this order:
    ``|r| > max_correlation`` with any: ``correlated``; KS ``< duplicate_ks`` with any:
    ``duplicate``; KS ``<= similar_ks`` with at least ``min_similar``: ``similar``. KS is
    compared as integer counts against the policy's :class:`~.policy.KsLimits`, exactly.

    Parameters
    ----------
    correlation : array_like of shape ``(N,)``, float
        Pearson's r with each compared submission; NaN where undefined (never correlated).
    ks_count : array_like of shape ``(N,)``, int
        The KS statistic with each, as the integer count ``D * n_rows``.
    n_rows : int
        The round's number of rows ``n``.
    policy : ScoringPolicy, optional
        The thresholds; by default ``ScoringPolicy()``.
    exact_correlated : callable, optional
        ``exact_correlated(k)`` decides ``|r_k| > max_correlation`` exactly (see
        :func:`.exact.abs_correlation_exceeds`). It is asked only about an ``r`` within
        :data:`.exact.CORRELATION_TIE_BAND` of the threshold; without it such an ``r`` is
        taken as computed.

    Returns
    -------
    OriginalityResult

    Raises
    ------
    ValueError
        If ``correlation`` and ``ks_count`` differ in shape, or ``n_rows`` is not a positive
        whole number.

    Examples
    --------
    At 45,000 rows, duplicate means a count below 225 and similar at most 1,350. Each rule is
    strict as written: a count of 225 is not a duplicate (but similar), an ``r`` of exactly
    0.95 is not correlated:

    >>> decide_originality([0.1], [225], 45_000).reason
    'similar'
    >>> decide_originality([0.95, 0.1], [1351, 1351], 45_000).original
    True

    The first rule that holds decides; the pair counts record every rule met:

    >>> result = decide_originality([0.96, 0.2, np.nan], [700, 10, 3000], 45_000)
    >>> result.reason, [m.index for m in result.matches], result.pairs
    ('correlated', [0], {'compared': 3, 'correlated': 1, 'duplicate': 1, 'similar': 2})
    """
    rules = policy or ScoringPolicy()
    r = np.asarray(correlation, dtype=np.float64)
    counts = np.asarray(ks_count, dtype=np.int64)
    if r.shape != counts.shape:
        raise ValueError(
            f"correlation and ks_count must have the same shape, got {r.shape}, {counts.shape}"
        )
    limits = rules.ks_limits(n_rows)
    with np.errstate(invalid="ignore"):
        correlated = np.abs(r) > rules.max_correlation  # NaN (constant) compares False
        near = np.abs(np.abs(r) - rules.max_correlation) <= CORRELATION_TIE_BAND
    if exact_correlated is not None:
        for k in np.flatnonzero(near):
            correlated[k] = exact_correlated(int(k))
    duplicate = counts < limits.duplicate_below
    similar = counts <= limits.similar_at_most
    pairs = {
        "compared": int(counts.shape[0]),
        "correlated": int(correlated.sum()),
        "duplicate": int(duplicate.sum()),
        "similar": int(similar.sum()),
    }
    if correlated.any():
        reason, hits = "correlated", correlated
    elif duplicate.any():
        reason, hits = "duplicate", duplicate
    elif similar.sum() >= rules.min_similar:
        reason, hits = "similar", similar
    else:
        return OriginalityResult(True, None, compared=pairs["compared"], pairs=pairs)
    matches = tuple(
        OriginalityMatch(
            index=int(k),
            correlation=None if np.isnan(r[k]) else float(r[k]),
            ks=float(counts[k] / n_rows),
        )
        for k in np.flatnonzero(hits)
    )
    return OriginalityResult(False, reason, matches, compared=pairs["compared"], pairs=pairs)
