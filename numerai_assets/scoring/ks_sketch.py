"""Exact KS counts of one submission against many, computing only the pairs that matter.

Originality needs the KS count ``D * n`` of a new submission against every earlier one of the
round, but only exactly where a threshold could flag it or where it is the row's minimum (the
contract of :meth:`.round_decisions.PairStatistics.compare`). Each submission keeps a
**sketch**: its sorted values at ``k`` evenly spaced ranks. Two sketches bound the exact count
of their pair from both sides (:func:`ks_count_bounds`), in ``O(k)``; the exact ``O(n)`` merge
walk of :mod:`.ks` runs only where the bounds cannot answer (:func:`ks_counts_pruned`).
Sketches are built once per submission from the sorted rows the pipeline keeps
(:func:`ks_sketches`; 8 KB at 1,024 ranks plus 0.5 KB for a 64-rank coarse sketch tried first).
In ``benchmarks/ks_sketch.py`` this prunes about 98 % of the pairs of a round of independent
models, and all but the pairs within the similar limit (which the contract needs exact) of a
round with copies and near-copies.

The bounds
----------
Let ``a`` be an ascending sample of ``n`` values and ``R_0 < ... < R_{k-1}`` the sketch ranks
(0-based), extended by ``R_{-1} = -1`` and ``R_k = n``; the sketch is ``a[R_0], ..., a[R_{k-1}]``.
For a real ``t``, let ``i = #{m : a[R_m] <= t}``. Then ``a[R_{i-1}] <= t < a[R_i]`` and, ``a``
being ascending, ``R_{i-1} + 1 <= F_a(t) <= R_i``, where ``F_a(t) = #{x in a : x <= t}``. With
``j`` the same for a second sample ``b`` of the same size and ranks::

    |F_a(t) - F_b(t)| <= max(R_i - R_{j-1}, R_j - R_{i-1}) - 1 <= HI[|i - j|]
    |F_a(t) - F_b(t)| >= max(R_{i-1} - R_j, R_{j-1} - R_i, -1) + 1 >= LO[|i - j|]

with ``HI[d] = max_m (R_{m+d} - R_{m-1}) - 1`` and ``LO[d] = min_m (R_{m+d-1} - R_m) + 1`` over
``m = 0..k-d`` (``LO[0] = 0``), both non-decreasing in ``d`` (a wider window of ranks). The
exact count is ``D = max_t |F_a - F_b|``, and ``d* = max_t |i - j|`` is the exact KS count of
the two sketches *as samples of size k*, which the merge walk of :mod:`.ks` computes exactly,
ties included. Every ``t`` has
``|i - j| <= d*`` so ``D <= HI[d*]``; some ``t`` has ``|i - j| = d*`` so ``D >= LO[d*]``. Only
the order of float64 values is used (no arithmetic on them), so ties, repeated values, constant
runs and values equal to sketch values change nothing; values must be finite (NaN has no
order). ``HI - LO`` is about twice the rank spacing: at ``n = 45,000`` and ``k = 1,024`` at most
87 counts (KS 0.0019). With ``n <= k`` every rank is kept and ``LO = HI = D``.

Ranks: ``R_m = floor((m + 1) (n + 1) / (k + 1)) - 1`` for ``m = 0..k-1`` (the ``(n + 1) p``
plotting positions at ``p = (m + 1) / (k + 1)``), so every gap ``R_m - R_{m-1}``, the two ends
included, is ``floor`` or ``ceil`` of ``(n + 1) / (k + 1)``: a table indexed by ``|i - j|`` alone
is then within a count or two of the bound at the ``t`` itself. Any ranks would give valid
bounds; :class:`KsSketches` insists on these because its tables are derived from ``(n, k)``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numba
import numpy as np

from numerai_assets.scoring._arrays import (
    as_matrix,
    as_vector,
    check_sorted_rows,
    pick_rows,
    sorted_rows_finite,
    whole_number,
)
from numerai_assets.scoring.ks import _ks_count_equal, _ks_count_equal4, _ks_counts_rows

FINE_RANKS = 1024
COARSE_RANKS = 64
# Rows computed exactly per step of the search for the minimum: small, so that a minimum found
# early spares the rest; two groups of the exact kernel's 4 interleaved rows. Fixed, so which
# rows come back exact does not depend on the number of threads.
_NEAREST_CHUNK = 8
# Below this many merge steps a sketch pass runs on one thread: starting the others costs more.
_SERIAL_STEPS = 1 << 20


def sketch_ranks(n: int, k: int = FINE_RANKS) -> np.ndarray:
    """The 0-based ranks a sketch keeps: ``floor((m + 1) (n + 1) / (k + 1)) - 1``, ``m < k``.

    ``min(k, n)`` distinct ranks, ascending; every rank (``0..n-1``) when ``n <= k``.

    Raises
    ------
    ValueError
        If ``n`` or ``k`` is not a positive whole number.

    Examples
    --------
    >>> sketch_ranks(10, 3), sketch_ranks(3, 8)
    (array([1, 4, 7]), array([0, 1, 2]))
    """
    n, k = whole_number(n, "n"), whole_number(k, "k")
    kept = min(k, n)
    m = np.arange(1, kept + 1, dtype=np.int64)
    return (m * (n + 1)) // (kept + 1) - 1


@functools.lru_cache(maxsize=32)
def _count_tables(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(LO, HI)``, each of shape ``(k + 1,)``: the bounds for a sketch count ``d``."""
    ranks = np.concatenate(([-1], sketch_ranks(n, k), [n]))
    lo, hi = _tables(ranks)
    lo.flags.writeable = hi.flags.writeable = False
    return lo, hi


