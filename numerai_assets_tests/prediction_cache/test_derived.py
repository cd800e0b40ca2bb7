"""Per-row summaries kept beside a round's sorted matrix (``RoundPredictionCache.derived``): each
row computed once, shared by every process, and never trusted when it does not hold what its
record says."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from numerai_assets.prediction_cache import RoundPredictionCache

COLUMNS = 50
WIDTH = 3


def summary(rows: np.ndarray) -> np.ndarray:
    """Each sorted row's minimum, median and maximum (a sketch's shape)."""
    return np.ascontiguousarray(np.asarray(rows)[:, [0, COLUMNS // 2, COLUMNS - 1]])


class Counting:
    """``summary``, counting the rows it was given."""

    def __init__(self) -> None:
        self.rows = 0

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        self.rows += len(rows)
        return summary(rows)


def make_cache(
    root: Path, count: int, *, start: int = 0, seed: int = 0, prefix: str = "s"
) -> RoundPredictionCache:
    cache = RoundPredictionCache(root, 3, [f"t{k}" for k in range(COLUMNS)])
    rng = np.random.default_rng(seed)
    cache.add((f"{prefix}{k}", rng.random(COLUMNS)) for k in range(start, start + count))
    return cache


def expected(cache: RoundPredictionCache) -> np.ndarray:
    return summary(np.sort(cache.matrices()[0], axis=1))


def test_rows_are_computed_once_and_appended_as_the_cache_grows(tmp_path):
    cache = make_cache(tmp_path, 300)  # more than one chunk of sorted rows
    first = Counting()
    got = cache.derived("summary", WIDTH, first)
    assert first.rows == 300 and not got.flags.writeable
    np.testing.assert_array_equal(got, expected(cache))
    again = Counting()
    np.testing.assert_array_equal(cache.derived("summary", WIDTH, again), got)
    assert again.rows == 0
    rng = np.random.default_rng(9)
    cache.add((f"late{k}", rng.random(COLUMNS)) for k in range(5))
    more = Counting()
    grown = cache.derived("summary", WIDTH, more)
    assert more.rows == 5 and grown.shape == (305, WIDTH)
    np.testing.assert_array_equal(grown, expected(cache))


def test_another_process_view_of_the_cache_sees_every_row(tmp_path):
    """A cache object opened before rows were added (another step's) reads the index again."""
    cache = make_cache(tmp_path, 10)
    stale = RoundPredictionCache.at(cache.location)
    rng = np.random.default_rng(2)
    cache.add((f"n{k}", rng.random(COLUMNS)) for k in range(4))
    got = stale.derived("summary", WIDTH, summary)
    assert got.shape == (14, WIDTH) and len(stale) == 14
    np.testing.assert_array_equal(got, expected(cache))


def damage_truncate(directory: Path) -> None:
    path = directory / "summary.f64"
    path.write_bytes(path.read_bytes()[:-8])


def damage_flip(directory: Path) -> None:
    path = directory / "summary.f64"
    data = bytearray(path.read_bytes())
    data[40] ^= 0x01  # one bit of one value
    path.write_bytes(bytes(data))


def damage_record(directory: Path) -> None:
    (directory / "summary.json").write_text('{"rows": 10')


def damage_lost_record(directory: Path) -> None:
    (directory / "summary.json").unlink()


def damage_other_width(directory: Path) -> None:
    record = json.loads((directory / "summary.json").read_text())
    (directory / "summary.json").write_text(json.dumps({**record, "width": WIDTH + 1}))


def damage_rows_past_file(directory: Path) -> None:
    record = json.loads((directory / "summary.json").read_text())
    (directory / "summary.json").write_text(json.dumps({**record, "rows": "12"}))


@pytest.mark.parametrize(
    "damage",
    [
        damage_truncate,
        damage_flip,
        damage_record,
        damage_lost_record,
        damage_other_width,
        damage_rows_past_file,
    ],
)
def test_a_damaged_file_or_record_is_computed_again_whole(tmp_path, damage):
    cache = make_cache(tmp_path, 12)
    cache.derived("summary", WIDTH, summary)
    damage(cache.directory)
    again = Counting()
    got = cache.derived("summary", WIDTH, again)
    assert again.rows == 12
    np.testing.assert_array_equal(got, expected(cache))


def test_a_reset_cache_computes_its_own_rows_and_leaves_a_reader_its_old_ones(tmp_path):
    """The cache's index was lost (it is derived data, rebuilt from the files with other
    submissions): the kept rows belong to other ids and are not used; a process that mapped
    them keeps what it mapped (the new rows go to a new file)."""
    cache = make_cache(tmp_path, 8)
    old = cache.derived("summary", WIDTH, summary)
    held = old.copy()
    (cache.directory / "index.json").unlink()
    rebuilt = make_cache(tmp_path, 6, start=100, seed=1)
    again = Counting()
    got = rebuilt.derived("summary", WIDTH, again)
    assert again.rows == 6
    np.testing.assert_array_equal(got, expected(rebuilt))
    np.testing.assert_array_equal(old, held)


def test_a_compute_that_fails_or_returns_the_wrong_shape_records_nothing(tmp_path):
    cache = make_cache(tmp_path, 5)
    with pytest.raises(ValueError, match=r"float64 rows of width 3, got float64 \(5, 2\)"):
        cache.derived("summary", WIDTH, lambda rows: summary(rows)[:, :2])
    with pytest.raises(ValueError, match=r"got int64"):
        cache.derived("summary", WIDTH, lambda rows: summary(rows).astype(np.int64))
    assert not list(cache.directory.glob("*summary*"))  # no file, no record, no scratch
    np.testing.assert_array_equal(cache.derived("summary", WIDTH, summary), expected(cache))


@pytest.mark.parametrize(
    "name", ["", "../x", "a/b", ".hidden", "index", "sorted", "predictions", "x" * 101]
)
def test_names_outside_the_plain_ones_are_refused(tmp_path, name):
    cache = make_cache(tmp_path, 2)
    with pytest.raises(ValueError, match="plain name"):
        cache.derived(name, WIDTH, summary)


def test_an_empty_cache_has_no_rows(tmp_path):
    cache = RoundPredictionCache(tmp_path, 3, [f"t{k}" for k in range(COLUMNS)])
    assert cache.derived("summary", WIDTH, summary).shape == (0, WIDTH)


def _derive_in_child(location, queue) -> None:
    counting = Counting()
    got = RoundPredictionCache.at(location).derived("summary", WIDTH, counting)
    queue.put((counting.rows, got.tobytes()))


def test_processes_asking_at_once_compute_each_row_once_and_agree(tmp_path):
    cache = make_cache(tmp_path, 400)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    children = [
        context.Process(target=_derive_in_child, args=(cache.location, queue)) for _ in range(4)
    ]
    for child in children:
        child.start()
    results = [queue.get(timeout=60) for _ in children]
    for child in children:
        child.join(timeout=60)
        assert child.exitcode == 0
    assert sum(rows for rows, _ in results) == 400
    assert {data for _, data in results} == {expected(cache).tobytes()}
