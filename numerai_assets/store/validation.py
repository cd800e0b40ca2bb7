"""The one rule for a submission's record: what the pipeline can score, and why not.

Applied to documents other systems stored (the sensor sets malformed ones aside, as invalid with
the reason) and to what ``insert_submission`` or an upload service is asked to store (refused
before anything is written). The fields' BSON types are also what the queue's query for
mistyped documents asks for (:data:`DOCUMENT_TYPES`).
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

from bson import ObjectId

from numerai_assets.settings import is_key_segment
from numerai_assets.store.documents import check_round, new_submission, utc

# What every field the pipeline relies on must be, as BSON types (for the query that finds foreign
# documents wherever they sort) and as Python checks (for the values a type cannot express).
DOCUMENT_TYPES = {
    "_id": ("objectId",),
    "created": ("date",),
    "username": ("string",),
    "competition_id": ("int", "long"),
    "filename": ("string",),
}
MAX_USERNAME_CHARS = 100
# An upload clock may run ahead; a day ahead is another system's placeholder, not a clock.
MAX_CLOCK_AHEAD = timedelta(days=1)
MAX_FILENAME_BYTES = 1024  # S3's limit on a key

# Values shown in a reason: repr, with long strings cut in the middle (a 200 MB field makes a
# short reason).
_SHOWN = reprlib.Repr()
_SHOWN.maxstring = _SHOWN.maxother = _SHOWN.maxlong = 64


def malformed_reason(doc: Mapping, *, now: datetime | None = None) -> str | None:
    """Why ``doc`` is not a submission the pipeline can score, or None when it is.

    The one rule for a submission's record, applied to what others stored (set aside by the
    sensor) and to what ``insert_submission`` is asked to store (refused). Checks every field
    the pipeline relies on: ``_id`` (an ObjectId), ``created`` (a date and time, not more than a
    day ahead of ``now``), ``username`` (text of at most 100 characters, no control
    characters, and the name of one folder: :func:`numerai_assets.settings.is_key_segment`),
    ``competition_id`` (a round number, :func:`check_round`) and ``filename``
    (text of at most 1,024 UTF-8 bytes, no NUL). Values are quoted cut to 64 characters, so a
    huge field makes a short reason.
    """
    expected = {
        "username": (str, "a user name"),
        "competition_id": (int, "a round number"),
        "filename": (str, "a file name"),
        "created": (datetime, "a date and time"),
    }
    if not isinstance(doc.get("_id"), ObjectId):
        value = doc.get("_id")
        return (
            f"the submission record's _id is {_SHOWN.repr(value)} ({type(value).__name__}), "
            "not an ObjectId"
        )
    for field, (kind, what) in expected.items():
        value = doc.get(field)
        if value is None or value == "":
            return f"the submission record has no {field}"
        if not isinstance(value, kind) or isinstance(value, bool):
            return (
                f"the submission record's {field} is {_SHOWN.repr(value)} "
                f"({type(value).__name__}), not {what}"
            )
    username = doc["username"]
    if len(username) > MAX_USERNAME_CHARS:
        return f"the submission record's username is longer than {MAX_USERNAME_CHARS} characters"
    if not username.isprintable() or username != username.strip():
        return (
            f"the submission record's username {_SHOWN.repr(username)} has control characters "
            "or surrounding spaces"
        )
    if not is_key_segment(username):
        return (
            f"the submission record's username {_SHOWN.repr(username)} cannot name a folder of "
            "the upload bucket (it holds '/' or '\\', or is '.' or '..')"
        )
    try:
        check_round(doc["competition_id"])
    except ValueError:
        return (
            f"the submission record's competition_id is {_SHOWN.repr(doc['competition_id'])}, "
            "not a round number"
        )
    filename = doc["filename"]
    if "\x00" in filename or len(filename.encode("utf-8", "replace")) > MAX_FILENAME_BYTES:
        return (
            f"the submission record's filename {_SHOWN.repr(filename)} is not a valid object key "
            f"(a NUL character, or longer than {MAX_FILENAME_BYTES} bytes)"
        )
    now = datetime.now(timezone.utc) if now is None else now
    if utc(doc["created"]) > now + MAX_CLOCK_AHEAD:
        return (
            f"the submission record's created ({utc(doc['created']):%Y-%m-%d %H:%M} UTC) is more "
            "than a day in the future"
        )
    return None


def new_submission_problem(*, username: object, round: object, filename: object) -> str | None:
    """Why a new upload with these fields would be refused (``malformed_reason``), or None:
    for an upload service to ask before it stores the file."""
    problem = malformed_reason(
        new_submission(ObjectId(), username, round, filename, datetime.now(timezone.utc))
    )
    return None if problem is None else for_new(problem)


def for_new(problem: str) -> str:
    """A stored record's reason, said of a new one: "username is ...", not "the record's"."""
    return problem.replace("the submission record's ", "", 1).replace(
        "the submission record has no", "no", 1
    )
