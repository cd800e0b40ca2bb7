"""Hostile review 6: odd predictions, odd ids and shared folders against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from numerai_assets.prediction_cache.pairs import RoundPairStore
from numerai_assets.prediction_cache.round_cache import RoundPredictionCache
from numerai_assets.scoring.correlation import standardized
from numerai_assets.scoring.ks import ks_counts

N = 40


def _brute_ks(a: np.ndarray, b: np.ndarray) -> int:
    t = np.union1d(a, b)
    fa = np.searchsorted(np.sort(a), t, "right")
    fb = np.searchsorted(np.sort(b), t, "right")
    return int(np.max(np.abs(fa - fb)))


def _odd_rows() -> np.ndarray:
    rng = np.random.default_rng(0)
    half = N // 2
    return np.array(
        [
            np.full(N, 0.5),
            np.full(N, 1e-300),
            np.r_[np.zeros(half), np.ones(half)],
            np.round(rng.random(N), 1),
            np.r_[np.full(half, -0.0), np.full(half, 0.0)],
            rng.random(N),
            np.r_[np.zeros(N - 1), 1e-300],
        ]
    )


def test_ks_counts_match_brute_force_on_odd_rows() -> None:
    rows = _odd_rows()
    for a in rows:
        expected = [_brute_ks(a, b) for b in rows]
        assert list(ks_counts(a, rows)) == expected
        got = ks_counts(np.sort(a), np.sort(rows, axis=1), earlier_sorted=True, new_sorted=True)
        assert list(got) == expected


def test_standardized_matches_corrcoef_on_odd_rows() -> None:
    """numpy.corrcoef underflows on a row of 0s and one 1e-300 (it gives r = 1 against a
    0/1 row); scaled by a power of two (r unchanged, exactly) it does not: the reference."""
    rows = _odd_rows()
    z = standardized(rows)
    spread = rows.max(axis=1) - rows.min(axis=1)
    scaled = np.ldexp(rows, np.where(spread > 0, -np.frexp(spread)[1], 0)[:, None])
    for i in range(len(rows)):
        for j in range(len(rows)):
            with np.errstate(all="ignore"):
                expected = np.corrcoef(scaled[i], scaled[j])[0, 1]
            got = float(z[i] @ z[j])
            assert (np.isnan(expected) and np.isnan(got)) or abs(expected - got) < 1e-9


def test_weird_ids_and_two_caches_on_one_folder(tmp_path) -> None:
    rng = np.random.default_rng(1)
    a = RoundPredictionCache(tmp_path, 1, list(range(N)))
    b = RoundPredictionCache(tmp_path, 1, list(range(N)))
    ids = ["x" * 5000, "ü日本", "../x", "a/b", ""]
    values = {s: rng.random(N) for s in ids}
    for k, s in enumerate(ids):
        (a if k % 2 else b).add([(s, values[s])])
    assert [p.name for p in tmp_path.iterdir()] == ["round-1"]
    b.refresh()
    for s in ids:
        np.testing.assert_array_equal(b.predictions_of(s), values[s])


def test_two_pair_stores_on_one_cache_agree_with_brute_force(tmp_path) -> None:
    rng = np.random.default_rng(2)
    n = 30
    cache = RoundPredictionCache(tmp_path, 1, list(range(n)))
    rows = np.r_[
        [np.full(n, 0.5), np.r_[np.zeros(15), np.ones(15)]], np.round(rng.random((6, n)), 1)
    ]
    keys = [f"k{i}" for i in range(len(rows))]
    cache.add(zip(keys, rows, strict=True))
    first, second = RoundPairStore(cache), RoundPairStore(cache)
    for shard in first.plan(keys[:4], 2):
        first.compute(shard, exact_up_to=n)
    for shard in second.plan(keys, 2):
        second.compute(shard, exact_up_to=n)
    table = first.table()
    for g in range(len(keys)):
        others = np.array([h for h in range(len(keys)) if h != g])
        pairs = table.pairs(g, others)
        expected = ks_counts(rows[g], rows[others])
        exact = pairs["exact"].astype(bool)
        assert (pairs["ks"][exact] == expected[exact]).all()
        assert (pairs["ks"][~exact] <= expected[~exact]).all()
        for h, r in zip(others, pairs["r"], strict=True):
            with np.errstate(all="ignore"):
                c = np.corrcoef(rows[g], rows[h])[0, 1]
            assert (np.isnan(c) and np.isnan(r)) or abs(c - r) < 1e-9


@pytest.mark.parametrize("first", [["a\nb", "c"]])
def test_derived_rows_not_reused_for_other_ids(tmp_path, first) -> None:
    """The derived file's record identifies its rows by SHA-256 of the ids joined by newlines:
    ids ``["a\\nb", "c"]`` and ``["a", "b\\nc"]`` give one digest, so after the cache is reset
    and refilled with other submissions (other predictions) the old summaries are served."""
    rng = np.random.default_rng(3)
    ids = list(range(N))
    cache = RoundPredictionCache(tmp_path, 1, ids)
    cache.add([(first[0], rng.random(N)), (first[1], rng.random(N))])
    cache.derived("mean", 1, lambda s: s.mean(axis=1, keepdims=True))
    (cache.directory / "index.json").unlink()  # the cache is reset (it is derived data)
    other = RoundPredictionCache(tmp_path, 1, ids)
    other.add([("a", np.zeros(N)), ("b\nc", np.ones(N))])
    got = np.array(other.derived("mean", 1, lambda s: s.mean(axis=1, keepdims=True)))
    np.testing.assert_array_equal(got[:, 0], [0.0, 1.0])
