"""The reconcile's one-pass board (``reconciled_board``) on boards the system did not write:
non-dict entries, unhashable or NaN usernames, duplicates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from numerai_assets.store import SubmissionStore, open_database
from numerai_assets.store.leaderboard import reconciled_board
from numerai_assets_tests.store.conftest import embedded_settings
from numerai_assets_tests.store.helpers import ROUND, add
from numerai_assets_tests.store.test_leaderboard_board import _fold


def outcome(action: Any) -> Any:
    try:
        return ("ok", repr(action()))
    except Exception as error:  # noqa: BLE001 - compared by kind
        return ("error", type(error).__name__)


ENTRIES = {"ann": {"username": "ann", "new": 1}, "bob": {"username": "bob", "new": 2}}
ODD_BOARDS = [
    [{"username": "bob"}, {"username": "ann", "i": 1}, {"username": "ann", "i": 2}],
    [{"username": True}, {"username": 1}, {"username": 1.0}, {"username": "ann"}],
    [{"username": b"ann"}, {"no_username": 1}, {"username": None}, {"username": ""}],
    [{"username": "ann"}, "ann"],  # a non-dict entry
    [None],
    [{"username": ["ann"]}],  # an unhashable username
    [{"username": {"u": "ann"}}, {"username": "ann"}],
]


@pytest.mark.parametrize("board", ODD_BOARDS)
def test_one_pass_equals_the_fold_on_odd_boards(board: list) -> None:
    """Where the fold answers, the one pass answers the same; where it raised (an entry that is
    not a document, an unhashable username), the one pass drops the junk and answers what the
    fold answers on the rest."""
    folded = outcome(lambda: _fold(list(board), ENTRIES))
    if folded[0] == "error":
        junk_free = [i for i in board if isinstance(i, dict) and isinstance(i.get("username"), str)]
        folded = outcome(lambda: _fold(junk_free, ENTRIES))
    assert outcome(lambda: reconciled_board(list(board), ENTRIES)) == folded


def test_a_nan_username_is_dropped_where_the_fold_kept_it() -> None:
    """The one difference found: ``_replace_entry`` compares with ``!=`` and NaN != NaN, so the
    per-user fold kept an entry named NaN forever; the one pass drops it like any user without
    a valid submission. Not a regression (the docstring's "the same as" is what is off)."""
    board = [{"username": float("nan")}, {"username": "ann"}]
    assert reconciled_board(board, ENTRIES) == [ENTRIES["ann"], ENTRIES["bob"]]
    assert len(_fold(board, ENTRIES)) == 3


@pytest.mark.parametrize("junk", ["ann", None, {"username": ["ann"]}])
def test_reconcile_survives_a_junk_board_entry(tmp_path: Path, junk: Any) -> None:
    database = open_database(embedded_settings(tmp_path))
    store = SubmissionStore(database)
    store.ensure_indexes()
    add(store, "ann", 1)
    store.reconcile_leaderboard(ROUND)
    database["competitions"].update_one({"_id": ROUND}, {"$push": {"leaderboard": junk}})
    store.reconcile_leaderboard(ROUND)
    assert [e.get("username") for e in store.leaderboard(ROUND)] == ["ann"]
