"""``RoundPredictionCache.derived`` (the kept KS sketches) against damage and odd states: what
holds, and two ways it does not — a kept file or record that is a directory wedges it (and
leaks its temp file on every try), and a process whose cache was deleted and rebuilt under it
records sketches of the old rows as valid for the new ones, which every process then trusts."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from numerai_assets.prediction_cache import RoundPredictionCache
from numerai_assets_tests.prediction_cache.test_derived import (
    WIDTH,
    Counting,
    expected,
    make_cache,
    summary,
)


def leftovers(cache: RoundPredictionCache) -> list[str]:
    return sorted(p.name for p in cache.directory.glob(".summary*"))


@pytest.mark.parametrize("which", ["summary.f64", "summary.json"])
def test_a_directory_in_place_of_the_kept_file_or_record_is_not_trusted_and_replaced(
    tmp_path, which
):
    """Fails now: the rows are computed into a temp file, whose rename onto the directory
    raises IsADirectoryError on every call (phase 1 of the round can no longer run), and the
    temp file (8 KB a submission for the fine sketches) is left behind each time."""
    cache = make_cache(tmp_path, 12)
    cache.derived("summary", WIDTH, summary)
    (cache.directory / which).unlink()
    (cache.directory / which).mkdir()
    got = cache.derived("summary", WIDTH, summary)
    np.testing.assert_array_equal(got, expected(cache))
    assert leftovers(cache) == []


def test_a_failed_rename_of_the_recomputed_file_leaves_no_temp_file(tmp_path, monkeypatch):
    """Fails now: only ``_append_derived`` is guarded; an OSError from the rename (ENOSPC when
    the directory must grow, EIO) leaves the whole temp file (82 MB at 10,000 submissions)."""
    cache = make_cache(tmp_path, 12)
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if Path(dst).name == "summary.f64":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="No space"):
        cache.derived("summary", WIDTH, summary)
    monkeypatch.setattr(os, "replace", real_replace)
    assert leftovers(cache) == []


def test_a_cache_rebuilt_under_a_process_does_not_get_the_old_rows_sketches(tmp_path):
    """Fails now: process A mapped the round's matrices (it computes a shard, or decides); the
    cache folder is deleted (derived data: "delete it and it is rebuilt") and rebuilt by
    another run with other submissions, as many as before. A's ``derived`` reads the new index
    but computes from its cached mapping of the deleted files (``matrices`` maps again only when
    the count changes), and records the result as valid for the new submissions: every process
    trusts it (the CRC is of what was written). Wrong sketches give wrong KS bounds: a pruned
    count can exceed the exact one, a decision can change."""
    a = make_cache(tmp_path, 6)
    a.matrices()  # A maps the matrices
    shutil.rmtree(a.directory)
    b = make_cache(tmp_path, 6, prefix="other", seed=1)  # rebuilt: other files, same count
    a.derived("summary", WIDTH, summary)
    got = b.derived("summary", WIDTH, summary)
    np.testing.assert_array_equal(got, expected(b))


def _set_record(cache: RoundPredictionCache, **changes) -> None:
    path = cache.directory / "summary.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


@pytest.mark.parametrize(
    "changes",
    [
        {"rows": -1},
        {"rows": 12.0},
        {"rows": 10**30},
        {"rows": None},
        {"crc32": "0"},
        {"width": [WIDTH]},
        {"ids": None},
    ],
    ids=lambda c: json.dumps(c),
)
def test_odd_records_are_never_trusted(tmp_path, changes):
    """Holds: a record whose fields have odd types or values is computed again, whole."""
    cache = make_cache(tmp_path, 12)
    cache.derived("summary", WIDTH, summary)
    _set_record(cache, **changes)
    again = Counting()
    np.testing.assert_array_equal(cache.derived("summary", WIDTH, again), expected(cache))
    assert again.rows == 12


def test_rows_true_or_a_longer_file_or_a_rewritten_reader_copy_give_the_right_rows(tmp_path):
    """Holds: ``rows: true`` is read as 1 (bool is an int) but the digest and CRC must then be
    those of the first row, so nothing wrong is trusted; a file longer than its record is
    read for the record's rows only; a reader's mapping keeps its rows across a recompute."""
    cache = make_cache(tmp_path, 12)
    first = cache.derived("summary", WIDTH, summary)
    held = first.copy()
    _set_record(cache, rows=True)
    np.testing.assert_array_equal(cache.derived("summary", WIDTH, summary), expected(cache))
    path = cache.directory / "summary.f64"
    with open(path, "ab") as f:
        f.write(np.full((5, WIDTH), 7.0).tobytes())
    count = Counting()
    np.testing.assert_array_equal(cache.derived("summary", WIDTH, count), expected(cache))
    assert count.rows == 0
    (cache.directory / "summary.json").write_text("[]")
    cache.derived("summary", WIDTH, summary)
    np.testing.assert_array_equal(first, held)


def test_a_dangling_symlink_in_place_of_the_file_is_replaced(tmp_path):
    """Holds: the link is replaced by the file (nothing written where it pointed)."""
    cache = make_cache(tmp_path, 12)
    cache.derived("summary", WIDTH, summary)
    path = cache.directory / "summary.f64"
    path.unlink()
    path.symlink_to(tmp_path / "nowhere.f64")
    np.testing.assert_array_equal(cache.derived("summary", WIDTH, summary), expected(cache))
    assert not path.is_symlink() and not (tmp_path / "nowhere.f64").exists()
