"""Contract tests of SubmissionStore: each runs against every backend (``database`` fixture)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import mongomock
import numpy as np
import pytest
from bson import ObjectId
from montydb import MontyClient

from numerai_assets.settings import Settings
from numerai_assets.store import (
    StoreError,
    SubmissionNotFound,
    SubmissionStore,
    open_database,
)
from numerai_assets.store.documents import Claim, claim_of
from numerai_assets.store.submissions import invalid_update, pending_update
from numerai_assets_tests.store.helpers import (
    POLICY,
    ROUND,
    RUN,
    add,
    at,
    concordance,
    ids,
    originality,
    raw,
    score,
)

# insert / get


def test_insert_then_get_returns_a_pending_submission(store: SubmissionStore) -> None:
    sid = add(store, "alice", 1.5)

    assert isinstance(sid, ObjectId)
    assert store.get(sid) == {
        "_id": sid,
        "username": "alice",
        "competition_id": ROUND,
        "filename": "alice/1.5.csv",
        "created": at(1.5),
        "consistency": None,
        "logloss": {"validation": None},
        "concordant": {"pending": True, "value": None},
        "original": {"pending": True, "value": None},
    }
    assert store.leaderboard(ROUND) == []


def test_get_accepts_the_id_as_a_string(store: SubmissionStore) -> None:
    sid = add(store, "alice", 1)
    assert store.get(str(sid))["_id"] == sid


def test_get_of_a_missing_submission_raises_submission_not_found(store: SubmissionStore) -> None:
    missing = ObjectId()
    with pytest.raises(SubmissionNotFound) as raised:
        store.get(missing)
    assert isinstance(raised.value, KeyError)
    assert isinstance(raised.value, StoreError)
    assert str(raised.value) == f"no submission with id '{missing}'"


@pytest.mark.parametrize("bad", ["abc", "", 12, None])
def test_get_with_a_malformed_id_raises_value_error(store: SubmissionStore, bad: Any) -> None:
    with pytest.raises(ValueError, match="submission_id must be an ObjectId"):
        store.get(bad)


NOT_ONE_FOLDER = (
    "cannot name a folder of the upload bucket (it holds '/' or '\\', or is '.' or '..')"
)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"round": "abc"}, "competition_id is 'abc' (str), not a round number"),
        ({"round": True}, "competition_id is True (bool), not a round number"),
        ({"round": -1}, "competition_id is -1, not a round number"),
        ({"username": ""}, "no username"),
        ({"username": "u" * 101}, "username is longer than 100 characters"),
        ({"username": "a/b"}, f"username 'a/b' {NOT_ONE_FOLDER}"),
        ({"username": ".."}, f"username '..' {NOT_ONE_FOLDER}"),
        ({"username": "."}, f"username '.' {NOT_ONE_FOLDER}"),
        ({"username": "a\\b"}, f"username 'a\\\\b' {NOT_ONE_FOLDER}"),
        ({"filename": None}, "no filename"),
        ({"created": "2024-01-01"}, "created is '2024-01-01' (str), not a date and time"),
    ],
)
def test_insert_rejects_bad_arguments(
    store: SubmissionStore, database: Any, kwargs: dict, message: str
) -> None:
    args = {"username": "alice", "round": ROUND, "filename": "f.csv", **kwargs}
    with pytest.raises(ValueError) as raised:
        store.insert_submission(**args)
    assert str(raised.value) == message
    assert store.round_submissions(ROUND) == []


def test_created_defaults_to_now_in_utc(store: SubmissionStore) -> None:
    before = datetime.now(timezone.utc).replace(microsecond=0)
    created = store.get(store.insert_submission(username="a", round=1, filename="f"))["created"]
    after = datetime.now(timezone.utc) + timedelta(seconds=1)
    assert created.tzinfo is not None
    assert created.utcoffset() == timedelta(0)
    assert before <= created <= after
    assert created.microsecond % 1000 == 0


def test_naive_and_non_utc_created_are_normalised_to_utc(store: SubmissionStore) -> None:
    naive = store.insert_submission(
        username="a", round=1, filename="f", created=datetime(2024, 1, 1, 12, 0, 0, 123456)
    )
    plus5 = timezone(timedelta(hours=5))
    shifted = store.insert_submission(
        username="b", round=1, filename="f", created=datetime(2024, 1, 1, 17, 0, tzinfo=plus5)
    )
    assert store.get(naive)["created"] == datetime(2024, 1, 1, 12, 0, 0, 123000, timezone.utc)
    assert store.get(shifted)["created"] == datetime(2024, 1, 1, 12, 0, tzinfo=timezone.utc)


def test_every_read_returns_tz_aware_utc_datetimes(store: SubmissionStore) -> None:
    earlier = add(store, "alice", 1)
    score(store, earlier)
    invalid = add(store, "bob", 2)
    store.mark_invalid(invalid, reason="bad file", at=at(50), run_id=RUN)
    sid = add(store, "carol", 3)

    docs = [
        store.get(earlier),
        store.get(invalid),
        *store.unclaimed(),
        *store.round_submissions(ROUND),
        *store.all_documents(ROUND),
    ]
    assert [doc["_id"] for doc in store.unclaimed()] == [sid]
    stamps = [doc["created"] for doc in docs]
    stamps += [store.get(earlier)["concordant"]["scored_at"], store.get(invalid)["invalid"]["at"]]
    assert len(stamps) == 11
    for stamp in stamps:
        assert stamp.tzinfo is timezone.utc


# ordering


def test_reads_order_by_created_then_id(store: SubmissionStore) -> None:
    late = add(store, "a", 5)
    tied = [add(store, user, 3) for user in ("b", "c", "d")]
    early = add(store, "e", 1)

    assert ids(store.round_submissions(ROUND)) == [early, *tied, late]
    assert ids(store.unclaimed()) == [early, *tied, late]
    assert ids(store.unclaimed(limit=2)) == [early, tied[0]]


def test_round_submissions_and_rounds(store: SubmissionStore) -> None:
    assert store.rounds() == []
    second = add(store, "a", 2, round=9)
    first = add(store, "b", 1, round=9)
    add(store, "c", 0, round=3)
    assert ids(store.round_submissions(9)) == [first, second]
    assert store.round_submissions(4) == []
    assert store.rounds() == [3, 9]
    with pytest.raises(ValueError, match="round must be an int, got '9'"):
        store.round_submissions("9")  # type: ignore[arg-type]


# writes and the leaderboard


def entry(store: SubmissionStore, sid: ObjectId) -> dict:
    doc = store.get(sid)
    return {
        "username": doc["username"],
        "submission_id": sid,
        "logloss": {"validation": doc["logloss"]["validation"], "consistency": doc["consistency"]},
        "concordant": {k: doc["concordant"][k] for k in ("pending", "value")},
        "original": {k: doc["original"][k] for k in ("pending", "value")},
    }


def test_mark_pending_records_the_numbers_and_adds_a_pending_entry(
    store: SubmissionStore,
) -> None:
    sid = add(store, "alice", 1)
    store.mark_pending(sid, consistency=75.0, validation_logloss=0.6912)

    doc = store.get(sid)
    assert doc["consistency"] == 75.0
    assert doc["logloss"] == {"validation": 0.6912}
    assert doc["concordant"] == {"pending": True, "value": None}
    assert doc["original"] == {"pending": True, "value": None}
    assert store.leaderboard(ROUND) == [
        {
            "username": "alice",
            "submission_id": sid,
            "logloss": {"validation": 0.6912, "consistency": 75.0},
            "concordant": {"pending": True, "value": None},
            "original": {"pending": True, "value": None},
        }
    ]


def test_mark_pending_re_pends_a_scored_submission(store: SubmissionStore) -> None:
    sid = add(store, "alice", 1)
    store.mark_pending(sid, consistency=75.0, validation_logloss=0.69)
    score(store, sid)
    store.mark_pending(sid, consistency=80.0, validation_logloss=0.68)

    doc = store.get(sid)
    assert doc["concordant"] == {"pending": True, "value": None}
    assert doc["original"] == {"pending": True, "value": None}
    assert store.leaderboard(ROUND) == [entry(store, sid)]
    assert store.leaderboard(ROUND)[0]["logloss"] == {"validation": 0.68, "consistency": 80.0}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"consistency": "75"}, "consistency must be a number, got '75'"),
        ({"validation_logloss": float("nan")}, "validation_logloss must be a number, got nan"),
        ({"consistency": True}, "consistency must be a number, got True"),
    ],
)
def test_mark_pending_rejects_bad_numbers(
    store: SubmissionStore, kwargs: dict, message: str
) -> None:
    sid = add(store, "alice", 1)
    with pytest.raises(ValueError) as raised:
        store.mark_pending(sid, **{"consistency": 75.0, "validation_logloss": 0.69, **kwargs})
    assert str(raised.value) == message
    assert store.get(sid)["consistency"] is None


def test_write_scores_records_both_scores_and_updates_the_entry(store: SubmissionStore) -> None:
    sid = add(store, "alice", 1)
    store.mark_pending(sid, consistency=75.0, validation_logloss=0.69)
    store.write_scores(
        sid,
        concordance=concordance(False, 0.2),
        originality=originality(False, "correlated"),
        scored_at=at(100),
        run_id=RUN,
        policy=POLICY,
    )

    doc = store.get(sid)
    assert doc["concordant"] == {
        "pending": False,
        "value": False,
        "score": 0.2,
        "clusters": [{"cluster": 0, "ks": 0.05}],
        "scored_at": at(100),
        "run_id": RUN,
        "policy": POLICY,
    }
    assert doc["original"] == {
        "pending": False,
        "value": False,
        "reason": "correlated",
        "matches": [{"submission_id": "x", "username": "b", "correlation": 0.5, "ks": 0.1}],
        "pairs": {"compared": 3, "correlated": 0, "duplicate": 0, "similar": 1},
        "scored_at": at(100),
        "run_id": RUN,
        "policy": POLICY,
    }
    assert store.leaderboard(ROUND) == [entry(store, sid)]
    assert store.leaderboard(ROUND)[0]["concordant"] == {"pending": False, "value": False}
    assert store.unclaimed() == []


def test_write_scores_clears_an_invalid_mark(store: SubmissionStore) -> None:
    sid = add(store, "alice", 1)
    store.mark_invalid(sid, reason="unreadable", at=at(50), run_id=RUN)
    score(store, sid)
    assert "invalid" not in store.get(sid)
    assert store.leaderboard(ROUND) == [entry(store, sid)]


def test_write_scores_takes_numpy_scalars_and_stores_plain_values(
    store: SubmissionStore,
) -> None:
    sid = add(store, "alice", 1)
    store.write_scores(
        sid,
        concordance=concordance(np.bool_(True), np.float32(0.25)),
        originality={
            "value": np.bool_(False),
            "reason": "duplicate",
            "matches": (),
            "pairs": {"compared": np.int64(2), "correlated": 0, "duplicate": 1, "similar": 1},
        },
        scored_at=at(100),
        run_id=RUN,
        policy=POLICY,
    )
    doc = store.get(sid)
    assert doc["concordant"]["value"] is True
    assert type(doc["concordant"]["score"]) is float and doc["concordant"]["score"] == 0.25
    assert doc["original"]["value"] is False
    assert doc["original"]["matches"] == []
    assert type(doc["original"]["pairs"]["compared"]) is int


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"concordance": {"value": True, "score": 0.1}},
            "concordance must have exactly the keys ['value', 'score', 'clusters']: "
            "missing ['clusters'], unknown []",
        ),
        (
            {"originality": {"value": True, "reason": None, "matches": [], "pending": True}},
            "originality must have exactly the keys ['value', 'reason', 'matches', 'pairs']: "
            "missing ['pairs'], unknown ['pending']",
        ),
        (
            {"originality": originality(False, "copied")},
            "originality['reason'] must be one of ['correlated', 'duplicate', 'similar'] or None, "
            "got 'copied'",
        ),
        ({"concordance": concordance(1)}, "concordance['value'] must be a bool, got 1"),
        ({"run_id": ""}, "run_id must be a non-empty str, got ''"),
        ({"policy": ""}, "policy must be a non-empty str, got ''"),
        ({"scored_at": "now"}, "scored_at must be a datetime, got 'now'"),
    ],
)
def test_write_scores_rejects_bad_arguments_and_writes_nothing(
    store: SubmissionStore, kwargs: dict, message: str
) -> None:
    sid = add(store, "alice", 1)
    before = store.get(sid)
    args = {
        "concordance": concordance(),
        "originality": originality(),
        "scored_at": at(100),
        "run_id": RUN,
        "policy": POLICY,
        **kwargs,
    }
    with pytest.raises(ValueError) as raised:
        store.write_scores(sid, **args)
    assert str(raised.value) == message
    assert store.get(sid) == before


@pytest.mark.parametrize("sync", [True, False])
def test_writes_to_a_missing_submission_raise_and_write_nothing(
    store: SubmissionStore, database: Any, sync: bool
) -> None:
    add(store, "alice", 1)
    before = raw(database)
    missing = ObjectId()
    with pytest.raises(SubmissionNotFound):
        store.write_scores(
            missing,
            concordance=concordance(),
            originality=originality(),
            scored_at=at(9),
            run_id=RUN,
            policy=POLICY,
            sync_leaderboard=sync,
        )
    with pytest.raises(SubmissionNotFound):
        store.mark_pending(
            str(missing), consistency=1.0, validation_logloss=0.7, sync_leaderboard=sync
        )
    with pytest.raises(SubmissionNotFound):
        store.mark_invalid(missing, reason="x", at=at(1), run_id=None, sync_leaderboard=sync)
    assert raw(database) == before


def test_writes_left_to_one_reconcile_end_as_writes_synced_one_by_one(
    store: SubmissionStore, database: Any
) -> None:
    """A batch writes without touching the leaderboard, then reconciles the round once: the
    documents and the board end as if every write had synced its own entry (round ROUND synced
    write by write, round ROUND + 1 reconciled once)."""

    def write_round(round: int, sync: bool) -> dict[str, ObjectId]:
        sid = {user: add(store, user, k, round=round) for k, user in enumerate("abc", 1)}
        for user, consistency in (("a", 70.0), ("b", 60.0)):
            store.mark_pending(
                sid[user], consistency=consistency, validation_logloss=0.69, sync_leaderboard=sync
            )
        store.write_scores(
            sid["a"],
            concordance=concordance(),
            originality=originality(False, "similar"),
            scored_at=at(9),
            run_id=RUN,
            policy=POLICY,
            sync_leaderboard=sync,
        )
        store.mark_invalid(sid["b"], reason="bad", at=at(9), run_id=RUN, sync_leaderboard=sync)
        if sync:
            store.sync_leaderboard(round, "c")  # never written: reconcile covers every user
        return sid

    synced = write_round(ROUND, sync=True)
    unsynced = write_round(ROUND + 1, sync=False)
    assert store.leaderboard(ROUND + 1) == []  # not touched until the reconcile
    store.reconcile_leaderboard(ROUND + 1)

    def same(doc: dict) -> dict:
        return {k: v for k, v in doc.items() if k not in ("_id", "competition_id")}

    for user in "abc":
        assert same(store.get(unsynced[user])) == same(store.get(synced[user]))

    def board(round: int, sid: dict[str, ObjectId]) -> list[dict]:
        """The round's entries by user, each submission named by its user instead of its id."""
        by_id = {v: k for k, v in sid.items()}
        entries = [
            {**e, "submission_id": by_id[e["submission_id"]]} for e in store.leaderboard(round)
        ]
        return sorted(entries, key=lambda e: e["username"])

    assert [e["submission_id"] for e in board(ROUND, synced)] == ["a", "c"]
    assert board(ROUND + 1, unsynced) == board(ROUND, synced)


