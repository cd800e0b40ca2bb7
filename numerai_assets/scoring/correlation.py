"""Pearson correlation of one submission against many, without warnings on constant rows.

Two passes per row (mean, then centred sums) keep it accurate when a row's spread is tiny
next to its mean, which ``sum(y**2) - n * mean**2`` (or ``rows @ x_centred``) would not; the
second pass reads a row that is still in cache, so it costs little. Finiteness is checked from
each row's sum inside the same pass (NaN and inf propagate into it), not by a separate scan.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from numerai_assets.scoring._arrays import as_matrix, as_vector, pick_rows

# Reassociation alone lets LLVM vectorise the sums. Adding the other fast-math flags (even
# without "nnan") was seen to fold away the finiteness test, so they stay off.
_FAST = {"reassoc"}
# A row whose values spread less than this (all of them near 0: a file of 0 and 1e-300 is a
# valid one) is first scaled by a power of two, exactly: squares of differences below ~1e-154
# underflow to 0, which made such a row read as r = 1 (or NaN) with every other. Pearson's r
# does not depend on the scale; rows spread wider are computed as before, bit for bit.
_TINY_SPREAD = 1e-100


def _scaled_exponent(spread: np.ndarray) -> np.ndarray:
    """The power of two that brings a tiny ``spread`` into ``[0.5, 1)``: ``-frexp(spread)[1]``."""
    return -np.frexp(spread)[1]


@numba.njit(cache=True, boundscheck=False)
def _scaled_sums(row: np.ndarray, new_centred: np.ndarray, exponent: int) -> tuple[float, float]:
    """``(Sxy, Syy)`` of ``row * 2**exponent`` (exact: a power of two), its mean taken again."""
    n = row.shape[0]
    total = 0.0
    for k in range(n):
        total += math.ldexp(row[k], exponent)
    mean = total / n
    sxy = 0.0
    syy = 0.0
    for k in range(n):
        d = math.ldexp(row[k], exponent) - mean
        sxy += d * new_centred[k]
        syy += d * d
    return sxy, syy


@numba.njit(cache=True, parallel=True, boundscheck=False, fastmath=_FAST)
def _row_correlations(
    new_centred: np.ndarray, new_ss: float, rows: np.ndarray, pick: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    n_rows = pick.shape[0]
    n = rows.shape[1]
    out = np.empty(n_rows)
    finite = np.ones(n_rows, dtype=np.bool_)
    for r in numba.prange(n_rows):
        row = rows[pick[r]]
        total = 0.0
        lo = row[0]
        hi = row[0]
        for k in range(n):
            v = row[k]
            total += v
            lo = min(lo, v)
            hi = max(hi, v)
        if not math.isfinite(total):
            finite[r] = False
            out[r] = np.nan
            continue
        if lo == hi:
            out[r] = np.nan
            continue
        if hi - lo < _TINY_SPREAD:
            sxy, syy = _scaled_sums(row, new_centred, -math.frexp(hi - lo)[1])
            out[r] = max(-1.0, min(1.0, sxy / math.sqrt(new_ss * syy)))
            continue
        mean = total / n
        sxy = 0.0
        syy = 0.0
        for k in range(n):
            d = row[k] - mean
            sxy += d * new_centred[k]
            syy += d * d
        out[r] = max(-1.0, min(1.0, sxy / math.sqrt(new_ss * syy)))
    return out, finite


def correlations(
    new: np.ndarray, earlier: np.ndarray, *, rows: np.ndarray | None = None
) -> np.ndarray:
    """Pearson r of ``new`` (shape ``(n,)``) against each row of ``earlier`` (shape ``(N, n)``).

    A constant row, or a constant ``new``, has no correlation: its entry is NaN (never an
    exception or a warning). Rows must be id-aligned with ``new`` and finite. ``rows``
    (indices) compares against ``earlier[rows]`` only, in that order, without copying them.
    """
    new = as_vector(new, "new")
    matrix = as_matrix(earlier, "earlier", n_columns=new.shape[0], check_finite=False)
    pick = pick_rows(rows, matrix.shape[0])
    if pick.shape[0] == 0:
        return np.zeros(0)
    spread = new.max() - new.min()
    if 0 < spread < _TINY_SPREAD:
        new = np.ldexp(new, _scaled_exponent(spread))
    new_centred = new - new.mean()
    if spread == 0:
        r = np.full(pick.shape[0], np.nan)
        finite = np.isfinite(matrix[pick].sum(axis=1))
    else:
        r, finite = _row_correlations(new_centred, float(new_centred @ new_centred), matrix, pick)
    if not finite.all():
        row = int(pick[np.argmin(finite)])  # the row of earlier, not its place in rows
        raise ValueError(f"earlier contains NaN or infinite values (row {row})")
    return r


def standardized(rows: np.ndarray) -> np.ndarray:
    """``rows`` (shape ``(m, n)``) centred and scaled to unit length, as float64: then the Pearson
    r of two rows is their dot product, and a block of them one matrix product
    (:func:`correlation_block`). A constant row has no correlation: it comes back all NaN.

    Two passes (mean, then centred sums) as :func:`correlations`, so a row whose spread is tiny
    next to its mean keeps its precision.
    """
    values = np.asarray(rows, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"rows must be two-dimensional, got shape {values.shape}")
    lo, hi = values.min(axis=1), values.max(axis=1)
    tiny = (hi - lo < _TINY_SPREAD) & (lo < hi)
    if tiny.any():
        values = values.copy()
        values[tiny] = np.ldexp(values[tiny], _scaled_exponent(hi[tiny] - lo[tiny])[:, None])
    centred = values - values.mean(axis=1, keepdims=True)
    norms = np.sqrt(np.einsum("ij,ij->i", centred, centred))
    constant = lo == hi
    with np.errstate(invalid="ignore", divide="ignore"):
        out = centred / norms[:, None]
    out[constant] = np.nan
    return out


def correlation_block(new: np.ndarray, old: np.ndarray) -> np.ndarray:
    """Pearson r of every row of ``new`` (``(b, n)``) with every row of ``old`` (``(m, n)``),
    both :func:`standardized`: shape ``(b, m)``, NaN where either row is constant.

    One blocked matrix product (BLAS): tens of times faster than one pass per pair. Its error is
    at most about ``n`` units in the last place (Higham's bound for a dot product of unit
    vectors), ~1e-11 at 45,000 rows, far inside the band within which an ``|r|`` near its
    threshold is decided again exactly (:data:`.exact.CORRELATION_TIE_BAND`).
    """
    return np.clip(np.asarray(new) @ np.asarray(old).T, -1.0, 1.0)
