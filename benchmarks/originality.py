"""Originality of one submission against N earlier ones: the pipeline's hot loop.

Fast path: ``originality(new, earlier, earlier_sorted_rows=...)`` (numba, all rows at once, the
rows kept sorted by the pipeline), also split into ``ks_statistics`` and ``correlations``.
Baseline: what one would write first, one pair at a time on the same pre-sorted rows: KS from two
``np.searchsorted`` calls and one ``np.corrcoef`` per pair, then the same decision rules.

The baseline takes the difference of the two searchsorted counts before dividing by ``n``
(``max|c1 - c2| / n`` rather than ``max|c1/n - c2/n|``): the same work, but exact, so a row whose
KS sits exactly on a threshold (two are planted here) is decided the same way by both; with the
divided form it could land one ulp either side of 0.005 and flip.

Also printed: the memory-read floor, the time ``np.sum`` takes to read the same sorted and
unsorted rows once, which no method that reads every value can beat.
"""

from __future__ import annotations

import time
from functools import partial

import numpy as np

from benchmarks._timing import Checks, best_of, header, line, ratio, run_one, seconds
from numerai_assets.scoring.correlation import correlations
from numerai_assets.scoring.ks import ks_statistics
from numerai_assets.scoring.originality import originality
from numerai_assets.scoring.policy import ScoringPolicy

N_PREDICTIONS = 45_000
SIZES = (1_000, 5_000)
QUICK_SIZES = (200, 1_000)
BASELINE_ROWS = 200  # the baseline is timed on this many rows and scaled linearly to N
RULES = ScoringPolicy()
# Beta(a, b) shapes of the earlier submissions: centred, skewed, peaked, U-shaped...
SHAPES = ((2.0, 3.0), (3.0, 3.0), (5.0, 5.0), (0.8, 0.8), (8.0, 6.0), (1.5, 4.0))
# Planted rows: a noisy copy (correlated), a reordered copy (duplicate), and two reordered copies
# with KS exactly on the duplicate and similar thresholds (225 and 1350 of 45,000 values moved).
NOISY_COPY, REORDERED_COPY, ON_DUPLICATE, ON_SIMILAR = 7, 11, 13, 17


