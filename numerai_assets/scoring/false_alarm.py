"""How often the KS thresholds flag two independent submissions: the policy's false-alarm rate.

Two honest, independent submissions whose predictions follow the same distribution have a KS
statistic ``D`` with the two-sample null distribution for ``n`` rows each. Its typical size
shrinks like ``1 / sqrt(n)``, so a fixed threshold means something else at every round size:
``P(D < 0.005)`` is about 0.37 at 45,000 rows and 0.98 at 190,000. This module gives a policy's
rates at a round's size and the thresholds that would hold its level there, from the null
distribution in :mod:`.ks_null`.
"""

from __future__ import annotations

from dataclasses import dataclass

from numerai_assets.scoring.policy import ScoringPolicy


@dataclass(frozen=True)
class FalseAlarmRates:
    """The policy's false-alarm rates at a round of ``rows`` tournament rows.

    For two independent submissions whose predictions have the same (continuous) distribution.

    Attributes
    ----------
    rows : int
    method : str
        How the null distribution was computed (:func:`.ks_null.null_method`).
    level : float
        The policy's ``false_alarm_level``.
    duplicate_ks, similar_ks : float
        The policy's KS thresholds at this size (:class:`~.policy.KsLimits`).
    p_duplicate : float
        ``P(KS < duplicate threshold)``.
    p_similar : float
        ``P(KS <= similar threshold)``.
    holding_duplicate_ks, holding_similar_ks : float
        The thresholds that would hold ``level`` at this size (:func:`.ks_null.critical_count`).

    Examples
    --------
    See :func:`false_alarm_rates`.
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
        """Whether either rule flags independent submissions more often than ``level``."""
        return self.p_duplicate > self.level or self.p_similar > self.level


def false_alarm_rates(policy: ScoringPolicy, rows: int) -> FalseAlarmRates:
    """The false-alarm rates of ``policy``'s KS thresholds at ``rows`` rows.

    Parameters
    ----------
    policy : ScoringPolicy
    rows : int
        The round's tournament rows, at least 1.

    Returns
    -------
    FalseAlarmRates

    Raises
    ------
    ValueError
        If ``rows`` is not a positive whole number.

    Examples
    --------
    At 45,000 rows the default thresholds flag 37 % of independent same-distribution pairs as
    duplicates and all of them as similar; KS < 155 / 45,000 (0.00344) would hold 5 %:

    >>> rates = false_alarm_rates(ScoringPolicy(), 45_000)
    >>> round(rates.p_duplicate, 3), round(rates.p_similar, 3), rates.above_level
    (0.373, 1.0, True)
    >>> round(rates.holding_duplicate_ks * 45_000), rates.method
    (155, 'exact')
    """
    # scipy (the null distribution) only when asked: the code location loads without it.
    from numerai_assets.scoring.ks_null import count_sf, critical_count, null_method

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
    """The share of compared pairs a round flagged, from its submissions' ``pairs`` counts.

    Parameters
    ----------
    pairs : list of dict
        Each decided submission's :attr:`.originality.OriginalityResult.pairs` (as stored: a
        missing key or a value that is not an int counts 0).

    Returns
    -------
    dict
        ``compared_pairs`` (int), ``duplicate_share`` and ``similar_share`` (floats in
        ``[0, 1]``; 0.0 when nothing was compared).

    Examples
    --------
    >>> observed_flag_rates([
    ...     {"compared": 3, "correlated": 0, "duplicate": 1, "similar": 2},
    ...     {"compared": 1, "duplicate": 0, "similar": "?"},
    ... ])
    {'compared_pairs': 4, 'duplicate_share': 0.25, 'similar_share': 0.5}
    """

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
