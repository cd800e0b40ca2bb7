"""Phase 1 reads two kept sketch files (fine, then coarse) through ``RoundPredictionCache.
derived``, each of which reads the cache's index again under its lock. Rows another process
appends between the two reads (a late upload cached by the run that took the round over, while
an orphaned run's shards still compute) must not fail the shard: the pairs it computes are of
positions it already knows."""

from __future__ import annotations

import numpy as np

from numerai_assets.prediction_cache import RoundPredictionCache
from numerai_assets.prediction_cache.pair_ks import exact_ks
from numerai_assets.prediction_cache.pairs import RoundPairStore

COLUMNS = 1500  # more than a fine sketch's ranks: two sketch files, fine and coarse


def test_rows_appended_between_the_fine_and_coarse_sketch_reads_do_not_fail_the_shard(
    tmp_path, monkeypatch
):
    rng = np.random.default_rng(0)
    cache = RoundPredictionCache(tmp_path, 7, [f"t{k}" for k in range(COLUMNS)])
    rows = [(f"s{k}", rng.random(COLUMNS)) for k in range(10)]
    cache.add(rows)
    keys = [key for key, _ in rows]
    store = RoundPairStore(cache)
    (shard,) = store.plan(keys, 1, min_pairs=1)

    other_process = RoundPredictionCache.at(cache.location)
    real_derived = cache.derived
    asked: list[str] = []

    def derived(name, width, compute):
        asked.append(name)
        if len(asked) == 2:  # between the fine sketches' read and the coarse ones'
            other_process.add([("late", rng.random(COLUMNS))])
        return real_derived(name, width, compute)

    monkeypatch.setattr(cache, "derived", derived)
    store.compute(shard, exact_up_to=60)  # ValueError: coarse must sketch the same submissions
    assert len(asked) == 2

    # ... and what it stored is what the exact computation gives.
    reference = RoundPairStore(
        RoundPredictionCache(tmp_path / "ref", 7, [f"t{k}" for k in range(COLUMNS)])
    )
    reference.cache.add(rows)
    reference.compute(*reference.plan(keys, 1, min_pairs=1), exact_up_to=60, ks_counter=exact_ks)
    got, want = store.table(), reference.table()
    for g in range(1, len(keys)):
        a, b = got.pairs(g, np.arange(g)), want.pairs(g, np.arange(g))
        known = a["exact"].astype(bool)
        np.testing.assert_array_equal(a["ks"][known], b["ks"][known])
        assert ((b["ks"] > 60) | known).all()
