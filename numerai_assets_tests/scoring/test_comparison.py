"""The comparison rule and the order, as plain functions over members."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from bson import ObjectId

from numerai_assets.scoring.comparison import (
    Frontier,
    Member,
    latest_comparable_per_user,
    order_key,
)

T0 = datetime(2024, 1, 5, 12, 0, tzinfo=timezone.utc)


def member(user: str, seconds: float, *, comparable: bool = True, id=None) -> Member:
    return Member(
        ObjectId() if id is None else id, user, T0 + timedelta(seconds=seconds), comparable
    )


def test_every_rule_in_one_round() -> None:
    """Around ``x`` (user x, t=10): each other user's latest comparable member before it."""
    x_id = ObjectId()
    s = {
        "a1": member("a", 1),  # original: counts
        "b1": member("b", 2),  # original, but b has a later one...
        "b2": member("b", 3, comparable=False),  # ...that is not original: b1 stands for b
        "c1": member("c", 4),  # pending (comparable): counts
        "d1": member("d", 5, comparable=False),  # invalid: skipped
        "x0": member("x", 7),  # the same user: skipped
        "g1": member("g", 8),
        "g2": member("g", 9),  # g's latest: stands for g
        "f1": member("f", 10, id=ObjectId.from_datetime(T0)),  # same created, lower id: before
        "x": member("x", 10, id=x_id),
        "f2": member("f", 10),  # same created, a fresh (higher) id: after x
        "a2": member("a", 11),  # after x
    }
    result = latest_comparable_per_user(s.values(), s["x"])
    assert [m.id for m in result] == [s[k].id for k in ("a1", "b1", "c1", "g2", "f1")]
    assert latest_comparable_per_user(s.values(), s["a1"]) == []


def test_naive_and_aware_created_sort_alike() -> None:
    naive = Member(1, "n", datetime(2024, 1, 5, 12, 0, 2), True)  # naive UTC = T0 + 2 s
    aware = Member(2, "a", T0 + timedelta(seconds=1), True)
    x = Member(3, "x", (T0 + timedelta(seconds=3)).replace(tzinfo=None), True)
    assert [m.id for m in latest_comparable_per_user([naive, aware], x)] == [2, 1]
    assert order_key(naive.created, 1) == (T0 + timedelta(seconds=2), 1)


def test_the_frontier_walk_equals_the_rule_for_every_member() -> None:
    """Walking a random round once gives, for every member, what the rule gives it alone."""
    rng = random.Random(4)
    members = [
        member(rng.choice("abcdef"), rng.randrange(40), comparable=rng.random() < 0.7, id=k)
        for k in range(120)
    ]
    frontier = Frontier()
    for m in sorted(members, key=lambda m: m.key):
        assert frontier.candidates(m.user) == latest_comparable_per_user(members, m)
        frontier.add(m)


def test_decided_members_change_what_later_ones_see() -> None:
    b1, b2, c1 = member("b", 1), member("b", 2), member("c", 3, comparable=False)
    x = member("x", 5)
    assert latest_comparable_per_user([c1, b2, b1], x) == [b2]
    # b2 found not original, c1 original: b1 stands for b, c1 counts
    found = latest_comparable_per_user([c1.decided(True), b2.decided(False), b1], x)
    assert [m.id for m in found] == [b1.id, c1.id]
