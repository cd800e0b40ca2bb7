"""The store's documents as the comparison rule sees them (``member_of``), on every backend."""

from __future__ import annotations

from numerai_assets.scoring.comparison import latest_comparable_per_user
from numerai_assets.store import SubmissionStore
from numerai_assets.store.documents import member_of
from numerai_assets_tests.store.helpers import ROUND, add, at, score


def test_documents_read_back_follow_the_rule(store: SubmissionStore) -> None:
    """The store's documents as members: statuses, invalid marks, rounds and ties as stored."""
    s = {}
    s["a1"] = add(store, "a", 1)
    score(store, s["a1"])
    s["b1"] = add(store, "b", 2)
    score(store, s["b1"])
    s["b2"] = add(store, "b", 3)
    score(store, s["b2"], original=False)
    s["c1"] = add(store, "c", 4)
    s["d1"] = add(store, "d", 5)
    store.mark_invalid(s["d1"], reason="bad", at=at(50), run_id=None)
    s["e1"] = add(store, "e", 6, round=ROUND + 1)
    s["x"] = add(store, "x", 10)
    members = [member_of(doc) for doc in store.round_submissions(ROUND)]
    x = member_of(store.get(s["x"]))
    assert [m.id for m in latest_comparable_per_user(members, x)] == [s["a1"], s["b1"], s["c1"]]
