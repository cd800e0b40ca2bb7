"""``numerai-assets status`` prints whatever is stored, and every command survives a closed pipe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unicodedata
from datetime import datetime, timezone
from pathlib import Path

import pytest
from bson import ObjectId

from numerai_assets.cli import main
from numerai_assets.cli.main import SIGPIPE_STATUS
from numerai_assets.store import SubmissionStore, open_database
from numerai_assets.views.report import DISPLAY_LIMIT, ELLIPSIS, INVISIBLE_CATEGORIES

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
    assert "mallory|*x*\\n[a](https://evil.example)mmm" in row["huge"]  # on one line, cut
    assert "invalid: line one\\nline two rrr" in row["huge"] and ELLIPSIS in row["huge"]
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


# Invisible characters: whatever a participant typed reaches the terminal printable


# User names and reasons as another system (or an older pipeline) stored them, each hiding a
# character of another kind; shown, each must be its escape.
HIDDEN = {
    "al\u061cice": "al\\u061cice",  # ARABIC LETTER MARK (Cf)
    "bo\ufff9b": "bo\\ufff9b",  # INTERLINEAR ANNOTATION ANCHOR (Cf)
    "ca\U000e0041\U000e007frol": "ca\\U000e0041\\U000e007frol",  # tags (Cf)
    "da\u00adve": "da\\xadve",  # SOFT HYPHEN (Cf)
    "ev\u202ee": "ev\\u202ee",  # RIGHT-TO-LEFT OVERRIDE (Cf)
    "fr\ue000ank": "fr\\ue000ank",  # private use (Co)
    "gr\u0378ace": "gr\\u0378ace",  # unassigned (Cn)
    "he\u2028idi": "he\\u2028idi",  # LINE SEPARATOR (Zl)
    "iv\x1b[2Jan": "iv\\x1b[2Jan",  # ESC clearing the screen (Cc)
}
READABLE = "Zoë 山田\u3000太郎 🎉"  # accents, CJK with its full-width space, emoji: as they are
REASON = "line 2 is '\u061cn1\U000e0041\u00ad,0.5'\nforged line"
SHOWN_REASON = "line 2 is '\\u061cn1\\U000e0041\\xad,0.5'\\nforged line"


def invisible(text: str) -> list[str]:
    """The characters of ``text`` of an invisible category, other than its line ends."""
    return [
        f"U+{ord(c):04X}"
        for c in text
        if c != "\n" and unicodedata.category(c) in INVISIBLE_CATEGORIES
    ]


@pytest.fixture
def hidden_documents(home) -> dict[str, ObjectId]:
    submissions = open_database()["submissions"]
    ids = {}
    for user in [*HIDDEN, READABLE]:
        ids[user] = submissions.insert_one(
            {
                "_id": ObjectId(),
                "username": user,
                "competition_id": 7,
                "filename": f"7/{user}/a.csv",
                "created": WHEN,
                "invalid": {"reason": REASON},
            }
        ).inserted_id
    decided = ObjectId()
    submissions.insert_one(
        {
            "_id": decided,
            "username": "mal\u061clory",
            "competition_id": 7,
            "created": WHEN,
            "concordant": {
                "pending": False,
                "value": True,
                "score": 0.05,
                "clusters": [
                    {"cluster": 0, "sizes": {"val\u200bidation": 3}, "ks": {"a\u202e/b": 0.1}}
                ],
            },
            "original": {
                "pending": False,
                "value": False,
                "reason": "dup\u00adlicate",
                "matches": [{"username": "bo\ufff9b", "submission_id": "x\u061c", "ks": 0.001}],
                "nearest": {"ks": {"username": "ca\U000e0041rol", "submission_id": "y"}},
                "pairs": {"com\u2066pared": 1},
                "run_id": "run\u2028-1",
                "scored_at": WHEN,
            },
        }
    )
    ids["decided"] = decided
    return ids


def test_status_shows_every_hidden_character_as_its_escape(hidden_documents, capsys):
    assert main(["status"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and invisible(out) == []
    lines = out.splitlines()
    assert len(lines) == 1 + len(hidden_documents)  # nothing broke a line
    for user, shown in HIDDEN.items():
        (line,) = [line for line in lines if str(hidden_documents[user]) in line]
        assert f"  {shown}  " in line and line.endswith(f"invalid: {SHOWN_REASON}")
    assert any(f"  {READABLE}  " in line for line in lines)
    (decided,) = [line for line in lines if str(hidden_documents["decided"]) in line]
    assert "mal\\u061clory" in decided and "bo\\ufff9b (KS 0.0010, r -)" in decided
    assert decided.endswith("dup\\xadlicate")


def test_the_installed_status_command_writes_no_hidden_character(hidden_documents):
    """The bytes the real command writes to a pipe, decoded: nothing hidden, every line whole."""
    command = [str(Path(sys.executable).with_name("numerai-assets")), "status"]
    done = subprocess.run(command, capture_output=True, check=True, env=dict(os.environ))
    out = done.stdout.decode("utf-8")
    assert invisible(out) == [] and len(out.splitlines()) == 1 + len(hidden_documents)
    assert "al\\u061cice" in out and READABLE in out


def test_status_json_is_ascii_and_gives_the_stored_values_back(hidden_documents, capsys):
    """JSON shows the values as stored, exactly: every character outside ASCII (invisible or
    not) is a JSON escape, so the terminal sees none of them and a program reads them back."""
    assert main(["status", "--json"]) == 0
    out = capsys.readouterr().out
    assert out.isascii() and invisible(out) == []
    users = {doc["_id"]: doc["username"] for doc in json.loads(out)}
    for user, submission_id in hidden_documents.items():
        if user != "decided":
            assert users[str(submission_id)] == user
    assert json.loads(out)[0]["invalid"]["reason"] == REASON


def test_explain_shows_every_hidden_character_as_its_escape(hidden_documents, capsys):
    for user, shown in HIDDEN.items():
        assert main(["explain", str(hidden_documents[user])]) == 0
        out, err = capsys.readouterr()
        assert err == "" and invisible(out) == [], user
        assert f"user {shown}  round 7" in out
        assert f"invalid: {SHOWN_REASON}\n" in out
    assert main(["explain", str(hidden_documents["decided"])]) == 0
    out = capsys.readouterr().out
    assert invisible(out) == []
    for shown in (
        "user mal\\u061clory",
        "(dup\\xadlicate)",
        "bo\\ufff9b  x\\u061c",
        "nearest by smallest KS: ca\\U000e0041rol y",
        "pairs: com\\u2066pared 1",
        "run run\\u2028-1",
        "val\\u200bidation rows",
        "KS a\\u202e/b",
    ):
        assert shown in out, shown


def test_explain_json_holds_the_shown_text(hidden_documents, capsys):
    """``explain --json`` is the diagnostic the site shows (the intake serves the same): every
    text in it is the escaped, bounded text, never a hidden character."""
    assert main(["explain", "--json", str(hidden_documents["decided"])]) == 0
    out = capsys.readouterr().out
    diagnostic = json.loads(out)
    assert invisible(json.dumps(diagnostic, ensure_ascii=False)) == []
    assert diagnostic["user"] == "mal\\u061clory"
    assert diagnostic["originality"]["matches"][0]["username"] == "bo\\ufff9b"
    assert diagnostic["originality"]["pairs"] == {"com\\u2066pared": 1}
    assert diagnostic["concordance"]["clusters"][0]["ks"] == {"a\\u202e/b": 0.1}
    assert main(["explain", "--json", str(hidden_documents["al\u061cice"])]) == 0
    assert json.loads(capsys.readouterr().out)["invalid"] == SHOWN_REASON
