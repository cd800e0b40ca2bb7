"""A batch's originality in two phases, over the round's cache.

1. **Pair statistics** (:func:`plan_pairs`, then :func:`compute_pairs` for each shard, in
   parallel on the run's workers): every pair of the round's cached submissions not yet in the
   round's pair store (:class:`~numerai_assets.prediction_cache.pairs.RoundPairStore`) is
   computed once: Pearson r by blocked matrix products, KS counts exact where a threshold could
   depend on them and a bound elsewhere.
2. **Decisions** (:func:`score_originality`, one step): one pass over the round in (``created``,
   ``_id``) order (:func:`numerai_assets.scoring.round_decisions.decide_in_order`, the one
   originality path), reading the stored pairs; each submission of the batch is compared, by
   the comparison rule, with what the pass has decided before it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from numerai_assets.batch.prepare import PreparedBatch
from numerai_assets.prediction_cache import RoundPredictionCache
from numerai_assets.prediction_cache.pairs import PairTable, RoundPairStore, Shard
from numerai_assets.scoring.comparison import Member
from numerai_assets.scoring.exact import abs_correlation_exceeds
from numerai_assets.scoring.round_decisions import OriginalityDecision, decide_in_order
from numerai_assets.store.documents import member_of, order_of

# ks_counts (numba) is imported where counts are taken: loading the code location (the daemon,
# a run's start) does not import numba.

PROGRESS_EVERY = 50


@dataclass(frozen=True)
class OriginalityScores:
    """What :func:`score_originality` decided: each valid submission's decision, by id (as
    text), and the user of every submission a decision names (matches and nearest pairs)."""

    decisions: dict[str, OriginalityDecision]
    users: dict[Hashable, str]


def plan_pairs(
    batch: PreparedBatch, cache: RoundPredictionCache, workers: int, *, min_pairs: int
) -> list[Shard]:
    """The shards of phase 1: the pairs of every cached submission the batch may meet that
    the round's pair store does not hold yet, cut for ``workers`` into shards of at least
    ``min_pairs`` pairs (``NUMERAI_MIN_PAIRS_PER_SHARD``) unless alone; none when all are held."""
    return RoundPairStore(cache).plan(_ordered_keys(batch), workers, min_pairs=min_pairs)


def _ordered_keys(batch: PreparedBatch) -> list[str]:
    """The cache keys of the batch's round, in the round's order."""
    order = sorted(batch.round_docs, key=order_of)
    return [batch.keys[doc["_id"]] for doc in order if doc["_id"] in batch.keys]


def compute_pairs(
    batch: PreparedBatch, cache: RoundPredictionCache, shard: Shard
) -> tuple[int, int]:
    """Compute and store one shard of phase 1; returns (pairs, KS counts computed exactly)."""
    return shard.pairs, _compute(RoundPairStore(cache), batch, shard)


def _compute(store: RoundPairStore, batch: PreparedBatch, shard: Shard) -> int:
    return store.compute(shard, batch.policy.ks_limits(store.cache.columns).similar_at_most)


NEAREST_CHUNK = 16  # candidates for the nearest pair computed exactly at a time


class StoredPairStatistics:
    """The round's pair statistics as phase 1 stored them (a
    :class:`~numerai_assets.scoring.round_decisions.PairStatistics` whose places are the pair
    store's positions): read, not computed; a KS count the store holds only as a bound is
    computed exactly when the contract asks for it (a policy whose limit has grown since, or
    the smallest of a subset of candidates)."""

    def __init__(
        self, cache: RoundPredictionCache, table: PairTable, keys: Mapping[Hashable, str]
    ) -> None:
        self._cache = cache
        self._table = table
        self._keys = keys
        self._predictions, self._sorted = cache.matrices()
        self._row = np.full(len(table.order), -1, dtype=np.int64)  # cache row of a position
        for g, key in enumerate(table.order):
            if key in cache:
                self._row[g] = cache.row_of(key)
        self.n_rows = cache.columns

    def index(self, ids: Sequence[Hashable]) -> np.ndarray:
        """Each id's position in the pair store, -1 when its pairs are not stored."""
        places = []
        for submission_id in ids:
            key = self._keys.get(submission_id)
            covered = key is not None and self._table.covered(key)
            place = self._table.position[key] if covered else -1
            # A position whose key the cache lacks has no predictions: never row -1 (the last).
            places.append(place if place >= 0 and self._row[place] >= 0 else -1)
        return np.array(places, dtype=np.int64)

    def compare(
        self, new: int, earlier: np.ndarray, exact_up_to: int
    ) -> tuple[np.ndarray, np.ndarray]:
        stored = self._table.pairs(new, earlier)
        counts = stored["ks"].astype(np.int64)
        exact = stored["exact"].astype(bool)
        # Bounds at or below the limit (the policy's grew since): exact now.
        self._exact(new, earlier, counts, exact, ~exact & (counts <= exact_up_to))
        # The smallest: every candidate whose bound could beat or tie the best exact count,
        # smallest bounds first, a few at a time (with no exact count among the compared, say
        # the submission's nearest overall is its own user's, every bound is doubtful at first).
        while len(counts):
            best = counts[exact].min() if exact.any() else np.iinfo(np.int64).max
            doubtful = np.flatnonzero(~exact & (counts <= best))
            if not doubtful.size:
                break
            first = doubtful[np.argsort(counts[doubtful], kind="stable")[:NEAREST_CHUNK]]
            which = np.zeros(len(counts), dtype=bool)
            which[first] = True
            self._exact(new, earlier, counts, exact, which)
        self._cache.release()
        self._table.release()
        return stored["r"].astype(np.float64), counts

    def correlated(self, new: int, earlier: int, threshold: float) -> bool:
        return abs_correlation_exceeds(
            self._predictions[self._row[new]], self._predictions[self._row[earlier]], threshold
        )

    def ks_count(self, new: int, earlier: int) -> int:
        return int(self._ks_counts(new, np.array([earlier], dtype=np.int64))[0])

    def _ks_counts(self, new: int, earlier: np.ndarray) -> np.ndarray:
        """Exact KS counts of position ``new`` against positions ``earlier``."""
        from numerai_assets.scoring.ks import ks_counts

        values = np.array(self._sorted[self._row[new]])  # its sorted row: no sort per call
        return ks_counts(
            values, self._sorted, earlier_sorted=True, rows=self._row[earlier], new_sorted=True
        )

    def _exact(self, new, earlier, counts, exact, which) -> None:  # noqa: ANN001
        picked = np.flatnonzero(which)
        if len(picked):
            counts[picked] = self._ks_counts(new, earlier[picked])
            exact[picked] = True


