"""Memory-mapped files whose pages a process gives back as it goes.

A round's matrices (its predictions, their sorted copy, the pair store's blocks, a shard's
scratch rows) are larger than a run may hold: at 10,000 submissions × 45,000 rows each
prediction matrix is 3.6 GB. They are read through memory maps, and every page a process has
touched counts in its resident size until the mapping goes away, so a step that walks a matrix
end to end would end up "holding" all of it. :meth:`MappedFiles.release` drops the pages from
the process (``madvise(MADV_DONTNEED)``): for a file mapping that only unmaps them, the data
stays in the file and in the kernel's page cache (a shared mapping's written pages included:
Linux carries their dirty bit over when it unmaps them), and the next access maps them again.
"""

from __future__ import annotations

import contextlib
import mmap
from pathlib import Path

import numpy as np


class MappedFiles:
    """The mappings one reader opened, released together."""

    def __init__(self) -> None:
        self._maps: list[mmap.mmap] = []

    def open(
        self,
        path: Path,
        dtype: type,
        shape: tuple[int, ...] | None = None,
        *,
        writable: bool = False,
    ) -> np.ndarray:
        """``path`` as an array of ``dtype`` and ``shape`` (default: the whole file, flat).

        ``writable`` maps a file of exactly that size, made or resized here, for writing (a
        shared mapping: what is written is the file's). An empty file is an empty array.
        """
        item = np.dtype(dtype).itemsize
        if writable:
            if shape is None:
                raise ValueError("a writable mapping needs its shape")
            size = int(np.prod(shape)) * item
            with open(path, "a+b") as f:
                f.truncate(size)
                if not size:
                    return np.empty(shape, dtype=dtype)
                mapped = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_WRITE)
        else:
            with open(path, "rb") as f:
                length = f.seek(0, 2) if shape is None else int(np.prod(shape)) * item
                if not length:
                    return np.empty(shape or (0,), dtype=dtype)
                mapped = mmap.mmap(f.fileno(), length, access=mmap.ACCESS_READ)
        self._maps.append(mapped)
        array = np.frombuffer(mapped, dtype=dtype)
        return array if shape is None else array.reshape(shape)

    def release(self) -> None:
        """Drop every mapped page from this process (the data stays in the files)."""
        for mapped in self._maps:
            with contextlib.suppress(ValueError, OSError):  # closed meanwhile: nothing held
                mapped.madvise(mmap.MADV_DONTNEED)

    def flush(self) -> None:
        """Write what the writable mappings hold to their files, and wait for the disk
        (``msync(MS_SYNC)``; nothing for a read-only mapping)."""
        for mapped in self._maps:
            with contextlib.suppress(ValueError):  # closed meanwhile: nothing to write
                mapped.flush()
