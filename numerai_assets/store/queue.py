"""The sensor's queue, kept in the store: work no run has claimed yet, claims, requests, and
documents that cannot be scored as stored (set aside with the reason)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId

from numerai_assets.store.base import (
    DUPLICATE_KEY,
    NOT_INVALID,
    WELL_TYPED,
    StoreBase,
    SubmissionNotFound,
    id_batches,
)
from numerai_assets.store.connection import write_lock
from numerai_assets.store.documents import (
    Claim,
    check_round,
    check_text,
    claim_of,
    from_storage,
    parse_id,
    to_storage,
    utc,
)
from numerai_assets.store.validation import DOCUMENT_TYPES, malformed_reason


class QueueMixin(StoreBase):
    """The queue's reads and writes (a part of :class:`~numerai_assets.store.SubmissionStore`)."""

    def mistyped_submissions(self, *, limit: int = 1000) -> list[dict]:
        """Documents not yet set aside whose fields have the wrong BSON type (or are missing).

        They may sort anywhere (a string ``created`` is never after a date cursor), so a query
        by type finds them, however old. At most ``limit`` documents a call.
        """
        # {"$type": [...]} would say it in one, but mongomock takes one type name at a time.
        wrong = [
            {"$and": [{field: {"$not": {"$type": kind}}} for kind in kinds]}
            for field, kinds in DOCUMENT_TYPES.items()
        ]
        cursor = self._submissions.find({**NOT_INVALID, "$or": wrong}).limit(limit)
        return [from_storage(doc) for doc in cursor]

    def unclaimed(self, *, limit: int | None = None) -> list[dict]:
        """Work no scoring run has been planned for yet, oldest first: new uploads (pending,
        never claimed) and intake requests (``rescore_requested`` set, invalid submissions
        included: a request is planned or refused, never left set), whatever their ``created``.
        This is the sensor's queue: it finds a document however late its clock.
        """
        return self._find(self._unclaimed_query(), limit=limit)

    @staticmethod
    def _unclaimed_query() -> dict:
        return {
            **WELL_TYPED,
            "$or": [
                # Never claimed (or a "queued" of another system's making: no claim of ours).
                {**NOT_INVALID, "original.pending": True, "queued.at": {"$not": {"$type": "date"}}},
                {"rescore_requested": {"$type": "date"}},
            ],
        }

    def claim(self, docs: Iterable[Mapping], claim: Claim) -> list[dict]:
        """Record ``claim`` (a run planned for them) on ``docs``, each only if it is still as
        read; return those claimed, in ``docs``' order. The caller's run takes those only.

        A compare-and-set on what was read, because two planners may read the same work: the
        sensor and an upload asking for its run (:mod:`numerai_assets.pipeline.launch`). A
        document read unclaimed is taken only if still unclaimed; one read with a claim (a
        retry) only if that claim is still there; an intake request only if it is still the one
        read (a request made since stays for the next tick). So each piece of work is planned
        for exactly once, and a document deleted since it was read is not claimed. Documents
        sharing what was read are claimed in one write (a tick claims thousands: one write each
        cost 25 ms apiece on the embedded store, 4 ms over the wire).
        """
        docs = [dict(doc) for doc in docs]
        record = claim.record()
        groups: dict[tuple, list[ObjectId]] = {}
        for doc in docs:
            groups.setdefault(self._as_read(doc), []).append(parse_id(doc["_id"]))
        taken: set[str] = set()
        for (requested, claimed_at), read_alike in groups.items():
            for ids in id_batches(read_alike):  # one write per batch of ids
                taken.update(self._claim_batch(ids, requested, claimed_at, claim, record))
        return [doc for doc in docs if str(parse_id(doc["_id"])) in taken]

    def _claim_batch(
        self,
        ids: list[ObjectId],
        requested: datetime | None,
        claimed_at: datetime | None,
        claim: Claim,
        record: dict,
    ) -> set[str]:
        """Claim the documents ``ids`` (read alike) in one write; the ids taken, as text."""
        condition: dict[str, Any] = {"_id": {"$in": ids}}
        condition["queued.at"] = (
            {"$not": {"$type": "date"}} if claimed_at is None else self._when(claimed_at)
        )
        update: dict[str, Any] = {"$set": {"queued": record}}
        if requested is not None:
            condition["rescore_requested"] = self._when(requested)
            update["$unset"] = {"rescore_requested": ""}
        elif claimed_at is None:
            # Read as a new upload: still one. A run that took it up since (another
            # planner's) and decided it cleared its claim, and it is no work any more.
            condition.update({**NOT_INVALID, "original.pending": True})
        with write_lock(self._database):
            result = self._submissions.update_many(condition, to_storage(update))
        if result.matched_count == len(set(ids)):
            return set(map(str, ids))
        if not result.matched_count:
            return set()
        # Some were taken by another planner, or deleted. By the run key (unique to the
        # planning): the stored time is cut to milliseconds.
        mine = self._submissions.find(
            {"_id": {"$in": ids}, "queued.run_key": claim.run_key}, {"_id": 1}
        )
        return {str(d["_id"]) for d in mine}

    @staticmethod
    def _as_read(doc: Mapping) -> tuple[datetime | None, datetime | None]:
        """What :meth:`claim` compares: the request and our claim's time as ``doc`` was read."""
        requested = doc.get("rescore_requested")
        claimed = claim_of(doc)
        return (
            requested if isinstance(requested, datetime) else None,
            None if claimed is None else claimed.at,
        )

    def release(self, doc: Mapping, claim: Claim) -> bool:
        """Undo :meth:`claim` of one document whose run could not be asked for: only while no
        run has taken it up and the claim is still ``claim``; True if released. The document is
        unclaimed work again (an intake request it carried is not restored: a new upload's
        release is what this is for), so the sensor's next tick plans it."""
        condition = {
            "_id": parse_id(doc["_id"]),
            "queued.run_key": claim.run_key,
            "queued.run_id": None,
        }
        with write_lock(self._database):
            result = self._submissions.update_one(condition, {"$unset": {"queued": ""}})
        return result.matched_count == 1

    def take_upload_turn(self, round: int, *, now: datetime, every: timedelta) -> bool:
        """Whether an upload of ``round`` may ask for its own run now: at most one upload a
        round every ``every`` does (True for it, recorded on the round's competition document
        as ``upload_asked``), so a burst costs one look at the round's work, not one an upload.

        A time stamp further than ``every`` ahead of ``now`` (a clock running ahead) or not a
        date (another system's) counts as stale: no clock can keep a round from asking.
        """
        round = check_round(round)
        now = utc(now, "now")
        stale = [
            {"upload_asked": {"$not": {"$type": "date"}}},
            {"upload_asked": {"$lt": self._when(now - every)}},
            {"upload_asked": {"$gt": self._when(now + every)}},
        ]
        with write_lock(self._database):
            with contextlib.suppress(*DUPLICATE_KEY):
                self._competitions.insert_one({"_id": round})
            taken = self._competitions.update_one(
                {"_id": round, "$or": stale}, to_storage({"$set": {"upload_asked": now}})
            )
        return taken.matched_count == 1

    def round_has_waiting_work(self, round: int, *, besides: ObjectId | str) -> bool:
        """Whether the round holds work a run will take in a batch, other than ``besides``:
        an upload or request no run has claimed yet, or one claimed for a run that has not
        taken it up (queued). An upload that finds some leaves its own to the sensor, which
        batches them (:func:`numerai_assets.batch.planning.plan_upload`). It reads the round
        (17-50 ms at 1,000 submissions over the wire, 130 ms embedded): ask
        :meth:`take_upload_turn` first."""
        queued = {**NOT_INVALID, "queued.at": {"$type": "date"}, "queued.run_id": None}
        query = {
            "$and": [
                {"competition_id": round, "_id": {"$ne": parse_id(besides)}},
                {"$or": [self._unclaimed_query(), {**WELL_TYPED, **queued}]},
            ]
        }
        return self._submissions.find_one(query, {"_id": 1}) is not None

    def claimed(self) -> list[dict]:
        """Submissions a run was planned for, or taken up by, that no decision has answered yet
        (a decision clears the claim), oldest first: what recovery watches, whatever the claim's
        age. Invalid submissions are left out (their decision is made)."""
        return self._find({**WELL_TYPED, **NOT_INVALID, "queued.at": {"$type": "date"}})

    def answer_request(self, doc: Mapping) -> bool:
        """Clear ``doc``'s intake request if it is still the one read (one made since stays, for
        the next tick); True if cleared. For a request answered without a run (refused)."""
        requested = doc.get("rescore_requested")
        if requested is None:
            return False
        with write_lock(self._database):
            result = self._submissions.update_one(
                {"_id": parse_id(doc["_id"]), "rescore_requested": self._when(requested)},
                {"$unset": {"rescore_requested": ""}},
            )
        return result.matched_count == 1

    def set_aside_malformed(
        self, docs: Iterable[Mapping], *, at: datetime
    ) -> tuple[list[dict], list[tuple[Any, str]]]:
        """Set aside, as invalid with the reason, every malformed document among ``docs``
        (:func:`malformed_reason`; pass :meth:`mistyped_submissions` too, to find them all).

        Documents written by other systems may miss a field or carry the wrong type; scoring
        them would fail on every attempt. Returns the well-formed ``docs`` and the
        ``(raw _id, reason)`` of each document set aside.
        """
        well_formed, set_aside, seen = [], [], set()
        for doc in docs:
            reason = malformed_reason(doc)
            if reason is None:
                well_formed.append(dict(doc))
                continue
            key = repr(doc.get("_id"))  # any BSON value, hashable or not
            if key not in seen:
                seen.add(key)
                self.mark_malformed(doc.get("_id"), reason=reason, at=at)
                set_aside.append((doc.get("_id"), reason))
        return well_formed, set_aside

    def request_scoring(self, submission_id: ObjectId | str, *, at: datetime) -> dict:
        """Flag a submission to be (re)scored; the sensor picks it up ahead of new uploads."""
        oid = parse_id(submission_id)
        with write_lock(self._database):
            before = self._submissions.find_one_and_update(
                {"_id": oid}, {"$set": {"rescore_requested": self._when(utc(at, "at"))}}
            )
        if before is None:
            raise SubmissionNotFound(oid)
        return from_storage(before)

    def mark_malformed(self, submission_id: Any, *, reason: str, at: datetime) -> None:
        """Set aside a document that cannot be scored as stored (see :meth:`malformed`).

        Only the document itself is touched: its round or user may be what is wrong, so there
        is no leaderboard entry to bring in line. ``submission_id`` is the raw ``_id``.
        """
        failed = {"pending": False, "value": False}
        invalid = {"reason": check_text("reason", reason), "run_id": None, "at": utc(at, "at")}
        with write_lock(self._database):
            self._submissions.update_one(  # by the raw _id: it may be no ObjectId
                {"_id": submission_id},
                to_storage(
                    {
                        "$set": {"invalid": invalid, "concordant": failed, "original": failed},
                        # Answered: nothing is left planned or requested for it.
                        "$unset": {"queued": "", "rescore_requested": ""},
                    }
                ),
            )
