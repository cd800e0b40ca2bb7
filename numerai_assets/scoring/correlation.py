"""Pearson correlation of one submission against many, without warnings on constant rows.

Two passes per row (mean, then centred sums) keep it accurate when a row's spread is tiny
next to its mean, which ``sum(y**2) - n * mean**2`` (or ``rows @ x_centred``) would not; the
second pass reads a row that is still in cache, so it costs little.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from numerai_assets.scoring._arrays import as_matrix, as_vector


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _centred(x: np.ndarray) -> tuple[np.ndarray, float, bool]:
    n = x.shape[0]
    total = 0.0
    lo = x[0]
    hi = x[0]
    for k in range(n):
        total += x[k]
        lo = min(lo, x[k])
        hi = max(hi, x[k])
    mean = total / n
    return x - mean, mean, lo == hi


@numba.njit(cache=True, parallel=True, boundscheck=False)
def _row_correlations(new_centred: np.ndarray, new_ss: float, rows: np.ndarray) -> np.ndarray:
    n_rows, n = rows.shape
    out = np.empty(n_rows)
    for r in numba.prange(n_rows):
        row = rows[r]
        total = 0.0
        lo = row[0]
        hi = row[0]
        for k in range(n):
            total += row[k]
            lo = min(lo, row[k])
            hi = max(hi, row[k])
        if lo == hi:
            out[r] = np.nan
            continue
        mean = total / n
        sxy = 0.0
        syy = 0.0
        for k in range(n):
            d = row[k] - mean
            sxy += d * new_centred[k]
            syy += d * d
        out[r] = max(-1.0, min(1.0, sxy / math.sqrt(new_ss * syy)))
    return out


def correlations(new: np.ndarray, earlier: np.ndarray) -> np.ndarray:
    """Pearson r of ``new`` (shape ``(n,)``) against each row of ``earlier`` (shape ``(N, n)``).

    A constant row, or a constant ``new``, has no correlation: its entry is NaN (never an
    exception or a warning). Rows must be id-aligned with ``new``.
    """
    new = as_vector(new, "new")
    rows = as_matrix(earlier, "earlier", n_columns=new.shape[0])
    if rows.shape[0] == 0:
        return np.zeros(0)
    new_centred, _, constant = _centred(new)
    if constant or new.shape[0] < 2:
        return np.full(rows.shape[0], np.nan)
    return _row_correlations(new_centred, float(new_centred @ new_centred), rows)
