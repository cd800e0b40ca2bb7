"""The sensor's queue, kept in the store: work no run has claimed yet, claims, requests, and
documents that cannot be scored as stored (set aside with the reason)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from bson import ObjectId

from numerai_assets.store.base import NOT_INVALID, WELL_TYPED, StoreBase, SubmissionNotFound
from numerai_assets.store.connection import write_lock
from numerai_assets.store.documents import (
    Claim,
    check_text,
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
        query = {
            **WELL_TYPED,
            "$or": [
                # Never claimed (or a "queued" of another system's making: no claim of ours).
                {**NOT_INVALID, "original.pending": True, "queued.at": {"$not": {"$type": "date"}}},
                {"rescore_requested": {"$type": "date"}},
            ],
        }
        return self._find(query, limit=limit)

    def claim(self, docs: Iterable[Mapping], claim: Claim) -> list[dict]:
        """Record ``claim`` (a run planned for them) on ``docs``; return those claimed, in
        ``docs``' order (a document deleted since it was read is not).

        An intake request is taken only if it is still the one read (a request made since
        stays for the next tick): each request is planned for exactly once. The documents
        without a request are claimed in one write (a tick claims thousands: one write each
        cost 25 ms apiece on the embedded store, 4 ms over the wire).
        """
        docs = [dict(doc) for doc in docs]
        record = claim.record()
        plain = [parse_id(d["_id"]) for d in docs if d.get("rescore_requested") is None]
        taken: set[str] = set()
        if plain:
            with write_lock(self._database):
                result = self._submissions.update_many(
                    {"_id": {"$in": plain}}, to_storage({"$set": {"queued": record}})
                )
            if result.matched_count == len(set(plain)):
                taken.update(map(str, plain))
            else:  # some were deleted since read: those still here were claimed
                present = self._submissions.find({"_id": {"$in": plain}}, {"_id": 1})
                taken.update(str(d["_id"]) for d in present)
        for doc in docs:
            if doc.get("rescore_requested") is None:
                continue
            condition = {
                "_id": parse_id(doc["_id"]),
                "rescore_requested": self._when(doc["rescore_requested"]),
            }
            update = {"$set": {"queued": record}, "$unset": {"rescore_requested": ""}}
            with write_lock(self._database):
                result = self._submissions.update_one(condition, to_storage(update))
            if result.matched_count:
                taken.add(str(parse_id(doc["_id"])))
        return [doc for doc in docs if str(parse_id(doc["_id"])) in taken]

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
