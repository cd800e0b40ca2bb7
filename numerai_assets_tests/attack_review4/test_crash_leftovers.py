"""A phase-1 worker or a sketch derivation killed (SIGKILL: the OOM killer, a lost node) part
way. What it leaves must never be trusted (a block appears whole or not at all; the sketches
keep their old state) — that holds — and its scratch must not pile up: a block's scratch
folder holds the shard's standardized rows (``new.f64``, rows x columns x 8 bytes: 900 MB for
2,500 submissions at 45,000 rows) and the block's three result files (13 bytes a pair), a
sketch's temp file 8 KB a submission. Nothing removes either, ever: not the next plan, not
the next compute of the same shard, not the next derivation (the leftovers are aged two days
first, so a cleanup that spares a live writer's scratch by age would still take them)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from numerai_assets.prediction_cache import RoundPredictionCache
from numerai_assets.prediction_cache.pair_ks import exact_ks
from numerai_assets.prediction_cache.pairs import RoundPairStore
from numerai_assets.scoring.correlation import correlations
from numerai_assets.scoring.ks import ks_counts

COLUMNS = 300
COUNT = 20


def make_store(root: Path) -> tuple[RoundPairStore, list[str]]:
    rng = np.random.default_rng(0)
    cache = RoundPredictionCache(root, 7, [f"t{k}" for k in range(COLUMNS)])
    rows = [(f"s{k}", rng.random(COLUMNS)) for k in range(COUNT)]
    cache.add(rows)
    return RoundPairStore(cache), [key for key, _ in rows]


def die(*_args, **_kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


def _compute_and_die(location, keys, where) -> None:
    store = RoundPairStore(RoundPredictionCache.at(location))
    (shard,) = store.plan(keys, 1, min_pairs=1)
    if where == "correlations":  # first product: the standardized rows are in new.f64
        import numerai_assets.scoring.correlation as correlation

        correlation.correlation_block = die
        store.compute(shard, exact_up_to=10, ks_counter=exact_ks)
    else:  # KS counts: r written, new.f64 gone
        store.compute(shard, exact_up_to=10, ks_counter=die)


def _derive_and_die(location) -> None:
    RoundPredictionCache.at(location).derived("summary", 3, die)


def run_killed(target, *args) -> None:
    context = multiprocessing.get_context("fork")
    child = context.Process(target=target, args=args)
    child.start()
    child.join(timeout=60)
    assert child.exitcode == -signal.SIGKILL


def age(path: Path, days: float = 2) -> None:
    then = time.time() - days * 86_400
    for inner in [path, *(path.rglob("*") if path.is_dir() else ())]:
        os.utime(inner, (then, then))


def hidden(directory: Path) -> list[str]:
    return sorted(
        p.name for p in directory.iterdir() if p.name not in {".lock"} and p.name[0] == "."
    )


@pytest.mark.parametrize("where", ["correlations", "ks counts"])
def test_a_killed_shard_leaves_no_block_and_the_next_run_stores_it_right(tmp_path, where):
    """Holds: the old state (no block), then the new one, equal to brute force."""
    store, keys = make_store(tmp_path)
    run_killed(_compute_and_die, store.cache.location, keys, where)
    assert store.blocks() == []
    (shard,) = store.plan(keys, 1, min_pairs=1)
    store.compute(shard, exact_up_to=10, ks_counter=exact_ks)
    table = store.table()
    predictions, sorted_rows = store.cache.matrices()
    for g in range(1, COUNT):
        got = table.pairs(g, np.arange(g))
        np.testing.assert_allclose(
            got["r"], correlations(predictions[g], predictions, rows=np.arange(g)), atol=1e-12
        )
        np.testing.assert_array_equal(
            got["ks"],
            ks_counts(sorted_rows[g], sorted_rows, earlier_sorted=True, rows=np.arange(g)),
        )


@pytest.mark.parametrize("where", ["correlations", "ks counts"])
def test_a_killed_shards_scratch_folder_is_cleaned_by_a_later_run(tmp_path, where):
    store, keys = make_store(tmp_path)
    run_killed(_compute_and_die, store.cache.location, keys, where)
    (left,) = hidden(store.directory)
    assert left.startswith(".block-0-20-")
    assert (store.directory / left / "new.f64").exists() == (where == "correlations")
    age(store.directory / left)
    later = RoundPairStore(RoundPredictionCache.at(store.cache.location))  # the next run
    for shard in later.plan(keys, 1, min_pairs=1):
        later.compute(shard, exact_up_to=10, ks_counter=exact_ks)
    later.table()
    assert hidden(store.directory) == []  # fails: the dead worker's scratch is there for good


def test_a_killed_derivations_temp_file_is_cleaned_by_a_later_one(tmp_path):
    store, _ = make_store(tmp_path)
    cache = store.cache
    run_killed(_derive_and_die, cache.location)
    (left,) = hidden(cache.directory)
    assert left.startswith(".summary.f64.")
    age(cache.directory / left)
    got = cache.derived("summary", 3, lambda rows: np.ascontiguousarray(rows[:, :3]))
    np.testing.assert_array_equal(got, np.sort(cache.matrices()[0], axis=1)[:, :3])
    assert hidden(cache.directory) == []  # fails: the dead derivation's temp file stays
