"""Exact two-sample Kolmogorov–Smirnov statistics, one submission against many.

Originality compares a new submission with every earlier one in its round, so this is the hot
loop of the pipeline. The statistic is computed from integer counts in a merge walk over two
sorted samples, ``D = max |i * n_b - j * n_a| / (n_a * n_b)``, so it is exact with repeated
values (the original system's shortcut scored two identical constant submissions 0.9993 apart)
and threshold comparisons on it are exact too.
"""

from __future__ import annotations

import numba
import numpy as np

from numerai_assets.scoring._arrays import as_matrix, as_vector, pick_rows, sorted_rows_finite

_JIT = {"cache": True, "nogil": True, "boundscheck": False}


@numba.njit(**_JIT)
def _ks_count(a: np.ndarray, b: np.ndarray) -> int:
    """``max |i * len(b) - j * len(a)|`` over ascending samples of any sizes.

    Both samples are advanced past every copy of a value before the gap is measured: with
    unequal sizes a gap measured inside a run of ties can exceed the true one.
    """
    n_a, n_b = a.shape[0], b.shape[0]
    i = j = best = 0
    while i < n_a and j < n_b:
        value = min(a[i], b[j])
        while i < n_a and a[i] <= value:
            i += 1
        while j < n_b and b[j] <= value:
            j += 1
        best = max(best, abs(i * n_b - j * n_a))
    # Once one sample is exhausted its CDF is 1 and the gap only shrinks from there on.
    return best


# With equal sizes the gap is |i - j|, and inside a run of ties it moves monotonically between
# its values before and after the run (diagonal steps leave it unchanged), so it can be taken
# after every single step: no inner loops, no data-dependent branches. Four rows are walked in
# one loop because each walk is a chain of dependent loads; interleaving them lets the CPU
# overlap the chains (about 4x faster than one walk at a time on these machines).
@numba.njit(**_JIT)
def _ks_count_equal(a: np.ndarray, b: np.ndarray) -> int:
    n = a.shape[0]
    i = j = best = 0
    while i < n and j < n:
        x, y = a[i], b[j]
        i += x <= y
        j += y <= x
        best = max(best, abs(i - j))
    return best


@numba.njit(**_JIT)
def _ks_count_equal4(a, b0, b1, b2, b3, out, k):  # noqa: ANN001 - numba kernel
    n = a.shape[0]
    i0 = j0 = i1 = j1 = i2 = j2 = i3 = j3 = 0
    m0 = m1 = m2 = m3 = 0
    while i0 < n and j0 < n and i1 < n and j1 < n and i2 < n and j2 < n and i3 < n and j3 < n:
        x, y = a[i0], b0[j0]
        i0 += x <= y
        j0 += y <= x
        m0 = max(m0, abs(i0 - j0))
        x, y = a[i1], b1[j1]
        i1 += x <= y
        j1 += y <= x
        m1 = max(m1, abs(i1 - j1))
        x, y = a[i2], b2[j2]
        i2 += x <= y
        j2 += y <= x
        m2 = max(m2, abs(i2 - j2))
        x, y = a[i3], b3[j3]
        i3 += x <= y
        j3 += y <= x
        m3 = max(m3, abs(i3 - j3))
    # Finish each walk on its own: resuming from (i, j) with the running maximum is exact.
    out[k] = max(m0, _ks_resume(a, b0, i0, j0))
    out[k + 1] = max(m1, _ks_resume(a, b1, i1, j1))
    out[k + 2] = max(m2, _ks_resume(a, b2, i2, j2))
    out[k + 3] = max(m3, _ks_resume(a, b3, i3, j3))


@numba.njit(**_JIT)
def _ks_resume(a: np.ndarray, b: np.ndarray, i: int, j: int) -> int:
    n = a.shape[0]
    best = 0
    while i < n and j < n:
        x, y = a[i], b[j]
        i += x <= y
        j += y <= x
        best = max(best, abs(i - j))
    return best


