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
from numerai_assets.scoring.correlation import correlations
from numerai_assets.scoring.exact import CORRELATION_TIE_BAND, abs_correlation_exceeds
from numerai_assets.scoring.ks import ks_counts
from numerai_assets.scoring.policy import ScoringPolicy


@dataclass(frozen=True)
class OriginalityMatch:
    """An earlier submission that made this one not original (``index`` is its row)."""

    index: int
    correlation: float | None
    ks: float


@dataclass(frozen=True)
class OriginalityResult:
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
    """Decide whether ``new`` (shape ``(n,)``) is original against ``earlier`` (``(N, n)``).

    ``earlier_sorted_rows``, if given, is ``np.sort(earlier, axis=1)`` kept from before (the
    pipeline stores it), which saves sorting every row again. ``rows`` (indices) compares against
    those rows of ``earlier`` only; match indices then count positions in ``rows``. With no
    earlier submissions a submission is original.
    """
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
    """The decision from the correlation and KS count (``D * n_rows``) against each earlier one.

    Separate from computing them, so a caller can compute them in chunks (bounded memory) and
    decide once. ``exact_correlated(k)`` decides ``|r_k| > max_correlation`` exactly (see
    :func:`.exact.abs_correlation_exceeds`); it is asked only about an ``r`` within
    ``CORRELATION_TIE_BAND`` of the threshold, and without it such an ``r`` is taken as computed.
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
