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
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from numerai_assets.batch.files import SubmissionFiles
from numerai_assets.datasets import RoundDataset
from numerai_assets.files import StorageError
from numerai_assets.prediction_cache import RoundPredictionCache
from numerai_assets.report import markdown_cell
from numerai_assets.round_view import nearest_pairs
from numerai_assets.scoring import (
    OriginalityThresholds,
    RoundClusters,
    SubmissionError,
    concordance,
    consistency,
    correlations,
    ks_statistics,
)
from numerai_assets.scoring.originality import decide_originality
from numerai_assets.scoring.submission_format import counted
from numerai_assets.store import SubmissionNotFound, SubmissionStore
from numerai_assets.store.submissions import latest_comparable_per_user

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

    @property
    def id(self) -> str:
        return str(self.submission["_id"])


@dataclass
class PreparedBatch:
    round: int
    entries: list[BatchEntry]  # in (created, _id) order

    def valid(self) -> list[BatchEntry]:
        return [e for e in self.entries if e.predictions is not None]

    def failed_ids(self) -> set:
        return {e.submission["_id"] for e in self.entries if e.failure is not None}


def _order(doc: Mapping) -> tuple:
    return (doc["created"], doc["_id"])


def select_submissions(
    store: SubmissionStore,
    round: int,
    submission_ids: Sequence[str],
    log: Callable[[str], None] = lambda message: None,
) -> list[dict]:
    """The batch's documents in ``created`` order; no ids means every submission of the round.

    One query for the round rather than one per id (a burst's batch has hundreds). A requested
    id that is no longer in the round (deleted, or moved since the run was planned) is dropped
    with a log line: the rest of the batch is scored.
    """
    docs = store.round_submissions(round)
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
    return batch


def read_entry(
    files: SubmissionFiles, doc: dict, log: Callable[[str], None] = lambda message: None
) -> BatchEntry:
    """Read one submission's file; whatever goes wrong stays with this submission.

    A transient storage failure is raised (the step is retried, the batch stays pending).
    """
    try:
        return BatchEntry(doc, files.load(doc))
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
) -> PreparedBatch:
    """Read each submission's file, record its consistency and pend its scores."""
    validation = data.validation_rows()
    targets = data.tournament["target"].to_numpy(dtype=float)[validation]
    eras = data.tournament["era"].to_numpy()[validation]
    entries = []
    for doc in select_submissions(store, round, submission_ids, log):
        entry = read_entry(files, doc, log)
        if entry.predictions is not None:
            result = consistency(entry.predictions[validation], targets, eras)
            try:
                store.mark_pending(
                    doc["_id"],
                    consistency=result.percent,
                    validation_logloss=result.validation_logloss,
                    sync_leaderboard=False,
                )
            except SubmissionNotFound:
                log(f"{doc['_id']}: deleted while its batch was read; left out")
                continue
        entries.append(entry)
    store.reconcile_leaderboard(round)  # one leaderboard write for the whole batch
    return PreparedBatch(round, entries)


def score_concordance(batch: PreparedBatch, clusters: RoundClusters) -> dict[str, dict]:
    """Concordance of every valid submission, as the dict stored next to its flag."""
    groups = clusters.groups()
    results = {}
    for entry in batch.valid():
        result = concordance(entry.predictions, clusters, groups=groups)
        results[entry.id] = {
            "value": result.concordant,
            "score": result.score,
            "clusters": [dataclasses.asdict(c) for c in result.clusters],
        }
    return results


def _comparable(doc: Mapping) -> bool:
    """Could ever be compared against: valid, and original or still pending."""
    original = doc.get("original") or {}
    return doc.get("invalid") is None and (
        original.get("value") is True or original.get("pending") is True
    )


