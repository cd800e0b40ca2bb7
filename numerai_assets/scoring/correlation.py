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

from numerai_assets.scoring._arrays import as_float64, as_matrix, as_vector, pick_rows

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
    """Pearson's r of one submission against each of many, NaN where it is undefined.

    Pearson's product-moment correlation ``Sxy / sqrt(Sxx Syy)`` over centred values, as
    ``numpy.corrcoef`` and ``scipy.stats.pearsonr`` define it, in two passes per row (mean, then
    centred sums). Its rounding error is at most about ``2 (n + 2) 2**-53`` (Higham's summation
    bound with Cauchy–Schwarz; ~1e-11 at 45,000 rows), far inside
    :data:`.exact.CORRELATION_TIE_BAND`. A row whose
    values spread less than ``1e-100`` is scaled by a power of two first (exact; ``r`` does not
    change), so squares of its differences do not underflow.

    Parameters
    ----------
    new : array_like of shape ``(n,)``, float
        The submission's probabilities in the round's id order; finite, not empty.
    earlier : array_like of shape ``(N, n)``, float (or a read-only memmap)
        One earlier submission per row, id-aligned with ``new``; the compared rows finite.
    rows : array_like of ints, shape ``(m,)``, optional
        Compare against ``earlier[rows]`` only, in that order, without copying them.

    Returns
    -------
    ndarray of shape ``(N,)`` (or ``(m,)``), float64
        ``r`` in ``[-1, 1]`` for each compared row; NaN where the row or ``new`` is constant
        (no exception, no warning).

    Raises
    ------
    ValueError
        If ``new`` is not a one-dimensional array of numbers, is empty or is not finite; if
        ``earlier`` is not of shape ``(N, n)``; if a compared row is not finite (the message
        names its row of ``earlier``); if ``rows`` is not a one-dimensional array of integers
        within ``earlier``'s rows.

    Examples
    --------
    >>> new = np.array([0.1, 0.2, 0.3, 0.4])
    >>> earlier = np.array([
    ...     [0.2, 0.4, 0.6, 0.8],  # a rescaled copy
    ...     [0.4, 0.3, 0.2, 0.1],  # the copy reversed
    ...     [0.5, 0.5, 0.5, 0.5],  # constant: no correlation
    ...     [0.0, 3e-300, 1e-300, 2e-300],  # a valid file near 0: not r = 1
    ... ])
    >>> correlations(new, earlier)
    array([ 1. , -1. ,  nan,  0.4])
    >>> correlations(new, earlier, rows=[1, 0])
    array([-1.,  1.])
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


def standardized(rows: np.ndarray, *, overwrite_input: bool = False) -> np.ndarray:
    """Rows centred and scaled to unit length, so that Pearson's r of two rows is their dot product.

    A block of correlations is then one matrix product (:func:`correlation_block`). Two passes
    (mean, then centred sums) as :func:`correlations`, so a row whose spread is tiny next to its
    mean keeps its precision; a row spread less than ``1e-100`` is scaled by a power of two
    first, as there.

    Parameters
    ----------
    rows : array_like of shape ``(m, n)``, float (or a read-only memmap)
        One submission per row, ``n >= 1``. Not checked for finiteness (the callers' rows come
        from the checked prediction cache).
    overwrite_input : bool
        Let the result reuse ``rows``' memory when ``rows`` is a writable C-contiguous float64
        array (as in scipy: ``rows`` is then garbage). Phase 1 standardizes a fresh copy of 128
        rows of 45,000 at a time; this saves one such copy in memory. The values are the same,
        bit for bit.

    Returns
    -------
    ndarray of shape ``(m, n)``, float64
        Each row minus its mean, over its Euclidean norm. A constant row (no correlation), and
        a row holding NaN or an infinity, comes back all NaN.

    Raises
    ------
    ValueError
        If ``rows`` is not a two-dimensional array of numbers with at least one column.

    Examples
    --------
    >>> z = standardized([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]])
    >>> z.round(4)
    array([[-0.7071,  0.    ,  0.7071],
           [    nan,     nan,     nan]])
    >>> round(float(z[0] @ z[0]), 12)  # unit length: r of a row with itself
    1.0
    """
    values = as_float64(rows, "rows")
    if values.ndim != 2 or values.shape[1] == 0:
        raise ValueError(
            f"rows must be two-dimensional with at least one column, got shape {values.shape}"
        )
    lo, hi = values.min(axis=1), values.max(axis=1)
    tiny = (hi - lo < _TINY_SPREAD) & (lo < hi)
    # Only a C-contiguous array: the sums then run in the order they run on a fresh copy.
    owned = overwrite_input and values.flags.writeable and values.flags.c_contiguous
    if tiny.any():
        values = values if owned else values.copy()
        owned = True
        values[tiny] = np.ldexp(values[tiny], _scaled_exponent(hi[tiny] - lo[tiny])[:, None])
    mean = values.mean(axis=1, keepdims=True)
    if owned:  # the same arithmetic in place: equal results, one matrix fewer
        values -= mean
        centred = values
    else:
        centred = values - mean
    norms = np.sqrt(np.einsum("ij,ij->i", centred, centred))
    constant = lo == hi
    with np.errstate(invalid="ignore", divide="ignore"):
        centred /= norms[:, None]
    centred[constant] = np.nan
    return centred


def correlation_block(new: np.ndarray, old: np.ndarray) -> np.ndarray:
    """Pearson's r of every row of one block of standardized rows with every row of another.

    One blocked matrix product (BLAS): tens of times faster than one pass per pair. Its error is
    at most about ``n u`` (``u = 2**-53``): Higham's bound for an inner product,
    ``|fl(x . y) - x . y| <= n u / (1 - n u) |x| . |y|`` (*Accuracy and Stability of Numerical
    Algorithms*, 2nd ed., section 3.1), with ``|x| . |y| <= 1`` for unit vectors; ~1e-11 at
    45,000 rows, far inside the band within which an ``|r|`` near its threshold is decided again
    exactly (:data:`.exact.CORRELATION_TIE_BAND`).

    Parameters
    ----------
    new : array_like of shape ``(b, n)``, float
        Rows from :func:`standardized`.
    old : array_like of shape ``(m, n)``, float
        Rows from :func:`standardized`, as many columns as ``new``.

    Returns
    -------
    ndarray of shape ``(b, m)``, float64
        ``r`` of ``new[i]`` with ``old[j]``, clipped to ``[-1, 1]``; NaN where either row is
        constant (all NaN).

    Raises
    ------
    ValueError
        If ``new`` or ``old`` is not two-dimensional, or their numbers of columns differ.

    Examples
    --------
    >>> z = standardized([[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1], [0.5, 0.5, 0.5, 0.5]])
    >>> correlation_block(z[:1], z)
    array([[ 1., -1., nan]])
    """
    new, old = np.asarray(new), np.asarray(old)
    if new.ndim != 2 or old.ndim != 2 or new.shape[1] != old.shape[1]:
        raise ValueError(
            "new and old must be two-dimensional with the same number of columns, got shapes "
            f"{new.shape} and {old.shape}"
        )
    return np.clip(new @ old.T, -1.0, 1.0)
