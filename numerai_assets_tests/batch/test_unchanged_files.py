"""A file whose bytes the round's cache holds predictions for is hashed, not parsed again (a
late upload decides every later submission again; most of their files have not changed)."""

from __future__ import annotations

import numpy as np
from bson import ObjectId

from numerai_assets.batch.files import SubmissionFiles, cache_key
from numerai_assets.datasets.synthetic import submission_csv
from numerai_assets.files import LocalBuckets
from numerai_assets.prediction_cache import RoundPredictionCache

IDS = np.array([f"n{k:04d}" for k in range(200)])


def test_the_same_bytes_are_taken_from_the_cache_other_bytes_are_parsed(tmp_path):
    buckets = LocalBuckets(tmp_path / "s3")
    files = SubmissionFiles(buckets, "uploads", IDS)
    doc = {"_id": ObjectId(), "competition_id": 7, "username": "ann", "filename": "7/ann/p.csv"}
    first = np.linspace(0.3, 0.7, len(IDS))
    buckets.put_bytes("uploads", doc["filename"], submission_csv(IDS, first))
    parsed = files.load(doc)
    np.testing.assert_array_equal(parsed.predictions, first)

    cache = RoundPredictionCache(tmp_path / "cache", 7, IDS)
    marker = np.full(len(IDS), 0.25)  # not what the file holds: shows where the values came from
    cache.add([(cache_key(doc["_id"], parsed.digest), marker)])
    again = files.load(doc, cache.predictions_of)
    assert again.digest == parsed.digest
    np.testing.assert_array_equal(again.predictions, marker)  # not parsed: the cache's row

    second = np.linspace(0.2, 0.8, len(IDS))  # the file replaced, no request made
    buckets.put_bytes("uploads", doc["filename"], submission_csv(IDS, second))
    replaced = files.load(doc, cache.predictions_of)
    assert replaced.digest != parsed.digest
    np.testing.assert_array_equal(replaced.predictions, second)  # parsed: new bytes


def test_a_cached_row_comes_back_as_a_copy_and_an_unknown_one_as_none(tmp_path):
    cache = RoundPredictionCache(tmp_path, 7, IDS)
    rows = np.random.default_rng(0).random((3, len(IDS)))
    cache.add([(f"s{k}", rows[k]) for k in range(3)])
    for k in range(3):
        got = cache.predictions_of(f"s{k}")
        np.testing.assert_array_equal(got, rows[k])
        got[:] = 0  # a copy: the cache is not written through it
    np.testing.assert_array_equal(cache.predictions_of("s1"), rows[1])
    assert cache.predictions_of("nobody") is None
