"""Reading a batch: each submission's file, its consistency and its pending flags, and its
concordance; whatever goes wrong with one file stays with that submission.

The first steps of scoring a batch (:mod:`numerai_assets.batch`): :func:`prepare_batch` reads each
file, computes consistency and (re-)pends the submission (the original's leaderboard step, before
any scoring); :func:`score_concordance` needs only the round's clusters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone

import numpy as np

from numerai_assets.batch.files import SubmissionFiles, cache_key
from numerai_assets.batch.select import select_submissions
from numerai_assets.datasets import RoundDataset
from numerai_assets.files import StorageError
from numerai_assets.scoring.concordance import ConcordanceResult, FittedClusters, concordance
from numerai_assets.scoring.consistency import consistency
from numerai_assets.scoring.policy import ScoringPolicy, admit
from numerai_assets.scoring.submission_format import SubmissionError, printable
from numerai_assets.settings import ConfigurationError
from numerai_assets.store import SubmissionStore
from numerai_assets.store.documents import Claim, claim_of
from numerai_assets.store.submissions import pending_update


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
    """A batch as read: its entries in (``created``, ``_id``) order, and the policy the run
    decides under (read once per run, so every step decides under the same rules)."""

    round: int
    entries: list[BatchEntry]
    policy: ScoringPolicy

    def valid(self) -> list[BatchEntry]:
        return [e for e in self.entries if e.predictions is not None]


def read_entry(
    files: SubmissionFiles,
    doc: dict,
    policy: ScoringPolicy,
    log: Callable[[str], None] = lambda message: None,
) -> BatchEntry:
    """Read one submission's file; whatever goes wrong stays with this submission.

    A readable file the scoring policy refuses (a constant one) is invalid like a bad file.

    A transient storage failure is raised (the step is retried, the batch stays pending).
    """
    try:
        read = files.load(doc)
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


def prepare_batch(
    store: SubmissionStore,
    files: SubmissionFiles,
    data: RoundDataset,
    round: int,
    submission_ids: Sequence[str],
    policy: ScoringPolicy,
    log: Callable[[str], None] = lambda message: None,
    *,
    run_id: str | None = None,
    before_write: Callable[[], None] = lambda: None,
) -> PreparedBatch:
    """Read each submission's file, record its consistency and pend its scores.

    With ``run_id``, each submission is recorded as taken up by that run, keeping the claim the
    sensor made (its run key and counters): the sensor does not plan it again while the run is
    alive, and finds it if the run ends without deciding it. A readable file the scoring policy
    refuses (a constant one) is set aside like a bad file. ``before_write`` is called before
    each write (a run checks it still holds the round).
    """
    validation = data.validation_rows()
    targets = data.tournament["target"].to_numpy(dtype=float)[validation]
    eras = data.tournament["era"].to_numpy()[validation]
    entries, updates = [], []
    now = datetime.now(timezone.utc)
    for doc in select_submissions(store, round, submission_ids, log):
        entry = read_entry(files, doc, policy, log)
        entries.append(entry)
        if entry.predictions is None:
            continue
        result = consistency(entry.predictions[validation], targets, eras)
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
    before_write()
    gone = set(store.update_many(updates))  # one round trip for the batch (MongoDB)
    for oid in gone:
        log(f"{oid}: deleted while its batch was read; left out")
    entries = [entry for entry in entries if entry.submission["_id"] not in gone]
    store.reconcile_leaderboard(round)  # one leaderboard write for the whole batch
    return PreparedBatch(round, entries, policy)


def score_concordance(batch: PreparedBatch, fitted: FittedClusters) -> dict[str, ConcordanceResult]:
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
    results = {}
    for entry in batch.valid():
        results[entry.id] = concordance(entry.predictions, clusters, policy=policy, groups=groups)
    return results
