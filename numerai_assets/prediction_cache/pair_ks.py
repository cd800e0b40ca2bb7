"""How phase 1 counts KS: the counters :meth:`.pairs.RoundPairStore.compute` takes.

A counter maps (a new submission's sorted row, the round's sorted matrix, the rows to compare,
the limit up to which counts must be exact) to (counts, which of them are exact).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np

from numerai_assets.prediction_cache.round_cache import RoundPredictionCache

# (new sorted row, earlier sorted rows, which rows, exact_up_to) -> (counts, exact mask)
KsCounter = Callable[[np.ndarray, np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray]]


def pruned_ks(cache: RoundPredictionCache, size: int) -> KsCounter:
    """KS counts exact only where they can decide (:func:`~numerai_assets.scoring.ks_sketch.
    ks_counts_pruned`), against the first ``size`` rows of ``cache``'s sorted matrix (the
    caller's view of it: other processes may append meanwhile), from their sketches.

    The sketches (fine and coarse) are kept in the cache (:meth:`RoundPredictionCache.derived`):
    computed once per row for the round, and mapped by every shard process of a run, so the
    kernel holds one copy of them (87 MB at 10,000 submissions) however many shards run."""
    from numerai_assets.scoring.ks_sketch import (
        COARSE_RANKS,
        FINE_RANKS,
        KsSketches,
        ks_counts_pruned,
        ks_sketches,
        sketch_ranks,
    )

    n = cache.columns

    def kept(k: int) -> tuple[np.ndarray, np.ndarray]:
        ranks = sketch_ranks(n, k)  # named by its ranks: other ranks are another file
        values = cache.derived(
            f"ks-sketch-{ranks.size}-{zlib.crc32(ranks.tobytes()):08x}",
            ranks.size,
            lambda rows: ks_sketches(rows, k, coarse_k=None).values,
        )
        return ranks, values

    (fine_ranks, fine), (coarse_ranks, coarse) = kept(FINE_RANKS), kept(COARSE_RANKS)
    if min(len(fine), len(coarse)) < size:  # the cache was reset meanwhile: nothing to trust
        raise ValueError(f"the cache holds {min(len(fine), len(coarse))} rows, not {size}")
    # Rows appended since the caller's view (between the two reads, too) are not compared.
    sketches = KsSketches(n, fine_ranks, fine[:size], KsSketches(n, coarse_ranks, coarse[:size]))

    def count(new: np.ndarray, earlier: np.ndarray, rows: np.ndarray, exact_up_to: int):
        got = ks_counts_pruned(new, sketches, earlier, rows, int(exact_up_to))
        return got.counts, got.exact

    return count


def exact_ks(
    new_sorted: np.ndarray, earlier_sorted: np.ndarray, rows: np.ndarray, exact_up_to: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every count exact (the baseline the pruned counter is tested against)."""
    from numerai_assets.scoring.ks import ks_counts

    counts = ks_counts(new_sorted, earlier_sorted, earlier_sorted=True, rows=rows)
    return counts, np.ones(counts.shape, dtype=bool)
