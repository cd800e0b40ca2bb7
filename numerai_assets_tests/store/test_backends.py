"""What the store relies on from its database, checked on every backend (``database`` fixture).

A MongoDB-compatible layer can diverge silently: candidates tried for CI stored a bool as 1,
dropped the other conditions beside an ``$or`` on dotted paths, or turned integer ``_id``\\ s into
ObjectIds. Each test here fails on such a backend, whether embedded, mongomock or over the wire.
"""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

import mongomock
import pytest
from montydb.database import MontyDatabase

from numerai_assets.store import RoundBusy, SubmissionStore
from numerai_assets.store.base import DUPLICATE_KEY
from numerai_assets.store.documents import to_storage
from numerai_assets_tests.store.helpers import ROUND, T0, add, at, score


def ms(milliseconds: int):
    """T0 plus a whole number of milliseconds (exact: no float seconds)."""
    return T0 + timedelta(milliseconds=milliseconds)


def test_set_keeps_the_types_of_bools_ints_and_datetimes(database: Any) -> None:
    submissions = database["submissions"]
    submissions.insert_one({"_id": 41, "flags": {"pending": True}})
    when = ms(1_234)
    submissions.update_one(
        {"_id": 41},
        to_storage(
            {
                "$set": {
                    "yes": True,
                    "no": False,
                    "flags.pending": False,
                    "count": 7,
                    "large": 2**40,
                    "zero": 0,
                    "when": when,
                }
            }
        ),
    )
    doc = submissions.find_one({"_id": 41})

    assert type(doc["_id"]) is int and doc["_id"] == 41
    assert doc["yes"] is True and doc["no"] is False and doc["flags"]["pending"] is False
    assert type(doc["count"]) is int and doc["count"] == 7
    assert type(doc["zero"]) is int and doc["zero"] == 0
    # BSON int64 comes back as bson's Int64 (an int) from pymongo and montydb.
    assert isinstance(doc["large"], int) and not isinstance(doc["large"], bool)
    assert doc["large"] == 2**40
    assert doc["when"] == when and doc["when"].utcoffset() == timedelta(0)
    # Bools and numbers are different BSON types: neither matches the other in a query. mongomock
    # compares with Python's ==, where True == 1: a bool stored as 1 (or queried as 1) would pass
    # there and match nothing in production, which only the wire tests catch.
    conflated = 1 if isinstance(database, mongomock.Database) else 0
    assert submissions.count_documents({"yes": 1}) == conflated
    assert submissions.count_documents({"no": 0}) == conflated
    assert submissions.count_documents({"zero": False}) == conflated
    assert submissions.count_documents({"count": True}) == 0
    assert submissions.count_documents({"yes": True, "count": 7, "when": when}) == 1


def test_a_scored_submission_reads_back_with_its_types(store: SubmissionStore, database) -> None:
    sid = add(store, "alice", 1)
    store.mark_pending(sid, consistency=75.0, validation_logloss=0.69)
    score(store, sid, original=False)
    doc = store.get(sid)

    assert type(doc["competition_id"]) is int
    assert doc["concordant"]["value"] is True and doc["concordant"]["pending"] is False
    assert doc["original"]["value"] is False and doc["original"]["pending"] is False
    assert type(doc["consistency"]) is float
    assert doc["created"] == at(1) and doc["created"].tzinfo == timezone.utc
    competition = database["competitions"].find_one({"_id": ROUND})
    assert type(competition["_id"]) is int and type(competition["version"]) is int
    assert store.unclaimed() == []


