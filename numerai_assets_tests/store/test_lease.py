"""The round's lease on every backend: taken, renewed, lost, taken over, given back."""

from __future__ import annotations

import pytest

from numerai_assets.store import RoundBusy, SubmissionStore
from numerai_assets_tests.store.helpers import ROUND, at


def test_taken_then_refused_to_another_while_it_runs(store: SubmissionStore) -> None:
    store.acquire_round(ROUND, owner="run-a", until=at(60), now=at(0))
    with pytest.raises(RoundBusy, match="round 7 is being scored by run run-a"):
        store.acquire_round(ROUND, owner="run-b", until=at(70), now=at(10))
    store.acquire_round(ROUND, owner="run-a", until=at(90), now=at(20))  # its own: renewed
    assert store.lease_of(ROUND)["until"] == at(90)
    assert store.lease_of(ROUND + 1) is None  # another round is free
    store.acquire_round(ROUND + 1, owner="run-b", until=at(70), now=at(10))


def test_renewed_only_by_its_holder_and_lost_once_taken(store: SubmissionStore) -> None:
    store.acquire_round(ROUND, owner="run-a", until=at(60), now=at(0))
    assert store.renew_round(ROUND, owner="run-a", until=at(120))
    assert not store.renew_round(ROUND, owner="run-b", until=at(500))
    assert store.lease_of(ROUND)["until"] == at(120)
    store.acquire_round(ROUND, owner="run-b", until=at(200), now=at(121))  # expired: taken
    assert not store.renew_round(ROUND, owner="run-a", until=at(300))  # run-a lost it
    assert store.lease_of(ROUND)["owner"] == "run-b"


def test_a_holder_said_to_have_ended_is_taken_over_at_once(store: SubmissionStore) -> None:
    store.acquire_round(ROUND, owner="run-a", until=at(600), now=at(0))
    asked = []

    def alive(holder) -> bool:
        asked.append(holder["owner"])
        return holder["owner"] != "run-a"

    store.acquire_round(ROUND, owner="run-b", until=at(60), now=at(1), owner_alive=alive)
    assert asked == ["run-a"] and store.lease_of(ROUND)["owner"] == "run-b"
    with pytest.raises(RoundBusy):  # run-b is alive: not taken
        store.acquire_round(ROUND, owner="run-c", until=at(60), now=at(2), owner_alive=alive)


def test_given_back_only_by_its_holder(store: SubmissionStore) -> None:
    store.acquire_round(ROUND, owner="run-a", until=at(60), now=at(0))
    store.release_round(ROUND, owner="run-b")
    assert store.lease_of(ROUND)["owner"] == "run-a"
    store.release_round(ROUND, owner="run-a")
    assert store.lease_of(ROUND) is None
    store.acquire_round(ROUND, owner="run-b", until=at(60), now=at(1))
