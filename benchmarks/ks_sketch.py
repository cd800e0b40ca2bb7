"""Pruned KS counts: one submission of 45,000 predictions against N earlier ones.

Fast path: ``ks_counts_pruned`` (``scoring.ks_sketch``): sketches bound every pair, the exact
merge walk runs only where the contract of ``PairStatistics.compare`` needs it (counts up to
the policy's similar limit, and the minimum). Baseline: the exact kernel on every row
(``ks_counts(..., earlier_sorted=True)``), in the same process on the same rows.

Two rounds, both models of one family (``mu + sigma (z + g (z^2 - 1) / 6)`` of sorted normal
samples, rounded to 5 decimals, ``sigma`` log-normal: independent models of similar skill, with
median KS about 0.12 and 1-2 % of pairs within the similar limit):

(a) independent models only;
(b) the same with copies and near-copies of the new submission planted in 5 % of the rows:
    exact copies, copies whose KS count sits on the duplicate and similar limits and one count
    either side, and monotone distortions of it (KS from 0 to about 0.05).

The earlier rows are generated already sorted (monotone maps of sorted samples), as the
pipeline keeps them. A pair needs the exact walk if its count is within the similar limit
(the contract): that share is printed too, as the floor of the exact work.
"""

from __future__ import annotations

import time
from functools import partial

import numpy as np

from benchmarks._timing import Checks, best_of, header, line, ratio, run_one, seconds
from numerai_assets.scoring.ks import ks_counts
from numerai_assets.scoring.ks_sketch import (
    KsSketches,
    ks_count_bounds,
    ks_counts_pruned,
    ks_sketches,
)
from numerai_assets.scoring.policy import ScoringPolicy

N_PREDICTIONS = 45_000
SIZES = (2_000, 10_000)
QUICK_SIZES = (500, 2_000)
LIMITS = ScoringPolicy().ks_limits(N_PREDICTIONS)
BASES = 32  # sorted normal samples the models are drawn from
PLANTED_SHARE = 0.05


def model_rows(rng: np.random.Generator, bases: np.ndarray, out: np.ndarray) -> None:
    """Fill ``out`` (``(N, n)``) with ascending rows of independent models of one family."""
    count = out.shape[0]
    mu = 0.5 + 0.01 * rng.standard_normal(count)
    sigma = 0.04 * np.exp(0.35 * rng.standard_normal(count))
    skew = rng.uniform(-0.3, 0.3, count)
    for r in range(count):
        z = bases[rng.integers(len(bases))]
        values = mu[r] + sigma[r] * (z + skew[r] * (z * z - 1.0) / 6.0)  # increasing in z
        np.clip(values, 0.0, 1.0, out=values)
        np.round(values, 5, out=out[r])


def plant_copies(rng: np.random.Generator, new_sorted: np.ndarray, rows: np.ndarray) -> dict:
    """Overwrite 5 % of ``rows`` (spread over all of them) with copies of ``new_sorted``."""
    count = max(8, int(PLANTED_SHARE * rows.shape[0]))
    where = rng.choice(rows.shape[0], count, replace=False)
    on_limits = [LIMITS.duplicate_below + s for s in (-1, 0)]
    on_limits += [LIMITS.similar_at_most + s for s in (0, 1)]
    top = new_sorted[-1]
    planted = {}
    for k, row in enumerate(where):
        if k < len(on_limits):  # the count smallest values moved above the largest: KS = count
            c = on_limits[k]
            rows[row] = np.concatenate((new_sorted[c:], top + 1e-5 * (1 + np.arange(c))))
        elif k % 3 == 0:
            rows[row] = new_sorted
        else:
            scale, shift = 1 + rng.uniform(-0.03, 0.03), rng.uniform(-0.002, 0.002)
            rows[row] = np.round((new_sorted - 0.5) * scale + 0.5 + shift, 5)
        planted[int(row)] = k
    return planted


def check_contract(check: Checks, got, exact: np.ndarray, limit: int, note: str = "") -> None:
    ok = (
        np.array_equal(got.counts[got.exact], exact[got.exact])
        and bool(got.exact[exact <= limit].all())
        and bool(got.exact[exact == exact.min()].all())
        and bool((got.counts <= exact).all())
        and bool((got.counts[~got.exact] > max(limit, exact.min())).all())
    )
    what = "contract: exact up to the limit and at the minimum, bounds above both"
    check(ok, f"{what} {note}".rstrip())