def test_mark_invalid_fails_both_flags_and_drops_the_entry(store: SubmissionStore) -> None:
    sid = add(store, "alice", 1)
    store.mark_pending(sid, consistency=75.0, validation_logloss=0.69)
    score(store, sid)
    store.mark_invalid(sid, reason="wrong row count", at=at(200), run_id=None)

    doc = store.get(sid)
    assert doc["invalid"] == {"reason": "wrong row count", "run_id": None, "at": at(200)}
    assert doc["concordant"] == {"pending": False, "value": False}
    assert doc["original"] == {"pending": False, "value": False}
    assert store.leaderboard(ROUND) == []
    assert store.unclaimed() == []


def test_leaderboard_mirrors_each_users_latest_submission(store: SubmissionStore) -> None:
    alice1 = add(store, "alice", 1)
    store.mark_pending(alice1, consistency=70.0, validation_logloss=0.69)
    score(store, alice1)
    bob = add(store, "bob", 2)
    store.mark_pending(bob, consistency=60.0, validation_logloss=0.692)
    alice2 = add(store, "alice", 3)
    store.mark_pending(alice2, consistency=90.0, validation_logloss=0.68)

    assert store.leaderboard(ROUND) == [entry(store, alice2), entry(store, bob)]

    # scoring the older submission late must not bring it back
    score(store, alice1, original=False)
    assert store.leaderboard(ROUND) == [entry(store, alice2), entry(store, bob)]

    # an invalid newest falls back to the previous one
    store.mark_invalid(alice2, reason="bad ids", at=at(300), run_id=RUN)
    assert store.leaderboard(ROUND) == [entry(store, alice1), entry(store, bob)]
    assert store.leaderboard(ROUND + 1) == []


