"""The statistics of a round's pairs of submissions, computed once and kept beside its cache.

Phase 1 of scoring a round's originality. A pair's Pearson r and KS count depend on its two
files only, never on a decision, so each pair is computed once, when the later of its two
submissions enters the store, and kept for the round; the decisions (phase 2,
:func:`numerai_assets.scoring.round_decisions.decide_in_order`) then read them. A late upload
costs its own pairs and the pass, never the pairs of two other submissions again.

Layout, under the round's cache folder (``<cache>/round-<r>/<fingerprint>/pairs/``):

- ``order.json``: the cache keys (submission id + the file's SHA-256) in the order they entered
  the store (positions ``0 .. N-1``); appended by the run that plans new pairs (one writer per
  round: the round's lease), written atomically.
- ``block-<start>-<stop>/``: the pairs of positions ``start <= g < stop`` with every earlier
  position, laid out as one triangular array: pair ``(g, h)`` with ``h < g`` at
  ``g (g - 1) / 2 + h - start (start - 1) / 2``. ``r.f64`` (Pearson r, NaN for a constant file),
  ``ks.u32`` (the KS count: exact where ``exact.u8`` is 1, else a lower bound above the policy's
  similar limit, :mod:`numerai_assets.scoring.ks_sketch`), ``exact.u8``, and ``manifest.json``:
  the SHA-256 of the keys of positions ``0 .. stop-1`` it was computed for, and each file's size
  and CRC-32. A block appears whole (written in a temporary folder, then renamed), so a run that
  dies leaves whole blocks only; a position with no block is computed by the next run.

The store is derived data, and nothing is decided from a part of it that does not hold what it
says: an ``order.json`` that does not parse, or names a key the prediction cache no longer holds
(the cache was reset), discards the whole store; a block whose manifest is missing or torn,
names other keys (the order was rebuilt otherwise) or whose files differ from it in size or
checksum (truncated, overwritten) is deleted. Either is computed again, by the next plan or by
phase 2 itself (``numerai_assets.batch.originality.score_originality``).

Blocks are independent, so a run computes them in parallel (the shards of the scoring graph,
one per worker). Keyed by content: a replaced file is a new key with pairs of its own.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from numerai_assets.prediction_cache.mapped import MappedFiles
from numerai_assets.prediction_cache.pair_ks import KsCounter, pruned_ks
from numerai_assets.prediction_cache.round_cache import (
    CHUNK_ROWS,
    RoundPredictionCache,
    ids_digest,
)

# The kernels (numba) are imported in the functions that compute pairs: loading the code
# location (the daemon, each run's process) then does not import numba.

ORDER = "order.json"
MANIFEST = "manifest.json"
FILES = {"r": ("r.f64", np.float64), "ks": ("ks.u32", np.uint32), "exact": ("exact.u8", np.uint8)}


def triangle(g: int | np.ndarray) -> int | np.ndarray:
    """How many pairs lie before position ``g``'s: ``g (g - 1) / 2``."""
    return g * (g - 1) // 2


@dataclass(frozen=True)
class Shard:
    """Positions ``start <= g < stop`` of the store's order: one block of phase 1."""

    start: int
    stop: int

    @property
    def pairs(self) -> int:
        return triangle(self.stop) - triangle(self.start)


