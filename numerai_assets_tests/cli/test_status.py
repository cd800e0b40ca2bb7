"""``numerai-assets status`` prints whatever is stored, and every command survives a closed pipe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from bson import ObjectId

from numerai_assets.cli import main
from numerai_assets.cli.main import SIGPIPE_STATUS
from numerai_assets.store import SubmissionStore, open_database
from numerai_assets.views.report import DISPLAY_LIMIT, ELLIPSIS

HUGE = 20_000_000  # characters: far more than any screen (200 MB costs the store 6 s and 800 MB)
WHEN = datetime(2024, 5, 1, tzinfo=timezone.utc)


@pytest.fixture
def odd_documents(home) -> dict:
    """One honest submission beside documents written by other systems, as stored."""
    store = SubmissionStore(open_database())
    honest = store.insert_submission(username="alice", round=7, filename="7/alice/a.csv")
    submissions = open_database()["submissions"]
    docs = {
        "integer user": {"_id": ObjectId(), "username": 42, "competition_id": 7, "created": WHEN},
        "no user": {"_id": ObjectId(), "username": None, "competition_id": 7, "created": WHEN},
        "legacy id": {"_id": "legacy-0001", "competition_id": 7, "created": WHEN},
        "only an id": {"_id": "legacy-0002"},
        "huge": {
            "_id": ObjectId(),
            "username": "mallory|*x*\n[a](https://evil.example)" + "m" * 1000,
            "competition_id": "seven",
            "filename": "f" * HUGE,
            "created": "yesterday",
            "invalid": {"reason": "line one\nline two " + "r" * HUGE},
        },
        "odd statuses": {
            "_id": 12345,
            "username": ["a", "list"],
            "competition_id": 3.5,
            "created": WHEN,
            "concordant": {"pending": "no", "value": [True], "score": "high"},
            "original": "yes",
            "invalid": "a bare string",
        },
        "numbers": {
            "_id": ObjectId(),
            "username": "bob",
            "competition_id": 8,
            "created": WHEN,
            "concordant": {"pending": False, "value": False, "score": 0.1234567},
            "original": {"pending": False, "value": False, "reason": "duplicate"},
        },
    }
    for doc in docs.values():
        submissions.insert_one(doc)
    return {"honest": honest, **docs}


def test_status_prints_every_stored_document_on_bounded_lines(odd_documents, capsys):
    assert main(["status"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert err == ""
    assert len(lines) == 1 + len(odd_documents)  # a header, then one line per document
    assert lines[0].split() == [
        "round", "submission", "user", "concordance", "concordant", "original", "consistency",
        "against", "why",
    ]  # fmt: skip
    assert all(len(line) < 600 for line in lines)
    row = {name: next(line for line in lines if key in line) for name, key in [
        ("honest", str(odd_documents["honest"])),
        ("integer user", str(odd_documents["integer user"]["_id"])),
        ("no user", str(odd_documents["no user"]["_id"])),
        ("legacy id", "legacy-0001"),
        ("only an id", "legacy-0002"),
        ("huge", str(odd_documents["huge"]["_id"])),
        ("odd statuses", "12345"),
        ("numbers", str(odd_documents["numbers"]["_id"])),
    ]}  # fmt: skip
    assert row["honest"].split()[:3] == ["7", str(odd_documents["honest"]), "alice"]
    assert " 42 " in row["integer user"]
    assert "mallory|*x* [a](https://evil.example)mmm" in row["huge"]  # on one line, cut
    assert "invalid: line one line two rrr" in row["huge"] and ELLIPSIS in row["huge"]
    assert "seven" in row["huge"]
    assert row["odd statuses"].split()[:6] == ["3.5", "12345", "['a',", "'list']", "high", "-"]
    assert row["odd statuses"].endswith("invalid: a bare string")
    assert "0.1235" in row["numbers"] and "duplicate" in row["numbers"]
    # Numbered rounds first, ascending; then the rest.
    order = [lines.index(row[name]) for name in ("odd statuses", "honest", "numbers", "huge")]
    assert order == sorted(order)


def test_status_json_writes_every_document_as_stored(odd_documents, capsys):
    assert main(["status", "--json"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    docs = {str(doc["_id"]): doc for doc in json.loads(out)}
    assert len(docs) == len(odd_documents)
    honest = docs[str(odd_documents["honest"])]
    assert honest["username"] == "alice" and honest["created"].endswith("+00:00")
    assert docs[str(odd_documents["integer user"]["_id"])]["username"] == 42
    assert docs[str(odd_documents["no user"]["_id"])]["username"] is None
    assert docs["legacy-0001"] == {
        "_id": "legacy-0001",
        "competition_id": 7,
        "created": WHEN.isoformat(),
    }
    assert docs["legacy-0002"] == {"_id": "legacy-0002"}
    assert docs["12345"]["_id"] == 12345 and docs["12345"]["original"] == "yes"
    huge = docs[str(odd_documents["huge"]["_id"])]
    assert huge["invalid"]["reason"] == odd_documents["huge"]["invalid"]["reason"]  # as stored
    assert len(huge["filename"]) == HUGE


def test_status_of_one_round_beside_odd_documents(odd_documents, capsys):
    assert main(["status", "--round", "8"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and str(odd_documents["numbers"]["_id"]) in lines[1]


def test_a_long_user_name_is_cut_with_an_ellipsis(home, capsys):
    store = SubmissionStore(open_database())
    store.insert_submission(username="u" * 100, round=1, filename="1/u/a.csv")
    assert main(["status"]) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert "u" * (DISPLAY_LIMIT - 1) + ELLIPSIS in line and "u" * DISPLAY_LIMIT not in line


# A closed pipe


def run_into_closed_pipe(args: list[str], env: dict) -> tuple[bytes, int, str]:
    """Run the installed command with its output read by something that stops after one line
    (``… | head -1``): the first line, the exit status, and what it wrote to stderr."""
    command = [str(Path(sys.executable).with_name("numerai-assets")), *args]  # the entry point
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()  # the reader goes away with most of the output unread
    err = process.stderr.read().decode()
    return first, process.wait(timeout=60), err


def test_status_into_a_closed_pipe_exits_quietly(home, capsys):
    reason = "x" * 1_000_000  # far more than a pipe holds
    open_database()["submissions"].insert_one(
        {"username": "carol", "competition_id": 2, "created": WHEN, "invalid": {"reason": reason}}
    )
    first, status, err = run_into_closed_pipe(["status", "--json"], dict(os.environ))
    assert first == b"[\n"
    assert (status, err) == (SIGPIPE_STATUS, "")


def test_a_broken_pipe_of_the_command_itself_is_not_swallowed(home, monkeypatch, capfd):
    """Only a closed standard output is quiet: a pipe the command writes to fails as before."""
    from numerai_assets.cli import submissions

    def broken_pipe(args):
        raise BrokenPipeError("a socket of the command's own work")

    monkeypatch.setattr(submissions, "run_status", broken_pipe)
    with pytest.raises(BrokenPipeError, match="own work"):
        main(["status"])