def score_originality(
    batch: PreparedBatch,
    cache: RoundPredictionCache,
    log: Callable[[str], None] = lambda message: None,
) -> OriginalityScores:
    """Originality of every valid submission of the batch, in (``created``, ``_id``) order.

    The round as the run left it (:attr:`PreparedBatch.round_docs`: the batch pending, later
    submissions with their recorded decisions) is walked in order; each submission of the
    batch is compared, by the comparison rule, with what the pass has decided before it, from
    the pairs phase 1 stored. So one run per submission and one run for all give the same
    decisions.
    """
    members: dict[Hashable, Member] = {doc["_id"]: member_of(doc) for doc in batch.round_docs}
    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        if done % PROGRESS_EVERY == 0 or done == total:
            rate = done / max(time.monotonic() - started, 1e-9)
            log(f"originality: {done}/{total} submissions ({rate:.1f}/s)")

    # Pairs the store lacks now (a block found damaged and deleted since phase 1, an order the
    # cache outlived) are computed here: a submission without its pairs would be left out of
    # every comparison silently.
    store = RoundPairStore(cache)  # one instance: its blocks' checksums are read once
    holes = store.plan(_ordered_keys(batch), 1)
    if holes:
        log(f"phase 2: {sum(h.pairs for h in holes):,} pairs missing from the store; computing")
        for shard in holes:
            _compute(store, batch, shard)
    table = store.table()
    statistics = StoredPairStatistics(cache, table, batch.keys)
    unpaired = [key for key in batch.keys.values() if not table.covered(key)]
    if unpaired:  # cannot happen after the plan above; deciding now would be wrong
        raise RuntimeError(
            f"the round's pair store lacks the pairs of {len(unpaired)} cached submissions "
            f"(e.g. {unpaired[0]}) after phase 1"
        )
    decisions = decide_in_order(
        members.values(),
        {entry.submission["_id"] for entry in batch.valid()},
        statistics,
        batch.policy,
        progress=progress,
    )
    return OriginalityScores(
        {str(submission_id): decision for submission_id, decision in decisions.items()},
        {submission_id: member.user for submission_id, member in members.items()},
    )