def shards(start: int, stop: int, count: int, *, min_pairs: int = 1) -> list[Shard]:
    """Positions ``[start, stop)`` cut into at most ``count`` shards of about equal pairs (a
    later position has more earlier ones), none smaller than ``min_pairs`` unless alone."""
    total = triangle(stop) - triangle(start)
    if stop <= start:
        return []
    count = max(1, min(count, stop - start, max(1, total // max(min_pairs, 1))))
    cuts = [start]
    for k in range(1, count):
        target = triangle(start) + total * k / count
        g = int(math.ceil((1 + math.sqrt(1 + 8 * target)) / 2))  # first g with tri(g) >= target
        if cuts[-1] < g < stop:
            cuts.append(g)
    return [Shard(a, b) for a, b in zip(cuts, [*cuts[1:], stop], strict=True)]


class RoundPairStore:
    """The pair statistics of one round's cached predictions (see the module docstring)."""

    def __init__(self, cache: RoundPredictionCache) -> None:
        self.cache = cache
        self.directory = cache.directory / "pairs"
        self.directory.mkdir(parents=True, exist_ok=True)
        # Blocks this instance wrote or checked: not read again for their checksums (a step
        # plans, computes what is missing and reads the table within seconds).
        self._checked: set[Shard] = set()

    # The order

    def order(self) -> list[str]:
        """The cache keys by position. A torn or foreign ``order.json``, or one naming a key the
        cache does not hold (the cache was reset), discards the whole store: it is rebuilt."""
        path = self.directory / ORDER
        if not path.exists():
            return []
        try:
            order = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError):
            order = None
        if (
            isinstance(order, list)
            and all(isinstance(key, str) for key in order)
            and len(set(order)) == len(order)
        ):
            if all(key in self.cache for key in order):
                return order
            self.cache.refresh()  # another process may have added keys since this one read
            if all(key in self.cache for key in order):
                return order
        self._discard()
        return []

    def extend_order(self, keys: Sequence[str]) -> list[str]:
        """Append the cache keys not in the order yet (each once, in the given order)."""
        order = self.order()
        known = set(order)
        new = [key for key in dict.fromkeys(keys) if key not in known]
        if new:
            order = [*order, *new]
            _write_atomically(self.directory / ORDER, json.dumps(order).encode())
        return order

    # Blocks

    def blocks(self) -> list[Shard]:
        """The whole blocks present that hold what they say, by start, none overlapping.

        A block that does not hold what its manifest says (:func:`_intact`) is deleted, so its
        positions are planned again; so is one overlapping a block kept before it (by start,
        the longest first: two planners cut the same gap differently, say a run that lost its
        lease and the one that took over). A block reaching past the order as read here is
        left alone (another process may have extended the order since), and not used."""
        order = self.order()
        intact = []
        for path in self.directory.glob("block-*-*"):
            shard = _shard_named(path.name)
            if shard is None:
                shutil.rmtree(path, ignore_errors=True)
            elif shard.stop <= len(order):
                if shard in self._checked or _intact(path, shard, order):
                    intact.append(shard)
                    self._checked.add(shard)
                else:
                    shutil.rmtree(path, ignore_errors=True)
        found, covered = [], 0
        for shard in sorted(intact, key=lambda s: (s.start, -s.stop)):
            if shard.start >= covered:
                found.append(shard)
                covered = shard.stop
            else:
                shutil.rmtree(block_path(self.directory, shard), ignore_errors=True)
                self._checked.discard(shard)
        return found

    def missing(self, size: int) -> list[tuple[int, int]]:
        """The ranges of positions below ``size`` that no block holds yet."""
        gaps, at = [], 0
        for block in self.blocks():
            if block.start > at:
                gaps.append((at, min(block.start, size)))
            at = max(at, block.stop)
        if at < size:
            gaps.append((at, size))
        return [(a, b) for a, b in gaps if a < b]

    def plan(self, keys: Sequence[str], workers: int, *, min_pairs: int = 1) -> list[Shard]:
        """Append ``keys`` (the cache keys of every submission that may be compared) to the
        order, and cut what no block holds yet into shards for ``workers``, none smaller than
        ``min_pairs`` unless alone (phase 1; the pipeline's minimum is a setting,
        ``NUMERAI_MIN_PAIRS_PER_SHARD``).

        Deletes the scratch folders (``.block-*``) of shards that never finished: the planner
        is the round's one writer (its lease), no shard of the round computes while it plans,
        so what is there was left by a process that died (up to a shard's standardized rows:
        a gigabyte at 10,000 submissions), or by a run that lost its lease (its shard then
        fails, as it must)."""
        for scratch in self.directory.glob(".block-*"):
            shutil.rmtree(scratch, ignore_errors=True)
        order = self.extend_order(keys)
        return [
            shard
            for start, stop in self.missing(len(order))
            for shard in shards(start, stop, workers, min_pairs=min_pairs)
        ]

    def compute(self, shard: Shard, exact_up_to: int, ks_counter: KsCounter | None = None) -> int:
        """Compute and store one block: Pearson r by blocked matrix products of standardized
        rows, KS counts by ``ks_counter`` (default :func:`pruned_ks`: exact where they can
        decide, a lower bound elsewhere). Returns how many KS counts are exact.

        Memory stays bounded whatever the round's size: the shard's standardized rows wait in
        a scratch file, the block's results are written straight into its files (mapped), and
        every matrix is read :data:`CHUNK_ROWS` rows at a time, each mapping's pages released
        as it goes: a process holds a chunk of rows and the KS sketches, not the block (13 bytes
        a pair: 160 MB for a quarter of a round of 10,000).
        """
        from numerai_assets.scoring.correlation import correlation_block, standardized

        order = self.order()
        if shard.stop > len(order):
            raise ValueError(f"shard {shard} reaches past the order's {len(order)} positions")
        rows = self.cache.rows_of(order[: shard.stop])  # cache row of each position
        predictions, sorted_rows = self.cache.matrices()
        if ks_counter is None:
            ks_counter = pruned_ks(self.cache, sorted_rows.shape[0])
        base = triangle(shard.start)
        with self._writing_block(shard, _keys_digest(order, shard)) as (scratch, out, maps):
            r, ks, exact = out["r"], out["ks"], out["exact"]
            new_maps = MappedFiles()  # the shard's own rows, standardized once
            new = new_maps.open(
                scratch / "new.f64",
                np.float64,
                (shard.stop - shard.start, self.cache.columns),
                writable=True,
            )
            for at in range(0, len(new), CHUNK_ROWS):
                chunk = rows[shard.start + at : shard.start + at + CHUNK_ROWS]
                new[at : at + len(chunk)] = standardized(predictions[chunk], overwrite_input=True)
                self.cache.release()
                new_maps.release()
            for old_at in range(0, shard.stop - 1, CHUNK_ROWS):  # earlier rows, a chunk at once
                old = standardized(
                    predictions[rows[old_at : old_at + CHUNK_ROWS]], overwrite_input=True
                )
                self.cache.release()
                first_new = max(shard.start, old_at + 1)  # positions with pairs in this chunk
                for at in range(first_new - shard.start, len(new), CHUNK_ROWS):
                    block = correlation_block(new[at : at + CHUNK_ROWS], old)
                    for k in range(block.shape[0]):
                        g = shard.start + at + k
                        width = min(g, old_at + CHUNK_ROWS) - old_at
                        if width > 0:
                            start = triangle(g) - base + old_at
                            r[start : start + width] = block[k, :width]
                    maps.release()
                    new_maps.release()
                del old
            del new, new_maps  # unmapped: the scratch file goes before the block is renamed
            (scratch / "new.f64").unlink()
            exact_counts = 0
            for g in range(max(shard.start, 1), shard.stop):
                counts, known = ks_counter(
                    np.array(sorted_rows[rows[g]]), sorted_rows, rows[:g], exact_up_to
                )
                at = triangle(g) - base
                ks[at : at + g] = counts
                exact[at : at + g] = known
                exact_counts += int(np.count_nonzero(known))
                self.cache.release()
                maps.release()
        return exact_counts

    def table(self) -> PairTable:
        """Every stored pair, for the ordered pass (phase 2)."""
        return PairTable(self.order(), self.directory, self.blocks())

    def _discard(self) -> None:
        """Delete the order and every block (the store is rebuilt from nothing)."""
        self._checked.clear()
        (self.directory / ORDER).unlink(missing_ok=True)
        for path in self.directory.glob("block-*-*"):
            shutil.rmtree(path, ignore_errors=True)

    @contextlib.contextmanager
    def _writing_block(
        self, shard: Shard, keys: str
    ) -> Iterator[tuple[Path, dict[str, np.ndarray], MappedFiles]]:
        """A block's files, mapped for writing in a scratch folder: yields the folder, the
        arrays by name (:data:`FILES`) and their mappings. When the body returns, the files are
        flushed, checksummed into the manifest and the folder renamed into place (a block
        appears whole, or not at all); when it raises, the folder is deleted."""
        final = block_path(self.directory, shard)
        scratch = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=self.directory))
        try:
            maps = MappedFiles()
            out = {
                name: maps.open(scratch / filename, dtype, (shard.pairs,), writable=True)
                for name, (filename, dtype) in FILES.items()
            }
            yield scratch, out, maps
            del out
            maps.flush()  # what the mappings wrote, on disk before it is checksummed
            manifest: dict = {"start": shard.start, "stop": shard.stop, "keys": keys, "files": {}}
            for filename, _ in FILES.values():
                size = (scratch / filename).stat().st_size
                manifest["files"][filename] = {"bytes": size, "crc32": _crc32(scratch / filename)}
            with open(scratch / MANIFEST, "wb") as f:
                f.write(json.dumps(manifest).encode())
                f.flush()
                os.fsync(f.fileno())
            try:
                os.replace(scratch, final)
            except OSError:
                if not final.exists():
                    raise
                return  # another worker wrote the same block first: theirs stands
            self._checked.add(shard)
        finally:
            if scratch.exists():
                shutil.rmtree(scratch, ignore_errors=True)


