"""The submissions store: one class, one code path, over MongoDB, montydb or mongomock.

In parts: the submissions' own reads and writes here, the sensor's queue (:mod:`.queue`), the
round's lease (:mod:`.lease`), the leaderboards (:mod:`.leaderboard`) and the record's rule
(:mod:`.validation`). Each competition's leaderboard is a cached view of its submissions, so
every write to a submission is followed by a leaderboard sync (or one reconcile after many).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import pymongo.collection
from bson import ObjectId
from montydb.collection import MontyCollection
from pymongo import UpdateOne

from numerai_assets.store import keyed_reads
from numerai_assets.store.base import WELL_TYPED, StoreBase, StoreError, SubmissionNotFound
from numerai_assets.store.connection import write_lock
from numerai_assets.store.documents import (
    Claim,
    check_number,
    check_round,
    check_text,
    concordant_status,
    from_storage,
    new_submission,
    original_status,
    parse_id,
    pending_status,
    to_storage,
    utc,
)
from numerai_assets.store.leaderboard import LeaderboardMixin
from numerai_assets.store.lease import LeaseMixin, RoundBusy
from numerai_assets.store.queue import QueueMixin
from numerai_assets.store.validation import for_new, malformed_reason

__all__ = ["RoundBusy", "StoreError", "SubmissionNotFound", "SubmissionStore"]


class SubmissionStore(QueueMixin, LeaseMixin, LeaderboardMixin, StoreBase):
    """Submissions and competition leaderboards in a pymongo-like ``Database``.

    Make one per thread on the embedded store: montydb clients are not thread-safe, and
    :func:`~numerai_assets.store.open_database` gives each thread its own.
    """

    def ensure_indexes(self) -> None:
        """Create the indexes the queries use (montydb ignores this: it always scans)."""
        self._submissions.create_index([("competition_id", 1), ("created", 1)])
        self._submissions.create_index("username")

    def get(self, submission_id: ObjectId | str) -> dict:
        """The submission; :class:`SubmissionNotFound` if there is none with that id."""
        oid = parse_id(submission_id)
        doc = self._submissions.find_one({"_id": oid})
        if doc is None:
            raise SubmissionNotFound(oid)
        return from_storage(doc)

    def round_submissions(self, round: int) -> list[dict]:
        """A round's submissions, invalid ones included, oldest first.

        Only documents with a place in the (``created``, ``_id``) order (see
        :meth:`all_documents` for everything stored).
        """
        return self._find({**WELL_TYPED, "competition_id": check_round(round)})

    def all_documents(self, round: int | None = None) -> list[dict]:
        """Every stored submission document, however malformed (for ``status``), as stored."""
        query = {} if round is None else {"competition_id": check_round(round)}
        return [from_storage(doc) for doc in self._submissions.find(query)]

    def rounds(self) -> list[int]:
        """The rounds that have submissions, ascending."""
        return sorted(self._submissions.distinct("competition_id"))

    def insert_submission(
        self, *, username: str, round: int, filename: str, created: datetime | None = None
    ) -> ObjectId:
        """Record a new upload, pending scoring; ``created`` defaults to now (UTC).

        Raises ``ValueError`` with :func:`malformed_reason`'s reason for a record the pipeline
        would set aside: nothing is stored.
        """
        when = datetime.now(timezone.utc) if created is None else created
        doc = new_submission(ObjectId(), username, round, filename, when)
        problem = malformed_reason(doc)
        if problem is not None:
            raise ValueError(for_new(problem))
        doc["created"] = utc(when, "created")
        with write_lock(self._database):  # montydb creates a missing collection racily
            self._submissions.insert_one(to_storage(doc))
        return doc["_id"]

    def mark_pending(
        self,
        submission_id: ObjectId | str,
        *,
        consistency: float,
        validation_logloss: float,
        claim: Claim | None = None,
        file_digest: str | None = None,
        sync_leaderboard: bool = True,
    ) -> None:
        """Record the leaderboard numbers and (re-)pend both scores, before scoring
        (:func:`pending_update`)."""
        update = pending_update(
            consistency=consistency,
            validation_logloss=validation_logloss,
            claim=claim,
            file_digest=file_digest,
        )
        self._update(submission_id, update, sync_leaderboard=sync_leaderboard)

    def write_scores(
        self,
        submission_id: ObjectId | str,
        *,
        concordance: Mapping,
        originality: Mapping,
        scored_at: datetime,
        run_id: str,
        policy: str,
        sync_leaderboard: bool = True,
    ) -> None:
        """Record both scores and clear any invalid mark, in one atomic update. Idempotent
        (:func:`scores_update`)."""
        update = scores_update(
            concordance=concordance,
            originality=originality,
            scored_at=scored_at,
            run_id=run_id,
            policy=policy,
        )
        self._update(submission_id, update, sync_leaderboard=sync_leaderboard)

    def mark_invalid(
        self,
        submission_id: ObjectId | str,
        *,
        reason: str,
        at: datetime,
        run_id: str | None,
        policy: str | None = None,
        sync_leaderboard: bool = True,
    ) -> None:
        """Mark a submission that cannot be scored; it drops off the leaderboard
        (:func:`invalid_update`)."""
        update = invalid_update(reason=reason, at=at, run_id=run_id, policy=policy)
        self._update(submission_id, update, sync_leaderboard=sync_leaderboard)

    def update_many(self, updates: Sequence[tuple[ObjectId | str, dict]]) -> list[ObjectId]:
        """Apply many submissions' updates (each atomic on its own document; built by
        :func:`pending_update`, :func:`scores_update`, :func:`invalid_update`); returns the ids
        no document had (deleted meanwhile). The leaderboard is left to the caller's one
        :meth:`reconcile_leaderboard`.

        One round trip on MongoDB (an unordered ``bulk_write``); on the embedded store one read
        and one write transaction under the store's lock (:func:`keyed_reads.update_by_id`);
        mongomock applies one update after the other.
        """
        checked = [(parse_id(sid), to_storage(update)) for sid, update in updates]
        if not checked:
            return []
        if isinstance(self._submissions, MontyCollection):
            with write_lock(self._database):
                return keyed_reads.update_by_id(self._submissions, checked)
        if not _has_bulk_write(self._submissions):
            with write_lock(self._database):
                return [
                    oid
                    for oid, update in checked
                    if self._submissions.update_one({"_id": oid}, update).matched_count == 0
                ]
        operations = [UpdateOne({"_id": oid}, update) for oid, update in checked]
        result = self._submissions.bulk_write(operations, ordered=False)
        if result.matched_count == len(checked):
            return []
        # Which ids matched a bulk write does not tell: ask (only when some were missing).
        wanted = [oid for oid, _ in checked]
        found = {d["_id"] for d in self._submissions.find({"_id": {"$in": wanted}}, {"_id": 1})}
        return [oid for oid in wanted if oid not in found]

    def _update(
        self, submission_id: ObjectId | str, update: dict, *, sync_leaderboard: bool = True
    ) -> None:
        """Apply ``update`` to one submission atomically, then bring its leaderboard entry in
        line, unless the caller reconciles the round's leaderboard once after many writes."""
        oid = parse_id(submission_id)
        if not sync_leaderboard:
            # No pre-image needed: a plain update. Over the wire findAndModify costs far more
            # (SecantusDB: 16 ms against 0.8 ms; 2,000 of them per burst of 1,000 submissions).
            with write_lock(self._database):
                matched = self._submissions.update_one({"_id": oid}, to_storage(update))
            if matched.matched_count == 0:
                raise SubmissionNotFound(oid)
            return
        with write_lock(self._database):
            before = self._submissions.find_one_and_update(
                {"_id": oid}, to_storage(update), projection={"competition_id": 1, "username": 1}
            )
        if before is None:
            raise SubmissionNotFound(oid)
        self.sync_leaderboard(before["competition_id"], before["username"])


