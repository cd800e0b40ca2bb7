"""Scoring requests (the intake's), malformed documents, leaderboard repair: every backend."""

from datetime import timedelta

import pytest
from bson import ObjectId

from numerai_assets.store import SubmissionNotFound
from numerai_assets.store.base import IN_BATCH
from numerai_assets.store.documents import Claim

from .helpers import POLICY, ROUND, add, at, concordance, originality, score


def test_scoring_requests_are_queued_until_claimed(store):
    a, b, c = (add(store, user, t) for user, t in (("a", 1), ("b", 2), ("c", 3)))
    for sid in (a, b, c):
        store.claim([store.get(sid)], Claim("first", None, at(5)))
        score(store, sid)  # the run's decision clears the claim
    assert store.unclaimed() == []
    store.request_scoring(c, at=at(10))
    store.request_scoring(str(a), at=at(11))
    assert [d["_id"] for d in store.unclaimed()] == [a, c]  # in (created, _id) order
    assert store.get(b).get("rescore_requested") is None
    requested = store.unclaimed()
    store.request_scoring(c, at=at(12))  # asked again before the claim: planned next time
    claimed = store.claim(requested, Claim("second", None, at(13)))
    assert [d["_id"] for d in claimed] == [a]
    assert [d["_id"] for d in store.unclaimed()] == [c]
    with pytest.raises(SubmissionNotFound):
        store.request_scoring(ObjectId(), at=at(1))


def test_a_tick_claims_many_at_once_and_never_a_document_deleted_since_read(store):
    ids = [add(store, f"u{k}", k) for k in range(6)]
    read = [store.get(sid) for sid in ids]
    store.request_scoring(ids[4], at=at(20))
    read[4] = store.get(ids[4])  # read with its request
    store._submissions.delete_one({"_id": ids[2]})  # deleted after the tick read it
    claimed = store.claim(read, Claim("batch", None, at(30)))
    assert [d["_id"] for d in claimed] == [ids[0], ids[1], ids[3], ids[4], ids[5]]
    for sid in (ids[0], ids[1], ids[3], ids[4], ids[5]):
        assert store.get(sid)["queued"]["run_key"] == "batch"
        assert store.get(sid).get("rescore_requested") is None
    assert store.unclaimed() == []
    assert store._submissions.count_documents({"_id": ids[2]}) == 0  # not brought back


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"competition_id": "abc"}, "competition_id is 'abc' (str), not a round number"),
        ({"competition_id": True}, "competition_id is True (bool), not a round number"),
        ({"competition_id": -3}, "competition_id is -3, not a round number"),
        ({"username": None}, "has no username"),
        ({"username": 7}, "username is 7 (int), not a user name"),
        ({"username": "u" * 101}, "username is longer than 100 characters"),
        ({"filename": 42}, "filename is 42 (int), not a file name"),
        ({"filename": "a\x00b"}, "is not a valid object key"),
        ({"filename": "k" * 1025}, "is not a valid object key"),
        ({"created": "yesterday"}, "created is 'yesterday' (str), not a date and time"),
        ({"created": None}, "has no created"),
    ],
)
def test_malformed_documents_are_named_and_set_aside(store, database, change, reason):
    good = add(store, "fine", 1)
    bad = add(store, "broken", 2)
    database["submissions"].update_one({"_id": bad}, {"$set": change})
    docs = list(database["submissions"].find())
    well_formed, set_aside = store.set_aside_malformed(docs, at=at(5))
    assert [d["_id"] for d in well_formed] == [good]
    ((raw_id, problem),) = set_aside
    assert raw_id == bad and reason in problem and len(problem) < 300
    stored = database["submissions"].find_one({"_id": bad})
    assert stored["invalid"]["reason"] == problem
    assert stored["original"] == {"pending": False, "value": False}
    assert store.get(good)["original"]["pending"] is True
    # Set aside once: the store's query no longer finds it.
    assert store.mistyped_submissions() == []


@pytest.mark.parametrize(
    "document",
    [
        {"_id": "legacy-17", "username": "old", "competition_id": 7, "filename": "7/old/a.csv"},
        {"_id": {"legacy": 17}, "competition_id": 7},
        {"_id": 17, "created": "2024-01-01"},
        {"username": "null-created", "competition_id": 7, "filename": "7/x/a.csv", "created": None},
        {"username": "no-created", "competition_id": 7, "filename": "7/x/a.csv", "created": ...},
    ],
)
def test_mistyped_documents_are_found_by_query_wherever_they_sort(store, database, document):
    """A foreign document that has no place in the (created, _id) order is still set aside."""
    good = add(store, "fine", 1)
    document = {"created": at(3), **document}
    if document["created"] is ...:
        del document["created"]
    database["submissions"].insert_one(document)
    assert [d["_id"] for d in store.round_submissions(7)] == [good]
    _, set_aside = store.set_aside_malformed(store.mistyped_submissions(), at=at(5))
    assert len(set_aside) == 1 and set_aside[0][1].startswith("the submission record")
    assert store.mistyped_submissions() == []
    assert [d["_id"] for d in store.unclaimed()] == [good]


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


