"""The two-sample Kolmogorov–Smirnov statistic's null distribution, as integer counts.

Two honest, independent submissions whose predictions follow the same distribution have a KS
statistic ``D`` with the two-sample null distribution for ``n`` rows each. ``D * n`` is an
integer count (see :mod:`.ks`), so every probability here is of a count. scipy computes them:
the exact distribution where cheap, Kolmogorov's limit otherwise. Below the scoring policy,
which asks it for size-aware thresholds (:func:`critical_count`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from numerai_assets.scoring._arrays import whole_number

# scipy's exact two-sample distribution for equal sizes takes about 17 ms at 45,000 rows and
# 70 ms at 190,000 (linear); above this the asymptotic one is within 1e-5 and far cheaper.
EXACT_MAX_ROWS = 1_000_000


def null_method(n: int) -> str:
    """How :func:`count_sf` computes at ``n`` rows: ``"exact"`` up to ``EXACT_MAX_ROWS``.

    Parameters
    ----------
    n : int
        Rows of each sample.

    Returns
    -------
    str
        ``"exact"`` or ``"asymptotic"``.

    Examples
    --------
    >>> null_method(45_000), null_method(2_000_000)
    ('exact', 'asymptotic')
    """
    return "exact" if n <= EXACT_MAX_ROWS else "asymptotic"


def count_sf(count: int, n: int) -> float:
    """``P(D * n >= count)`` for two independent samples of ``n`` continuous values each.

    The two-sample Kolmogorov–Smirnov null distribution (both samples from one continuous
    distribution). Exact via ``scipy.stats.ks_2samp(method="exact")`` up to
    ``EXACT_MAX_ROWS``: scipy exposes the exact null distribution only through that test, so it
    is asked about two samples whose statistic is exactly ``count / n`` (``0..n-1`` and the same
    shifted by ``count``). Above, Kolmogorov's limit: ``scipy.stats.kstwobign.sf(D sqrt(n / 2))``.

    Parameters
    ----------
    count : int
        A KS count ``D * n`` (:func:`.ks.ks_counts`).
    n : int
        Rows of each sample, at least 1.

    Returns
    -------
    float
        The probability, in ``[0, 1]``: 1 for ``count <= 0``, 0 for ``count > n``.

    Raises
    ------
    ValueError
        If ``n`` is not a positive whole number.

    Examples
    --------
    At 45,000 rows the fixed duplicate rule (count < 225, KS < 0.005) flags about 37 % of
    pairs of independent submissions with the same distribution:

    >>> round(1.0 - count_sf(225, 45_000), 3)
    0.373
    """
    n = whole_number(n, "n")
    if count <= 0:
        return 1.0
    if count > n:
        return 0.0
    if null_method(n) == "asymptotic":
        return float(stats.kstwobign.sf(count / n * math.sqrt(n / 2)))
    base = np.arange(n, dtype=np.float64)
    return float(stats.ks_2samp(base, base + count, method="exact").pvalue)


def critical_count(n: int, level: float) -> int:
    """The largest count ``c`` with ``P(D * n < c) <= level`` at ``n`` rows.

    So the rule ``KS < c / n`` flags two independent same-distribution submissions with
    probability at most ``level`` (and ``KS <= (c - 1) / n`` likewise): the size-aware
    thresholds of :meth:`.policy.ScoringPolicy.ks_limits`. Found from Kolmogorov's asymptotic
    quantile, then stepped to the boundary of :func:`count_sf`'s distribution.

    Parameters
    ----------
    n : int
        Rows of each sample, at least 1.
    level : float
        The false-alarm probability, in ``(0, 1)``.

    Returns
    -------
    int
        ``c`` in ``0..n``.

    Raises
    ------
    ValueError
        If ``n`` is not a positive whole number or ``level`` is not in ``(0, 1)``.

    Examples
    --------
    >>> c = critical_count(45_000, 0.05)
    >>> c, round(1.0 - count_sf(c, 45_000), 4), round(1.0 - count_sf(c + 1, 45_000), 4)
    (155, 0.0477, 0.0503)
    """
    n = whole_number(n, "n")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    # Start from the asymptotic quantile and walk to the exact boundary (a step or two).
    c = max(1, round(stats.kstwobign.ppf(level) * math.sqrt(2 * n)))
    while c > 0 and 1.0 - count_sf(c, n) > level:
        c -= 1
    while c <= n and 1.0 - count_sf(c + 1, n) <= level:
        c += 1
    return c
