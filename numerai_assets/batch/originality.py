"""A batch's originality: the round's predictions from its cache, the statistics of each
compared pair, and the decisions of one pass over the round in order
(:func:`numerai_assets.scoring.round_decisions.decide_in_order`, the one originality path)."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from numerai_assets.batch.files import SubmissionFiles, cache_key
from numerai_assets.batch.prepare import PreparedBatch, read_entry
from numerai_assets.prediction_cache import RoundPredictionCache
from numerai_assets.scoring.comparison import Member
from numerai_assets.scoring.correlation import correlations
from numerai_assets.scoring.exact import abs_correlation_exceeds
from numerai_assets.scoring.ks import ks_counts
from numerai_assets.scoring.round_decisions import OriginalityDecision, decide_in_order
from numerai_assets.store import SubmissionStore
from numerai_assets.store.documents import comparable, member_of, order_of
from numerai_assets.store.validation import malformed_reason

# Earlier submissions are compared in chunks of this many rows: about 180 MB of a 45,000-row round
# mapped at a time, released after each chunk.
COMPARE_CHUNK = 256
CACHE_CHUNK = 64  # earlier files read and appended to the cache at a time
PROGRESS_EVERY = 50


@dataclass(frozen=True)
class OriginalityScores:
    """What :func:`score_originality` decided: each valid submission's decision, by id (as
    text), and the user of every submission a decision names (matches and nearest pairs)."""

    decisions: dict[str, OriginalityDecision]
    users: dict[Hashable, str]


class CachedPairStatistics:
    """Pair statistics computed on demand from the round's prediction cache, memory-mapped and
    read in chunks of :data:`COMPARE_CHUNK` rows (bounded memory however large the round).

    ``keys`` maps each comparable submission's id to its key in the cache.
    """

    def __init__(self, cache: RoundPredictionCache, keys: Mapping[Hashable, str]) -> None:
        self._cache = cache
        self._predictions, self._sorted = cache.matrices()
        self._row = {submission_id: cache.row_of(key) for submission_id, key in keys.items()}
        self.n_rows = cache.columns

    def available(self, submission_id: Hashable) -> bool:
        return submission_id in self._row

    def compare(
        self, submission_id: Hashable, earlier_ids: Sequence[Hashable], exact_up_to: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every count exact (``exact_up_to`` is not needed)."""
        new = np.array(self._predictions[self._row[submission_id]])
        rows = np.array([self._row[i] for i in earlier_ids], dtype=np.int64)
        correlation = np.empty(len(rows))
        counts = np.empty(len(rows), dtype=np.int64)
        for start in range(0, len(rows), COMPARE_CHUNK):
            pick = rows[start : start + COMPARE_CHUNK]
            part = slice(start, start + len(pick))
            correlation[part] = correlations(new, self._predictions, rows=pick)
            counts[part] = ks_counts(new, self._sorted, earlier_sorted=True, rows=pick)
            self._cache.release()
        return correlation, counts

    def correlated(self, submission_id: Hashable, earlier_id: Hashable, threshold: float) -> bool:
        return abs_correlation_exceeds(
            self._predictions[self._row[submission_id]],
            self._predictions[self._row[earlier_id]],
            threshold,
        )

    def ks_count(self, submission_id: Hashable, earlier_id: Hashable) -> int:
        return int(self.compare(submission_id, [earlier_id])[1][0])


def fill_cache(
    cache: RoundPredictionCache,
    files: SubmissionFiles,
    batch: PreparedBatch,
    docs: Iterable[Mapping],
    log: Callable[[str], None] = lambda message: None,
) -> dict:
    """Make sure every submission this batch may compare against is in the cache.

    The batch's own predictions were read already; earlier submissions missing from the cache
    (a new cache, one made stale by a new dataset, or a file replaced since) are read from their
    files once, here. Returns the cache key of every readable submission by ``_id``; those
    whose files cannot be read are absent: they are nobody's original.
    """
    keys = {entry.submission["_id"]: entry.cache_key for entry in batch.valid()}
    cache.add((entry.cache_key, entry.predictions) for entry in batch.valid())
    if not batch.entries:
        return keys
    # Only submissions created before the batch's last one can be compared against: later ones
    # (queued for the next batch of a burst) are left for their own run.
    last = max(order_of(entry.submission) for entry in batch.entries)
    in_batch = {entry.submission["_id"] for entry in batch.entries}  # read already, or refused
    missing = []
    for d in docs:
        if not comparable(d) or order_of(d) >= last or d["_id"] in in_batch:
            continue
        key = cache_key(d["_id"], d.get("file_digest"))
        if key in cache:
            keys[d["_id"]] = key
        else:
            missing.append(d)
    started = time.monotonic()
    from_mirror = 0
    for start in range(0, len(missing), CACHE_CHUNK):
        mirrored, parsed = [], []
        for doc in missing[start : start + CACHE_CHUNK]:
            key = cache_key(doc["_id"], doc.get("file_digest"))
            predictions = cache.from_mirror(key)
            if predictions is not None:
                mirrored.append((key, predictions))
                keys[doc["_id"]] = key
                continue
            entry = read_entry(files, doc, batch.policy, log)
            if entry.predictions is not None:
                parsed.append((entry.cache_key, entry.predictions))
                keys[doc["_id"]] = entry.cache_key
        cache.add(mirrored, mirrored=True)
        cache.add(parsed)
        from_mirror += len(mirrored)
        done = min(start + CACHE_CHUNK, len(missing))
        rate = done / max(time.monotonic() - started, 1e-9)
        log(
            f"prediction cache: {done}/{len(missing)} earlier submissions loaded "
            f"({from_mirror} from the mirror, the rest from their files; {rate:.0f}/s)"
        )
    return keys


def score_originality(
    batch: PreparedBatch,
    store: SubmissionStore,
    files: SubmissionFiles,
    cache: RoundPredictionCache,
    log: Callable[[str], None] = lambda message: None,
) -> OriginalityScores:
    """Originality of every valid submission of the batch, in (``created``, ``_id``) order.

    The round as stored now (the batch pending, later submissions with their recorded
    decisions) is walked in order; each submission of the batch is compared, by the comparison
    rule, with what the pass has decided before it. So one run per submission and one run for
    all give the same decisions.
    """
    known = [doc for doc in store.round_submissions(batch.round) if malformed_reason(doc) is None]
    keys = fill_cache(cache, files, batch, known, log)
    members: dict[Hashable, Member] = {doc["_id"]: member_of(doc) for doc in known}
    for entry in batch.entries:
        doc = entry.submission
        if entry.invalid_reason is not None:  # refused here: nobody's earlier submission
            members[doc["_id"]] = Member(doc["_id"], doc["username"], doc["created"], False)
        elif entry.predictions is not None:  # pending until decided below
            members[doc["_id"]] = Member(doc["_id"], doc["username"], doc["created"], True)
    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        if done % PROGRESS_EVERY == 0 or done == total:
            rate = done / max(time.monotonic() - started, 1e-9)
            log(f"originality: {done}/{total} submissions ({rate:.1f}/s)")

    decisions = decide_in_order(
        members.values(),
        {entry.submission["_id"] for entry in batch.valid()},
        CachedPairStatistics(cache, keys),
        batch.policy,
        progress=progress,
    )
    return OriginalityScores(
        {str(submission_id): decision for submission_id, decision in decisions.items()},
        {submission_id: member.user for submission_id, member in members.items()},
    )