def pending_update(
    *,
    consistency: float,
    validation_logloss: float,
    claim: Claim | None = None,
    file_digest: str | None = None,
) -> dict:
    """The update that records a submission's leaderboard numbers and (re-)pends both scores.

    Any earlier scores and invalid mark are dropped: a rescore starts from pending. With
    ``claim`` (the run's: its ``run_id`` set), the submission is recorded as taken up by that
    run, so the sensor does not plan it again while the run is alive and finds it if the run
    ends without deciding it. ``file_digest`` (a hash of the file read) keys its predictions in
    the round's cache. Raises ``ValueError`` naming a bad argument.
    """
    update: dict = {
        "consistency": check_number("consistency", consistency),
        "logloss.validation": check_number("validation_logloss", validation_logloss),
        "concordant": pending_status(),
        "original": pending_status(),
    }
    if claim is not None:
        update["queued"] = claim.record()
    if file_digest is not None:
        update["file_digest"] = check_text("file_digest", file_digest)
    return {"$set": update, "$unset": {"invalid": ""}}


def scores_update(
    *, concordance: Mapping, originality: Mapping, scored_at: datetime, run_id: str, policy: str
) -> dict:
    """The update that records both scores and clears any invalid mark and the claim.

    ``policy`` is the version of the scoring policy that decided them, kept on each. Raises
    ``ValueError`` naming a bad argument.
    """
    scored_at = utc(scored_at, "scored_at")
    run_id = check_text("run_id", run_id)
    return {
        "$set": {
            "concordant": concordant_status(concordance, scored_at, run_id, policy),
            "original": original_status(originality, scored_at, run_id, policy),
        },
        "$unset": {"invalid": "", "queued": ""},
    }


def invalid_update(*, reason: str, at: datetime, run_id: str | None, policy: str | None) -> dict:
    """The update that marks a submission that cannot be scored (``policy``: the version of the
    scoring policy, when a scoring run decided it). Raises ``ValueError`` naming a bad argument."""
    if run_id is not None:
        check_text("run_id", run_id)
    invalid = {"reason": check_text("reason", reason), "run_id": run_id, "at": utc(at, "at")}
    if policy is not None:
        invalid["policy"] = check_text("policy", policy)
    failed = {"pending": False, "value": False}
    return {
        "$set": {"invalid": invalid, "concordant": failed, "original": dict(failed)},
        "$unset": {"queued": ""},
    }


def _has_bulk_write(collection: Any) -> bool:
    """Whether ``collection`` is pymongo's (MongoDB, over the wire): montydb has no
    ``bulk_write`` and mongomock's refuses pymongo 4's operations."""
    return isinstance(collection, pymongo.collection.Collection)