def test_a_tie_on_created_is_broken_by_id(store: SubmissionStore) -> None:
    first = add(store, "alice", 5)
    second = add(store, "alice", 5)
    store.mark_pending(second, consistency=1.0, validation_logloss=0.7)
    store.mark_pending(first, consistency=2.0, validation_logloss=0.7)
    assert store.leaderboard(ROUND) == [entry(store, second)]


def test_writing_twice_leaves_the_database_unchanged(store: SubmissionStore, database: Any) -> None:
    alice = add(store, "alice", 1)
    bob = add(store, "bob", 2)
    store.mark_pending(alice, consistency=70.0, validation_logloss=0.69)
    store.mark_pending(bob, consistency=60.0, validation_logloss=0.7)

    score(store, alice)
    store.mark_invalid(bob, reason="bad", at=at(9), run_id=RUN)
    once = raw(database)
    score(store, alice)
    store.mark_invalid(bob, reason="bad", at=at(9), run_id=RUN)
    store.sync_leaderboard(ROUND, "alice")
    store.sync_leaderboard(ROUND, "bob")
    assert raw(database) == once

    store.mark_pending(alice, consistency=70.0, validation_logloss=0.69)
    pended = raw(database)
    store.mark_pending(alice, consistency=70.0, validation_logloss=0.69)
    assert raw(database) == pended


