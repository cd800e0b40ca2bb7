"""A round's scored predictions on disk, so a run parses only the files it has not seen.

Originality compares each new submission with many earlier ones of its round; re-reading and
re-parsing their CSV files in every run would make I/O, not math, decide how fast a round is
scored. Once read and validated, a submission's predictions (float64, in the round's
tournament-id order) and their sorted copy are appended here, and later runs memory-map them.

Layout, under ``<root>/round-<round>/<fingerprint>/`` where the fingerprint is a hash of the
round's tournament ids (a rematerialized dataset with other ids gets a fresh, empty cache):

- ``predictions.f64``, ``sorted.f64``: ``N x n`` float64 matrices, row ``k`` for submission
  ``index.json["submissions"][k]``;
- ``index.json``: written last (temp file + rename), so rows past its count — left by a process
  that died while appending — are ignored and overwritten;
- ``<name>.f64`` + ``<name>.json``: per-row summaries of the sorted matrix (the KS sketches of
  phase 1), computed once per row and mapped by every process (:meth:`RoundPredictionCache.
  derived`).

The cache is derived data: delete it and it is rebuilt from the submission files as runs read
them, with identical scores. One writer per round at a time (the per-round run limit), guarded by
a file lock anyway.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from numerai_assets.prediction_cache.mapped import MappedFiles
from numerai_assets.prediction_cache.mirror import PredictionMirror

PREDICTIONS = "predictions.f64"
SORTED = "sorted.f64"
INDEX = "index.json"
ITEM = np.dtype(np.float64).itemsize
# Rows of a matrix read at a time, here (derived rows) and in phase 1 (standardized and
# multiplied): 45 MB at 45,000 columns. A power of two: phase 1's r values are then bit for bit
# those of 256-row chunks (BLAS sums edge blocks in another order; 100 rows differed).
CHUNK_ROWS = 128
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")


def fingerprint(tournament_ids: Sequence[object]) -> str:
    """Identifies the round's row order: predictions cached under another order are stale."""
    digest = hashlib.sha256("\n".join(map(str, tournament_ids)).encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class CacheLocation:
    """Where a round's cache lives: what another step of the run needs to open it again
    (:meth:`RoundPredictionCache.at`), without the round's tournament ids."""

    root: str
    round: int
    fingerprint: str
    columns: int


class RoundPredictionCache:
    """Append-only matrices of a round's predictions, addressed by submission id."""

    def __init__(
        self,
        root: Path,
        round: int,
        tournament_ids: Sequence[object],
        mirror: PredictionMirror | None = None,
        *,
        known: tuple[str, int] | None = None,
    ) -> None:
        self.round = round
        if known is None:
            self.columns, self.fingerprint = len(tournament_ids), fingerprint(tournament_ids)
        else:
            self.fingerprint, self.columns = known
        self.root = Path(root)
        self.mirror = mirror
        self.directory = Path(root) / f"round-{round}" / self.fingerprint
        self.directory.mkdir(parents=True, exist_ok=True)
        self._row_of: dict[str, int] = {}
        self._mapped = MappedFiles()
        self._matrices: tuple[tuple, tuple[np.ndarray, np.ndarray]] | None = None
        self._load_index()

    @classmethod
    def at(
        cls, location: CacheLocation, mirror: PredictionMirror | None = None
    ) -> RoundPredictionCache:
        """The cache at ``location`` (another step of the run made it)."""
        return cls(
            Path(location.root),
            location.round,
            (),
            mirror,
            known=(location.fingerprint, location.columns),
        )

    @property
    def location(self) -> CacheLocation:
        return CacheLocation(str(self.root), self.round, self.fingerprint, self.columns)

    def __len__(self) -> int:
        return len(self._row_of)

    def refresh(self) -> None:
        """Read the index again: what other processes appended since this one read it."""
        self._load_index()

    def __contains__(self, submission_id: object) -> bool:
        return str(submission_id) in self._row_of

    def row_of(self, submission_id: object) -> int:
        return self._row_of[str(submission_id)]

    def rows_of(self, submission_ids: Iterable[object]) -> np.ndarray:
        return np.array([self._row_of[str(s)] for s in submission_ids], dtype=np.int64)

    def predictions_of(self, submission_id: object) -> np.ndarray | None:
        """A cached submission's predictions (a copy, shape ``(columns,)``), or None when not
        cached (or its row is not all there). One read of the row: safe from reader threads."""
        row = self._row_of.get(str(submission_id))
        if row is None:
            return None
        size = self.columns * ITEM
        with open(self.directory / PREDICTIONS, "rb") as f:
            data = os.pread(f.fileno(), size, row * size)
        if len(data) != size:
            return None
        return np.frombuffer(data, dtype=np.float64).copy()

    def from_mirror(self, submission_id: object) -> np.ndarray | None:
        """A submission's predictions from the mirror (None without one, or when absent)."""
        if self.mirror is None:
            return None
        return self.mirror.get(self.round, self.fingerprint, str(submission_id), self.columns)

    def add(self, items: Iterable[tuple[object, np.ndarray]], *, mirrored: bool = False) -> int:
        """Append predictions not cached yet; returns how many were added.

        New rows are also copied to the mirror, unless they came from it (``mirrored``).
        """
        new = [(str(s), p) for s, p in items if str(s) not in self._row_of]
        new = list(dict(new).items())  # one row per submission, even if given twice
        if not new:
            return 0
        if self.mirror is not None and not mirrored:
            for submission_id, predictions in new:
                self.mirror.put(self.round, self.fingerprint, submission_id, predictions)
        with self._lock():
            self._load_index()  # another process may have appended meanwhile
            new = [(s, p) for s, p in new if s not in self._row_of]
            if not new:
                return 0
            start = len(self._row_of)
            block = np.empty((len(new), self.columns))
            for k, (_, predictions) in enumerate(new):
                if predictions.shape != (self.columns,):
                    raise ValueError(
                        f"predictions must have shape ({self.columns},), got {predictions.shape}"
                    )
                block[k] = predictions
            for name, values in ((PREDICTIONS, block), (SORTED, np.sort(block, axis=1))):
                with open(
                    self.directory / name, "r+b" if (self.directory / name).exists() else "w+b"
                ) as f:
                    f.seek(start * self.columns * ITEM)
                    f.write(np.ascontiguousarray(values).tobytes())
                    f.truncate()
                    f.flush()
                    os.fsync(f.fileno())
            order = [*self._ordered_ids(), *(s for s, _ in new)]
            self._write_index(order)
            self._row_of = {s: k for k, s in enumerate(order)}
        return len(new)

    def matrices(self) -> tuple[np.ndarray, np.ndarray]:
        """(predictions, sorted) as read-only memory maps of ``len(self)`` rows (mapped again
        only when rows were added since the last call, or the files are other files: the
        cache was deleted and rebuilt under this process)."""
        shape = (len(self), self.columns)
        if not len(self):
            empty = np.empty(shape)
            return empty, empty
        files = tuple(self.directory / name for name in (PREDICTIONS, SORTED))
        key = (len(self), *(_identity(f) for f in files))
        if self._matrices is None or self._matrices[0] != key:
            maps = tuple(self._mapped.open(f, np.float64, shape) for f in files)
            self._matrices = (key, maps)  # type: ignore[assignment]
        return self._matrices[1]

    def release(self) -> None:
        """Drop the mapped pages from this process's memory (they stay in the page cache)."""
        self._mapped.release()

    def derived(
        self, name: str, width: int, compute: Callable[[np.ndarray], np.ndarray]
    ) -> np.ndarray:
        """A per-row summary of the sorted matrix, kept beside it: row ``k`` is
        ``compute(sorted[a:b])[k - a]`` (``compute`` maps a block of sorted rows to a float64
        block of ``width`` columns, row by row, the same rows whatever the block).

        Kept in ``<name>.f64``, with ``<name>.json`` (rows, width, SHA-256 of the rows'
        submission ids, CRC-32 of the rows) written after the rows are on disk: every process
        of a run maps the one file (the kernel holds one copy; a shard computes nothing another
        has), and each row is computed once, when first asked for, under the cache's lock,
        :data:`CHUNK_ROWS` sorted rows at a time. A file that does not hold what its record says
        (torn, truncated, overwritten, kept for another cache or width) is computed again into
        a new file; one a reader has mapped is never written over.

        Returns
        -------
        ndarray of shape ``(len(self), width)``, float64, read-only (a mapping outside
        :meth:`release`'s: what it holds is shared, and read again and again).

        Raises
        ------
        ValueError
            If ``name`` is not a plain file name, or ``compute`` returns another shape.
        """
        if not _PLAIN_NAME.fullmatch(name) or name in {
            Path(f).stem for f in (INDEX, PREDICTIONS, SORTED)
        }:
            raise ValueError(f"derived name must be a plain name, got {name!r}")
        path, record_path = self.directory / f"{name}.f64", self.directory / f"{name}.json"
        with self._lock():
            # Under the lock no other process derives: a temp file here is a dead one's.
            for left in self.directory.glob(f".{name}.f64.*"):
                left.unlink(missing_ok=True)
            self._load_index()  # the rows on disk now (another process may have appended)
            ids = self._ordered_ids()
            kept = _kept_rows(path, record_path, width, ids)
            if kept is None or kept[0] < len(ids):
                self._derive(path, record_path, width, compute, ids, kept)
        size = len(ids)
        if not size:
            return np.empty((0, width))
        return MappedFiles().open(path, np.float64, (size, width))

    def _derive(
        self,
        path: Path,
        record_path: Path,
        width: int,
        compute: Callable[[np.ndarray], np.ndarray],
        ids: list[str],
        kept: tuple[int, int] | None,
    ) -> None:
        """Append the rows ``kept`` lacks (all, into a new file, when it is None)."""
        start, crc = kept if kept is not None else (0, 0)
        target = path if kept is not None else path.with_name(f".{path.name}.{os.getpid()}")
        _, sorted_rows = self.matrices()
        try:
            crc = self._append_derived(target, width, compute, sorted_rows, start, len(ids), crc)
            if target != path:
                _clear(path)
                os.replace(target, path)  # a mapping of the old file keeps the old file
        except BaseException:
            if target != path:
                target.unlink(missing_ok=True)
            raise
        _clear(record_path)
        record = {"rows": len(ids), "width": width, "ids": ids_digest(ids), "crc32": crc}
        tmp = record_path.with_name(f".{record_path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, record_path)

    def _append_derived(
        self,
        target: Path,
        width: int,
        compute: Callable[[np.ndarray], np.ndarray],
        sorted_rows: np.ndarray,
        start: int,
        stop: int,
        crc: int,
    ) -> int:
        """Write the derived rows ``start .. stop-1`` into ``target``; returns the CRC-32 of
        rows ``0 .. stop-1`` (``crc`` being that of the rows before ``start``)."""
        with open(target, "r+b" if target.exists() else "w+b") as f:
            f.seek(start * width * ITEM)
            for at in range(start, stop, CHUNK_ROWS):
                block = np.ascontiguousarray(compute(sorted_rows[at : at + CHUNK_ROWS]))
                self.release()
                if block.dtype != np.float64 or block.shape != (
                    min(CHUNK_ROWS, stop - at),
                    width,
                ):
                    raise ValueError(
                        f"compute must return float64 rows of width {width}, got {block.dtype} "
                        f"{block.shape}"
                    )
                data = block.tobytes()
                f.write(data)
                crc = zlib.crc32(data, crc)
            f.truncate()
            f.flush()
            os.fsync(f.fileno())
        return crc

    # Internals

    def _ordered_ids(self) -> list[str]:
        return sorted(self._row_of, key=self._row_of.__getitem__)

    def _load_index(self) -> None:
        path = self.directory / INDEX
        if not path.exists():
            self._row_of = {}
            return
        index = json.loads(path.read_text())
        ids = index["submissions"]
        rows_on_disk = min(
            (self.directory / n).stat().st_size // (self.columns * ITEM)
            if (self.directory / n).exists()
            else 0
            for n in (PREDICTIONS, SORTED)
        )
        if index.get("columns") != self.columns or rows_on_disk < len(ids):
            ids = []  # torn or foreign: start again (it is derived data)
        self._row_of = {s: k for k, s in enumerate(ids)}

    def _write_index(self, ids: list[str]) -> None:
        tmp = self.directory / f".{INDEX}.{os.getpid()}"
        tmp.write_text(json.dumps({"columns": self.columns, "submissions": ids}))
        os.replace(tmp, self.directory / INDEX)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        with open(self.directory / ".lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def ids_digest(ids: Sequence[str]) -> str:
    """SHA-256 of a list of ids, unambiguous whatever the ids hold (their JSON: ids joined by a
    separator made ``["a\\nb", "c"]`` and ``["a", "b\\nc"]`` one digest)."""
    return hashlib.sha256(json.dumps(list(ids)).encode()).hexdigest()


def _kept_rows(
    path: Path, record_path: Path, width: int, ids: Sequence[str]
) -> tuple[int, int] | None:
    """(rows, CRC-32 of them) of a derived file that holds what its record says for these
    submissions (its first rows' ids are ``ids``' first), else None."""
    try:
        record = json.loads(record_path.read_text())
        rows, crc = record["rows"], record["crc32"]
        if (
            record["width"] != width
            or not isinstance(rows, int)
            or not 0 <= rows <= len(ids)
            or record["ids"] != ids_digest(ids[:rows])
            or path.stat().st_size < rows * width * ITEM
        ):
            return None
        got = 0
        with open(path, "rb") as f:
            left = rows * width * ITEM
            while left:
                data = f.read(min(left, 1 << 23))
                if not data:
                    return None
                got, left = zlib.crc32(data, got), left - len(data)
        return (rows, got) if got == crc else None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return None


def _identity(path: Path) -> tuple[int, int]:
    """Which file ``path`` is (device, inode): a rebuilt cache's files are other files."""
    stat = path.stat()
    return stat.st_dev, stat.st_ino


def _clear(path: Path) -> None:
    """Make way for a file at ``path``: a directory (or anything not a file) there is removed."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
