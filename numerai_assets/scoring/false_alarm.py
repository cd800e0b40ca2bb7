"""How often the KS thresholds flag two independent submissions: the policy's false-alarm rate.

Two honest, independent submissions whose predictions follow the same distribution have a KS
statistic ``D`` with the two-sample null distribution for ``n`` rows each. Its typical size
shrinks like ``1 / sqrt(n)``, so a fixed threshold means something else at every round size:
``P(D < 0.005)`` is about 0.37 at 45,000 rows and 0.98 at 190,000. This module computes those
probabilities with scipy (the exact distribution where cheap, Kolmogorov's limit otherwise) and
the threshold that would hold a chosen level at a given size.

``D * n`` is an integer count (see :mod:`.ks`), so every probability here is of a count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

if TYPE_CHECKING:
    from numerai_assets.scoring.policy import ScoringPolicy

# scipy's exact two-sample distribution for equal sizes takes about 17 ms at 45,000 rows and
# 70 ms at 190,000 (linear); above this the asymptotic one is within 1e-5 and far cheaper.
EXACT_MAX_ROWS = 1_000_000


def null_method(n: int) -> str:
    """``"exact"`` or ``"asymptotic"``: how :func:`count_sf` computes at ``n`` rows."""
    return "exact" if n <= EXACT_MAX_ROWS else "asymptotic"


def count_sf(count: int, n: int) -> float:
    """``P(D * n >= count)`` for two independent samples of ``n`` continuous values each.

    Exact via ``scipy.stats.ks_2samp(method="exact")`` up to ``EXACT_MAX_ROWS``: scipy exposes
    the exact null distribution only through that test, so it is asked about two samples whose
    statistic is exactly ``count / n`` (``0..n-1`` and the same shifted by ``count``). Above,
    Kolmogorov's limit: ``scipy.stats.kstwobign.sf(D * sqrt(n / 2))``.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
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
    probability at most ``level`` (and ``KS <= (c - 1) / n`` likewise).
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    # Start from the asymptotic quantile and walk to the exact boundary (a step or two).
    c = max(1, round(stats.kstwobign.ppf(level) * math.sqrt(2 * n)))
    while c > 0 and 1.0 - count_sf(c, n) > level:
        c -= 1
    while c <= n and 1.0 - count_sf(c + 1, n) <= level:
        c += 1
    return c


@dataclass(frozen=True)
class FalseAlarmRates:
    """The policy's false-alarm rates at a round of ``rows`` tournament rows.

    ``p_duplicate`` is ``P(KS < duplicate threshold)`` and ``p_similar`` ``P(KS <= similar
    threshold)`` for two independent submissions with the same distribution of predictions.
    ``holding_duplicate_ks`` / ``holding_similar_ks`` are the thresholds that would hold
    ``level`` at this size.
    """

    rows: int
    method: str
    level: float
    duplicate_ks: float
    similar_ks: float
    p_duplicate: float
    p_similar: float
    holding_duplicate_ks: float
    holding_similar_ks: float

    @property
    def above_level(self) -> bool:
        return self.p_duplicate > self.level or self.p_similar > self.level


def false_alarm_rates(policy: ScoringPolicy, rows: int) -> FalseAlarmRates:
    """The false-alarm rates of ``policy``'s KS thresholds at ``rows`` rows."""
    limits = policy.ks_limits(rows)
    holding = critical_count(rows, policy.false_alarm_level)
    return FalseAlarmRates(
        rows=rows,
        method=null_method(rows),
        level=policy.false_alarm_level,
        duplicate_ks=limits.duplicate_ks,
        similar_ks=limits.similar_ks,
        p_duplicate=1.0 - count_sf(limits.duplicate_below, rows),
        p_similar=1.0 - count_sf(limits.similar_at_most + 1, rows),
        holding_duplicate_ks=holding / rows,
        holding_similar_ks=(holding - 1) / rows,
    )


def observed_flag_rates(pairs: list[dict]) -> dict[str, float | int]:
    """The share of compared pairs a round flagged, from its submissions' ``pairs`` counts."""

    def count(p: dict, key: str) -> int:
        value = p.get(key, 0)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    total = {key: sum(count(p, key) for p in pairs) for key in ("compared", "duplicate")}
    similar = sum(count(p, "similar") for p in pairs)
    compared = total["compared"]
    return {
        "compared_pairs": compared,
        "duplicate_share": total["duplicate"] / compared if compared else 0.0,
        "similar_share": similar / compared if compared else 0.0,
    }
