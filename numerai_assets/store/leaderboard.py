"""Each competition's leaderboard: a cached view of its submissions (the original system's
shape), rewritten whole under an optimistic version, so concurrent writers never drop each
other's entries and re-running a sync completes an interrupted write."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from typing import Any

from numerai_assets.store.base import (
    DUPLICATE_KEY,
    NEWEST_FIRST,
    NOT_INVALID,
    ORDER,
    StoreBase,
    StoreError,
)
from numerai_assets.store.connection import write_lock
from numerai_assets.store.documents import check_round, check_text, from_storage, leaderboard_entry

SYNC_ATTEMPTS = 50


class LeaderboardMixin(StoreBase):
    """The competitions' leaderboards (a part of :class:`~numerai_assets.store.SubmissionStore`)."""

    def leaderboard(self, round: int) -> list[dict]:
        """The round's leaderboard entries as stored (``[]`` for a round without one)."""
        doc = self._competitions.find_one({"_id": check_round(round)})
        return from_storage(doc.get("leaderboard") or []) if doc else []

    def reconcile_leaderboard(self, round: int) -> None:
        """Bring every user's entry of ``round`` in line (completes any interrupted write).

        One read of the round and at most one write, whatever the number of users.
        """
        round = check_round(round)
        self._retry_board_update(round, lambda: self._try_reconcile(round), "every user")

    def sync_leaderboard(self, round: int, username: str) -> None:
        """Make ``username``'s entry in ``round`` mirror their latest valid submission.

        Idempotent, and what completes a write interrupted between the submission and the
        leaderboard. The competition document is rewritten whole under an optimistic ``version``
        (read it before the submissions, write only if unchanged, else retry), so concurrent
        syncs of different users of one round cannot drop each other's entries.
        """
        round = check_round(round)
        username = check_text("username", username)
        self._retry_board_update(round, lambda: self._try_sync(round, username), repr(username))

    def _retry_board_update(self, round: int, attempt_update: Any, whom: str) -> None:
        for attempt in range(SYNC_ATTEMPTS):
            with write_lock(self._database):
                if attempt_update():
                    return
            time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        raise StoreError(
            f"could not update the leaderboard of round {round} for {whom}: "
            f"the competition document kept changing over {SYNC_ATTEMPTS} attempts"
        )

    def _try_sync(self, round: int, username: str) -> bool:
        competition = self._competitions.find_one({"_id": round})
        latest = self._submissions.find_one(
            {"competition_id": round, "username": username, **NOT_INVALID}, sort=NEWEST_FIRST
        )
        board = list(competition.get("leaderboard") or []) if competition else []
        entry = None if latest is None else leaderboard_entry(latest)
        return self._write_board(round, competition, board, _replace_entry(board, username, entry))

    def _try_reconcile(self, round: int) -> bool:
        competition = self._competitions.find_one({"_id": round})
        latest: dict[str, Mapping] = {}
        for doc in self._submissions.find({"competition_id": round, **NOT_INVALID}).sort(ORDER):
            if isinstance(doc.get("username"), str) and doc["username"]:
                latest[doc["username"]] = doc  # ascending order: the last one wins
        board = list(competition.get("leaderboard") or []) if competition else []
        entries = {username: leaderboard_entry(doc) for username, doc in latest.items()}
        return self._write_board(round, competition, board, reconciled_board(board, entries))

    def _write_board(
        self, round: int, competition: Mapping | None, board: list, new_board: list
    ) -> bool:
        """Write ``new_board`` if it differs, only if nobody changed the document meanwhile."""
        if competition is None:
            if not new_board:
                return True
            try:
                self._competitions.insert_one(
                    {"_id": round, "leaderboard": new_board, "version": 1}
                )
            except DUPLICATE_KEY:
                return False  # created meanwhile: retry against it
            return True
        if new_board == board:
            return True
        version = competition.get("version")  # None (absent) on the original system's documents
        result = self._competitions.update_one(
            {"_id": round, "version": version},
            {"$set": {"leaderboard": new_board, "version": (version or 0) + 1}},
        )
        return result.matched_count == 1


def reconciled_board(board: list[dict], entries: Mapping[str, dict]) -> list[dict]:
    """``board`` with every user's entry replaced by ``entries``' in one pass: a user's first
    entry keeps its place (later duplicates dropped), users without an entry in ``entries``
    dropped, new users appended in ``entries``' order. The same as :func:`_replace_entry` for
    each user in turn, without its cost per user (a round of 10,000 users: seconds), except on
    junk the fold raised on or kept (an entry that is not a document, a username that is not a
    string, such as NaN): dropped here."""
    result, placed = [], set()
    for item in board:
        # An entry that is not a document, or names no user by a string, is nobody's: dropped
        # (the board is rebuilt from the submissions; such junk made every reconcile raise).
        username = item.get("username") if isinstance(item, Mapping) else None
        if isinstance(username, str) and username in entries and username not in placed:
            result.append(entries[username])
            placed.add(username)
    return result + [entry for username, entry in entries.items() if username not in placed]


def _replace_entry(board: list[dict], username: str, entry: dict | None) -> list[dict]:
    """``board`` with ``username``'s entry replaced in place, appended, or removed."""
    result: list[dict] = []
    placed = entry is None
    for item in board:
        if item.get("username") != username:
            result.append(item)
        elif not placed:  # the first of (legacy) duplicates keeps the user's place
            result.append(entry)
            placed = True
    return result if placed else [*result, entry]
