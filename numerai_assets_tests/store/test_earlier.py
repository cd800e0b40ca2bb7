"""What a submission's originality is compared against: the store query and the pure group-by."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId

from numerai_assets.store import SubmissionStore, latest_comparable_per_user
from numerai_assets_tests.store.helpers import ROUND, add, at, score


def build_round(store: SubmissionStore) -> dict[str, ObjectId]:
    """Submissions around ``x`` (user x, t=10), covering every rule."""
    s: dict[str, ObjectId] = {}
    s["a1"] = add(store, "a", 1)
    score(store, s["a1"])  # original: counts
    s["b1"] = add(store, "b", 2)
    score(store, s["b1"])  # original, but b has a later one...
    s["b2"] = add(store, "b", 3)
    score(store, s["b2"], original=False)  # ...that is not original: b1 stands for b
    s["c1"] = add(store, "c", 4)  # still pending: counts
    s["d1"] = add(store, "d", 5)
    store.mark_invalid(s["d1"], reason="bad", at=at(50), run_id=None)  # invalid: skipped
    s["e1"] = add(store, "e", 6, round=ROUND + 1)  # another round
    s["x0"] = add(store, "x", 7)
    score(store, s["x0"])  # the same user: skipped
    s["g1"] = add(store, "g", 8)
    score(store, s["g1"])
    s["g2"] = add(store, "g", 9)  # g's latest, pending: stands for g
    s["f1"] = add(store, "f", 10)  # same created as x, lower _id: before x
    s["x"] = add(store, "x", 10)
    s["f2"] = add(store, "f", 10)  # same created, higher _id: after x
    s["a2"] = add(store, "a", 11)  # after x
    return s


def test_earlier_submissions_applies_every_rule(store: SubmissionStore) -> None:
    s = build_round(store)
    earlier = store.earlier_submissions(store.get(s["x"]))
    assert [doc["_id"] for doc in earlier] == [s["a1"], s["b1"], s["c1"], s["g2"], s["f1"]]
    assert earlier[0] == store.get(s["a1"])


def test_earlier_submissions_of_the_first_submission_is_empty(store: SubmissionStore) -> None:
    s = build_round(store)
    assert store.earlier_submissions(store.get(s["a1"])) == []
    assert store.earlier_submissions(store.get(s["e1"])) == []


def test_the_pure_function_agrees_with_the_store(store: SubmissionStore) -> None:
    s = build_round(store)
    everything = store.submissions_after(None)
    for sid in s.values():
        submission = store.get(sid)
        assert latest_comparable_per_user(everything, submission) == store.earlier_submissions(
            submission
        )


def doc(user: str, seconds: float, *, original: Any = True, pending: bool = False, **extra):
    return {
        "_id": ObjectId(),
        "username": user,
        "competition_id": ROUND,
        "created": at(seconds),
        "original": {"pending": pending, "value": None if pending else original},
        **extra,
    }


def test_pure_function_sees_statuses_updated_in_memory() -> None:
    b1 = doc("b", 1)
    b2 = doc("b", 2, pending=True)
    c1 = doc("c", 3, original=False)
    x = doc("x", 5)
    docs = [c1, b2, b1]  # any order

    assert latest_comparable_per_user(docs, x) == [b2]

    b2["original"] = {"pending": False, "value": False}  # the pipeline scored b2 meanwhile
    c1["original"] = {"pending": False, "value": True}
    assert latest_comparable_per_user(docs, x) == [b1, c1]


def test_pure_function_rules() -> None:
    x = doc("x", 5)
    invalid = doc("i", 1, invalid={"reason": "bad"})
    other_round = {**doc("r", 1), "competition_id": ROUND + 1}
    later = doc("l", 6)
    same_user = doc("x", 1)
    naive = {**doc("n", 2), "created": datetime(2024, 1, 5, 12, 0, 2)}  # naive UTC = at(2)
    tied_before = {**doc("t", 5), "_id": ObjectId.from_datetime(at(0))}
    tied_after = doc("u", 5)
    docs = [invalid, other_round, later, same_user, naive, tied_before, tied_after, x]

    result = latest_comparable_per_user(docs, x)

    assert [d["username"] for d in result] == ["n", "t"]
    assert result[0]["created"] == naive["created"]  # returned as given
    assert latest_comparable_per_user([], x) == []


def test_pure_function_does_not_change_its_input() -> None:
    docs = [doc("a", 1), doc("a", 2), doc("b", 0.5)]
    copies = [dict(d) for d in docs]
    x = doc("x", 3)
    result = latest_comparable_per_user(iter(docs), x)
    assert docs == copies
    assert [d["_id"] for d in result] == [docs[2]["_id"], docs[1]["_id"]]
    result[0]["username"] = "changed"
    assert docs[2]["username"] == "b"


def test_aware_and_naive_submission_compare_alike() -> None:
    a = doc("a", 1)
    x = {**doc("x", 5), "created": at(5).replace(tzinfo=None)}
    assert latest_comparable_per_user([a], x) == [a]
