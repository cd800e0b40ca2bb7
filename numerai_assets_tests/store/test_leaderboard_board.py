"""The reconcile's one-pass board (``reconciled_board``) equals replacing each user's entry in
turn (``_replace_entry``, what a sync does for one user), on random boards with duplicates,
departed users and newcomers."""

from __future__ import annotations

import random

import pytest

from numerai_assets.store.leaderboard import _replace_entry, reconciled_board

USERS = ["a", "b", "c", "d", "e", "f", None, ""]


def _fold(board: list[dict], entries: dict[str, dict]) -> list[dict]:
    result = board
    for username in {item.get("username") for item in board} - set(entries):
        result = _replace_entry(result, username, None)
    for username, entry in entries.items():
        result = _replace_entry(result, username, entry)
    return result


@pytest.mark.parametrize("seed", range(300))
def test_one_pass_equals_one_user_at_a_time(seed: int) -> None:
    rng = random.Random(seed)
    board = [{"username": rng.choice(USERS), "old": i} for i in range(rng.randrange(12))]
    if rng.random() < 0.2:
        board.append({"no_username": True})
    chosen = rng.sample([u for u in USERS if u], rng.randrange(6))
    entries = {u: {"username": u, "new": rng.random()} for u in chosen}
    assert reconciled_board(board, entries) == _fold(board, entries)