def test_lease_expiry_compares_at_millisecond_precision(store: SubmissionStore) -> None:
    """A lease runs until a stored instant: expired only once ``now`` is past it, compared at
    the millisecond the store keeps, whatever finer time the caller has."""
    store.acquire_round(ROUND, owner="a", until=ms(1_500), now=ms(1_000))
    for now in (ms(1_499), ms(1_500), ms(1_500) + timedelta(microseconds=999)):
        with pytest.raises(RoundBusy, match="round 7 is being scored by run a"):
            store.acquire_round(ROUND, owner="b", until=ms(3_000), now=now)
    store.acquire_round(ROUND, owner="b", until=ms(3_000), now=ms(1_501))
    assert store.lease_of(ROUND)["owner"] == "b"
    assert store.lease_of(ROUND)["until"] == ms(3_000)


def add_at(store: SubmissionStore, user: str, when) -> Any:
    return store.insert_submission(username=user, round=ROUND, filename=f"{user}.csv", created=when)


def test_a_repeated_id_is_refused(database: Any) -> None:
    """The leaderboard's creation race is decided by the competition's ``_id``."""
    database["competitions"].insert_one({"_id": ROUND, "leaderboard": [], "version": 1})
    with pytest.raises(DUPLICATE_KEY):
        database["competitions"].insert_one({"_id": ROUND, "leaderboard": [], "version": 1})
    assert database["competitions"].count_documents({}) == 1


def test_a_board_created_meanwhile_is_not_overwritten(store: SubmissionStore, database) -> None:
    """A sync that read no competition document loses the race to one created meanwhile."""
    sid = add(store, "alice", 1)
    store.sync_leaderboard(ROUND, "alice")
    board = database["competitions"].find_one({"_id": ROUND})

    assert store._write_board(ROUND, None, [], [{"username": "mallory"}]) is False
    assert database["competitions"].find_one({"_id": ROUND}) == board
    assert [entry["submission_id"] for entry in board["leaderboard"]] == [sid]


def test_a_unique_secondary_index_is_enforced_except_by_the_embedded_store(database: Any) -> None:
    """montydb ignores ``create_index`` (it always scans), so the store relies on ``_id`` alone."""
    database["competitions"].create_index("name", unique=True)
    database["competitions"].insert_one({"_id": 1, "name": "weekly"})
    if isinstance(database, MontyDatabase):
        database["competitions"].insert_one({"_id": 2, "name": "weekly"})
        assert database["competitions"].count_documents({"name": "weekly"}) == 2
    else:
        with pytest.raises(DUPLICATE_KEY):
            database["competitions"].insert_one({"_id": 2, "name": "weekly"})
        assert database["competitions"].count_documents({"name": "weekly"}) == 1


def test_or_over_dotted_paths_keeps_the_conditions_beside_it(database: Any) -> None:
    matches = {"concordant": {"pending": True}, "original": {"pending": False}}
    docs = [
        {"_id": 1, "competition_id": 7, "username": "a", "created": ms(1), **matches},
        {
            "_id": 2,
            "competition_id": 7,
            "username": "b",
            "created": ms(2),
            "original": {"pending": True},
        },
        # Each of these matches the $or but fails exactly one condition beside it.
        {"_id": 3, "competition_id": 8, "username": "c", "created": ms(3), **matches},
        {"_id": 4, "competition_id": 7, "username": "me", "created": ms(4), **matches},
        {"_id": 5, "competition_id": 7, "username": "d", "created": ms(9_000), **matches},
        {
            "_id": 6,
            "competition_id": 7,
            "username": "e",
            "created": ms(6),
            "invalid": {},
            **matches,
        },
        # This one meets every condition beside the $or, and neither branch of it.
        {
            "_id": 7,
            "competition_id": 7,
            "username": "f",
            "created": ms(7),
            "original": {"pending": False},
        },
    ]
    database["submissions"].insert_many(to_storage(docs))
    query = {
        "competition_id": 7,
        "username": {"$ne": "me"},
        "created": {"$lte": ms(1_000)},
        "invalid": {"$exists": False},
        "$or": [{"concordant.pending": True}, {"original.pending": True}],
    }

    found = database["submissions"].find(query).sort("_id", 1)
    assert [doc["_id"] for doc in found] == [1, 2]
    assert database["submissions"].count_documents(query) == 2
