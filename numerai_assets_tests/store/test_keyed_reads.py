"""The embedded store's reads by ``_id`` (store/keyed_reads.py): same answers as montydb's
full scan, and only the pinned rows read.

The reference is montydb's in-memory engine, which :func:`keyed_reads.install` leaves alone: it
scans every document for every query, as montydb's sqlite engine did before.
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from bson import Int64, ObjectId
from montydb import MontyClient

from numerai_assets.store import open_database
from numerai_assets.store.base import IN_BATCH
from numerai_assets.store.keyed_reads import pinned_ids, update_by_id
from numerai_assets_tests.store.conftest import embedded_settings

OIDS = [ObjectId() for _ in range(6)]
# _id values of every kind a document may hold; numbers equal across types (5, 5.0, Int64(5)).
IDS: list[Any] = [*OIDS, str(OIDS[0]), "a", "", 5, 6.0, Int64(7), {"k": 1}, True]


def _documents(rng: random.Random) -> list[dict]:
    return [{"_id": value, "n": rng.randrange(3), "tag": rng.choice("xy")} for value in IDS]


def _filters(rng: random.Random) -> list[dict]:
    some = rng.sample(IDS, 3)
    return [
        {"_id": rng.choice(OIDS)},
        {"_id": ObjectId()},  # no such document
        {"_id": str(OIDS[0])},  # the string, not the ObjectId
        {"_id": "a", "n": rng.randrange(3)},
        {"_id": {"$eq": rng.choice(OIDS)}},
        {"_id": {"$in": rng.sample(OIDS, 3) + ["a", ObjectId()]}},
        {"_id": {"$in": []}},
        {"_id": {"$in": some}},  # numbers and documents among them: a scan
        {"_id": 5.0},  # equal to 5 stored as an int: a scan
        {"_id": Int64(6)},
        {"_id": {"$ne": OIDS[1]}},
        {"_id": {"$in": [OIDS[2]], "$nin": [OIDS[2]]}},
        {"$or": [{"_id": OIDS[3]}, {"tag": "x"}]},
        {"_id": rng.choice(OIDS), "$or": [{"n": 0}, {"n": 1}]},
        {"tag": rng.choice("xy")},
        {},
    ]


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Any, Any]:
    """(the embedded store's collection, the in-memory reference), same documents."""
    keyed = open_database(embedded_settings(tmp_path))["probe"]
    # montydb's memory engine is one per process: a fresh collection per test.
    reference = MontyClient(":memory:")["numerai"][f"probe_{ObjectId()}"]
    return keyed, reference


def _contents(collection: Any) -> list[dict]:
    return list(collection.find())


@pytest.mark.parametrize("seed", range(12))
def test_reads_and_updates_equal_a_full_scan(pair: tuple[Any, Any], seed: int) -> None:
    rng = random.Random(seed)
    documents = _documents(rng)
    for collection in pair:
        collection.insert_many([dict(d) for d in documents])
    keyed, reference = pair
    for query in _filters(rng):
        assert list(keyed.find(query)) == list(reference.find(query)), query
        assert keyed.find_one(query) == reference.find_one(query), query
        assert keyed.count_documents(query) == reference.count_documents(query), query
        assert keyed.distinct("n", query) == reference.distinct("n", query), query
        change = {"$set": {"n": rng.randrange(9)}, "$inc": {"writes": 1}}
        one = [c.update_one(query, change).raw_result for c in pair]
        assert one[0] == one[1], query
        many = [c.update_many(query, {"$inc": {"writes": 1}}).raw_result for c in pair]
        assert many[0] == many[1], query
        before = [c.find_one_and_update(query, {"$set": {"tag": "z"}}) for c in pair]
        assert before[0] == before[1], query
        assert _contents(keyed) == _contents(reference), query


@pytest.mark.parametrize("seed", range(8))
def test_update_by_id_equals_update_one_each(pair: tuple[Any, Any], seed: int) -> None:
    """The bulk write equals montydb's ``update_one`` applied to each in order, ids missing and
    repeated included; the missing ids are returned."""
    rng = random.Random(seed)
    keyed, reference = pair
    documents = [{"_id": oid, "n": i, "sub": {"a": 1}} for i, oid in enumerate(OIDS)]
    documents.append({"_id": "text", "n": 9})
    for collection in pair:
        collection.insert_many([dict(d) for d in documents])
    choices = [*OIDS, "text", ObjectId(), "nobody"]
    updates = []
    for _ in range(rng.randrange(1, 20)):
        change = rng.choice(
            [
                {"$set": {"n": rng.randrange(5), "sub.b": rng.random()}},
                {"$unset": {"sub": ""}},
                {"$inc": {"n": 1}},
                {"$set": {"n": 0}, "$unset": {"missing": ""}},
            ]
        )
        updates.append((rng.choice(choices), change))
    missing = update_by_id(keyed, updates)
    expected = [
        oid
        for oid, change in updates
        if reference.update_one({"_id": oid}, change).matched_count == 0
    ]
    assert missing == expected
    assert _contents(keyed) == _contents(reference)


def test_update_by_id_over_many_batches_of_ids(pair: tuple[Any, Any]) -> None:
    """More ids than one ``$in`` lists (``IN_BATCH``: montydb compares each document with every
    listed id): read in batches, written as one, missing and repeated ids across batches."""
    rng = random.Random(3)
    keyed, reference = pair
    oids = [ObjectId() for _ in range(3 * IN_BATCH + 5)]
    for collection in pair:
        collection.insert_many([{"_id": oid, "n": i} for i, oid in enumerate(oids)])
    choices = [*oids, *(ObjectId() for _ in range(IN_BATCH))]  # a batch's worth missing
    updates = [(rng.choice(choices), {"$inc": {"n": rng.randrange(1, 4)}}) for _ in range(500)]
    missing = update_by_id(keyed, updates)
    expected = [
        oid
        for oid, change in updates
        if reference.update_one({"_id": oid}, change).matched_count == 0
    ]
    assert missing == expected and len(set(missing)) > IN_BATCH // 2
    assert _contents(keyed) == _contents(reference)


def test_update_by_id_refuses_what_it_cannot_pin(pair: tuple[Any, Any]) -> None:
    with pytest.raises(ValueError, match="ObjectId or str"):
        update_by_id(pair[0], [(5, {"$set": {"n": 1}})])


def test_a_pinned_read_reads_only_its_rows(tmp_path: Path) -> None:
    """A row that cannot be decoded breaks a scan, not a read or write by another ``_id``."""
    database = open_database(embedded_settings(tmp_path))
    collection = database["probe"]
    wanted = ObjectId()
    collection.insert_many([{"_id": wanted, "n": 1}, {"_id": ObjectId(), "n": 2}])
    path = next(Path(database.client.address).rglob("probe.collection"))
    with sqlite3.connect(path) as connection:
        connection.execute("INSERT INTO documents (k, v) VALUES (?, ?)", (b"zz", b"not bson"))

    with pytest.raises(Exception):  # noqa: B017 - whatever montydb raises on a corrupt row
        list(collection.find({"n": 1}))  # the scan reads the corrupt row
    assert collection.find_one({"_id": wanted}) == {"_id": wanted, "n": 1}
    assert collection.update_one({"_id": wanted}, {"$set": {"n": 3}}).modified_count == 1
    assert collection.find_one_and_update({"_id": wanted}, {"$inc": {"n": 1}})["n"] == 3
    assert list(collection.find({"_id": {"$in": [wanted, ObjectId()]}})) == [
        {"_id": wanted, "n": 4}
    ]
    assert update_by_id(collection, [(wanted, {"$inc": {"n": 1}})]) == []
    assert collection.find_one({"_id": wanted}) == {"_id": wanted, "n": 5}


def test_many_pinned_ids_come_back_in_table_order(pair: tuple[Any, Any]) -> None:
    """More ids than one SQL statement takes: every one found, in insertion order."""
    keyed, reference = pair
    ids = [ObjectId() for _ in range(1_203)]
    for collection in pair:
        collection.insert_many([{"_id": oid, "i": i} for i, oid in enumerate(ids)])
    shuffled = random.Random(0).sample(ids, len(ids))
    query = {"_id": {"$in": shuffled}}
    assert list(keyed.find(query)) == list(reference.find(query))
    assert [d["i"] for d in keyed.find(query)] == list(range(len(ids)))


def test_an_array_id_matches_as_in_mongodb(tmp_path: Path) -> None:
    """MongoDB refuses an array ``_id``; montydb stores one, and a pinned read finds it only by
    the array itself (a montydb scan would also match its elements)."""
    collection = open_database(embedded_settings(tmp_path))["probe"]
    oid = ObjectId()
    collection.insert_one({"_id": [oid]})
    assert collection.find_one({"_id": oid}) is None
    assert collection.update_one({"_id": oid}, {"$set": {"n": 1}}).matched_count == 0
    assert collection.find_one({"n": {"$exists": False}}) == {"_id": [oid]}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"_id": OIDS[0]}, [OIDS[0]]),
        ({"_id": "x", "n": 1}, ["x"]),
        ({"_id": {"$eq": OIDS[1]}}, [OIDS[1]]),
        ({"_id": {"$in": [OIDS[0], "y"]}}, [OIDS[0], "y"]),
        ({"_id": {"$in": []}}, []),
        ({"_id": 5}, None),
        ({"_id": {"$in": [OIDS[0], 5]}}, None),
        ({"_id": {"$eq": OIDS[0], "$ne": OIDS[1]}}, None),
        ({"_id": {"$in": "not a list"}}, None),
        ({"_id": {"$gt": OIDS[0]}}, None),
        ({"$or": [{"_id": OIDS[0]}]}, None),
        ({}, None),
        (None, None),
    ],
)
def test_pinned_ids(spec: Any, expected: list | None) -> None:
    assert pinned_ids(spec) == expected
