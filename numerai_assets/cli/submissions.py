"""``submit`` and ``status``: what the upload service does, and what an operator looks at."""

from __future__ import annotations

import argparse
import json
import numbers
import sys
from datetime import date, datetime
from pathlib import Path

from bson import ObjectId, json_util

from numerai_assets.batch.files import misplaced, upload_key
from numerai_assets.cli.context import Deployment
from numerai_assets.store.validation import new_submission_problem
from numerai_assets.views.report import DISPLAY_LIMIT, one_line
from numerai_assets.views.round_view import against, number


def register(commands: argparse._SubParsersAction) -> None:
    submit = commands.add_parser(
        "submit", help="store a submission file as the upload service would"
    )
    submit.add_argument("--round", required=True, type=int)
    submit.add_argument("--user", required=True)
    submit.add_argument("file", type=Path)
    submit.set_defaults(run=run_submit)

    status = commands.add_parser("status", help="list submissions with their flags and scores")
    status.add_argument("--round", type=int)
    status.add_argument(
        "--json",
        action="store_true",
        help="the documents as stored, as JSON (ASCII: every other character as a JSON escape)",
    )
    status.set_defaults(run=run_status)


def upload_submission(
    deployment: Deployment, *, round: int, user: str, data: bytes, name: str = "predictions.csv"
) -> ObjectId:
    """Copy a file to the uploads bucket and record it, pending: the pipeline judges it.

    Refused before anything is stored (``ValueError``) when the pipeline would refuse the record
    (:func:`~numerai_assets.store.validation.malformed_reason`: a user name with ``/`` is one)
    or its place (:func:`~numerai_assets.batch.files.misplaced`): the key is written by the
    layout the pipeline checks, ``NUMERAI_UPLOAD_KEY_PREFIX``.
    """
    pattern = deployment.settings.upload_key_prefix
    filename = upload_key(pattern, round=round, username=user, name=name)
    problem = new_submission_problem(username=user, round=round, filename=filename)
    if problem is None:
        record = {"competition_id": round, "username": user, "filename": filename}
        problem = misplaced(pattern, record)
    if problem is not None:  # refused before anything is stored
        raise ValueError(problem)
    deployment.buckets.put_bytes(deployment.settings.upload_bucket, filename, data)
    return deployment.store.insert_submission(username=user, round=round, filename=filename)


def run_submit(args: argparse.Namespace) -> int:
    if not args.file.is_file():
        raise FileNotFoundError(f"{args.file} does not exist")
    deployment = Deployment.from_env()
    submission_id = upload_submission(
        deployment,
        round=args.round,
        user=args.user,
        data=args.file.read_bytes(),
        name=args.file.name,
    )
    from numerai_assets.pipeline.launch import launch_on_upload  # loads Dagster: only here

    launch = launch_on_upload(
        deployment.settings, deployment.store, submission_id, round=args.round
    )
    then = (
        f"its scoring run {launch.run_id} is queued"
        if launch.run_id
        else f"the sensor's next tick plans its run: {launch.why_not}"
    )
    print(f"submitted {submission_id} for {args.user} in round {args.round} (pending); {then}")
    return 0


# Columns of the status table: title, right-aligned, at most this many characters shown.
COLUMNS = (
    ("round", True, 12),
    ("submission", False, DISPLAY_LIMIT),
    ("user", False, DISPLAY_LIMIT),
    ("concordance", True, 11),
    ("concordant", False, 10),
    ("original", False, 8),
    ("consistency", True, 11),
    ("against", False, DISPLAY_LIMIT),
    ("why", False, 240),
)


def run_status(args: argparse.Namespace) -> int:
    store = Deployment.from_env().store
    # Every document, however malformed (another system's, or set aside by the sensor).
    docs = sorted(store.all_documents(args.round), key=_listing_order)
    if args.json:
        # Values exactly as stored, written in ASCII: any other character, visible or not, is a
        # \uXXXX escape, so nothing invisible reaches the terminal and a program reads it back.
        print(json.dumps(docs, indent=1, default=_json_default, ensure_ascii=True))
        return 0
    if not docs:
        print("no submissions" + (f" in round {args.round}" if args.round is not None else ""))
        return 0
    for line in _table([_row(doc) for doc in docs]):
        print(line)
    return 0


def _table(rows: list[list]) -> list[str]:
    """The lines of the status table: every cell on one line and cut to its column's limit; the
    columns as wide as their widest cell (the last one unpadded)."""
    shown = [[title for title, *_ in COLUMNS]]
    for row in rows:
        shown.append(
            [one_line(cell, limit) for cell, (*_, limit) in zip(row, COLUMNS, strict=True)]
        )
    widths = [max(len(row[column]) for row in shown) for column in range(len(COLUMNS))]
    lines = []
    for row in shown:
        padded = [
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, (_, right, _) in zip(row, widths, COLUMNS, strict=True)
        ]
        lines.append("  ".join(padded[:-1] + [row[-1]]))
    return lines


def _row(doc: dict) -> list:
    """The status table's cells of one stored document, any of whose fields may be missing or of
    another type (documents from other systems)."""
    concordant, original = _status(doc.get("concordant")), _status(doc.get("original"))
    score = concordant.get("score")
    if isinstance(score, numbers.Real) and not isinstance(score, bool):
        score = f"{score:.4f}"
    invalid = doc.get("invalid")
    why = original.get("reason") or ""
    if invalid:
        reason = invalid.get("reason") if isinstance(invalid, dict) else invalid
        why = f"invalid: {one_line(reason, COLUMNS[-1][2])}"
    return [
        doc.get("competition_id"),
        doc.get("_id"),
        doc.get("username"),
        score,
        _flag(concordant),
        _flag(original),
        _percent(doc.get("consistency")),
        against(doc, COLUMNS[-2][2]),
        why,
    ]


def _percent(value: object) -> object:
    """A number with one decimal; anything else (from another system) as stored."""
    shown = number(value)
    return value if shown is None else f"{shown:.1f}"


def _status(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _flag(status: dict) -> str:
    if status.get("pending") is True:
        return "pending"
    value = status.get("value")  # anything, from another system: only a bool is a verdict
    return "yes" if value is True else "no" if value is False else "-"


def _listing_order(doc: dict) -> tuple:
    return tuple(_sort_key(doc.get(field)) for field in ("competition_id", "created", "_id"))


def _sort_key(value: object) -> tuple:
    """Numbers, then datetimes, then ids, by value; anything else after them, by its text."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and value == value:
        return (0, value)
    if isinstance(value, datetime):
        return (1, value)  # aware UTC: from_storage made them so
    if isinstance(value, ObjectId):
        return (2, value.binary)
    return (3, one_line(value))


def _json_default(value: object) -> object:
    """JSON for what ``json`` cannot write: ids as strings, datetimes in ISO 8601, other BSON
    types in MongoDB's extended JSON, anything else as its ``str``."""
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    try:
        return json_util.default(value)
    except TypeError:
        return one_line(value, limit=sys.maxsize)
