"""``submit`` and ``status``: what the upload service does, and what an operator looks at."""

from __future__ import annotations

import argparse
import json
import uuid
from datetime import datetime
from pathlib import Path

from bson import ObjectId

from numerai_assets.cli.context import Deployment


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
    status.add_argument("--json", action="store_true", help="the documents as stored, as JSON")
    status.set_defaults(run=run_status)


def upload_submission(
    deployment: Deployment, *, round: int, user: str, data: bytes, name: str = "predictions.csv"
) -> ObjectId:
    """Copy a file to the uploads bucket and record it, pending: the pipeline judges it."""
    filename = f"{round}/{user}/{uuid.uuid4().hex[:12]}-{Path(name).name}"
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
    print(f"submitted {submission_id} for {args.user} in round {args.round} (pending)")
    return 0


def _jsonable(value: object) -> object:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _flag(status: dict | None) -> str:
    status = status or {}
    if status.get("pending"):
        return "pending"
    return {True: "yes", False: "no"}.get(status.get("value"), "-")


def run_status(args: argparse.Namespace) -> int:
    store = Deployment.from_env().store
    rounds = [args.round] if args.round is not None else store.rounds()
    docs = [doc for r in rounds for doc in store.round_submissions(r)]
    if args.json:
        print(json.dumps(_jsonable(docs), indent=1))
        return 0
    if not docs:
        print("no submissions" + (f" in round {args.round}" if args.round is not None else ""))
        return 0
    print(
        f"{'round':>5}  {'submission':24}  {'user':12}  {'concordance':>11}  "
        f"{'concordant':10}  {'original':8}  why"
    )
    for doc in docs:
        concordant, original = doc.get("concordant") or {}, doc.get("original") or {}
        score = concordant.get("score")
        why = (doc.get("invalid") or {}).get("reason") and f"invalid: {doc['invalid']['reason']}"
        why = why or original.get("reason") or ""
        print(
            f"{doc['competition_id']:>5}  {str(doc['_id']):24}  {doc['username'][:12]:12}  "
            f"{'' if score is None else f'{score:.4f}':>11}  {_flag(concordant):10}  "
            f"{_flag(original):8}  {why}"
        )
    return 0
