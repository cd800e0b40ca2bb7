from datetime import datetime, timedelta, timezone

import pytest
from bson import ObjectId

from numerai_assets.batch.select import select_submissions
from numerai_assets.cli.context import Deployment

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)


@pytest.fixture
def store(local_env):
    return Deployment.from_env().store


def add(store, user, minutes, round=7):
    return str(
        store.insert_submission(
            username=user,
            round=round,
            filename=f"{user}.csv",
            created=T0 + timedelta(minutes=minutes),
        )
    )


def test_batches_come_back_in_created_order(store):
    late, early, middle = add(store, "c", 3), add(store, "a", 1), add(store, "b", 2)
    add(store, "x", 0, round=8)
    assert [str(d["_id"]) for d in select_submissions(store.round_submissions(7), 7, [])] == [
        early,
        middle,
        late,
    ]
    chosen = select_submissions(store.round_submissions(7), 7, [late, early, late])
    assert [str(d["_id"]) for d in chosen] == [early, late]


def test_a_vanished_submission_or_one_of_another_round_rescores_the_whole_round(store):
    """Where a vanished submission stood is unknown, so what came after it may have been
    compared against it: the run scores its whole round again, saying why."""
    kept = add(store, "a", 1)
    neighbour = add(store, "b", 2)
    other = add(store, "x", 0, round=8)
    gone = str(ObjectId())
    logged = []
    chosen = select_submissions(store.round_submissions(7), 7, [other, kept, gone], logged.append)
    assert [str(d["_id"]) for d in chosen] == [kept, neighbour]
    left_out, whole = logged
    assert "2 submissions of this batch no longer in round 7" in left_out
    assert other in left_out and gone in left_out
    assert "round 7 is scored whole again" in whole
