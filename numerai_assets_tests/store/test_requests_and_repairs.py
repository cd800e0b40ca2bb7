"""Scoring requests (the intake's), malformed documents, leaderboard repair: every backend."""

import pytest
from bson import ObjectId

from numerai_assets.store import SubmissionNotFound

from .helpers import POLICY, ROUND, add, at, concordance, originality


def test_scoring_requests_come_back_in_the_order_they_were_made(store):
    a, b, c = (add(store, user, t) for user, t in (("a", 1), ("b", 2), ("c", 3)))
    assert store.scoring_requested_after(None) == []
    store.request_scoring(c, at=at(10))
    store.request_scoring(str(a), at=at(11))
    assert [d["_id"] for d in store.scoring_requested_after(None)] == [c, a]
    assert [d["_id"] for d in store.scoring_requested_after(at(10))] == [a]
    assert store.scoring_requested_after(at(11)) == []
    store.request_scoring(c, at=at(12))  # asked again: comes after a now
    assert [d["_id"] for d in store.scoring_requested_after(at(10))] == [a, c]
    assert store.get(b).get("rescore_requested") is None
    with pytest.raises(SubmissionNotFound):
        store.request_scoring(ObjectId(), at=at(1))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"competition_id": "abc"}, "competition_id is 'abc' (str), not a round number"),
        ({"competition_id": True}, "competition_id is True (bool), not a round number"),
        ({"username": None}, "has no username"),
        ({"filename": 42}, "filename is 42 (int), not a file name"),
        ({"created": "yesterday"}, "created is 'yesterday' (str), not a date and time"),
    ],
)
def test_malformed_documents_are_named_and_set_aside(store, database, change, reason):
    good = add(store, "fine", 1)
    bad = add(store, "broken", 2)
    database["submissions"].update_one({"_id": bad}, {"$set": change})
    docs = list(database["submissions"].find())
    problems = store.malformed(docs)
    assert list(problems) == [bad] and reason in problems[bad]
    store.mark_malformed(bad, reason=problems[bad], at=at(5))
    stored = database["submissions"].find_one({"_id": bad})
    assert stored["invalid"]["reason"] == problems[bad]
    assert stored["original"] == {"pending": False, "value": False}
    assert store.get(good)["original"]["pending"] is True


def test_reconcile_completes_an_interrupted_write(store, database):
    first = add(store, "ann", 1)
    add(store, "bob", 2)
    store.write_scores(
        first,
        concordance=concordance(),
        originality=originality(),
        scored_at=at(9),
        run_id="r1",
        policy=POLICY,
    )
    # The submission changed but the process died before the leaderboard caught up:
    database["submissions"].update_one({"_id": first}, {"$set": {"original.value": False}})
    assert {e["username"]: e for e in store.leaderboard(ROUND)}["ann"]["original"]["value"] is True
    store.reconcile_leaderboard(ROUND)
    board = {e["username"]: e for e in store.leaderboard(ROUND)}
    assert board["ann"]["original"] == {"pending": False, "value": False}
    assert set(board) == {"ann", "bob"}
    snapshot = list(database["competitions"].find())
    store.reconcile_leaderboard(ROUND)  # nothing left to do: nothing written
    assert list(database["competitions"].find()) == snapshot