def make_submissions(n_rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A new submission (Beta(2, 3)) and ``n_rows`` earlier ones, rounded to 5 decimals."""
    rng = np.random.default_rng(seed)
    shape = np.array(SHAPES)[rng.integers(len(SHAPES), size=n_rows)]
    earlier = rng.beta(shape[:, :1], shape[:, 1:], size=(n_rows, N_PREDICTIONS))
    np.round(earlier, 5, out=earlier)
    new = rng.beta(*SHAPES[0], size=N_PREDICTIONS).round(5)
    earlier[NOISY_COPY] = np.clip(new + rng.normal(0.0, 0.03, new.shape), 0.0, 1.0).round(5)
    earlier[REORDERED_COPY] = rng.permutation(new)
    lowest = np.argsort(new, kind="stable")
    for row, moved in ((ON_DUPLICATE, RULES.duplicate_ks), (ON_SIMILAR, RULES.similar_ks)):
        copy = new.copy()
        copy[lowest[: round(moved * N_PREDICTIONS)]] = 1.0  # above every value of ``new``
        earlier[row] = rng.permutation(copy)
    assert new.max() < 1.0
    return new, earlier


def baseline_statistics(
    new: np.ndarray, earlier: np.ndarray, sorted_rows: np.ndarray, n_rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """KS and Pearson r of ``new`` against the first ``n_rows`` rows, one pair at a time."""
    n = new.shape[0]
    a = np.sort(new)
    ks = np.empty(n_rows)
    r = np.empty(n_rows)
    for k in range(n_rows):
        b = sorted_rows[k]
        values = np.concatenate([a, b])
        gap = np.searchsorted(a, values, "right") - np.searchsorted(b, values, "right")
        ks[k] = np.abs(gap).max() / n
        r[k] = np.corrcoef(new, earlier[k])[0, 1]
    return ks, r


def read_once(*arrays: np.ndarray) -> list[float]:
    """Sum every value once: the least any method that reads them all must spend."""
    return [float(np.sum(a)) for a in arrays]


def flags(ks: np.ndarray, r: np.ndarray) -> dict[str, np.ndarray]:
    """Each rule's verdict on every row."""
    with np.errstate(invalid="ignore"):
        correlated = np.abs(r) > RULES.max_correlation
    return {
        "correlated": correlated,
        "duplicate": ks < RULES.duplicate_ks,
        "similar": ks <= RULES.similar_ks,
    }


def decide(ks: np.ndarray, r: np.ndarray) -> tuple[bool, str | None, tuple[int, ...]]:
    """The rules in their order: (original, reason, indices of the matching rows)."""
    rows = flags(ks, r)
    for reason in ("correlated", "duplicate"):
        if rows[reason].any():
            return False, reason, tuple(np.flatnonzero(rows[reason]).tolist())
    if rows["similar"].sum() >= RULES.min_similar:
        return False, "similar", tuple(np.flatnonzero(rows["similar"]).tolist())
    return True, None, ()


def main(quick: bool = False) -> bool:
    sizes = QUICK_SIZES if quick else SIZES
    header(f"originality: one submission of {N_PREDICTIONS:,} predictions against N earlier")
    start = time.perf_counter()
    new, earlier = make_submissions(max(sizes))
    sorted_rows = np.sort(earlier, axis=1)  # kept by the pipeline: outside every timing
    line("setup: data + sorted rows (not timed below)", seconds(time.perf_counter() - start))

    start = time.perf_counter()
    base_ks, base_r = baseline_statistics(new, earlier, sorted_rows, max(sizes))
    full_baseline = time.perf_counter() - start
    line(f"baseline, all {max(sizes):,} rows, one run", seconds(full_baseline), "(for checks)")
    subset = min(BASELINE_ROWS, min(sizes))
    timed = best_of(partial(baseline_statistics, new, earlier, sorted_rows, subset), warmup=False)
    per_pair = timed.seconds / subset
    line(f"baseline per pair (best of 3 on {subset} rows)", seconds(per_pair))

    check = Checks()
    for n_rows in sizes:
        rows, srows = earlier[:n_rows], sorted_rows[:n_rows]  # contiguous views, no copies
        print(f"  -- N = {n_rows:,} earlier submissions")
        fast = best_of(partial(originality, new, rows, earlier_sorted_rows=srows), repeats=5)
        ks = best_of(partial(ks_statistics, new, srows, earlier_sorted=True), repeats=5)
        r = best_of(partial(correlations, new, rows), repeats=5)
        read = best_of(partial(read_once, srows, rows), repeats=5)
        baseline = per_pair * n_rows
        scaled = f"(timed on {subset} rows, x{n_rows / subset:g})" if n_rows > subset else ""

        line("originality(..., earlier_sorted_rows=...)", seconds(fast.seconds))
        line("  ks_statistics(..., earlier_sorted=True)", seconds(ks.seconds))
        line("  correlations(...)", seconds(r.seconds))
        line("baseline: searchsorted KS + np.corrcoef per pair", seconds(baseline), scaled)
        ratio(baseline, fast.seconds, "goal >= 25x, stretch 40x")
        gb = (srows.nbytes + rows.nbytes) / 1e9
        line(
            f"memory-read floor: np.sum over {gb:.2f} GB",
            seconds(read.seconds),
            f"({gb / read.seconds:.1f} GB/s; originality = {fast.seconds / read.seconds:.1f}x it)",
        )

        want_ks, want_r = base_ks[:n_rows], base_r[:n_rows]
        check(np.abs(ks.result - want_ks).max() <= 1e-12, "KS equal to 1e-12")
        check(np.abs(r.result - want_r).max() <= 1e-12, "Pearson r equal to 1e-12")
        fast_flags, want_flags = flags(ks.result, r.result), flags(want_ks, want_r)
        counts = ", ".join(f"{name} {int(v.sum())}" for name, v in want_flags.items())
        check(
            all(np.array_equal(fast_flags[k], want_flags[k]) for k in want_flags),
            f"every row's verdicts equal ({counts})",
        )
        result = fast.result
        got = (result.original, result.reason, tuple(m.index for m in result.matches))
        want = decide(want_ks, want_r)
        check(
            got == want
            and all(abs(m.ks - want_ks[m.index]) <= 1e-12 for m in result.matches)
            and result.compared == n_rows,
            f"decision equal: original={want[0]}, reason={want[1]}, matches {list(want[2])}",
        )
    on_edge = (base_ks[ON_DUPLICATE], base_ks[ON_SIMILAR])
    check(on_edge == (RULES.duplicate_ks, RULES.similar_ks), "planted rows exactly on thresholds")
    return check.ok


if __name__ == "__main__":
    run_one(main, __doc__.splitlines()[0])
