import json

import numpy as np
import pytest

from numerai_assets.prediction_cache import RoundPredictionCache, fingerprint

IDS = [f"n{k}" for k in range(50)]


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_rows_persist_and_come_back_by_id(tmp_path, rng):
    a, b, c = rng.random((3, 50))
    cache = RoundPredictionCache(tmp_path, 7, IDS)
    assert cache.add([("a", a), ("b", b)]) == 2
    assert cache.add([("b", b), ("c", c), ("c", c)]) == 1  # known and repeated ids: once
    again = RoundPredictionCache(tmp_path, 7, IDS)  # another process, later
    predictions, sorted_rows = again.matrices()
    assert len(again) == 3 and "c" in again and "z" not in again
    np.testing.assert_array_equal(predictions[again.rows_of(["c", "a"])], [c, a])
    np.testing.assert_array_equal(sorted_rows[again.row_of("b")], np.sort(b))
    again.release()  # drops mapped pages; the data stays readable
    np.testing.assert_array_equal(predictions[again.row_of("a")], a)


def test_another_row_order_is_another_cache(tmp_path, rng):
    RoundPredictionCache(tmp_path, 7, IDS).add([("a", rng.random(50))])
    reordered = RoundPredictionCache(tmp_path, 7, IDS[::-1])
    assert len(reordered) == 0 and fingerprint(IDS) != fingerprint(IDS[::-1])
    assert len(RoundPredictionCache(tmp_path, 8, IDS)) == 0  # and another round too


def test_rows_past_a_torn_index_are_ignored_and_overwritten(tmp_path, rng):
    cache = RoundPredictionCache(tmp_path, 7, IDS)
    a, b, c = rng.random((3, 50))
    cache.add([("a", a)])
    # A process died after appending b's rows but before writing the index:
    with open(cache.directory / "predictions.f64", "ab") as f:
        f.write(b.tobytes())
    reopened = RoundPredictionCache(tmp_path, 7, IDS)
    assert len(reopened) == 1
    reopened.add([("c", c)])
    predictions, _ = RoundPredictionCache(tmp_path, 7, IDS).matrices()
    np.testing.assert_array_equal(predictions, [a, c])


def test_an_index_promising_more_rows_than_stored_starts_afresh(tmp_path, rng):
    cache = RoundPredictionCache(tmp_path, 7, IDS)
    cache.add([("a", rng.random(50))])
    index = cache.directory / "index.json"
    index.write_text(json.dumps({"columns": 50, "submissions": ["a", "b"]}))
    assert len(RoundPredictionCache(tmp_path, 7, IDS)) == 0


def test_wrong_shape_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"predictions must have shape \(50,\)"):
        RoundPredictionCache(tmp_path, 7, IDS).add([("a", np.ones(49))])