def test_sync_leaderboard_completes_an_interrupted_write(
    store: SubmissionStore, database: Any
) -> None:
    alice = add(store, "alice", 1)
    bob = add(store, "bob", 2)
    store.mark_pending(alice, consistency=70.0, validation_logloss=0.69)
    store.mark_pending(bob, consistency=60.0, validation_logloss=0.7)

    # a writer died after updating the submission, before the leaderboard
    database["submissions"].update_one(
        {"_id": alice},
        {"$set": {"concordant": {"pending": False, "value": True}, "original.pending": False}},
    )
    assert store.leaderboard(ROUND)[0]["concordant"] == {"pending": True, "value": None}

    store.sync_leaderboard(ROUND, "alice")
    assert store.leaderboard(ROUND) == [entry(store, alice), entry(store, bob)]
    assert store.leaderboard(ROUND)[0]["concordant"] == {"pending": False, "value": True}

    # ... and after marking the only submission invalid: the entry goes
    database["submissions"].update_one({"_id": bob}, {"$set": {"invalid": {"reason": "x"}}})
    store.sync_leaderboard(ROUND, "bob")
    assert store.leaderboard(ROUND) == [entry(store, alice)]


def test_sync_leaderboard_updates_a_document_written_by_the_original_system(
    store: SubmissionStore, database: Any
) -> None:
    legacy = {"username": "zed", "submission_id": ObjectId(), "logloss": {"validation": 0.7}}
    database["competitions"].insert_one({"_id": ROUND, "leaderboard": [legacy]})
    sid = add(store, "alice", 1)
    store.mark_pending(sid, consistency=50.0, validation_logloss=0.69)
    assert store.leaderboard(ROUND) == [legacy, entry(store, sid)]


