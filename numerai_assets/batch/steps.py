"""The four steps of scoring a batch of one round's submissions.

1. :func:`prepare_batch` reads each file, computes consistency and (re-)pends the submission
   (the original's leaderboard step, before any scoring); unreadable files are set aside.
2. :func:`score_concordance` needs only the round's clusters.
3. :func:`score_originality` walks the batch in ``created`` order and compares each submission with
   the latest earlier one of every other user, using this batch's own decisions for submissions
   it has just scored. So one run per submission and one run for all give the same scores.
4. :func:`write_results` writes each submission's result in one atomic update.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from numerai_assets.batch.files import SubmissionFiles, cache_key
from numerai_assets.datasets import RoundDataset
from numerai_assets.files import StorageError
from numerai_assets.prediction_cache import RoundPredictionCache
from numerai_assets.scoring import (
    SubmissionError,
    concordance,
    consistency,
    correlations,
)
from numerai_assets.scoring.concordance import FittedClusters
from numerai_assets.scoring.exact import abs_correlation_exceeds
from numerai_assets.scoring.ks import ks_counts
from numerai_assets.scoring.originality import decide_originality
from numerai_assets.scoring.policy import ScoringPolicy, admit
from numerai_assets.scoring.submission_format import counted
from numerai_assets.store import SubmissionNotFound, SubmissionStore
from numerai_assets.store.documents import (
    claim_attempt,
    comparable,
    latest_comparable_per_user,
    status_of,
)
from numerai_assets.store.submissions import malformed_reason
from numerai_assets.views.round_view import nearest_pairs

# Earlier submissions are compared in chunks of this many rows: about 180 MB of a 45,000-row round
# mapped at a time, released after each chunk.
COMPARE_CHUNK = 256
CACHE_CHUNK = 64  # earlier files read and appended to the cache at a time
PROGRESS_EVERY = 50


@dataclass
class BatchEntry:
    """One submission of a batch and what reading its file gave.

    Exactly one of: ``predictions`` (read), ``invalid_reason`` (refused: the participant's file
    is at fault) or ``failure`` (reading failed for a reason of ours; the submission is left
    pending, and recovery tries it again on its own).
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
    def cache_key(self) -> str:
        return cache_key(self.submission["_id"], self.digest)


@dataclass
class PreparedBatch:
    round: int
    entries: list[BatchEntry]  # in (created, _id) order
    # Read once per batch, so every step of a run decides under the same rules.
    policy: ScoringPolicy = field(default_factory=ScoringPolicy.from_settings)

    def valid(self) -> list[BatchEntry]:
        return [e for e in self.entries if e.predictions is not None]


def _order(doc: Mapping) -> tuple:
    return (doc["created"], doc["_id"])


def select_submissions(
    store: SubmissionStore,
    round: int,
    submission_ids: Sequence[str],
    log: Callable[[str], None] = lambda message: None,
) -> list[dict]:
    """The batch's documents in (``created``, ``_id``) order; no ids means the whole round.

    One query for the round rather than one per id (a burst's batch has hundreds). A requested
    id that is no longer in the round (deleted, or moved since the run was planned) is dropped
    with a log line: the rest of the batch is scored. The batch is extended by
    :func:`with_later_decisions`, so its decisions are those of a clean scoring of the round.
    """
    docs, changed = [], []
    for doc in store.round_submissions(round):  # changed since the sensor checked it?
        (changed if malformed_reason(doc) else docs).append(doc)
    if changed:
        log(
            f"{counted(len(changed), 'submission')} of round {round} left out: their records "
            f"are malformed now (the sensor sets them aside): "
            + ", ".join(str(d["_id"]) for d in changed[:20])
        )
    if not submission_ids:
        return docs
    wanted = set(dict.fromkeys(str(i) for i in submission_ids))
    batch = [d for d in docs if str(d["_id"]) in wanted]
    gone = sorted(wanted - {str(d["_id"]) for d in batch})
    if gone:
        log(
            f"{counted(len(gone), 'submission')} of this batch no longer in round {round} "
            f"(deleted or moved since the run was planned), left out: {', '.join(gone[:20])}"
        )
    if gone:  # where they stood is unknown now: what came after them may have changed
        log(f"round {round} is scored whole again: submissions of this batch are gone")
        return docs
    extended = with_later_decisions(batch, docs)
    if len(extended) > len(batch):
        log(
            f"{counted(len(extended) - len(batch), 'later submission')} of round {round} "
            "scored again: this batch comes earlier than decisions already recorded, so they "
            "are compared anew, in (created, _id) order"
        )
    return extended