class PairTable:
    """Read access to a round's stored pairs by positions (memory-mapped blocks)."""

    def __init__(self, order: list[str], directory: Path, blocks: list[Shard]) -> None:
        self.order = order
        self.position = {key: g for g, key in enumerate(order)}
        self._blocks = blocks
        self._starts = np.array([b.start for b in blocks], dtype=np.int64)
        self._mapped = MappedFiles()
        self._maps = [
            {
                name: self._mapped.open(block_path(directory, b) / filename, dtype)
                for name, (filename, dtype) in FILES.items()
            }
            for b in blocks
        ]

    def covered(self, key: str) -> bool:
        """Whether every pair of ``key`` with an earlier position is stored."""
        g = self.position.get(key)
        if g is None:
            return False
        k = int(np.searchsorted(self._starts, g, side="right")) - 1
        return k >= 0 and self._blocks[k].start <= g < self._blocks[k].stop

    def pairs(self, g: int, others: np.ndarray) -> dict[str, np.ndarray]:
        """``r``, ``ks`` and ``exact`` of position ``g`` with each of ``others`` (positions)."""
        others = np.asarray(others, dtype=np.int64)
        high, low = np.maximum(g, others), np.minimum(g, others)
        index = triangle(high) + low
        which = np.searchsorted(self._starts, high, side="right") - 1
        out = {name: np.empty(len(others), dtype=dtype) for name, (_, dtype) in FILES.items()}
        for k in np.unique(which):
            pick = which == k
            local = index[pick] - triangle(self._blocks[k].start)
            for name in FILES:
                out[name][pick] = self._maps[k][name][local]
        return out

    def release(self) -> None:
        """Drop the blocks' mapped pages from this process (they stay in the files)."""
        self._mapped.release()


