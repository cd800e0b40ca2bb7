"""What held up: the pair store with kept sketches, on rounds cut at and around ``CHUNK_ROWS``
(127/128/129/256/257 submissions, shards from 0, 1, 127, 128, 129), on adversarial files
(copies, permutations, constants, ties, tiny spreads, near copies), with the cache growing
between runs and an order unlike the cache's rows, against brute force; and a phase 1 whose
mapped writes fail (an OSError from the flush: disk full, EIO) leaves nothing behind."""

from __future__ import annotations

import errno

import numpy as np
import pytest

from numerai_assets.prediction_cache import RoundPredictionCache
from numerai_assets.prediction_cache.mapped import MappedFiles
from numerai_assets.prediction_cache.pairs import RoundPairStore, Shard
from numerai_assets.scoring.correlation import correlations
from numerai_assets.scoring.ks import ks_counts

COLUMNS = 1100  # more than a fine sketch's 1,024 ranks: the bounds prune
LIMIT = 40


def adversarial(count: int, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    base = rng.random(COLUMNS)
    kinds = [
        lambda k: rng.random(COLUMNS),
        lambda k: rng.permutation(base),  # KS 0 with base
        lambda k: np.full(COLUMNS, 0.5),  # constant
        lambda k: np.round(np.clip(base + rng.normal(0, 0.02, COLUMNS), 0, 1), 2),  # ties
        lambda k: (rng.random(COLUMNS) < 0.5) * 1e-300,  # spread below 1e-100
        lambda k: base.copy(),  # a copy
        lambda k: np.clip(base + (k % 3 - 1) * 0.01, 0, 1),  # shifted: near the limit
        lambda k: np.round(rng.random(COLUMNS), 1),  # eleven values
        lambda k: rng.beta(2, 3, COLUMNS),
    ]
    return [(f"s{k}", kinds[k % len(kinds)](k)) for k in range(count)]


def check_against_brute_force(store: RoundPairStore, count: int) -> None:
    cache = store.cache
    table, order = store.table(), store.order()
    predictions, sorted_rows = cache.matrices()
    at = cache.rows_of(order)
    for g in range(1, count):
        got = table.pairs(g, np.arange(g))
        r = correlations(predictions[at[g]], predictions, rows=at[:g])
        np.testing.assert_allclose(got["r"], r, atol=1e-11)
        exact = ks_counts(sorted_rows[at[g]], sorted_rows, earlier_sorted=True, rows=at[:g])
        known, ks = got["exact"].astype(bool), got["ks"].astype(np.int64)
        np.testing.assert_array_equal(ks[known], exact[known])
        assert (ks <= exact).all()  # a bound is a lower bound
        assert (known | (exact > LIMIT)).all()  # every count that could flag is exact
        assert known[exact == exact.min()].all()  # so is every nearest
        assert (ks[~known] > exact.min()).all()


@pytest.mark.parametrize(
    ("count", "cuts"),
    [
        (127, [0, 1, 127]),
        (128, [0, 127, 128]),
        (129, [0, 128, 129]),
        (129, [0, 64, 129]),
        (256, [0, 128, 256]),
        (257, [0, 129, 257]),
    ],
)
def test_shards_around_chunk_boundaries_equal_brute_force(tmp_path, count, cuts):
    cache = RoundPredictionCache(tmp_path, 7, [f"t{k}" for k in range(COLUMNS)])
    rows = adversarial(count)
    cache.add(rows)
    store = RoundPairStore(cache)
    store.extend_order([key for key, _ in rows])
    for start, stop in zip(cuts, cuts[1:], strict=False):
        store.compute(Shard(start, stop), exact_up_to=LIMIT)
    check_against_brute_force(store, count)


def test_sketches_appended_as_the_cache_grows_in_another_order(tmp_path):
    cache = RoundPredictionCache(tmp_path, 7, [f"t{k}" for k in range(COLUMNS)])
    rows = adversarial(90, seed=3)
    keys = [key for key, _ in rows]
    order = [keys[k] for k in np.random.default_rng(4).permutation(len(keys))]
    cache.add(rows[:45])
    store = RoundPairStore(cache)
    for shard in store.plan([key for key in order if key in cache], 2, min_pairs=1):
        store.compute(shard, exact_up_to=LIMIT)
    cache.add(rows[45:])
    for shard in store.plan(order, 3, min_pairs=1):
        store.compute(shard, exact_up_to=LIMIT)
    check_against_brute_force(store, len(keys))


def test_a_failing_flush_of_the_mapped_results_leaves_nothing(tmp_path, monkeypatch):
    cache = RoundPredictionCache(tmp_path, 7, [f"t{k}" for k in range(COLUMNS)])
    rows = adversarial(20)
    cache.add(rows)
    store = RoundPairStore(cache)
    (shard,) = store.plan([key for key, _ in rows], 1, min_pairs=1)

    def flush(self):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(MappedFiles, "flush", flush)
        with pytest.raises(OSError, match="No space"):
            store.compute(shard, exact_up_to=LIMIT)
    assert sorted(p.name for p in store.directory.iterdir()) == ["order.json"]
    (again,) = store.plan([key for key, _ in rows], 1, min_pairs=1)
    store.compute(again, exact_up_to=LIMIT)
    check_against_brute_force(store, len(rows))
