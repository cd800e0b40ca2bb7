"""Shared helpers of the store tests: fixed instants and one-line submissions."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import bson
from bson import ObjectId

from numerai_assets.store import SubmissionStore

T0 = datetime(2024, 1, 5, 12, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    """A fixed instant ``seconds`` after T0 (whole milliseconds, as every backend stores)."""
    return T0 + timedelta(seconds=seconds)


ROUND = 7
RUN = "run-1"
POLICY = "tournament-test"
PAIRS = {"compared": 3, "correlated": 0, "duplicate": 0, "similar": 1}


def add(store: SubmissionStore, user: str, seconds: float, round: int = ROUND) -> ObjectId:
    return store.insert_submission(
        username=user, round=round, filename=f"{user}/{seconds}.csv", created=at(seconds)
    )


def concordance(value: Any = True, score: Any = 0.12) -> dict:
    return {"value": value, "score": score, "clusters": [{"cluster": 0, "ks": 0.05}]}


def originality(value: Any = True, reason: str | None = None) -> dict:
    matches = [{"submission_id": "x", "username": "b", "correlation": 0.5, "ks": 0.1}]
    return {"value": value, "reason": reason, "matches": matches if reason else [], "pairs": PAIRS}


def score(store: SubmissionStore, sid: ObjectId, *, original: bool = True, when: float = 100):
    store.write_scores(
        sid,
        concordance=concordance(),
        originality=originality(original, None if original else "similar"),
        scored_at=at(when),
        run_id=RUN,
        policy=POLICY,
    )


def raw(database: Any) -> dict[str, list[bytes]]:
    """Every stored document as BSON bytes (so key order and types count too), by collection."""
    return {
        name: [bson.encode(doc) for doc in database[name].find().sort("_id", 1)]
        for name in ("submissions", "competitions")
    }


def ids(docs: list[dict]) -> list[ObjectId]:
    return [doc["_id"] for doc in docs]
