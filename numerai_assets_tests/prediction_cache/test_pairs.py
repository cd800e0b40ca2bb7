"""The round's pair store: every pair computed once, read back equal to computing it directly."""

from __future__ import annotations

import json
import shutil
import zlib

import numpy as np
import pytest

from numerai_assets.prediction_cache import RoundPredictionCache
from numerai_assets.prediction_cache.pair_ks import exact_ks
from numerai_assets.prediction_cache.pairs import RoundPairStore, Shard, shards, triangle
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


def test_a_block_is_its_manifest_and_three_files_and_a_failed_one_leaves_nothing(tmp_path):
    """The results are written straight into the block's mapped files, the shard's standardized
    rows into a scratch file beside them: a finished block holds its three files and manifest
    only, each the size and checksum the manifest gives; a shard whose KS counting fails leaves
    no block and no scratch folder (and the next plan computes it again)."""
    cache, keys = round_cache(tmp_path, 14)
    store = RoundPairStore(cache)
    first, second = store.plan(keys, 2, min_pairs=1)
    store.compute(first, exact_up_to=10, ks_counter=exact_ks)
    folder = store.directory / f"block-{first.start}-{first.stop}"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["manifest.json", "r.f64", "ks.u32", "exact.u8"]
    )
    manifest = json.loads((folder / "manifest.json").read_text())
    for name, entry in manifest["files"].items():
        data = (folder / name).read_bytes()
        assert (len(data), zlib.crc32(data)) == (entry["bytes"], entry["crc32"])

    def broken(new, earlier, rows, exact_up_to):
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        store.compute(second, exact_up_to=10, ks_counter=broken)
    assert sorted(p.name for p in store.directory.iterdir()) == [
        folder.name,
        "order.json",
    ]
    assert store.plan(keys, 1, min_pairs=1) == [second]


def test_planning_deletes_what_dead_shards_left_and_nothing_else(tmp_path):
    """A shard killed mid-way leaves its scratch folder (its standardized rows: a gigabyte at
    10,000 submissions); the next plan, the round's one writer, deletes it."""
    cache, keys = round_cache(tmp_path, 10)
    store = RoundPairStore(cache)
    (first,) = store.plan(keys[:6], 1, min_pairs=1)
    store.compute(first, exact_up_to=10, ks_counter=exact_ks)
    dead = store.directory / ".block-6-10-k1ll3d"
    dead.mkdir()
    (dead / "new.f64").write_bytes(b"\0" * 4096)
    (dead / "r.f64").write_bytes(b"\0" * 64)
    kept = sorted(p.name for p in store.directory.iterdir() if p != dead)
    assert store.plan(keys, 1, min_pairs=1) == [Shard(6, 10)]
    assert sorted(p.name for p in store.directory.iterdir()) == kept
    assert not dead.exists()


def test_a_shard_past_the_order_is_refused(tmp_path):
    cache, keys = round_cache(tmp_path, 4)
    store = RoundPairStore(cache)
    store.plan(keys[:2], 1)
    with pytest.raises(ValueError, match="reaches past the order's 2 positions"):
        store.compute(Shard(0, 4), exact_up_to=1)


@pytest.mark.parametrize("sketches", ["kept", "scrambled between shards"])
def test_pruned_counts_keep_the_contract_against_the_exact_store(tmp_path, sketches):
    """At 3,000 rows (more than a sketch's ranks) the stored KS counts are exact wherever they
    are at most the limit or flagged exact, and a lower bound above the limit elsewhere; r is
    the same either way. The sketches kept in the cache for the next shard can be damaged in
    between (here: their rows swapped, every value still a plausible sketch): they are not
    trusted, and computed again."""
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
            for kept in cache.directory.glob("ks-sketch-*.f64"):
                if sketches != "kept":
                    values = np.fromfile(kept).reshape(len(rows), -1)
                    values[::-1].tofile(kept)
        assert len(list(cache.directory.glob("ks-sketch-*.f64"))) == (2 if counter is None else 0)
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


@pytest.mark.parametrize(
    "blocks",
    [
        # Run A (1 worker) planned the whole gap as one shard; run B (3 workers) planned the
        # same gap as 0-7, 7-10, 10-12 and wrote only its middle shard before it died.
        [(0, 12), (7, 10)],
        # Run A planned 10 keys (one shard 0-10); run B, after two more uploads, planned 0-12.
        [(0, 12), (0, 10)],
    ],
    ids=["nested", "same-start"],
)
def test_overlapping_blocks_leave_every_position_readable(tmp_path, blocks):
    cache, keys = round_cache(tmp_path, 12)
    store = RoundPairStore(cache)
    store.extend_order(keys)
    for start, stop in blocks:
        store.compute(Shard(start, stop), exact_up_to=10, ks_counter=exact_ks)

    assert store.plan(keys, 1, min_pairs=1) == []  # phase 2 sees nothing to compute
    table = store.table()
    # ... so every key must be covered, or phase 2 raises "lacks the pairs" on every run
    assert [k for k in keys if not table.covered(k)] == []
    got = table.pairs(11, np.arange(11))
    assert len(got["r"]) == 11


def test_a_process_with_an_older_view_of_the_cache_does_not_wipe_the_store(tmp_path):
    cache, keys = round_cache(tmp_path, 8)
    first = RoundPairStore(cache)
    for shard in first.plan(keys, 2, min_pairs=1):
        first.compute(shard, exact_up_to=10, ks_counter=exact_ks)

    # Process A (an orphaned run's step) opens the cache now.
    stale = RoundPredictionCache.at(cache.location)
    # Process B (the run that took the round over) caches two late uploads and stores pairs.
    fresh = RoundPredictionCache.at(cache.location)
    rng = np.random.default_rng(1)
    fresh.add([("late1", rng.random(N_ROWS)), ("late2", rng.random(N_ROWS))])
    current = RoundPairStore(fresh)
    for shard in current.plan([*keys, "late1", "late2"], 2, min_pairs=1):
        current.compute(shard, exact_up_to=10, ks_counter=exact_ks)
    blocks_before = current.blocks()
    assert blocks_before

    RoundPairStore(stale).order()  # what A's compute() does first

    assert RoundPairStore(fresh).order() == [*keys, "late1", "late2"]
    assert RoundPairStore(fresh).blocks() == blocks_before


def test_block_folders_named_otherwise_than_written_are_deleted_and_planned_again(tmp_path):
    cache, keys = round_cache(tmp_path, 6)
    store = RoundPairStore(cache)
    store.extend_order(keys)
    store.compute(Shard(0, 1), exact_up_to=10, ks_counter=exact_ks)
    store.compute(Shard(1, 6), exact_up_to=10, ks_counter=exact_ks)
    shutil.move(store.directory / "block-1-6", store.directory / "block-01-6")
    (store.directory / "block-\u00b2-5").mkdir()  # a digit int() refuses
    (store.directory / "block-5-3").mkdir()
    assert store.blocks() == [Shard(0, 1)]
    assert not (store.directory / "block-01-6").exists()
    assert store.plan(keys, 1, min_pairs=1) == [Shard(1, 6)]


def test_a_blocks_keys_digest_tells_apart_keys_that_join_alike():
    """Keys joined by a separator made ["a\\nb", "c"] and ["a", "b\\nc"] one digest: a block
    computed for one order would have been trusted for the other."""
    from numerai_assets.prediction_cache.pairs import _keys_digest

    assert _keys_digest(["a\nb", "c"], Shard(0, 2)) != _keys_digest(["a", "b\nc"], Shard(0, 2))