@numba.njit(cache=True, parallel=True)
def _ks_counts_rows(a: np.ndarray, rows: np.ndarray, pick: np.ndarray) -> np.ndarray:
    """Counts against ``rows[pick[k]]``: picking in the kernel copies no rows."""
    n_rows = pick.shape[0]
    out = np.empty(n_rows, dtype=np.int64)
    for g in numba.prange(n_rows // 4):
        k = 4 * g
        _ks_count_equal4(
            a, rows[pick[k]], rows[pick[k + 1]], rows[pick[k + 2]], rows[pick[k + 3]], out, k
        )
    for k in range(n_rows - n_rows % 4, n_rows):
        out[k] = _ks_count_equal(a, rows[pick[k]])
    return out


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Exact two-sample Kolmogorov–Smirnov statistic of two samples, sizes free.

    ``D = max_t |F_a(t) - F_b(t)|`` over the empirical CDFs, computed from integer counts in a
    merge walk (``max |i n_b - j n_a| / (n_a n_b)``, both samples advanced past every copy of a
    value first), so it is exact with repeated values. Equal to
    ``scipy.stats.ks_2samp(a, b).statistic``.

    Parameters
    ----------
    a, b : array_like of shape ``(n_a,)`` and ``(n_b,)``, float
        The two samples, in any order; finite, neither empty.

    Returns
    -------
    float
        ``D`` in ``[0, 1]``: a count over ``n_a * n_b``, rounded once.

    Raises
    ------
    ValueError
        If ``a`` or ``b`` is not a one-dimensional array of numbers, is empty, or holds NaN or
        infinite values (the message names which).

    Examples
    --------
    Two identical constant files are at distance 0 (a shortcut that ignored ties once put them
    0.9993 apart):

    >>> ks_statistic(np.full(1000, 0.5), np.full(1000, 0.5))
    0.0

    Different sizes and ties, as ``scipy.stats.ks_2samp`` has it (the largest gap is just after
    0.2, where 3 of 4 values of ``a`` and 1 of 3 of ``b`` lie):

    >>> from scipy.stats import ks_2samp
    >>> a, b = [0.1, 0.2, 0.2, 0.7], [0.2, 0.5, 0.9]
    >>> ks_statistic(a, b), float(ks_2samp(a, b).statistic)
    (0.4166666666666667, 0.4166666666666667)
    """
    a = np.sort(as_vector(a, "a"))
    b = np.sort(as_vector(b, "b"))
    return _ks_count(a, b) / (a.shape[0] * b.shape[0])


def ks_counts(
    new: np.ndarray,
    earlier: np.ndarray,
    *,
    earlier_sorted: bool = False,
    rows: np.ndarray | None = None,
    new_sorted: bool = False,
) -> np.ndarray:
    """KS statistics of ``new`` against rows of ``earlier``, as exact integer counts ``D * n``.

    With equal sizes ``n`` the two-sample statistic is a count over ``n``: thresholds are
    compared on these counts (:meth:`.policy.ScoringPolicy.ks_limits`), exactly.
    :func:`ks_statistics` is these divided by ``n``.

    Parameters
    ----------
    new : array_like of shape ``(n,)``, float
        The submission's probabilities, in any order; finite, not empty.
    earlier : array_like of shape ``(N, n)``, float (or a read-only memmap)
        One earlier submission per row; the compared rows must be finite.
    earlier_sorted : bool, default False
        The rows of ``earlier`` are already ascending (the pipeline keeps them so), which skips
        an ``O(N n log n)`` sort. Unsorted rows passed as sorted give meaningless counts, and
        their finiteness is checked only at their ends.
    rows : array_like of ints, shape ``(m,)``, optional
        Compare against ``earlier[rows]`` only, in that order, without copying them.
    new_sorted : bool, default False
        ``new`` is already ascending (the cache's sorted copy): its sort (1.5 ms at 45,000
        rows, once per call) is skipped; checked, in one pass.

    Returns
    -------
    ndarray of shape ``(N,)`` (or ``(m,)``), int64
        ``max_t |#{new <= t} - #{row <= t}|`` for each compared row, in ``0..n``.

    Raises
    ------
    ValueError
        If ``new`` is not a one-dimensional array of numbers, is empty or is not finite (or not
        ascending, with ``new_sorted``); if
        ``earlier`` is not of shape ``(N, n)`` or a compared row is not finite; if ``rows`` is
        not a one-dimensional array of integers within ``earlier``'s rows.

    Examples
    --------
    A reordered copy is at count 0; a copy rounded to two decimals is close; an independent
    file is a few times ``sqrt(n)`` away:

    >>> rng = np.random.default_rng(1)
    >>> new = rng.random(1000)
    >>> earlier = np.vstack([new[::-1], np.round(new, 2), rng.random(1000)])
    >>> ks_counts(new, earlier)
    array([ 0, 14, 39])
    >>> ks_counts(new, np.sort(earlier, axis=1), earlier_sorted=True, rows=[2, 0])
    array([39,  0])
    """
    ascending = as_vector(new, "new")
    if not new_sorted:
        ascending = np.sort(ascending)
    elif not (ascending[1:] >= ascending[:-1]).all():
        raise ValueError("new is not ascending (new_sorted=True)")
    matrix = as_matrix(earlier, "earlier", n_columns=ascending.shape[0], check_finite=False)
    pick = pick_rows(rows, matrix.shape[0])
    if not earlier_sorted:
        matrix = np.sort(matrix[pick], axis=1)
        pick = np.arange(matrix.shape[0])
    if not sorted_rows_finite(matrix, pick):
        raise ValueError("earlier contains NaN or infinite values")
    if pick.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    return _ks_counts_rows(ascending, matrix, pick)


def ks_statistics(
    new: np.ndarray,
    earlier: np.ndarray,
    *,
    earlier_sorted: bool = False,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """Exact two-sample KS statistic of one submission against each of many.

    Parameters
    ----------
    new : array_like of shape ``(n,)``, float
        The submission's probabilities, in any order; finite, not empty.
    earlier : array_like of shape ``(N, n)``, float
        One earlier submission per row, id-aligned with ``new``; the compared rows finite.
    earlier_sorted : bool, default False
        The rows of ``earlier`` are already ascending (the pipeline keeps them so), which skips
        an ``O(N n log n)`` sort. Unsorted rows passed with ``True`` give meaningless results.
    rows : array_like of ints, shape ``(m,)``, optional
        Compare against ``earlier[rows]`` only (in that order), without copying them: how the
        pipeline picks the submissions to compare from its per-round matrix.

    Returns
    -------
    ndarray of shape ``(N,)`` (or ``(m,)``), float64
        ``scipy.stats.ks_2samp(new, earlier[k]).statistic`` for each row ``k``, computed as an
        integer count divided by ``n`` (:func:`ks_counts`): exact with repeated values and
        constant rows.

    Raises
    ------
    ValueError
        As :func:`ks_counts`: ``new``, ``earlier`` or ``rows`` of the wrong shape, ``new`` empty,
        or a value compared that is not finite.

    Examples
    --------
    A constant file against itself and against a file with one value changed (1 of 4 rows):

    >>> ks_statistics([0.5, 0.5, 0.5, 0.5], [[0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.6]])
    array([0.  , 0.25])
    """
    counts = ks_counts(new, earlier, earlier_sorted=earlier_sorted, rows=rows)
    return counts / np.float64(np.asarray(new).shape[0])
