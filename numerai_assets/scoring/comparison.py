"""The one order of a round's submissions, and the comparison rule.

**Order.** A round's submissions are judged in (``created``, id) order: the id breaks ties of
equal ``created``. A naive ``created`` is taken to be UTC (pymongo's convention), so documents
read back naive or aware sort alike.

**Comparison rule** (:data:`COMPARISON_RULE`). A submission's originality is compared against,
for each *other* user of its round, that user's latest *comparable* submission before it: one
that is not invalid and is original or still pending. So a user whose latest submission was not
original is represented by their latest original one.

Pure and typed: the store, the batch steps, the round view and the ``score`` command all call
this module, so the rule and the order each have one home. Ids may be anything hashable and
ordered among themselves (``bson.ObjectId`` in the pipeline, ints in tests).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

# The name recorded in the scoring policy for the rule below.
COMPARISON_RULE = "latest-original-or-pending-per-other-user"


def order_key(created: datetime, submission_id: Any) -> tuple[datetime, Any]:
    """Where a submission sits in its round's order: ``(created as aware UTC, id)``.

    Raises
    ------
    ValueError
        When ``created`` is not a ``datetime``.
    """
    if not isinstance(created, datetime):
        raise ValueError(f"created must be a datetime, got {created!r}")
    if created.tzinfo is None or created.utcoffset() is None:
        created = created.replace(tzinfo=timezone.utc)
    return created.astimezone(timezone.utc), submission_id


@dataclass(frozen=True)
class Member:
    """One submission of a round as the comparison rule sees it.

    Attributes
    ----------
    id : the submission's id (hashable, ordered among the round's ids).
    user : its participant.
    created : its upload time (naive means UTC).
    comparable : not invalid, and original or still pending: later submissions of other users
        may be compared against it.
    """

    id: Hashable
    user: str
    created: datetime
    comparable: bool = True

    @property
    def key(self) -> tuple[datetime, Any]:
        return order_key(self.created, self.id)

    def decided(self, original: bool) -> Member:
        """This member once its originality is decided (comparable only if original)."""
        return replace(self, comparable=original)


class Frontier:
    """Each user's latest comparable member so far, for walking a round in order.

    Add members in (``created``, id) order with :meth:`add`; :meth:`candidates` is then what
    the comparison rule picks for a submission of ``user`` that comes next. Each call costs
    time linear in the number of users.
    """

    def __init__(self) -> None:
        # Re-inserted on every change, so the dict's order is the order of the members held.
        self._latest: dict[str, Member] = {}

    def add(self, member: Member) -> None:
        if member.comparable:
            self._latest.pop(member.user, None)
            self._latest[member.user] = member

    def candidates(self, user: str) -> list[Member]:
        """Every other user's latest comparable member, oldest first."""
        return [member for name, member in self._latest.items() if name != user]


def latest_comparable_per_user(members: Iterable[Member], submission: Member) -> list[Member]:
    """What ``submission``'s originality is compared against, among ``members`` (one round's).

    Members at or after ``submission`` in the order are ignored. Oldest first.
    """
    key = submission.key
    frontier = Frontier()
    for member in sorted((m for m in members if m.key < key), key=lambda m: m.key):
        frontier.add(member)
    return frontier.candidates(submission.user)
