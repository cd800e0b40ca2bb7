"""What every part of the submissions store shares: the two collections, the queries' building
blocks and the errors.

It only uses what MongoDB, montydb and mongomock all support: ``find`` with
``$or``/``$exists``/``$ne``/``$type``/comparisons, sort on several keys, ``limit``, ``distinct``,
``insert_one``, ``update_one`` and ``find_one_and_update`` with ``$set``/``$unset``. Nothing else:
montydb has no ``aggregate``, mongomock no array filters, and neither MongoDB nor montydb takes
``$pull`` and ``$push`` on one array in one update.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import pymongo.errors
from bson import ObjectId
from montydb import errors as montydb_errors

from numerai_assets.store.documents import COMPETITIONS, SUBMISSIONS, from_storage, query_datetime

ORDER = [("created", pymongo.ASCENDING), ("_id", pymongo.ASCENDING)]
NEWEST_FIRST = [("created", pymongo.DESCENDING), ("_id", pymongo.DESCENDING)]
NOT_INVALID = {"invalid": {"$exists": False}}
# Documents that have a place in the (created, _id) order; others are set aside by type.
WELL_TYPED = {"_id": {"$type": "objectId"}, "created": {"$type": "date"}}

DUPLICATE_KEY = (pymongo.errors.DuplicateKeyError, montydb_errors.DuplicateKeyError)
# Ids an ``{"_id": {"$in": [...]}}`` query lists at most. montydb tests each document it reads
# against every listed id in turn, so one query over N ids cost N² comparisons: a late upload
# re-deciding 2,000 submissions spent 2 x 4 million of them (over 10 s) on two bulk writes.
# Over the wire a batch is one round trip more per 64 ids.
IN_BATCH = 64


class StoreError(Exception):
    """Any failure of the submissions store that is not a bad argument."""


class SubmissionNotFound(StoreError, KeyError):
    """No submission has that id. Also a ``KeyError``, as for a missing mapping key."""

    def __init__(self, submission_id: ObjectId) -> None:
        self.submission_id = submission_id
        super().__init__(f"no submission with id {str(submission_id)!r}")

    def __str__(self) -> str:  # KeyError would show the message quoted
        return str(self.args[0])


class StoreBase:
    """The collections of a pymongo-like ``Database`` and the helpers every part uses."""

    def __init__(self, database: Any) -> None:
        self._database = database
        self._submissions = database[SUBMISSIONS]
        self._competitions = database[COMPETITIONS]
        codec_options = getattr(database, "codec_options", None)
        self._aware = bool(getattr(codec_options, "tz_aware", False))

    def _find(self, query: dict, *, limit: int | None = None) -> list[dict]:
        cursor = self._submissions.find(query).sort(ORDER)
        if limit is not None:
            cursor = cursor.limit(limit)
        return [from_storage(doc) for doc in cursor]

    def _when(self, value: datetime) -> datetime:
        return query_datetime(value, aware=self._aware)


def id_batches(ids: Sequence[Any]) -> Iterator[list[Any]]:
    """``ids`` in order, cut into lists of at most :data:`IN_BATCH` (one ``$in`` query each)."""
    ids = list(ids)
    for start in range(0, len(ids), IN_BATCH):
        yield ids[start : start + IN_BATCH]
