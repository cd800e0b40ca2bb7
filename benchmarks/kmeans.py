"""The round's clustering: ``fit_clusters`` (MiniBatchKMeans) against a plain ``KMeans``.

Fitted once per round on training + tournament features, 741k x 21 values in [0, 1] (the
synthetic rounds' recipe). The two algorithms do not give identical clusters, so instead of an
equality check both fits' inertia on the full data is printed: a quality check, not a pass/fail.
"""

from __future__ import annotations

from functools import partial

import numpy as np
from sklearn.cluster import KMeans

from benchmarks._timing import best_of, header, line, ratio, run_one, seconds
from numerai_assets.scoring.concordance import fit_clusters
from numerai_assets.scoring.policy import ScoringPolicy

POLICY = ScoringPolicy()

ROWS, QUICK_ROWS = 741_000, 100_000
FEATURES = 21


def features(rows: int, seed: int = 0) -> np.ndarray:
    """Like ``make_round``'s features: clipped normal around 0.5, rounded to 5 decimals."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(0.5, 0.12, (rows, FEATURES)), 0.0, 1.0).round(5)


def baseline_fit(x: np.ndarray) -> KMeans:
    return KMeans(n_clusters=POLICY.n_clusters, n_init=1, random_state=POLICY.random_state).fit(x)


def main(quick: bool = False) -> bool:
    x = features(QUICK_ROWS if quick else ROWS)
    header(
        f"clustering: fit {POLICY.n_clusters} clusters on {x.shape[0]:,} x {x.shape[1]} features"
    )
    # Warm up both on a slice (imports, thread pools) rather than with a full fit each.
    fit_clusters(x[:20_000])
    baseline_fit(x[:20_000])
    fast = best_of(partial(fit_clusters, x), repeats=2, warmup=False)
    baseline = best_of(partial(baseline_fit, x), repeats=2, warmup=False)
    line("fit_clusters (MiniBatchKMeans, n_init=3)", seconds(fast.seconds))
    line("baseline: KMeans(n_init=1)", seconds(baseline.seconds))
    ratio(baseline.seconds, fast.seconds)
    fast_inertia, baseline_inertia = -fast.result.score(x), -baseline.result.score(x)
    line("inertia on the full data, fit_clusters", f"{fast_inertia:12,.1f}")
    line("inertia on the full data, KMeans", f"{baseline_inertia:12,.1f}")
    line(
        "  fit_clusters relative to KMeans",
        f"{fast_inertia / baseline_inertia - 1:+8.3%}",
        "(quality check: different algorithms, not identical results)",
    )
    return True


if __name__ == "__main__":
    run_one(main, __doc__.splitlines()[0])
