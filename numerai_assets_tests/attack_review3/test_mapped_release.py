"""Mapped files (prediction_cache/mapped.py): releasing loses no data, only resident pages.
Attacks: written pages read back by another process and on tmpfs, files that grow after
mapping, truncated and empty files, arrays still held after release, and the cache's
mappings piling up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from numerai_assets.prediction_cache.mapped import MappedFiles
from numerai_assets.prediction_cache.round_cache import RoundPredictionCache


def mappings_of(path: Path) -> int:
    """How many mappings of ``path`` this process holds (/proc/self/maps)."""
    return sum(
        1 for line in Path("/proc/self/maps").read_text().splitlines() if line.endswith(str(path))
    )


def directories(tmp_path: Path) -> list[Path]:
    found = [tmp_path]
    shm = Path("/dev/shm")
    if shm.is_dir():
        found.append(shm)
    return found


@pytest.mark.parametrize("on", ["disk", "tmpfs"])
def test_written_then_released_pages_reach_the_file(tmp_path: Path, on: str) -> None:
    """Written through the shared mapping in chunks, each chunk's pages released at once (as
    a shard's scratch rows are): another process reading the file sees every value."""
    if on == "tmpfs" and not Path("/dev/shm").is_dir():
        pytest.skip("no /dev/shm")
    folder = tmp_path if on == "disk" else Path("/dev/shm")
    path = folder / f"review3-{tmp_path.name}.f64"
    try:
        mapped = MappedFiles()
        shape = (300, 1_537)  # not a whole number of pages a row
        array = mapped.open(path, np.float64, shape, writable=True)
        written = np.random.default_rng(1).random(shape)
        for at in range(0, shape[0], 7):
            array[at : at + 7] = written[at : at + 7]
            mapped.release()
            array[at] += 0.0  # a released page touched again, then released again
            mapped.release()
        code = (
            "import numpy as np, sys; "
            f"print(float(np.fromfile(sys.argv[1]).reshape({shape}).sum()).hex())"
        )
        read = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
        )
        assert float.fromhex(read.stdout.strip()) == float(written.sum())
        assert np.array_equal(np.fromfile(path).reshape(shape), written)
    finally:
        path.unlink(missing_ok=True)


def test_a_file_that_grows_after_mapping(tmp_path: Path) -> None:
    path = tmp_path / "m.f64"
    np.arange(1_024, dtype=np.float64).tofile(path)
    mapped = MappedFiles()
    first = mapped.open(path, np.float64)
    with open(path, "ab") as f:
        f.write(np.arange(1_024, 4_096, dtype=np.float64).tobytes())
    mapped.release()
    assert np.array_equal(first, np.arange(1_024))  # the old mapping: the old length, intact
    grown = mapped.open(path, np.float64, (4, 1_024))
    mapped.release()
    assert np.array_equal(grown.ravel(), np.arange(4_096))


def test_truncated_and_empty_files_are_refused_not_a_crash(tmp_path: Path) -> None:
    short = tmp_path / "short.f64"
    np.zeros(10).tofile(short)
    with pytest.raises(ValueError):
        MappedFiles().open(short, np.float64, (2, 10))  # asks for more than the file holds
    ragged = tmp_path / "ragged.u32"
    ragged.write_bytes(b"\x00" * 6)
    with pytest.raises(ValueError):
        MappedFiles().open(ragged, np.uint32)  # not a whole number of items
    (tmp_path / "empty").write_bytes(b"")
    assert MappedFiles().open(tmp_path / "empty", np.float64).shape == (0,)
    with pytest.raises(ValueError):
        MappedFiles().open(tmp_path / "empty", np.float64, (1, 3))


def test_a_cache_read_after_release_and_after_another_add(tmp_path: Path) -> None:
    ids = [f"row{k}" for k in range(50)]
    cache = RoundPredictionCache(tmp_path, 7, list(range(333)))
    rng = np.random.default_rng(2)
    first = {s: rng.random(333) for s in ids[:30]}
    cache.add(first.items())
    predictions, sorted_rows = cache.matrices()
    cache.release()
    later = {s: rng.random(333) for s in ids[30:]}
    cache.add(later.items())
    cache.release()
    for s, values in first.items():  # the arrays mapped before, still right
        assert np.array_equal(predictions[cache.row_of(s)], values)
        assert np.array_equal(sorted_rows[cache.row_of(s)], np.sort(values))
    now, _ = cache.matrices()
    for s, values in {**first, **later}.items():
        assert np.array_equal(now[cache.row_of(s)], values)


def test_repeated_matrices_do_not_pile_up_mappings(tmp_path: Path) -> None:
    cache = RoundPredictionCache(tmp_path, 7, list(range(64)))
    cache.add((f"s{k}", np.full(64, k / 10)) for k in range(8))
    for _ in range(50):
        predictions, _ = cache.matrices()
        del predictions
        cache.release()
    assert mappings_of(cache.directory / "predictions.f64") <= 2
