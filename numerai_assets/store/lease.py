"""One writer per round: a lease on the round's competition document, taken by the run that
scores the round, renewed while it works, checked before it writes and given back at the end."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Mapping
from datetime import datetime

from numerai_assets.store.base import DUPLICATE_KEY, StoreBase, StoreError
from numerai_assets.store.connection import write_lock
from numerai_assets.store.documents import check_round, check_text, from_storage, to_storage, utc


class RoundBusy(StoreError):
    """Another run holds the round's scoring lease: only one writer per round at a time."""


class LeaseMixin(StoreBase):
    """A round's scoring lease (a part of :class:`~numerai_assets.store.SubmissionStore`)."""

    def acquire_round(
        self,
        round: int,
        *,
        owner: str,
        until: datetime,
        now: datetime,
        owner_alive: Callable[[Mapping], bool] | None = None,
    ) -> None:
        """Take ``round``'s scoring lease for ``owner`` (a run id) until ``until``.

        Free, expired, already ``owner``'s, or held by an owner that ``owner_alive`` (given the
        holder's lease: ``owner``, ``host``, ``pid``, ``until``) says has ended, such as a
        killed run: taken. Otherwise :class:`RoundBusy` names the holder. The lease lives on
        the round's competition document, so every entry point (queued runs, an in-process
        rescore, a manual materialization) meets the same lock.
        """
        round = check_round(round)
        lease = {
            "owner": check_text("owner", owner),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "until": utc(until, "until"),
        }
        with write_lock(self._database):
            with contextlib.suppress(*DUPLICATE_KEY):
                self._competitions.insert_one({"_id": round})
            free = [
                {"lease": {"$exists": False}},
                {"lease.until": {"$lt": self._when(utc(now, "now"))}},
                {"lease.owner": owner},
            ]
            taken = self._competitions.update_one(
                {"_id": round, "$or": free}, to_storage({"$set": {"lease": lease}})
            )
        if taken.matched_count:
            return
        holder = (self._competitions.find_one({"_id": round}) or {}).get("lease") or {}
        if owner_alive is not None and holder.get("owner") and not owner_alive(holder):
            with write_lock(self._database):
                broken = self._competitions.update_one(
                    {"_id": round, "lease.owner": holder["owner"]},
                    to_storage({"$set": {"lease": lease}}),
                )
            if broken.matched_count:
                return
        until_text = utc(holder["until"]).strftime("%H:%M:%S UTC") if holder else "?"
        raise RoundBusy(
            f"round {round} is being scored by run {holder.get('owner')} (its lease runs "
            f"until {until_text}); one run writes a round at a time, try again when it ends"
        )

    def renew_round(self, round: int, *, owner: str, until: datetime) -> bool:
        """Extend ``owner``'s lease; False if it no longer holds it (it must not write)."""
        with write_lock(self._database):
            result = self._competitions.update_one(
                {"_id": check_round(round), "lease.owner": owner},
                to_storage({"$set": {"lease.until": utc(until, "until")}}),
            )
        return result.matched_count == 1

    def release_round(self, round: int, *, owner: str) -> None:
        """Give the lease back (nothing happens if ``owner`` no longer holds it)."""
        with write_lock(self._database):
            self._competitions.update_one(
                {"_id": check_round(round), "lease.owner": owner}, {"$unset": {"lease": ""}}
            )

    def lease_of(self, round: int) -> dict | None:
        """``round``'s lease as stored (``owner``, ``host``, ``pid``, ``until``), or None."""
        doc = self._competitions.find_one({"_id": check_round(round)})
        lease = (doc or {}).get("lease")
        return from_storage(lease) if isinstance(lease, dict) else None