def fill_cache(
    cache: RoundPredictionCache,
    files: SubmissionFiles,
    batch: PreparedBatch,
    docs: Iterable[Mapping],
    log: Callable[[str], None] = lambda message: None,
) -> set:
    """Make sure every submission this batch may compare against is in the cache.

    The batch's own predictions were read already; earlier submissions missing from the cache
    (a new cache, or one made stale by a new dataset) are read from their files once, here.
    Returns the ids whose files cannot be read: they are nobody's original.
    """
    cache.add((entry.id, entry.predictions) for entry in batch.valid())
    if not batch.entries:
        return set()
    # Only submissions created before the batch's last one can be compared against: later ones
    # (queued for the next batch of a burst) are left for their own run.
    last = max(_order(entry.submission) for entry in batch.entries)
    in_batch = {entry.submission["_id"] for entry in batch.entries}  # read already, or refused
    missing = [
        d
        for d in docs
        if _comparable(d)
        and _order(d) < last
        and d["_id"] not in in_batch
        and str(d["_id"]) not in cache
    ]
    unreadable = set()
    started = time.monotonic()
    from_mirror = 0
    for start in range(0, len(missing), CACHE_CHUNK):
        mirrored, parsed = [], []
        for doc in missing[start : start + CACHE_CHUNK]:
            predictions = cache.from_mirror(doc["_id"])
            if predictions is not None:
                mirrored.append((str(doc["_id"]), predictions))
                continue
            entry = read_entry(files, doc, log)
            if entry.predictions is None:
                unreadable.add(doc["_id"])
            else:
                parsed.append((str(doc["_id"]), entry.predictions))
        cache.add(mirrored, mirrored=True)
        cache.add(parsed)
        from_mirror += len(mirrored)
        done = min(start + CACHE_CHUNK, len(missing))
        rate = done / max(time.monotonic() - started, 1e-9)
        log(
            f"prediction cache: {done}/{len(missing)} earlier submissions loaded "
            f"({from_mirror} from the mirror, the rest from their files; {rate:.0f}/s)"
        )
    return unreadable


def score_originality(
    batch: PreparedBatch,
    store: SubmissionStore,
    files: SubmissionFiles,
    cache: RoundPredictionCache,
    thresholds: OriginalityThresholds | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> dict[str, dict]:
    """Originality of every valid submission, in ``created`` order (see the module docstring).

    Earlier submissions' predictions come from the round's cache, picked by row index in
    chunks of ``COMPARE_CHUNK`` (no copies, and bounded memory however large the round).
    """
    known = {doc["_id"]: doc for doc in store.round_submissions(batch.round)}
    unreadable = fill_cache(cache, files, batch, known.values(), log) | batch.failed_ids()
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
            if candidate["_id"] not in unreadable
        ]
        rows = cache.rows_of(str(c["_id"]) for c in earlier)
        correlation, ks = np.empty(len(rows)), np.empty(len(rows))
        for start in range(0, len(rows), COMPARE_CHUNK):
            pick = rows[start : start + COMPARE_CHUNK]
            part = slice(start, start + len(pick))
            correlation[part] = correlations(entry.predictions, predictions, rows=pick)
            ks[part] = ks_statistics(entry.predictions, sorted_rows, earlier_sorted=True, rows=pick)
            cache.release()
        result = decide_originality(correlation, ks, thresholds)
        results[entry.id] = {
            "value": result.original,
            "reason": result.reason,
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
            "nearest": nearest_pairs(correlation, ks, earlier),
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


def summary_markdown(summary: Sequence[Mapping]) -> str:
    """The run's report as a markdown table: user, concordance, concordant, original, why.

    What a participant chose (the user name) or caused (a reason quoting their file) is escaped:
    it shows as typed and cannot add a link, emphasis or a column.
    """
    lines = [
        "| user | concordance | concordant | original | why | submission |",
        "| --- | ---: | --- | --- | --- | --- |",
    ]
    for row in summary:
        user = markdown_cell(row["username"])
        if "invalid" in row or "pending" in row:
            why = (
                "invalid: " + row["invalid"]
                if "invalid" in row
                else "pending: its file could not be read this time; retried on its own"
            )
            lines.append(f"| {user} | | | | {markdown_cell(why, 200)} | {row['id']} |")
            continue
        lines.append(
            f"| {user} | {row['concordance']:.4f} | "
            f"{'yes' if row['concordant'] else 'no'} | {'yes' if row['original'] else 'no'} | "
            f"{row['reason'] or ''} | {row['id']} |"
        )
    return "\n".join(lines)