def block_path(directory: Path, shard: Shard) -> Path:
    return directory / f"block-{shard.start}-{shard.stop}"


_BLOCK_NAME = re.compile(r"block-(0|[1-9][0-9]*)-([1-9][0-9]*)")


def _shard_named(name: str) -> Shard | None:
    """The shard a block folder's name gives, None unless it is exactly the name
    :func:`block_path` writes (``block-<start>-<stop>``, ASCII digits, no leading zero)."""
    match = _BLOCK_NAME.fullmatch(name)
    if match is None:
        return None
    start, stop = int(match[1]), int(match[2])
    return Shard(start, stop) if start < stop else None


def _keys_digest(order: Sequence[str], shard: Shard) -> str:
    """SHA-256 of the keys of positions ``0 .. stop-1``: what a block's pairs were computed for."""
    return ids_digest(order[: shard.stop])


def _intact(path: Path, shard: Shard, order: Sequence[str]) -> bool:
    """Whether the block at ``path`` holds what its manifest says, for these keys: the manifest
    parses and names this shard and ``order``'s keys, and each file has the size its pairs take
    and the manifest's CRC-32 (a truncated or overwritten file is caught; the store is written
    by this code only, so a checksum against accidents is enough)."""
    if shard.stop > len(order):
        return False
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        files = manifest["files"]
        if (
            manifest["start"] != shard.start
            or manifest["stop"] != shard.stop
            or manifest["keys"] != _keys_digest(order, shard)
        ):
            return False
        for filename, dtype in FILES.values():
            expected = shard.pairs * np.dtype(dtype).itemsize
            recorded = files[filename]
            if (path / filename).stat().st_size != expected or recorded["bytes"] != expected:
                return False
            if _crc32(path / filename) != recorded["crc32"]:
                return False
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return False
    return True


def _crc32(path: Path, chunk: int = 1 << 23) -> int:
    crc = 0
    with open(path, "rb") as f:
        while data := f.read(chunk):
            crc = zlib.crc32(data, crc)
    return crc


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