def run_round(name: str, new_sorted: np.ndarray, rows: np.ndarray, sizes, check: Checks) -> None:
    start = time.perf_counter()
    sketches = ks_sketches(rows)
    build = time.perf_counter() - start
    line(
        f"({name}) sketches, 1,024 + 64 ranks, per submission",
        seconds(build / rows.shape[0]),
        f"({rows.shape[0]:,} rows in {seconds(build).strip()})",
    )
    limit = LIMITS.similar_at_most
    for n_rows in sizes:
        earlier = rows[:n_rows]  # a contiguous view
        part = KsSketches(
            sketches.n,
            sketches.ranks,
            sketches.values[:n_rows],
            KsSketches(sketches.n, sketches.coarse.ranks, sketches.coarse.values[:n_rows]),
        )
        fine_only = KsSketches(sketches.n, sketches.ranks, part.values)
        print(f"  -- ({name}) N = {n_rows:,} earlier submissions")
        base = best_of(partial(ks_counts, new_sorted, earlier, earlier_sorted=True), repeats=3)
        fast = best_of(partial(ks_counts_pruned, new_sorted, part, earlier, None, limit), repeats=5)
        fine = best_of(
            partial(ks_counts_pruned, new_sorted, fine_only, earlier, None, limit), repeats=3
        )
        exact = base.result
        line("baseline: exact kernel on every row", seconds(base.seconds))
        line("ks_counts_pruned (coarse 64, then fine 1,024)", seconds(fast.seconds))
        ratio(base.seconds, fast.seconds)
        line("ks_counts_pruned, fine sketch only", seconds(fine.seconds))
        coarse_bounds = best_of(partial(ks_count_bounds, new_sorted, part.coarse), repeats=5)
        fine_bounds = best_of(partial(ks_count_bounds, new_sorted, part), repeats=3)
        line("  bounds alone, every row: 64 ranks", seconds(coarse_bounds.seconds))
        line("  bounds alone, every row: 1,024 ranks", seconds(fine_bounds.seconds))
        got = fast.result
        line(
            "rows computed exactly",
            f"{got.computed / n_rows:8.2%}",
            f"({got.computed:,}; pruned {1 - got.computed / n_rows:.2%})",
        )
        line(
            "  needed by the contract (count <= similar limit)",
            f"{np.mean(exact <= limit):8.2%}",
            f"(similar limit {limit}; smallest count {int(exact.min())})",
        )
        check_contract(check, got, exact, limit)
        check_contract(check, fine.result, exact, limit, "(fine sketch only)")
        bounds = fine_bounds.result
        check(
            bool(((bounds.lo <= exact) & (exact <= bounds.hi)).all()),
            f"lo <= exact <= hi on every row (widest {int((bounds.hi - bounds.lo).max())})",
        )


def main(quick: bool = False) -> bool:
    sizes = QUICK_SIZES if quick else SIZES
    header(f"ks_sketch: one submission of {N_PREDICTIONS:,} predictions against N earlier")
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    bases = np.sort(rng.standard_normal((BASES, N_PREDICTIONS)), axis=1)
    rows = np.empty((max(sizes), N_PREDICTIONS))
    model_rows(rng, bases, rows)
    new_sorted = np.empty((1, N_PREDICTIONS))
    model_rows(rng, np.sort(rng.standard_normal((1, N_PREDICTIONS)), axis=1), new_sorted)
    new_sorted = new_sorted[0]
    line("setup: sorted rows (not timed below)", seconds(time.perf_counter() - start))

    check = Checks()
    run_round("a", new_sorted, rows, sizes, check)
    planted = plant_copies(rng, new_sorted, rows)
    run_round("b", new_sorted, rows, sizes, check)
    exact = ks_counts(new_sorted, rows[list(planted)[:4]], earlier_sorted=True)
    check(
        list(exact) == [224, 225, 1350, 1351],
        "planted rows on the limits (KS counts 224, 225, 1350, 1351)",
    )
    return check.ok


if __name__ == "__main__":
    run_one(main, __doc__.splitlines()[0])
