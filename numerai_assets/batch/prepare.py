"""Reading a batch: each submission's file, its consistency and its pending flags, its
predictions cached for the round, and its concordance; whatever goes wrong with one file stays
with that submission.

The first steps of scoring a batch (:mod:`numerai_assets.batch`): :func:`prepare_batch` reads the
round once, each file of the batch, computes consistency, (re-)pends the submissions (the
original's leaderboard step, before any scoring) and puts the predictions of every submission
the batch may be compared with in the round's cache (:class:`RoundPredictionCache`: the later
steps, in this process or another worker's, read them there); :func:`score_concordance` needs
only the round's clusters.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

import numpy as np

from numerai_assets.batch.files import SubmissionFiles, cache_key
from numerai_assets.batch.select import select_submissions
from numerai_assets.datasets import RoundDataset
from numerai_assets.files import StorageError
from numerai_assets.prediction_cache import CacheLocation, RoundPredictionCache
from numerai_assets.scoring.concordance import ConcordanceResult, FittedClusters, concordance
from numerai_assets.scoring.consistency import EraGroups, consistency
from numerai_assets.scoring.policy import ScoringPolicy, admit
from numerai_assets.scoring.submission_format import SubmissionError, printable
from numerai_assets.settings import ConfigurationError
from numerai_assets.store import SubmissionStore
from numerai_assets.store.documents import Claim, claim_of, comparable, order_of
from numerai_assets.store.submissions import pending_update
from numerai_assets.store.validation import malformed_reason

CACHE_CHUNK = 64  # files read and appended to the cache at a time (bounded memory)
READERS = max(2, os.cpu_count() or 2)  # threads reading files at once


@dataclass
class BatchEntry:
    """One submission of a batch and what reading its file gave.

    Exactly one of: ``predictions`` (read; dropped once cached: :meth:`cached`),
    ``invalid_reason`` (refused: the participant's file is at fault) or ``failure`` (reading
    failed for a reason of ours; the submission is left pending, and recovery tries it again on
    its own).
    """

    submission: dict
    predictions: np.ndarray | None  # tournament-id order; None when the file was not read
    invalid_reason: str | None = None
    failure: str | None = None
    digest: str | None = None  # SHA-256 of the file read

    @property
    def id(self) -> str:
        return str(self.submission["_id"])

    @property
    def readable(self) -> bool:
        return self.digest is not None and self.invalid_reason is None and self.failure is None

    @property
    def cache_key(self) -> str:
        return cache_key(self.submission["_id"], self.digest)

    def cached(self) -> BatchEntry:
        """This entry without its predictions: they are in the round's cache under
        :attr:`cache_key` (what passes between the run's steps stays small)."""
        return replace(self, predictions=None)


@dataclass
class PreparedBatch:
    """A batch as read, for the run's later steps: its entries in (``created``, ``_id``) order;
    the policy the run decides under (read once per run); where the round's cache lives;
    ``keys``, the cache key of every submission whose predictions are cached (the batch's and
    every earlier comparable one's, by id); and ``round_docs``, the round as this run leaves it
    before deciding (well-formed documents, the batch pending or refused): what the ordered pass
    walks, so the round is read once."""

    round: int
    entries: list[BatchEntry]
    policy: ScoringPolicy
    cache: CacheLocation | None = None
    keys: dict[Hashable, str] = field(default_factory=dict)
    round_docs: list[dict] = field(default_factory=list)

    def valid(self) -> list[BatchEntry]:
        return [e for e in self.entries if e.readable]


def read_entry(
    files: SubmissionFiles,
    doc: dict,
    policy: ScoringPolicy,
    log: Callable[[str], None] = lambda message: None,
    known: Callable[[str], np.ndarray | None] | None = None,
) -> BatchEntry:
    """Read one submission's file; whatever goes wrong stays with this submission.
    ``known``: predictions already parsed, by cache key (:meth:`SubmissionFiles.load`).

    A readable file the scoring policy refuses (a constant one) is invalid like a bad file.

    A transient storage failure is raised (the step is retried, the batch stays pending).
    """
    try:
        read = files.load(doc, known)
        predictions = admit(read.predictions, policy)
        return BatchEntry(doc, predictions, digest=read.digest)
    except SubmissionError as error:
        return BatchEntry(doc, None, str(error))
    except StorageError as error:
        if error.transient:
            raise
        return BatchEntry(doc, None, str(SubmissionError(f"the file cannot be read ({error})")))
    except MemoryError:
        return BatchEntry(
            doc, None, "the file could not be read within the memory a submission may use"
        )
    except Exception as error:  # noqa: BLE001 - a fault of ours on one file fails only that file
        # The error's message may quote the file: printable, like every reason.
        failure = printable(f"{type(error).__name__}: {error}"[:500])
        log(f"{doc['_id']}: reading its file failed ({failure}); left pending for recovery")
        return BatchEntry(doc, None, failure=failure)


def read_entries(
    files: SubmissionFiles,
    docs: Sequence[dict],
    policy: ScoringPolicy,
    log: Callable[[str], None] = lambda message: None,
    known: Callable[[str], np.ndarray | None] | None = None,
) -> list[BatchEntry]:
    """:func:`read_entry` of each of ``docs``, in order, on :data:`READERS` threads: pyarrow
    parses, numpy checks and S3 downloads release the GIL, so a rescore reads its files on
    every core. A transient storage failure is raised, as by :func:`read_entry`."""
    if len(docs) < 2:
        return [read_entry(files, doc, policy, log, known) for doc in docs]
    with ThreadPoolExecutor(max_workers=min(READERS, len(docs))) as pool:
        return list(pool.map(lambda doc: read_entry(files, doc, policy, log, known), docs))


def prepare_batch(
    store: SubmissionStore,
    files: SubmissionFiles,
    data: RoundDataset,
    round: int,
    submission_ids: Sequence[str],
    policy: ScoringPolicy,
    cache: RoundPredictionCache,
    log: Callable[[str], None] = lambda message: None,
    *,
    run_id: str | None = None,
    before_write: Callable[[], None] = lambda: None,
) -> PreparedBatch:
    """Read each submission's file, record its consistency and pend its scores, and cache the
    predictions of everything the batch may be compared with (:func:`fill_cache`).

    With ``run_id``, each submission is recorded as taken up by that run, keeping the claim the
    sensor made (its run key and counters): the sensor does not plan it again while the run is
    alive, and finds it if the run ends without deciding it. A readable file the scoring policy
    refuses (a constant one) is set aside like a bad file. ``before_write`` is called before
    each write (a run checks it still holds the round).
    """
    validation = data.validation_rows()
    targets = data.tournament["target"].to_numpy(dtype=float)[validation]
    eras = EraGroups.of(data.tournament["era"].to_numpy()[validation])  # once for the batch
    round_docs = store.round_submissions(round)  # the run's one read of the round
    chosen = select_submissions(round_docs, round, submission_ids, log)
    entries, updates = [], []
    now = datetime.now(timezone.utc)
    for start in range(0, len(chosen), CACHE_CHUNK):
        # A file whose bytes the cache holds predictions for is hashed, not parsed again.
        chunk = chosen[start : start + CACHE_CHUNK]
        read = read_entries(files, chunk, policy, log, known=cache.predictions_of)
        for entry in read:
            if entry.predictions is None:
                continue
            result = consistency(entry.predictions[validation], targets, eras)
            doc = entry.submission
            claim = None
            if run_id is not None:
                claim = replace(claim_of(doc) or Claim(None, None, now), run_id=run_id, at=now)
            update = pending_update(
                consistency=result.percent,
                validation_logloss=result.validation_logloss,
                claim=claim,
                file_digest=entry.digest,
            )
            updates.append((doc["_id"], update))
        cache.add((e.cache_key, e.predictions) for e in read if e.predictions is not None)
        entries += [entry.cached() for entry in read]
    before_write()
    gone = set(store.update_many(updates))  # one round trip for the batch (MongoDB)
    for oid in gone:
        log(f"{oid}: deleted while its batch was read; left out")
    entries = [entry for entry in entries if entry.submission["_id"] not in gone]
    store.reconcile_leaderboard(round)  # one leaderboard write for the whole batch
    known = [d for d in round_docs if malformed_reason(d) is None and d["_id"] not in gone]
    keys = fill_cache(cache, files, entries, known, policy, log)
    return PreparedBatch(round, entries, policy, cache.location, keys, as_left(known, entries))


def as_left(round_docs: Sequence[Mapping], entries: Sequence[BatchEntry]) -> list[dict]:
    """The round as the run leaves it before deciding: each submission of the batch pending
    (readable) or invalid (refused); one whose file failed for a reason of ours, as stored."""
    by_id = {entry.submission["_id"]: entry for entry in entries}
    left = []
    for doc in round_docs:
        entry = by_id.get(doc["_id"])
        if entry is not None and entry.readable:
            doc = {**doc, "original": {"pending": True, "value": None}}
            doc.pop("invalid", None)
        elif entry is not None and entry.invalid_reason is not None:
            doc = {**doc, "invalid": {"reason": entry.invalid_reason}}
        left.append(dict(doc))
    return left


def fill_cache(
    cache: RoundPredictionCache,
    files: SubmissionFiles,
    entries: Sequence[BatchEntry],
    docs: Sequence[Mapping],
    policy: ScoringPolicy,
    log: Callable[[str], None] = lambda message: None,
) -> dict[Hashable, str]:
    """Make sure every submission the batch may be compared against is in the cache.

    The batch's own predictions are there already; earlier submissions missing from the cache
    (a new cache, one made stale by a new dataset, or a file replaced since) are fetched from
    the cache's mirror or read from their files once, here. Returns the cache key of every
    readable submission by ``_id``; those whose files cannot be read are absent: they are
    nobody's original.
    """
    keys = {entry.submission["_id"]: entry.cache_key for entry in entries if entry.readable}
    if not entries:
        return keys
    # Only submissions created before the batch's last one can be compared against: later ones
    # (queued for the next batch of a burst) are left for their own run.
    last = max(order_of(entry.submission) for entry in entries)
    in_batch = {entry.submission["_id"] for entry in entries}  # read already, or refused
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
        mirrored, unread = [], []
        for doc in missing[start : start + CACHE_CHUNK]:
            key = cache_key(doc["_id"], doc.get("file_digest"))
            predictions = cache.from_mirror(key)
            if predictions is not None:
                mirrored.append((key, predictions))
                keys[doc["_id"]] = key
            else:
                unread.append(doc)
        parsed = []
        for entry in read_entries(files, unread, policy, log):
            if entry.predictions is not None:
                parsed.append((entry.cache_key, entry.predictions))
                keys[entry.submission["_id"]] = entry.cache_key
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


def score_concordance(
    batch: PreparedBatch, fitted: FittedClusters, cache: RoundPredictionCache
) -> dict[str, ConcordanceResult]:
    """Concordance of every valid submission, by submission id.

    Raises :class:`~numerai_assets.settings.ConfigurationError` when the round's clusters were
    fitted under another cluster count or seed than the batch's policy: the decisions would
    record rules they were not made under (the operator's to fix by refitting them).
    """
    policy, clusters = batch.policy, fitted.clusters
    if (clusters.n_clusters, fitted.random_state) != (policy.n_clusters, policy.random_state):
        raise ConfigurationError(
            f"round {batch.round}'s clusters were fitted with {clusters.n_clusters} clusters and "
            f"seed {fitted.random_state}, but the scoring policy {policy.version} says "
            f"{policy.n_clusters} and {policy.random_state}: refit them "
            f"(numerai-assets rescore --round {batch.round}, without --scores-only)"
        )
    groups = clusters.groups()
    predictions, _ = cache.matrices()
    results = {}
    for k, entry in enumerate(batch.valid(), start=1):
        row = np.array(predictions[cache.row_of(entry.cache_key)])
        results[entry.id] = concordance(row, clusters, policy=policy, groups=groups)
        if k % CACHE_CHUNK == 0:
            cache.release()  # a batch of 2,000 rows would otherwise stay mapped: 720 MB
    cache.release()
    return results