def test_sync_leaderboard_without_submissions_creates_nothing(
    store: SubmissionStore, database: Any
) -> None:
    store.sync_leaderboard(ROUND, "nobody")
    assert list(database["competitions"].find()) == []
    with pytest.raises(ValueError, match="username must be a non-empty str"):
        store.sync_leaderboard(ROUND, "")


@pytest.fixture(params=["embedded", "mongomock"])
def naive_store(request: pytest.FixtureRequest, tmp_path: Path) -> SubmissionStore:
    """A store over a client opened without ``tz_aware`` (montydb then refuses aware queries)."""
    if request.param == "embedded":
        open_database(Settings.from_env({"NUMERAI_ASSETS_HOME": str(tmp_path)}))  # set up
        database = MontyClient(str(tmp_path / "store"))["numerai"]
    else:
        database = mongomock.MongoClient()["numerai"]
    assert not database.codec_options.tz_aware
    return SubmissionStore(database)


def test_a_client_without_tz_aware_gets_the_same_answers(naive_store: SubmissionStore) -> None:
    store = naive_store
    first = add(store, "a", 1)
    score(store, first)
    second = add(store, "b", 2)
    third = add(store, "c", 3)

    assert store.get(first)["created"] == at(1)
    assert store.get(first)["created"].tzinfo is timezone.utc
    assert store.get(first)["original"]["scored_at"] == at(100)
    assert ids(store.round_submissions(ROUND)) == [first, second, third]
    assert ids(store.unclaimed()) == [second, third]
    store.claim([store.get(second)], Claim("r", None, at(3).replace(tzinfo=None)))
    assert ids(store.claimed()) == [second]
    assert claim_of(store.get(second)) == Claim("r", None, at(3))


def test_many_updates_at_once_apply_each_and_name_the_missing(store: SubmissionStore) -> None:
    """The batch's writes in one call (one round trip on MongoDB): each document gets its own
    update, exactly as one by one; an id no document has is named, the rest applied."""
    a, b = add(store, "a", 1), add(store, "b", 2)
    gone = ObjectId()
    missing = store.update_many(
        [
            (a, pending_update(consistency=75.0, validation_logloss=0.69)),
            (gone, pending_update(consistency=1.0, validation_logloss=0.7)),
            (b, invalid_update(reason="bad file", at=at(9), run_id="r1", policy=None)),
        ]
    )
    assert missing == [gone]
    assert store.get(a)["consistency"] == 75.0 and store.get(a)["original"]["pending"]
    assert store.get(b)["invalid"]["reason"] == "bad file"
    one_by_one = add(store, "c", 3)
    store.mark_pending(one_by_one, consistency=75.0, validation_logloss=0.69)
    assert {
        k: v
        for k, v in store.get(one_by_one).items()
        if k not in ("_id", "username", "created", "filename")
    } == {
        k: v for k, v in store.get(a).items() if k not in ("_id", "username", "created", "filename")
    }
    assert store.update_many([]) == []