@numba.njit(cache=True)
def _tables(ranks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # ranks[m + 1] is R_m, with R_{-1} = -1 and R_k = n at the ends.
    k = ranks.shape[0] - 2
    lo = np.zeros(k + 1, dtype=np.int64)
    hi = np.zeros(k + 1, dtype=np.int64)
    for d in range(k + 1):
        widest = 0
        narrowest = ranks[k + 1]
        for j in range(k - d + 1):
            widest = max(widest, ranks[j + d + 1] - ranks[j])  # R_{j+d} - R_{j-1}
            if d > 0:
                narrowest = min(narrowest, ranks[j + d] - ranks[j + 1])  # R_{j+d-1} - R_j
        hi[d] = widest - 1
        lo[d] = narrowest + 1 if d > 0 else 0
    return lo, hi


@dataclass(frozen=True)
class KsSketches:
    """Sketches of ``N`` submissions of ``n`` rows each, aligned with their sorted rows.

    Attributes
    ----------
    n : the number of rows of every submission.
    ranks : array of shape ``(k,)``, int64: the ranks kept (:func:`sketch_ranks`).
    values : array of shape ``(N, k)``, float64: ``sorted_rows[:, ranks]``, C-contiguous.
    coarse : the same submissions at fewer ranks (or None): bounds for every row first, the
        fine ones only where the coarse ones cannot decide.

    Raises
    ------
    ValueError
        If ``ranks`` is not ``sketch_ranks(n, k)``, ``values`` is not float64 of shape
        ``(N, k)``, or ``coarse`` has another number of rows.
    """

    n: int
    ranks: np.ndarray
    values: np.ndarray
    coarse: KsSketches | None = None

    def __post_init__(self) -> None:
        # The bound tables are derived from (n, k): other ranks would make them wrong.
        ranks = np.asarray(self.ranks)
        if not np.array_equal(ranks, sketch_ranks(self.n, max(ranks.size, 1))):
            raise ValueError("ranks must be sketch_ranks(n, k) for some k")
        object.__setattr__(self, "ranks", ranks.astype(np.int64))
        values = np.asarray(self.values)
        if values.dtype != np.float64 or values.ndim != 2 or values.shape[1] != len(self.ranks):
            raise ValueError(
                f"values must be float64 of shape (N, {len(self.ranks)}), got {values.dtype} "
                f"{values.shape}"
            )
        object.__setattr__(self, "values", np.ascontiguousarray(values))
        if self.coarse is not None and self.coarse.values.shape[0] != self.values.shape[0]:
            raise ValueError("coarse must sketch the same submissions as values")

    def __len__(self) -> int:
        return self.values.shape[0]

    @staticmethod
    def stack(parts: list[KsSketches]) -> KsSketches:
        """One set of sketches from several of the same ``n`` and ranks, rows in order.

        Raises
        ------
        ValueError
            If ``parts`` is empty, differs in ``n`` or ranks, or only some have ``coarse``.
        """
        if not parts:
            raise ValueError("parts is empty")
        first = parts[0]
        if any(p.n != first.n or not np.array_equal(p.ranks, first.ranks) for p in parts):
            raise ValueError("parts must share n and ranks")
        has_coarse = [p.coarse is not None for p in parts]
        if any(has_coarse) != all(has_coarse):
            raise ValueError("parts must all have a coarse sketch, or none")
        coarse = KsSketches.stack([p.coarse for p in parts]) if all(has_coarse) else None
        return KsSketches(first.n, first.ranks, np.vstack([p.values for p in parts]), coarse)


def ks_sketches(
    sorted_rows: np.ndarray, k: int = FINE_RANKS, *, coarse_k: int | None = COARSE_RANKS
) -> KsSketches:
    """Sketch every row of ``sorted_rows``: its values at the ranks of :func:`sketch_ranks`.

    Parameters
    ----------
    sorted_rows : array of shape ``(N, n)``, float64, each row ascending and finite
        The round's sorted predictions as the pipeline keeps them (an array or a read-only
        memmap); only ``k`` (+ ``coarse_k``) columns of each row are read.
    k : int
        Ranks of the fine sketch (``min(k, n)`` kept): bound width about ``2 n / k`` counts.
    coarse_k : int or None
        Ranks of a coarse sketch, tried first on every row; None for none.

    Returns
    -------
    KsSketches

    Raises
    ------
    ValueError
        If ``sorted_rows`` is not 2-d with at least one column, or a row's ends (its minimum
        and maximum) are not finite, or ``k`` or ``coarse_k`` is not a positive integer.

    Examples
    --------
    >>> rows = np.sort(np.random.default_rng(0).random((3, 10_000)), axis=1)
    >>> s = ks_sketches(rows, 1024, coarse_k=64)
    >>> s.values.shape, s.coarse.values.shape, int(s.ranks[0]), int(s.ranks[-1])
    ((3, 1024), (3, 64), 8, 9990)
    """
    matrix = np.asarray(sorted_rows)
    if matrix.ndim != 2 or matrix.shape[1] == 0:
        raise ValueError(f"sorted_rows must have shape (N, n) with n >= 1, got {matrix.shape}")
    if matrix.dtype != np.float64:
        raise ValueError(f"sorted_rows must be float64, got {matrix.dtype}")
    if not sorted_rows_finite(matrix, np.arange(matrix.shape[0])):
        raise ValueError("sorted_rows contains NaN or infinite values")
    n = matrix.shape[1]
    ranks = sketch_ranks(n, k)
    coarse = None if coarse_k is None else ks_sketches(matrix, coarse_k, coarse_k=None)
    return KsSketches(n, ranks, np.ascontiguousarray(matrix[:, ranks]), coarse)


@dataclass(frozen=True)
class KsBounds:
    """``lo <= exact KS count <= hi`` for each compared row; int64, shape ``(N,)``."""

    lo: np.ndarray
    hi: np.ndarray


def ks_count_bounds(
    new_sorted: np.ndarray, sketches: KsSketches, rows: np.ndarray | None = None
) -> KsBounds:
    """Bounds on the exact KS counts of ``new_sorted`` against sketched rows, from sketches only.

    Uses ``sketches.values`` (not ``sketches.coarse``; pass it to get the coarse bounds). The
    bounds and why they hold: the module's docstring. Cost: one merge walk over ``2 k`` values
    per row (a few microseconds at ``k = 1,024``, about 0.2 us at 64; the exact walk over
    ``n = 45,000`` takes 30-50 us).

    Parameters
    ----------
    new_sorted : array of shape ``(n,)``, float64, ascending and finite
    sketches : KsSketches of the earlier submissions (``sketches.n == n``)
    rows : array of ints, optional
        Bound against these rows of ``sketches`` only, in this order.

    Returns
    -------
    KsBounds
        ``lo <= max_t |#{new <= t} - #{row <= t}| <= hi`` for each row, in counts ``D * n``.

    Raises
    ------
    ValueError
        If ``new_sorted`` is not a finite ascending vector of ``sketches.n`` values, or
        ``rows`` is out of range.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> earlier = np.sort(rng.random((2, 45_000)), axis=1)
    >>> new = np.sort(rng.random(45_000))
    >>> b = ks_count_bounds(new, ks_sketches(earlier))
    >>> from numerai_assets.scoring.ks import ks_counts
    >>> exact = ks_counts(new, earlier, earlier_sorted=True)
    >>> bool(((b.lo <= exact) & (exact <= b.hi)).all()), int((b.hi - b.lo).max()) <= 87
    (True, True)
    """
    new = _new_sorted(new_sorted, sketches)
    return _bounds(new, sketches, pick_rows(rows, len(sketches), "sketches"))


def _new_sorted(new_sorted: np.ndarray, sketches: KsSketches) -> np.ndarray:
    if not isinstance(sketches, KsSketches):
        raise ValueError(f"sketches must be KsSketches, got {type(sketches).__name__}")
    new = as_vector(new_sorted, "new_sorted")
    if new.shape[0] != sketches.n:
        raise ValueError(
            f"new_sorted must have the sketches' {sketches.n} values, got {new.shape[0]}"
        )
    if new.shape[0] > 1 and not (new[1:] >= new[:-1]).all():
        raise ValueError("new_sorted must be ascending")
    return new


def _bounds(new: np.ndarray, sketches: KsSketches, pick: np.ndarray) -> KsBounds:
    if pick.shape[0] == 0:
        return KsBounds(np.zeros(0, np.int64), np.zeros(0, np.int64))
    lo, hi = _count_tables(sketches.n, sketches.ranks.shape[0])
    walk = _ks_counts_rows if pick.shape[0] * lo.shape[0] > _SERIAL_STEPS else _counts_serial
    d = walk(np.ascontiguousarray(new[sketches.ranks]), sketches.values, pick)
    return KsBounds(lo[d], hi[d])


@numba.njit(cache=True, nogil=True)
def _counts_serial(a: np.ndarray, rows: np.ndarray, pick: np.ndarray) -> np.ndarray:
    """:func:`.ks._ks_counts_rows` on one thread."""
    n_rows = pick.shape[0]
    out = np.empty(n_rows, dtype=np.int64)
    for g in range(n_rows // 4):
        k = 4 * g
        _ks_count_equal4(
            a, rows[pick[k]], rows[pick[k + 1]], rows[pick[k + 2]], rows[pick[k + 3]], out, k
        )
    for k in range(n_rows - n_rows % 4, n_rows):
        out[k] = _ks_count_equal(a, rows[pick[k]])
    return out


@dataclass(frozen=True)
class PrunedKsCounts:
    """KS counts as :meth:`.round_decisions.PairStatistics.compare` promises them.

    Attributes
    ----------
    counts : array of shape ``(N,)``, int64
        Exact where ``exact`` is True; elsewhere a lower bound of the exact count above both
        ``exact_up_to`` and the smallest exact count.
    exact : array of shape ``(N,)``, bool: which counts are exact.
    computed : how many rows took the exact merge walk over all ``n`` values (the others were
        decided by their sketches: ``1 - computed / N`` is the share pruned).
    """

    counts: np.ndarray
    exact: np.ndarray
    computed: int


def ks_counts_pruned(
    new_sorted: np.ndarray,
    sketches: KsSketches,
    earlier_sorted: np.ndarray,
    rows: np.ndarray | None,
    exact_up_to: int,
) -> PrunedKsCounts:
    """KS counts of ``new_sorted`` against ``earlier_sorted[rows]``, exact where it matters.

    A count is **exact** wherever the exact count is at most ``exact_up_to`` and wherever it
    equals the smallest exact count of the compared rows (every such row, ties included);
    elsewhere it is a lower bound of the exact count that is above ``exact_up_to`` and above
    that smallest count, so ``np.argmin(counts)`` is the exact first nearest row. Rows are
    bounded by their sketches (coarse first, if kept, then fine); the exact walk runs for the
    rows whose lower bound is at most ``exact_up_to`` (unless their bounds meet), then for the
    others in order of lower bound, while one could still equal or beat the smallest count
    found (or any row's upper bound).

    Parameters
    ----------
    new_sorted : array of shape ``(n,)``, float64, ascending and finite
        The new submission's sorted predictions.
    sketches : KsSketches
        ``ks_sketches(earlier_sorted)``: row ``r`` sketches ``earlier_sorted[r]``.
    earlier_sorted : array of shape ``(N, n)``, float64 (or a read-only memmap)
        Every earlier submission's predictions, each row ascending and finite.
    rows : array of ints, or None for every row
        The rows to compare, in this order; counts come back in the same order.
    exact_up_to : int
        Counts up to this are exact (the policy's ``ks_limits(n).similar_at_most``).

    Returns
    -------
    PrunedKsCounts

    Raises
    ------
    ValueError
        If an array has the wrong shape, ``new_sorted`` is not ascending and finite, a row read
        is not finite or not its sketch's (at its first and last ranks; a row the bounds settle
        is never read: its sketch stands for it), ``rows`` is out of range or ``exact_up_to``
        is not an integer.

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> new = rng.random(45_000)
    >>> others = rng.beta(2.0, 3.0, (50, 45_000))  # far from ``new``: pruned
    >>> earlier = np.sort(np.vstack([others, rng.permutation(new)]), axis=1)
    >>> got = ks_counts_pruned(np.sort(new), ks_sketches(earlier), earlier, None, 1350)
    >>> int(got.counts[-1]), int(np.argmin(got.counts)), got.computed
    (0, 50, 1)
    """
    new = _new_sorted(new_sorted, sketches)
    matrix = as_matrix(earlier_sorted, "earlier_sorted", n_columns=new.shape[0], check_finite=False)
    if matrix.shape[0] != len(sketches):
        raise ValueError(
            f"earlier_sorted has {matrix.shape[0]} rows but sketches has {len(sketches)}"
        )
    if isinstance(exact_up_to, bool) or not isinstance(exact_up_to, int | np.integer):
        raise ValueError(f"exact_up_to must be an integer, got {exact_up_to!r}")
    pick = pick_rows(rows, matrix.shape[0], "earlier_sorted")
    limit = int(exact_up_to)
    if pick.shape[0] == 0:
        return PrunedKsCounts(np.zeros(0, np.int64), np.zeros(0, np.bool_), 0)

    def read(which: np.ndarray) -> np.ndarray:
        # Only rows read are touched, and checked: a row the bounds settle stays on disk.
        picked, ends = pick[which], [0, -1]
        known = sketches.values[np.ix_(picked, ends)]
        check_sorted_rows(matrix, picked, sketches.ranks[ends], known, "earlier_sorted")
        return _ks_counts_rows(new, matrix, picked)

    lo, hi = _refined_bounds(new, sketches, pick, limit)
    exact = lo == hi
    counts = lo.copy()
    computed = 0
    # Every row whose count may be at most the limit (its bounds straddle it or lie below it).
    flaggable = np.flatnonzero(~exact & (lo <= limit))
    if flaggable.size:
        counts[flaggable] = read(flaggable)
        exact[flaggable] = True
        computed += flaggable.size
    # The minimum: no row whose lower bound is above ``best`` (an exact count, or any row's
    # upper bound) can reach it; the others are computed best-first.
    best = int(min(hi.min(), counts[exact].min(initial=hi.min())))
    candidates = np.flatnonzero(~exact & (lo <= best))
    candidates = candidates[np.argsort(lo[candidates], kind="stable")]
    start = 0
    while start < candidates.size and lo[candidates[start]] <= best:
        chunk = candidates[start : start + _NEAREST_CHUNK]
        chunk = chunk[lo[chunk] <= best]
        counts[chunk] = read(chunk)
        exact[chunk] = True
        computed += chunk.size
        best = min(best, int(counts[chunk].min()))
        start += _NEAREST_CHUNK
    return PrunedKsCounts(counts, exact, computed)


def _refined_bounds(
    new: np.ndarray, sketches: KsSketches, pick: np.ndarray, limit: int
) -> tuple[np.ndarray, np.ndarray]:
    """Coarse bounds for every row (``pick`` not empty), then fine ones where those cannot."""
    if sketches.coarse is None:
        fine = _bounds(new, sketches, pick)
        return fine.lo, fine.hi
    coarse = _bounds(new, sketches.coarse, pick)
    lo, hi = coarse.lo, coarse.hi
    # Settled: above the limit and above some row's upper bound (so not the minimum).
    open_rows = np.flatnonzero((lo < hi) & ((lo <= limit) | (lo <= hi.min())))
    fine = _bounds(new, sketches, pick[open_rows])
    lo[open_rows] = np.maximum(lo[open_rows], fine.lo)
    hi[open_rows] = np.minimum(hi[open_rows], fine.hi)
    return lo, hi
