"""The round's pair store: every pair computed once, read back equal to computing it directly."""

from __future__ import annotations

import numpy as np
import pytest

from numerai_assets.prediction_cache import RoundPredictionCache
from numerai_assets.prediction_cache.pairs import RoundPairStore, Shard, exact_ks, shards, triangle
from numerai_assets.scoring.correlation import correlations
from numerai_assets.scoring.ks import ks_counts

N_ROWS = 300


def round_cache(tmp_path, count: int, seed: int = 0) -> tuple[RoundPredictionCache, list[str]]:
    rng = np.random.default_rng(seed)
    ids = [f"t{k}" for k in range(N_ROWS)]
    cache = RoundPredictionCache(tmp_path / "cache", 7, ids)
    base = rng.random(N_ROWS)
    rows = []
    for k in range(count):
        kind = k % 4
        if kind == 0:
            p = rng.random(N_ROWS)
        elif kind == 1:
            p = rng.permutation(base)  # KS 0 against base
        elif kind == 2:
            p = np.full(N_ROWS, 0.5)  # constant: r undefined
        else:
            p = np.round(np.clip(base + rng.normal(0, 0.05, N_ROWS), 0, 1), 2)  # ties
        rows.append((f"s{k}", p))
    cache.add(rows)
    return cache, [key for key, _ in rows]


@pytest.mark.parametrize("workers", [1, 3])
def test_every_pair_read_back_equals_computing_it(tmp_path, workers):
    cache, keys = round_cache(tmp_path, 23)
    store = RoundPairStore(cache)
    first = store.plan(keys[:9], workers, min_pairs=1)  # a first run
    for shard in first:
        store.compute(shard, exact_up_to=10, ks_counter=exact_ks)
    later = store.plan(keys, workers, min_pairs=1)  # a later run adds the rest
    assert [s.start for s in later][0] == 9
    for shard in reversed(later):  # any order: blocks are independent
        store.compute(shard, exact_up_to=10, ks_counter=exact_ks)
    table = store.table()
    predictions, _ = cache.matrices()
    for g, key in enumerate(keys):
        others = np.array([h for h in range(len(keys)) if h != g])
        got = table.pairs(g, others)
        new = predictions[cache.row_of(key)]
        rows = cache.rows_of(keys[h] for h in others)
        np.testing.assert_allclose(got["r"], correlations(new, predictions, rows=rows), atol=1e-12)
        _, sorted_rows = cache.matrices()
        assert (
            got["ks"].tolist()
            == ks_counts(new, sorted_rows, earlier_sorted=True, rows=rows).tolist()
        )
        assert got["exact"].all()
        assert table.covered(key)


def test_shards_cover_the_range_once_with_about_equal_pairs():
    for start, stop, count in [(0, 1000, 4), (990, 1000, 4), (0, 1, 3), (5, 9, 10), (0, 10000, 7)]:
        cut = shards(start, stop, count)
        assert cut[0].start == start and cut[-1].stop == stop
        assert all(a.stop == b.start for a, b in zip(cut, cut[1:], strict=False))
        assert sum(s.pairs for s in cut) == triangle(stop) - triangle(start)
        if stop - start >= 100:
            pairs = [s.pairs for s in cut]
            assert max(pairs) <= 1.2 * min(pairs) and len(cut) == count


def test_a_block_never_written_is_planned_again(tmp_path):
    """A run that died after planning, having written some blocks: the next plans the rest."""
    cache, keys = round_cache(tmp_path, 12)
    store = RoundPairStore(cache)
    planned = store.plan(keys, 3, min_pairs=1)
    store.compute(planned[1], exact_up_to=10)
    assert store.plan(keys, 3, min_pairs=1) != []
    assert {(s.start, s.stop) for s in store.plan(keys, 1, min_pairs=1)} == {
        (planned[0].start, planned[0].stop),
        (planned[2].start, planned[2].stop),
    }
    assert store.order() == keys  # appended once


def test_a_shard_past_the_order_is_refused(tmp_path):
    cache, keys = round_cache(tmp_path, 4)
    store = RoundPairStore(cache)
    store.plan(keys[:2], 1)
    with pytest.raises(ValueError, match="reaches past the order's 2 positions"):
        store.compute(Shard(0, 4), exact_up_to=1)


def test_pruned_counts_keep_the_contract_against_the_exact_store(tmp_path):
    """At 3,000 rows (more than a sketch's ranks) the stored KS counts are exact wherever they
    are at most the limit or flagged exact, and a lower bound above the limit elsewhere; r is
    the same either way."""
    rng = np.random.default_rng(5)
    n = 3000
    ids = [f"t{k}" for k in range(n)]
    base = rng.random(n)
    rows = [
        (f"s{k}", p)
        for k, p in enumerate(
            [
                rng.random(n),
                rng.permutation(base),
                base**1.3,
                rng.beta(2, 3, n),
                base,
                np.round(base, 2),
            ]
        )
    ]
    limit = 90  # KS 0.03 at 3,000 rows
    stores = {}
    for name, counter in (("pruned", None), ("exact", exact_ks)):
        cache = RoundPredictionCache(tmp_path / name, 7, ids)
        cache.add(rows)
        store = RoundPairStore(cache)
        for shard in store.plan([k for k, _ in rows], 2, min_pairs=1):
            store.compute(shard, exact_up_to=limit, ks_counter=counter)
        stores[name] = store.table()
    everyone = np.arange(len(rows))
    for g in range(len(rows)):
        others = everyone[everyone != g]
        pruned, exact = (stores[name].pairs(g, others) for name in ("pruned", "exact"))
        np.testing.assert_array_equal(pruned["r"], exact["r"])
        known = pruned["exact"].astype(bool)
        assert (pruned["ks"][known] == exact["ks"][known]).all()
        assert (known | (pruned["ks"] > limit)).all()
        assert (pruned["ks"] <= exact["ks"]).all()
        assert (exact["ks"] <= limit)[~known].sum() == 0