def with_later_decisions(batch: Sequence[Mapping], round_docs: Sequence[Mapping]) -> list[dict]:
    """``batch`` and, if any later submission of the round already has a decision, every
    submission from the batch's earliest on (invalid ones aside), in (``created``, ``_id``)
    order.

    Originality compares each submission with the ones before it, so a submission that
    arrives late (a skewed clock) or is scored late (a retry) changes what the later ones are
    compared against. Scoring the whole suffix again keeps the recorded decisions equal to one
    clean scoring of the round in (``created``, ``_id``) order, whatever the order of arrival.
    """
    if not batch:
        return []
    start = min(_order(d) for d in batch)
    chosen = {d["_id"] for d in batch}
    later = [
        d
        for d in round_docs
        if d["_id"] not in chosen and _order(d) > start and d.get("invalid") is None
    ]
    if not any(status_of(d, "original").get("pending") is False for d in later):
        return sorted((dict(d) for d in batch), key=_order)
    return sorted([*(dict(d) for d in batch), *(dict(d) for d in later)], key=_order)


def read_entry(
    files: SubmissionFiles,
    doc: dict,
    log: Callable[[str], None] = lambda message: None,
    policy: ScoringPolicy | None = None,
) -> BatchEntry:
    """Read one submission's file; whatever goes wrong stays with this submission.

    A readable file the scoring policy refuses (a constant one) is invalid like a bad file.

    A transient storage failure is raised (the step is retried, the batch stays pending).
    """
    try:
        read = files.load(doc)
        predictions = admit(read.predictions, policy or ScoringPolicy.from_settings())
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
        failure = f"{type(error).__name__}: {error}"[:500]
        log(f"{doc['_id']}: reading its file failed ({failure}); left pending for recovery")
        return BatchEntry(doc, None, failure=failure)


def prepare_batch(
    store: SubmissionStore,
    files: SubmissionFiles,
    data: RoundDataset,
    round: int,
    submission_ids: Sequence[str],
    log: Callable[[str], None] = lambda message: None,
    *,
    run_id: str | None = None,
) -> PreparedBatch:
    """Read each submission's file, record its consistency and pend its scores.

    With ``run_id``, each submission is recorded as claimed by that run (the sensor does not
    plan it again while the run is under way; recovery finds it if the run dies). A readable
    file the scoring policy refuses (a constant one) is set aside like a bad file.
    """
    policy = ScoringPolicy.from_settings()
    validation = data.validation_rows()
    targets = data.tournament["target"].to_numpy(dtype=float)[validation]
    eras = data.tournament["era"].to_numpy()[validation]
    entries = []
    for doc in select_submissions(store, round, submission_ids, log):
        entry = read_entry(files, doc, log, policy)
        if entry.predictions is not None:
            result = consistency(entry.predictions[validation], targets, eras)
            try:
                store.mark_pending(
                    doc["_id"],
                    consistency=result.percent,
                    validation_logloss=result.validation_logloss,
                    run_id=run_id,
                    attempt=claim_attempt(doc),
                    file_digest=entry.digest,
                    sync_leaderboard=False,
                )
            except SubmissionNotFound:
                log(f"{doc['_id']}: deleted while its batch was read; left out")
                continue
        entries.append(entry)
    store.reconcile_leaderboard(round)  # one leaderboard write for the whole batch
    return PreparedBatch(round, entries, policy)


