"""``SubmissionStore.claim`` written ``IN_BATCH`` ids at a time (73ca99c): another planner's
whole claim, a deletion and a new request landing *between* two of its batches (the write lock
is now let go between batches). Held on the embedded store and mongomock: each document is
claimed by exactly one planner, a deleted one is neither claimed nor recreated, a request made
since the read stays, and the claim returns its documents in the order read."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import mongomock
import pytest

from numerai_assets.store import SubmissionStore, open_database
from numerai_assets.store.base import IN_BATCH
from numerai_assets.store.documents import Claim
from numerai_assets_tests.store.conftest import embedded_settings
from numerai_assets_tests.store.helpers import add, at


@pytest.fixture(params=["embedded", "mongomock"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> SubmissionStore:
    if request.param == "embedded":
        database = open_database(embedded_settings(tmp_path))
    else:
        database = mongomock.MongoClient(tz_aware=True)["numerai"]
    store = SubmissionStore(database)
    store.ensure_indexes()
    return store


def _between_batches(store: SubmissionStore, after: int, meddle: Callable[[], Any]) -> None:
    """Run ``meddle`` once, after the claim's ``after``-th batch write and before the next."""
    original, calls = store._claim_batch, [0]

    def hooked(*args: Any) -> set[str]:
        calls[0] += 1
        if calls[0] == after + 1:
            store._claim_batch = original  # type: ignore[method-assign]
            meddle()
        return original(*args)

    store._claim_batch = hooked  # type: ignore[method-assign]


def _owners(store: SubmissionStore) -> dict[str, str | None]:
    return {
        str(d["_id"]): (d.get("queued") or {}).get("run_key") for d in store._submissions.find()
    }


def test_two_planners_in_opposite_orders_and_a_deletion_between_batches(store) -> None:
    ids = [add(store, f"u{k}", k) for k in range(3 * IN_BATCH)]
    mine = [store.get(sid) for sid in ids]
    mine.insert(IN_BATCH + 3, {**mine[3], "_id": str(mine[3]["_id"])})  # read twice, as text
    theirs = [store.get(sid) for sid in reversed(ids[IN_BATCH // 2 : 2 * IN_BATCH + 5])]
    gone = ids[2 * IN_BATCH + 9]
    got: list[dict] = []

    def meddle() -> None:  # p1's first batch is written: p2 takes the rest of its read
        got.extend(store.claim(theirs, Claim("p2", None, at(20))))
        store._submissions.delete_one({"_id": gone})

    _between_batches(store, 1, meddle)
    taken = store.claim(mine, Claim("p1", None, at(21)))
    owners = _owners(store)
    assert str(gone) not in owners and len(owners) == len(ids) - 1  # not recreated
    assert set(owners.values()) <= {"p1", "p2"}  # every one claimed, by one planner
    assert [str(d["_id"]) for d in taken] == [
        str(d["_id"]) for d in mine if owners.get(str(d["_id"])) == "p1"
    ]
    assert [str(d["_id"]) for d in got] == [
        str(d["_id"]) for d in theirs if owners.get(str(d["_id"])) == "p2"
    ]
    assert len(got) == len(theirs) - IN_BATCH // 2 and len(taken) > IN_BATCH


def test_a_request_made_between_batches_stays_for_the_next_tick(store) -> None:
    ids = [add(store, f"u{k}", k) for k in range(2 * IN_BATCH + 3)]
    store._submissions.update_many({}, {"$set": {"rescore_requested": at(5)}})
    read = [store.get(sid) for sid in ids]
    again = ids[IN_BATCH + 1]  # in the second batch

    def meddle() -> None:
        store._submissions.update_one({"_id": again}, {"$set": {"rescore_requested": at(9)}})

    _between_batches(store, 1, meddle)
    taken = store.claim(read, Claim("tick", None, at(10)))
    assert [d["_id"] for d in taken] == [sid for sid in ids if sid != again]
    left = store.get(again)
    assert left["rescore_requested"] == at(9) and not left.get("queued")
    assert store.get(ids[0]).get("rescore_requested") is None
