"""Mapped files give their pages back (prediction_cache/mapped.py): what a reader touched leaves
its resident size on release, and nothing written through a mapping is lost by it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from numerai_assets.prediction_cache.mapped import MappedFiles


def resident_kib(path: Path) -> int:
    """This process's resident KiB of its mappings of ``path`` (from /proc/self/smaps)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and len(fields) >= 5:  # a mapping's header line
            inside = len(fields) >= 6 and fields[5] == str(path)
        elif inside and fields and fields[0] == "Rss:":
            total += int(fields[1])
    return total


def test_release_gives_back_read_pages(tmp_path: Path) -> None:
    path = tmp_path / "m.f64"
    values = np.arange(512 * 1024, dtype=np.float64)  # 4 MiB
    path.write_bytes(values.tobytes())
    mapped = MappedFiles()
    array = mapped.open(path, np.float64, (512, 1024))
    assert float(array.sum()) == float(values.sum())  # every page touched
    assert resident_kib(path) >= 3 * 1024
    mapped.release()
    assert resident_kib(path) == 0
    assert np.array_equal(array.ravel(), values)  # mapped again on access


def test_release_keeps_what_was_written(tmp_path: Path) -> None:
    path = tmp_path / "scratch.f64"
    mapped = MappedFiles()
    array = mapped.open(path, np.float64, (256, 1024), writable=True)
    rng = np.random.default_rng(0)
    written = rng.random((256, 1024))
    for at in range(0, 256, 64):
        array[at : at + 64] = written[at : at + 64]
        mapped.release()  # written pages dropped from the process after each chunk
    assert resident_kib(path) == 0
    assert np.array_equal(array, written)
    assert np.array_equal(np.fromfile(path).reshape(256, 1024), written)


def test_empty_and_misuse(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    assert MappedFiles().open(tmp_path / "empty", np.uint32).shape == (0,)
    assert MappedFiles().open(tmp_path / "w", np.uint8, (0, 3), writable=True).shape == (0, 3)
    with pytest.raises(ValueError, match="needs its shape"):
        MappedFiles().open(tmp_path / "w", np.uint8, writable=True)


def test_pruned_ks_touches_only_the_rows_it_reads(tmp_path: Path) -> None:
    """Rows the sketches' bounds settle stay on disk: a round's sorted matrix is not faulted in
    (both ends of every row were read for every new submission: 1.9 GiB resident at 5,000)."""
    from numerai_assets.scoring.ks import ks_counts
    from numerai_assets.scoring.ks_sketch import ks_counts_pruned, ks_sketches

    rng = np.random.default_rng(5)
    columns = 45_000
    new = np.sort(rng.random(columns))
    others = np.sort(rng.beta(2.0, 5.0, (199, columns)), axis=1)  # far from ``new``
    path = tmp_path / "sorted.f64"
    np.vstack([new, others]).tofile(path)
    mapped = MappedFiles()
    matrix = mapped.open(path, np.float64, (200, columns))
    sketches = ks_sketches(matrix)
    mapped.release()
    got = ks_counts_pruned(new, sketches, matrix, None, 1_350)
    resident = resident_kib(path)
    assert got.computed <= 2  # the copy of ``new`` (the nearest), hardly any other
    assert resident <= 8 * columns * 8 // 1024, f"{resident} KiB resident"
    assert got.counts[0] == ks_counts(new, matrix[:1], earlier_sorted=True)[0] == 0


def test_a_row_the_bounds_settle_is_never_read(tmp_path: Path) -> None:
    """A settled row is not checked either: damaging it after sketching changes nothing."""
    from numerai_assets.scoring.ks_sketch import ks_counts_pruned, ks_sketches

    rng = np.random.default_rng(6)
    new = np.sort(rng.random(3_000))
    rows = np.vstack([new, np.sort(rng.beta(2.0, 5.0, 3_000))])
    sketches = ks_sketches(rows)
    clean = ks_counts_pruned(new, sketches, rows, None, 90)
    rows[1, -1] = np.inf  # never read: the bounds settle it
    damaged = ks_counts_pruned(new, sketches, rows, None, 90)
    assert np.array_equal(clean.counts, damaged.counts) and damaged.computed == 1
    rows[0, -1] = np.inf  # the nearest is read: refused
    with pytest.raises(ValueError, match="NaN or infinite"):
        ks_counts_pruned(new, sketches, rows, None, 90)
