"""Document shapes of the original system, and the value checks and conversions around them.

Every backend stores BSON datetimes (millisecond precision, UTC) but hands them back differently:
pymongo and mongomock naive unless ``tz_aware``, montydb refusing to compare naive with aware. So
values are truncated to the millisecond and made naive UTC on the way in, and made aware UTC on
the way out, whatever the backend.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
from bson import ObjectId
from bson.errors import InvalidId

from numerai_assets.scoring.comparison import Member, order_key

SUBMISSIONS = "submissions"
COMPETITIONS = "competitions"
COLLECTIONS = (SUBMISSIONS, COMPETITIONS)

ORIGINALITY_REASONS = ("correlated", "duplicate", "similar")


def utc(value: Any, name: str = "datetime") -> datetime:
    """``value`` as an aware UTC datetime truncated to the millisecond, as BSON stores it.

    Naive datetimes are taken to be UTC already (pymongo's convention).
    """
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def utc_ceil(value: Any, name: str = "datetime") -> datetime:
    """Like :func:`utc` but rounded up: ``stored < value`` iff ``stored < utc_ceil(value)``."""
    floor = utc(value, name)
    return floor if value.microsecond % 1000 == 0 else floor + timedelta(milliseconds=1)


def query_datetime(value: datetime, *, aware: bool) -> datetime:
    """A datetime to compare against stored ones: montydb raises on naive vs aware."""
    value = utc(value)
    return value if aware else value.replace(tzinfo=None)


def to_storage(value: Any) -> Any:
    """Recursively make ``value`` storable the same way on every backend.

    Datetimes become naive UTC milliseconds; numpy scalars become Python ones (BSON rejects most of
    them, mongomock accepts them); tuples become lists (what every backend reads back).
    """
    if isinstance(value, datetime):
        return utc(value).replace(tzinfo=None)
    if isinstance(value, Mapping):
        return {key: to_storage(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_storage(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def from_storage(value: Any) -> Any:
    """Recursively turn every datetime in a stored document into an aware UTC datetime."""
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, dict):
        return {key: from_storage(item) for key, item in value.items()}
    if isinstance(value, list):
        return [from_storage(item) for item in value]
    return value


def parse_id(value: Any, name: str = "submission_id") -> ObjectId:
    """An ObjectId from an ObjectId or its 24-hex-digit string."""
    if isinstance(value, ObjectId):
        return value
    if isinstance(value, str):
        try:
            return ObjectId(value)
        except InvalidId:
            pass
    raise ValueError(f"{name} must be an ObjectId or its 24-hex-digit string, got {value!r}")


MAX_ROUND = 2**63 - 1  # BSON's largest integer


def check_round(value: Any) -> int:
    """A round number: a whole number from 0 to BSON's largest integer."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"round must be an int, got {value!r}")
    if not 0 <= value <= MAX_ROUND:
        raise ValueError(f"round must be a whole number from 0 to {MAX_ROUND}, got {value}")
    return int(value)


def check_text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty str, got {value!r}")
    return value


def check_number(name: str, value: Any) -> float:
    """A float that compares equal to itself (NaN would make every rewrite look like a change)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{name} must be a number, got nan")
    return value


def check_count(name: str, value: Any) -> int:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return int(value)


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def check_list(name: str, value: Any) -> list:
    if not isinstance(value, list | tuple):
        raise ValueError(f"{name} must be a list, got {value!r}")
    return list(value)


def _check_keys(
    name: str, value: Any, keys: tuple[str, ...], optional: tuple[str, ...] = ()
) -> Mapping:
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a dict with keys {list(keys)}, got {value!r}")
    missing = [key for key in keys if key not in value]
    unknown = [key for key in value if key not in keys + optional]
    if missing or unknown:
        raise ValueError(
            f"{name} must have exactly the keys {list(keys)}: missing {missing}, unknown {unknown}"
        )
    return value


def pending_status() -> dict:
    return {"pending": True, "value": None}


def new_submission(
    submission_id: ObjectId, username: str, round: int, filename: str, created: datetime
) -> dict:
    """A freshly uploaded submission: nothing scored yet."""
    return {
        "_id": submission_id,
        "username": username,
        "competition_id": round,
        "filename": filename,
        "created": created,
        "consistency": None,
        "logloss": {"validation": None},
        "concordant": pending_status(),
        "original": pending_status(),
    }


def concordant_status(concordance: Any, scored_at: datetime, run_id: str, policy: str) -> dict:
    concordance = _check_keys("concordance", concordance, ("value", "score", "clusters"))
    return {
        "pending": False,
        "value": check_bool("concordance['value']", concordance["value"]),
        "score": check_number("concordance['score']", concordance["score"]),
        "clusters": check_list("concordance['clusters']", concordance["clusters"]),
        "scored_at": scored_at,
        "run_id": run_id,
        "policy": check_text("policy", policy),
    }


PAIR_COUNTS = ("compared", "correlated", "duplicate", "similar")


def original_status(originality: Any, scored_at: datetime, run_id: str, policy: str) -> dict:
    originality = _check_keys(
        "originality",
        originality,
        ("value", "reason", "matches", "pairs"),
        optional=("nearest",),
    )
    pairs = _check_keys("originality['pairs']", originality["pairs"], PAIR_COUNTS)
    reason = originality["reason"]
    if reason is not None and reason not in ORIGINALITY_REASONS:
        raise ValueError(
            f"originality['reason'] must be one of {list(ORIGINALITY_REASONS)} or None, "
            f"got {reason!r}"
        )
    return {
        "pending": False,
        "value": check_bool("originality['value']", originality["value"]),
        "reason": reason,
        "matches": check_list("originality['matches']", originality["matches"]),
        # How many of the compared pairs met each test: the round's observed flag rates.
        "pairs": {key: check_count(f"pairs['{key}']", pairs[key]) for key in PAIR_COUNTS},
        # The closest earlier submissions by KS and by |r|, whatever the decision.
        **({"nearest": dict(originality["nearest"])} if "nearest" in originality else {}),
        "scored_at": scored_at,
        "run_id": run_id,
        "policy": check_text("policy", policy),
    }


def leaderboard_entry(submission: Mapping) -> dict:
    """The competition's leaderboard entry mirroring ``submission`` (the original's shape)."""
    return {
        "username": submission["username"],
        "submission_id": submission["_id"],
        "logloss": {
            "validation": status_of(submission, "logloss").get("validation"),
            "consistency": submission.get("consistency"),
        },
        "concordant": _flags(status_of(submission, "concordant")),
        "original": _flags(status_of(submission, "original")),
    }


def status_of(doc: Mapping, field: str) -> Mapping:
    """``doc[field]`` when it is a mapping (a status, ``logloss``), else ``{}``: another system
    may have stored a bare flag (``original: True``), which says nothing this pipeline reads."""
    value = doc.get(field)
    return value if isinstance(value, Mapping) else {}


@dataclass(frozen=True)
class Claim:
    """A run planned or under way for a submission (its ``queued`` field).

    Attributes
    ----------
    run_key : the sensor's run key (the run it requested), or None for a run started otherwise
        (a rescore from the UI or the command line).
    run_id : the run that took the submission up (recorded by its first step), or None.
    at : when the claim was made (UTC).
    attempt : how many runs of this submission alone failed in the scoring code on it; the
        sensor gives up after ``NUMERAI_MAX_SCORING_ATTEMPTS``.
    retries : how many times runs were planned again after this claim's run was lost or died
        (its delay grows with it).
    """

    run_key: str | None
    run_id: str | None
    at: datetime
    attempt: int = 0
    retries: int = 0

    def record(self) -> dict:
        """The ``queued`` field that stores it."""
        return {
            "run_key": self.run_key,
            "run_id": self.run_id,
            "at": utc(self.at, "at"),
            "attempt": check_count("attempt", self.attempt),
            "retries": check_count("retries", self.retries),
        }


def claim_of(doc: Mapping) -> Claim | None:
    """The claim recorded on ``doc``, or None: a ``queued`` field is ours when it holds a date
    ``at``; another system's value of any other shape is no claim, and an odd-typed part of
    ours reads as absent (a run key or id that is not text, a count that is not a whole number).
    """
    queued = status_of(doc, "queued")
    if not isinstance(queued.get("at"), datetime):
        return None

    def text(key: str) -> str | None:
        value = queued.get(key)
        return value if isinstance(value, str) and value else None

    def count(key: str) -> int:
        value = queued.get(key)
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        return value if ok else 0

    return Claim(
        text("run_key"), text("run_id"), utc(queued["at"]), count("attempt"), count("retries")
    )


def _flags(status: Mapping) -> dict:
    return {"pending": status.get("pending"), "value": status.get("value")}


def order_of(doc: Mapping) -> tuple:
    """Where ``doc`` sits in its round's order (``scoring.comparison.order_key``)."""
    return order_key(doc["created"], doc["_id"])


def comparable(doc: Mapping) -> bool:
    """Could be compared against, as stored: not invalid, and original or still pending."""
    original = status_of(doc, "original")
    return doc.get("invalid") is None and (
        original.get("value") is True or original.get("pending") is True
    )


def member_of(doc: Mapping) -> Member:
    """``doc`` as the comparison rule sees it (a ``scoring.comparison.Member``)."""
    return Member(doc["_id"], doc["username"], doc["created"], comparable(doc))
