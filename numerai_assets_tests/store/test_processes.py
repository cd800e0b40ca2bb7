"""Two real processes writing one embedded (montydb sqlite) store at the same time.

montydb has no locking of its own: an update reads the document, changes it in Python and writes
it back. Without the store's lock these tests lose writes (the counter one always, the store one
often: its optimistic leaderboard version narrows the window but cannot close it on montydb).
"""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path
from typing import Any

from numerai_assets.settings import Settings
from numerai_assets.store import SubmissionStore, open_database, write_lock
from numerai_assets_tests.store.helpers import PAIRS, POLICY

COUNT = 150
ROUND = 11
PER_PROCESS = 12
USERS_PER_PROCESS = 4
RESCORES = 80
SCORED = {"value": True, "score": 0.1, "clusters": []}


def open_at(home: str) -> Any:
    return open_database(Settings.from_env({"NUMERAI_ASSETS_HOME": home}))


def run_two(target: Any, home: Path) -> None:
    """Run ``target(home, index, barrier)`` in two spawned processes at once; both must succeed."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    processes = [context.Process(target=target, args=(str(home), i, start)) for i in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
        if process.is_alive():
            process.kill()
            process.join()
    assert [process.exitcode for process in processes] == [0, 0]


def count_up(home: str, index: int, start: Any) -> None:
    start.wait()  # both open the store for the first time at once, too
    database = open_at(home)
    for _ in range(COUNT):
        with write_lock(database):
            database["counters"].update_one({"_id": "n"}, {"$inc": {"n": 1}}, upsert=True)


def test_the_write_lock_makes_montydb_updates_atomic_across_processes(tmp_path: Path) -> None:
    run_two(count_up, tmp_path)
    assert open_at(str(tmp_path))["counters"].find_one({"_id": "n"})["n"] == 2 * COUNT


def submit_and_score(home: str, index: int, start: Any) -> None:
    """Insert and score submissions, then re-pend and re-score the last one many times: each of
    those rewrites the round's shared leaderboard document."""
    start.wait()
    store = SubmissionStore(open_at(home))
    written = []
    for k in range(PER_PROCESS):
        user = f"p{index}-u{k % USERS_PER_PROCESS}"
        sid = store.insert_submission(username=user, round=ROUND, filename=f"{user}/{k}.csv")
        store.mark_pending(sid, consistency=float(k), validation_logloss=0.69)
        scores = {
            "concordance": SCORED,
            "originality": {"value": k % 2 == 0, "reason": None, "matches": [], "pairs": PAIRS},
            "scored_at": store.get(sid)["created"],
            "run_id": "r",
            "policy": POLICY,
        }
        store.write_scores(sid, **scores)
        store.sync_leaderboard(ROUND, f"p{1 - index}-u{k % USERS_PER_PROCESS}")  # the other's
        written.append(str(sid))
    start.wait()  # overlap the phase that contends the most
    for k in range(RESCORES):
        store.mark_pending(sid, consistency=100.0 + k, validation_logloss=0.5)
    store.write_scores(sid, **scores)
    (Path(home) / f"written-{index}.json").write_text(json.dumps(written))


def test_two_processes_share_the_embedded_store_without_losing_writes(tmp_path: Path) -> None:
    run_two(submit_and_score, tmp_path)
    written = [json.loads((tmp_path / f"written-{i}.json").read_text()) for i in range(2)]

    store = SubmissionStore(open_at(str(tmp_path)))
    docs = store.round_submissions(ROUND)
    assert sorted(str(doc["_id"]) for doc in docs) == sorted(written[0] + written[1])
    assert store.unclaimed() == []

    latest = {doc["username"]: doc for doc in docs}  # oldest first: the last one wins
    assert len(latest) == 2 * USERS_PER_PROCESS
    expected = {
        user: {
            "username": user,
            "submission_id": doc["_id"],
            "logloss": {
                "validation": doc["logloss"]["validation"],
                "consistency": doc["consistency"],
            },
            "concordant": {"pending": False, "value": True},
            "original": {"pending": False, "value": doc["original"]["value"]},
        }
        for user, doc in latest.items()
    }
    board = store.leaderboard(ROUND)
    assert {entry["username"]: entry for entry in board} == expected
    assert len(board) == len(expected)
    last_user = f"u{(PER_PROCESS - 1) % USERS_PER_PROCESS}"
    for index in range(2):  # the re-scored ones show their last re-pend's numbers
        assert latest[f"p{index}-{last_user}"]["consistency"] == 100.0 + RESCORES - 1
