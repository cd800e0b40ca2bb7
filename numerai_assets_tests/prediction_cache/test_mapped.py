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