def test_a_claim_takes_only_what_is_still_as_read(store):
    """Two planners (the sensor, an upload asking for its run) may read the same work: each
    document is claimed by one of them, whoever writes first."""
    ids = [add(store, f"u{k}", k) for k in range(4)]
    sensor_read = [store.get(sid) for sid in ids]
    upload = store.claim([store.get(ids[2])], Claim("upload", None, at(10)))
    assert [d["_id"] for d in upload] == [ids[2]]
    taken = store.claim(sensor_read, Claim("tick", None, at(11)))
    assert [d["_id"] for d in taken] == [ids[0], ids[1], ids[3]]
    assert store.get(ids[2])["queued"]["run_key"] == "upload"  # not overwritten
    assert store.claim([sensor_read[2]], Claim("late", None, at(12))) == []


def test_a_claim_of_more_documents_than_one_query_lists(store):
    """A tick claims thousands, written ``IN_BATCH`` ids at a time (montydb compares each
    document with every listed id): another planner's claims and a deletion scattered over the
    batches are each respected, and the claim returns the rest in the order read."""
    ids = [add(store, f"u{k}", k) for k in range(2 * IN_BATCH + 10)]
    read = [store.get(sid) for sid in ids]
    theirs = set(ids[5 :: IN_BATCH // 2])  # some in every batch
    store.claim([store.get(sid) for sid in theirs], Claim("upload", None, at(10)))
    store._submissions.delete_one({"_id": ids[IN_BATCH]})  # deleted after the tick read it
    taken = store.claim(read, Claim("tick", None, at(11)))
    expected = [sid for sid in ids if sid not in theirs and sid != ids[IN_BATCH]]
    assert [d["_id"] for d in taken] == expected
    assert {store.get(sid)["queued"]["run_key"] for sid in theirs} == {"upload"}
    assert {store.get(sid)["queued"]["run_key"] for sid in expected} == {"tick"}


def test_a_retry_claims_only_while_the_claim_it_read_is_there(store):
    a, b = add(store, "a", 1), add(store, "b", 2)
    store.claim([store.get(a), store.get(b)], Claim("dead", None, at(5)))
    read = [store.get(a), store.get(b)]  # recovery read both with the dead run's claim
    store.claim([store.get(b)], Claim("other", None, at(6)))  # b planned again meanwhile
    taken = store.claim(read, Claim("retry", None, at(7), retries=1))
    assert [d["_id"] for d in taken] == [a]
    assert store.get(a)["queued"]["retries"] == 1
    assert store.get(b)["queued"]["run_key"] == "other"


def test_a_claim_is_released_only_while_no_run_has_taken_it_up(store):
    a, b = add(store, "a", 1), add(store, "b", 2)
    claim = Claim("upload", None, at(5))
    store.claim([store.get(a), store.get(b)], claim)
    assert store.release(store.get(a), claim)
    assert [d["_id"] for d in store.unclaimed()] == [a]  # unclaimed work again
    taken_up = Claim("upload", "run-1", at(5))  # the run's first step records its id
    store.mark_pending(b, consistency=0.5, validation_logloss=0.69, claim=taken_up)
    assert not store.release(store.get(b), claim)
    assert store.get(b)["queued"]["run_id"] == "run-1"
    c = add(store, "c", 3)
    store.claim([store.get(c)], Claim("tick", None, at(7)))
    assert not store.release(store.get(c), claim)  # another planner's claim stays


def test_work_waiting_in_a_round_besides_an_upload(store):
    """What makes an upload leave its run to the sensor: other unclaimed work of its round, or
    a claim no run has taken up yet (a queued run); not a decided or running submission."""
    mine = add(store, "mine", 10)
    assert not store.round_has_waiting_work(ROUND, besides=mine)
    other_round = add(store, "elsewhere", 1, round=ROUND + 1)
    assert not store.round_has_waiting_work(ROUND, besides=mine)
    assert store.round_has_waiting_work(ROUND + 1, besides=mine)
    store.claim([store.get(other_round)], Claim("tick", None, at(2)))
    score(store, other_round)
    early = add(store, "early", 1)
    assert store.round_has_waiting_work(ROUND, besides=mine)  # unclaimed
    store.claim([store.get(early)], Claim("tick", None, at(11)))
    assert store.round_has_waiting_work(ROUND, besides=mine)  # claimed, its run queued
    store.mark_pending(
        early, consistency=0.5, validation_logloss=0.69, claim=Claim("tick", "run-1", at(11))
    )
    assert not store.round_has_waiting_work(ROUND, besides=mine)  # taken up: running
    score(store, early)
    store.request_scoring(early, at=at(20))
    assert store.round_has_waiting_work(ROUND, besides=mine)  # an intake request
    assert store.round_has_waiting_work(ROUND, besides=early)  # "mine", unclaimed


def test_one_upload_a_round_takes_the_turn_to_ask_for_its_run(store):
    every = timedelta(seconds=2)
    assert store.take_upload_turn(ROUND, now=at(10), every=every)
    assert not store.take_upload_turn(ROUND, now=at(11), every=every)  # a burst's others
    assert store.take_upload_turn(ROUND + 1, now=at(11), every=every)  # each round its own
    assert store.take_upload_turn(ROUND, now=at(12.5), every=every)
    # A clock running an hour ahead took it: stale for every other clock, not an hour's block.
    assert store.take_upload_turn(ROUND, now=at(3600), every=every)
    assert store.take_upload_turn(ROUND, now=at(13), every=every)
    assert not store.take_upload_turn(ROUND, now=at(13.5), every=every)
    # Another system's value of another type: no block either.
    store._competitions.update_one({"_id": ROUND}, {"$set": {"upload_asked": "soon"}})
    assert store.take_upload_turn(ROUND, now=at(14), every=every)
    assert store.lease_of(ROUND) is None  # the competition document's lease untouched
