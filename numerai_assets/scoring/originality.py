"""Originality: is a submission a copy of another user's earlier one?

Checked, in this order, against the latest earlier submission of every other user in the round
(the caller chooses them and aligns them by id):

1. ``|r| > max_correlation`` with any of them: not original, ``correlated``;
2. KS ``< duplicate_ks`` with any: not original, ``duplicate`` (a reordered copy);
3. KS ``<= similar_ks`` with at least ``max_similar`` of them: not original, ``similar``.

The KS statistics are exact (see :mod:`.ks`), so a submission sitting on a threshold is decided
the same way on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from numerai_assets.scoring.correlation import correlations
from numerai_assets.scoring.ks import ks_statistics


@dataclass(frozen=True)
class OriginalityThresholds:
    """The tournament's rules, as parameters so a round can be rescored under new ones."""

    max_correlation: float = 0.95
    duplicate_ks: float = 0.005
    similar_ks: float = 0.03
    max_similar: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.max_correlation <= 1:
            raise ValueError(f"max_correlation must be in [0, 1], got {self.max_correlation}")
        if not 0 <= self.duplicate_ks <= self.similar_ks <= 1:
            raise ValueError(
                "thresholds must satisfy 0 <= duplicate_ks <= similar_ks <= 1, got "
                f"duplicate_ks={self.duplicate_ks}, similar_ks={self.similar_ks}"
            )
        if self.max_similar < 1:
            raise ValueError(f"max_similar must be at least 1, got {self.max_similar}")


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


def originality(
    new: np.ndarray,
    earlier: np.ndarray,
    *,
    earlier_sorted_rows: np.ndarray | None = None,
    rows: np.ndarray | None = None,
    thresholds: OriginalityThresholds | None = None,
) -> OriginalityResult:
    """Decide whether ``new`` (shape ``(n,)``) is original against ``earlier`` (``(N, n)``).

    ``earlier_sorted_rows``, if given, is ``np.sort(earlier, axis=1)`` kept from before (the
    pipeline stores it), which saves sorting every row again. ``rows`` (indices) compares against
    those rows of ``earlier`` only; match indices then count positions in ``rows``. With no
    earlier submissions a submission is original.
    """
    earlier = np.asarray(earlier, dtype=np.float64)
    if earlier.ndim == 2 and (earlier.shape[0] == 0 or (rows is not None and len(rows) == 0)):
        return OriginalityResult(original=True, reason=None, compared=0)
    r = correlations(new, earlier, rows=rows)
    if earlier_sorted_rows is None:
        ks = ks_statistics(new, earlier, rows=rows)
    else:
        if np.shape(earlier_sorted_rows) != earlier.shape:
            raise ValueError(
                f"earlier_sorted_rows must have the shape of earlier {earlier.shape}, "
                f"got {np.shape(earlier_sorted_rows)}"
            )
        ks = ks_statistics(new, earlier_sorted_rows, earlier_sorted=True, rows=rows)
    return decide_originality(r, ks, thresholds)


def decide_originality(
    correlation: np.ndarray, ks: np.ndarray, thresholds: OriginalityThresholds | None = None
) -> OriginalityResult:
    """The decision from the correlation and KS statistic against each earlier submission.

    Separate from computing them, so a caller can compute them in chunks (bounded memory) and
    decide once.
    """
    rules = thresholds or OriginalityThresholds()
    r = np.asarray(correlation, dtype=np.float64)
    ks = np.asarray(ks, dtype=np.float64)
    if r.shape != ks.shape:
        raise ValueError(f"correlation and ks must have the same shape, got {r.shape}, {ks.shape}")
    with np.errstate(invalid="ignore"):
        correlated = np.abs(r) > rules.max_correlation  # NaN (constant) compares False
    duplicate = ks < rules.duplicate_ks
    similar = ks <= rules.similar_ks
    if correlated.any():
        reason, hits = "correlated", correlated
    elif duplicate.any():
        reason, hits = "duplicate", duplicate
    elif similar.sum() >= rules.max_similar:
        reason, hits = "similar", similar
    else:
        return OriginalityResult(original=True, reason=None, compared=int(ks.shape[0]))
    matches = tuple(
        OriginalityMatch(
            index=int(k),
            correlation=None if np.isnan(r[k]) else float(r[k]),
            ks=float(ks[k]),
        )
        for k in np.flatnonzero(hits)
    )
    return OriginalityResult(
        original=False, reason=reason, matches=matches, compared=int(ks.shape[0])
    )
