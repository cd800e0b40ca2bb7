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

    Parameters
    ----------
    created : datetime
        The upload time; a naive one is taken to be UTC (pymongo's convention), so documents
        read back naive or aware sort alike.
    submission_id : hashable, ordered among the round's ids
        Breaks ties of equal ``created``.

    Returns
    -------
    tuple of (datetime, id)
        A sort key.

    Raises
    ------
    ValueError
        If ``created`` is not a ``datetime``.

    Examples
    --------
    >>> from datetime import datetime, timedelta, timezone
    >>> naive = datetime(2026, 1, 2, 12, 0)
    >>> paris = datetime(2026, 1, 2, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    >>> order_key(naive, 7) == order_key(paris, 7)
    True
    >>> sorted([3, 1, 2], key=lambda i: order_key(naive, i))  # same time: by id
    [1, 2, 3]
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
    id : hashable
        The submission's id, ordered among the round's ids.
    user : str
        Its participant.
    created : datetime
        Its upload time (naive means UTC). Not checked here: :attr:`key` raises if it is not
        a datetime.
    comparable : bool, default True
        Not invalid, and original or still pending: later submissions of other users may be
        compared against it.

    Examples
    --------
    >>> from datetime import datetime
    >>> pending = Member("s1", "ann", datetime(2026, 1, 1))
    >>> pending.decided(original=False)
    Member(id='s1', user='ann', created=datetime.datetime(2026, 1, 1, 0, 0), comparable=False)
    """

    id: Hashable
    user: str
    created: datetime
    comparable: bool = True

    @property
    def key(self) -> tuple[datetime, Any]:
        """Its place in the round's order: :func:`order_key` of ``created`` and ``id``."""
        return order_key(self.created, self.id)

    def decided(self, original: bool) -> Member:
        """This member once its originality is decided (comparable only if original)."""
        return replace(self, comparable=original)


class Frontier:
    """Each user's latest comparable member so far, for walking a round in order.

    Add members in (``created``, id) order with :meth:`add`; :meth:`candidates` is then what
    the comparison rule picks for a submission of ``user`` that comes next. Each call costs
    time linear in the number of users. The order is not checked: that is the caller's walk.

    Examples
    --------
    >>> from datetime import datetime
    >>> frontier = Frontier()
    >>> frontier.add(Member(1, "ann", datetime(2026, 1, 1)))
    >>> frontier.add(Member(2, "bob", datetime(2026, 1, 2)))
    >>> frontier.add(Member(3, "bob", datetime(2026, 1, 3), comparable=False))  # no change
    >>> frontier.add(Member(4, "ann", datetime(2026, 1, 4)))  # ann's latest, now newest
    >>> [m.id for m in frontier.candidates("cat")], [m.id for m in frontier.candidates("ann")]
    ([2, 4], [2])
    """

    def __init__(self) -> None:
        # Re-inserted on every change, so the dict's order is the order of the members held.
        self._latest: dict[str, Member] = {}

    def add(self, member: Member) -> None:
        """Hold ``member`` as its user's latest if it is comparable; else change nothing."""
        if member.comparable:
            self._latest.pop(member.user, None)
            self._latest[member.user] = member

    def candidates(self, user: str) -> list[Member]:
        """Every other user's latest comparable member, oldest first."""
        return [member for name, member in self._latest.items() if name != user]


def latest_comparable_per_user(members: Iterable[Member], submission: Member) -> list[Member]:
    """What ``submission``'s originality is compared against: :data:`COMPARISON_RULE`.

    For each user other than ``submission.user``, that user's latest comparable member before
    ``submission`` in the round's order (``created``, then id).

    Parameters
    ----------
    members : iterable of Member
        One round's submissions, in any order, each ``comparable`` as decided so far. Members
        at or after ``submission`` in the order are ignored.
    submission : Member
        The submission to compare.

    Returns
    -------
    list of Member
        At most one per other user, oldest first.

    Raises
    ------
    ValueError
        If a member's ``created`` is not a datetime (:func:`order_key`).

    Examples
    --------
    Bob's latest submission was not original, so his earlier original one stands for him;
    Ann's own submissions and Dan's later one are not compared:

    >>> from datetime import datetime
    >>> members = [
    ...     Member(1, "ann", datetime(2026, 1, 1)),
    ...     Member(2, "bob", datetime(2026, 1, 2)),
    ...     Member(3, "bob", datetime(2026, 1, 3), comparable=False),
    ...     Member(4, "cat", datetime(2026, 1, 4)),
    ...     Member(5, "ann", datetime(2026, 1, 5)),
    ...     Member(6, "dan", datetime(2026, 1, 6)),
    ... ]
    >>> [m.id for m in latest_comparable_per_user(members, members[4])]
    [2, 4]
    """
    key = submission.key
    frontier = Frontier()
    for member in sorted((m for m in members if m.key < key), key=lambda m: m.key):
        frontier.add(member)
    return frontier.candidates(submission.user)
