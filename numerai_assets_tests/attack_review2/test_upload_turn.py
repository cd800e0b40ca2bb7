"""take_upload_turn writes the round's competition document, which also holds the leaderboard
(under an optimistic version) and the scoring lease: the turn must neither damage nor block them,
and no stored value may keep a round from asking for good."""

from __future__ import annotations

from datetime import timedelta

import pytest

from numerai_assets_tests.store.helpers import ROUND, add, at, score

EVERY = timedelta(seconds=2)


def test_the_turn_keeps_the_leaderboard_and_the_lease(store):
    sid = add(store, "alice", 10)
    score(store, sid)
    store.sync_leaderboard(ROUND, "alice")
    store.acquire_round(ROUND, owner="run-1", until=at(1000), now=at(10))
    before = store._competitions.find_one({"_id": ROUND})
    assert store.take_upload_turn(ROUND, now=at(20), every=EVERY)
    after = store._competitions.find_one({"_id": ROUND})
    assert {k: v for k, v in after.items() if k != "upload_asked"} == before
    # The others still work on the document afterwards.
    store.sync_leaderboard(ROUND, "alice")
    assert store.renew_round(ROUND, owner="run-1", until=at(2000))
    store.release_round(ROUND, owner="run-1")
    store.acquire_round(ROUND, owner="run-2", until=at(3000), now=at(30))
    assert [e["username"] for e in store.leaderboard(ROUND)] == ["alice"]


def test_a_leaderboard_written_after_the_turn_made_the_document(store):
    """The turn creates the competition document (no version): the leaderboard's first write
    then updates it rather than inserting."""
    assert store.take_upload_turn(ROUND, now=at(10), every=EVERY)
    sid = add(store, "alice", 10)
    score(store, sid)
    store.sync_leaderboard(ROUND, "alice")
    assert [e["username"] for e in store.leaderboard(ROUND)] == ["alice"]


@pytest.mark.parametrize(
    "value",
    [None, "soon", 12, {"at": "x"}, [], True],
    ids=["null", "text", "number", "document", "empty-array", "bool"],
)
def test_odd_upload_asked_values_never_block_the_turn(store, value):
    store.take_upload_turn(ROUND, now=at(0), every=EVERY)
    store._competitions.update_one({"_id": ROUND}, {"$set": {"upload_asked": value}})
    assert store.take_upload_turn(ROUND, now=at(1), every=EVERY)
    assert not store.take_upload_turn(ROUND, now=at(1.5), every=EVERY)


def test_a_clock_ahead_within_the_turn_blocks_at_most_two_turns(store):
    assert store.take_upload_turn(ROUND, now=at(11.9), every=EVERY)  # a machine 1.9 s ahead
    assert not store.take_upload_turn(ROUND, now=at(10), every=EVERY)
    assert not store.take_upload_turn(ROUND, now=at(13.8), every=EVERY)
    assert store.take_upload_turn(ROUND, now=at(14), every=EVERY)