def score_concordance(batch: PreparedBatch, fitted: FittedClusters) -> dict[str, dict]:
    """Concordance of every valid submission, as the dict stored next to its flag.

    Raises ValueError when the round's clusters were fitted under another cluster count or seed
    than the batch's policy: the decisions would record rules they were not made under.
    """
    policy, clusters = batch.policy, fitted.clusters
    if (clusters.n_clusters, fitted.random_state) != (policy.n_clusters, policy.random_state):
        raise ValueError(
            f"round {batch.round}'s clusters were fitted with {clusters.n_clusters} clusters and "
            f"seed {fitted.random_state}, but the scoring policy {policy.version} says "
            f"{policy.n_clusters} and {policy.random_state}: refit them "
            f"(numerai-assets rescore --round {batch.round}, without --scores-only)"
        )
    groups = clusters.groups()
    results = {}
    for entry in batch.valid():
        result = concordance(entry.predictions, clusters, policy=policy, groups=groups)
        results[entry.id] = {
            "value": result.concordant,
            "score": result.score,
            "clusters": [dataclasses.asdict(c) for c in result.clusters],
        }
    return results


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
    last = max(_order(entry.submission) for entry in batch.entries)
    in_batch = {entry.submission["_id"] for entry in batch.entries}  # read already, or refused
    missing = []
    for d in docs:
        if not comparable(d) or _order(d) >= last or d["_id"] in in_batch:
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
            entry = read_entry(files, doc, log, batch.policy)
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
) -> dict[str, dict]:
    """Originality of every valid submission, in ``created`` order (see the module docstring).

    Earlier submissions' predictions come from the round's cache, picked by row index in
    chunks of ``COMPARE_CHUNK`` (no copies, and bounded memory however large the round).
    """
    known = {
        doc["_id"]: doc
        for doc in store.round_submissions(batch.round)
        if malformed_reason(doc) is None
    }
    keys = fill_cache(cache, files, batch, known.values(), log)
    predictions, sorted_rows = cache.matrices()
    results = {}
    started, valid = time.monotonic(), batch.valid()
    for entry in batch.entries:
        doc = entry.submission
        if entry.invalid_reason is not None:
            known[doc["_id"]] = {**doc, "invalid": {"reason": entry.invalid_reason}}
            continue
        if entry.predictions is None:  # left pending: it is neither scored nor compared
            continue
        earlier = [
            candidate
            for candidate in latest_comparable_per_user(known.values(), doc)
            if candidate["_id"] in keys  # its file was read
        ]
        rows = cache.rows_of(keys[c["_id"]] for c in earlier)
        correlation = np.empty(len(rows))
        counts = np.empty(len(rows), dtype=np.int64)
        for start in range(0, len(rows), COMPARE_CHUNK):
            pick = rows[start : start + COMPARE_CHUNK]
            part = slice(start, start + len(pick))
            correlation[part] = correlations(entry.predictions, predictions, rows=pick)
            counts[part] = ks_counts(entry.predictions, sorted_rows, earlier_sorted=True, rows=pick)
            cache.release()
        result = decide_originality(
            correlation,
            counts,
            entry.predictions.shape[0],
            batch.policy,
            exact_correlated=lambda k, new=entry.predictions, rows=rows: abs_correlation_exceeds(
                new, predictions[rows[k]], batch.policy.max_correlation
            ),
        )
        results[entry.id] = {
            "value": result.original,
            "reason": result.reason,
            "pairs": result.pairs,
            "matches": [
                {
                    "submission_id": str(earlier[m.index]["_id"]),
                    "username": earlier[m.index]["username"],
                    "correlation": m.correlation,
                    "ks": m.ks,
                }
                for m in result.matches
            ],
            # Shown to participants and drawn in the round's picture, whatever the decision.
            "nearest": nearest_pairs(correlation, counts / entry.predictions.shape[0], earlier),
        }
        known[doc["_id"]] = {**doc, "original": {"pending": False, "value": result.original}}
        if len(results) % PROGRESS_EVERY == 0 or len(results) == len(valid):
            rate = len(results) / max(time.monotonic() - started, 1e-9)
            log(
                f"originality: {len(results)}/{len(valid)} submissions "
                f"({rate:.1f}/s, last compared with {len(rows)})"
            )
    return results


def write_results(
    store: SubmissionStore,
    batch: PreparedBatch,
    concordance_results: Mapping[str, dict],
    originality_results: Mapping[str, dict],
    *,
    run_id: str,
    scored_at: datetime,
    log: Callable[[str], None] = lambda message: None,
) -> list[dict]:
    """Write every result back; one summary row per submission for the run's report."""
    summary = []
    for entry in batch.entries:
        doc = entry.submission
        row = {"id": entry.id, "username": doc["username"]}
        if entry.failure is not None:
            summary.append({**row, "pending": entry.failure})
            continue
        try:
            if entry.invalid_reason is not None:
                store.mark_invalid(
                    doc["_id"],
                    reason=entry.invalid_reason,
                    at=scored_at,
                    run_id=run_id,
                    policy=batch.policy.version,
                    sync_leaderboard=False,
                )
                summary.append({**row, "invalid": entry.invalid_reason})
                continue
            concordant = concordance_results[entry.id]
            original = originality_results[entry.id]
            store.write_scores(
                doc["_id"],
                concordance=concordant,
                originality=original,
                scored_at=scored_at,
                run_id=run_id,
                policy=batch.policy.version,
                sync_leaderboard=False,
            )
        except SubmissionNotFound:
            log(f"{doc['_id']}: deleted before its scores were written; left out")
            continue
        summary.append(
            {
                **row,
                "concordance": concordant["score"],
                "concordant": concordant["value"],
                "original": original["value"],
                "reason": original["reason"],
            }
        )
    # One leaderboard write for the whole batch, which also completes any write an earlier run
    # was interrupted in the middle of (a submission written, its entry not).
    store.reconcile_leaderboard(batch.round)
    return summary
