"""A round's originality decisions, taken in order from the statistics of its pairs.

Scoring a round's originality has two parts. The statistics of a pair of submissions (the KS
count and Pearson's r) depend on nothing but the two files; which pairs are *compared* depends
on earlier decisions (:mod:`.comparison`: each other user's latest comparable submission). So
the statistics come from a :class:`PairStatistics` source (computed on demand, or kept for the
round), and the decisions are one pass over the round in (``created``, id) order
(:func:`decide_in_order`), each decision seen by the ones after it.

The pipeline, the ``score`` command and the measured alternatives all decide through
:func:`decide_in_order`: one originality path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from numerai_assets.scoring._arrays import as_vector
from numerai_assets.scoring.comparison import Member
from numerai_assets.scoring.exact import abs_correlation_exceeds
from numerai_assets.scoring.originality import OriginalityResult, decide_originality
from numerai_assets.scoring.policy import ScoringPolicy

# The kernels (numba) are imported where pairs are computed: the decisions' types and rules load
# without numba, and so does the code location that names them (the daemon, a run's start).


class PairStatistics(Protocol):
    """Where the statistics of a round's pairs come from (a protocol: implement its methods).

    A source knows its submissions by *places* (its own row numbers, say): :meth:`index` gives
    each id's, so the ordered pass asks about whole candidate lists as integer arrays, which
    keeps a round of 10,000 submissions (up to 10,000 candidates each) in vectorized code.
    ``n_rows`` is the round's number of tournament rows (every file has one value per row).
    Implemented by :class:`InMemoryPairStatistics` (computed on demand) and by the pipeline's
    stored pairs (``numerai_assets.batch.originality.StoredPairStatistics``).

    Examples
    --------
    >>> stats: PairStatistics = InMemoryPairStatistics({"a": [0.1, 0.2, 0.3], "b": [0.3, 0.1, 0.2]})
    >>> places = stats.index(["a", "b", "z"])
    >>> places.tolist()
    [0, 1, -1]
    >>> r, ks_count = stats.compare(0, places[1:2], exact_up_to=0)
    >>> r.round(12), ks_count, stats.correlated(0, 1, 0.5), stats.ks_count(0, 1)
    (array([-0.5]), array([0]), False, 0)
    """  # noqa: E501

    n_rows: int

    def index(self, ids: Sequence[Hashable]) -> np.ndarray:
        """Each id's place (int64), or -1 where its predictions cannot be compared (its file
        was not read)."""
        ...

    def compare(
        self, new: int, earlier: np.ndarray, exact_up_to: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(r, ks_count)`` of the submission at place ``new`` against each place of
        ``earlier`` (int64 array), in order.

        ``r`` is Pearson's r as float64 (NaN where undefined: a constant file), computed to
        within rounding (far inside :data:`~numerai_assets.scoring.exact.CORRELATION_TIE_BAND`).
        ``ks_count`` (int64) is the KS statistic as the integer count ``D * n_rows``: **exact**
        wherever the exact count is at most ``exact_up_to`` (every count a threshold can flag)
        and wherever it is the smallest of the row (the nearest pair, ties included); elsewhere
        it may be any lower bound of the exact count that is already above both ``exact_up_to``
        and the row's smallest count. So every decision, pair count, match and nearest pair
        taken from it is the exact one (a nearest pair by |r| given as a bound is completed by
        :meth:`ks_count`), while a source may skip computing far-apart pairs exactly
        (:mod:`.ks_sketch`).
        """
        ...

    def correlated(self, new: int, earlier: int, threshold: float) -> bool:
        """Whether ``|r| > threshold`` exactly (asked only of an r within rounding of it)."""
        ...

    def ks_count(self, new: int, earlier: int) -> int:
        """The exact KS count of one pair (asked of a correlated match whose count
        :meth:`compare` may have given as a bound: a match records its exact KS)."""
        ...


@dataclass(frozen=True)
class Nearest:
    """The closest compared earlier submission by one measure.

    Attributes
    ----------
    id : hashable
        Its id.
    ks : float
        The KS statistic with it (exact).
    correlation : float or None
        Pearson's r with it; None where undefined (a constant file).

    Examples
    --------
    >>> Nearest("s1", ks=0.0, correlation=None)
    Nearest(id='s1', ks=0.0, correlation=None)
    """

    id: Hashable
    ks: float
    correlation: float | None  # None: undefined (a constant file)


@dataclass(frozen=True)
class OriginalityDecision:
    """One submission's originality, who decided it, and its nearest pairs.

    Attributes
    ----------
    result : OriginalityResult
        The decision (``result.compared``: how many earlier submissions were compared).
    matched : tuple of ids
        The earlier submissions that decided a "not original", in ``result.matches``' order.
    nearest_ks : Nearest or None
        The compared submission of smallest KS (the oldest of equals), whatever the decision;
        None when nobody was compared (or a replacement ``decide`` was given).
    nearest_correlation : Nearest or None
        The one of largest defined ``|r|``; None also when every ``r`` is undefined.
    compared : tuple of ids, or None
        The earlier submissions compared, oldest first, when asked for (``keep_compared``):
        a round of 10,000 would hold 50 million of them.

    Examples
    --------
    >>> from datetime import datetime
    >>> members = [Member(1, "ann", datetime(2026, 1, 1)), Member(2, "bob", datetime(2026, 1, 2))]
    >>> stats = InMemoryPairStatistics({1: [0.1, 0.2, 0.3, 0.4], 2: [0.4, 0.3, 0.2, 0.1]})
    >>> decision = decide_in_order(members, {2}, stats, ScoringPolicy(), keep_compared=True)[2]
    >>> decision.result.reason, decision.compared, decision.matched
    ('correlated', (1,), (1,))
    >>> decision.nearest_ks
    Nearest(id=1, ks=0.0, correlation=-1.0)
    """

    result: OriginalityResult
    matched: tuple[Hashable, ...]
    nearest_ks: Nearest | None
    nearest_correlation: Nearest | None
    compared: tuple[Hashable, ...] | None = None


Decide = Callable[[Hashable, Sequence[Hashable]], OriginalityResult]


def decide_in_order(
    members: Iterable[Member],
    to_decide: Collection[Hashable],
    statistics: PairStatistics,
    policy: ScoringPolicy,
    *,
    decide: Decide | None = None,
    progress: Callable[[int, int], None] | None = None,
    keep_compared: bool = False,
) -> dict[Hashable, OriginalityDecision]:
    """The originality of every member of ``to_decide``, walking the round in order.

    Parameters
    ----------
    members : every submission of one round, in any order, each ``comparable`` as it stands
        now (a member that is decided here starts as pending, so comparable).
    to_decide : ids of the members decided here. A member of it that ``statistics`` cannot
        compare (its place is -1) is left undecided (and, still pending, keeps its place as
        its user's latest comparable one). Members not in it keep their ``comparable``.
    statistics : the pair statistics of the round.
    policy : the thresholds (:func:`.originality.decide_originality`).
    decide : replaces the policy's decision, given the new id and the compared ids (the
        measured alternatives); its matches carry no nearest pairs.
    progress : called with (decided so far, to decide) after each decision.
    keep_compared : record on each decision the ids it was compared with (small rounds: the
        ``score`` command, tests).

    Returns
    -------
    dict
        id to :class:`OriginalityDecision`, for each decided member.

    Raises
    ------
    ValueError
        If a member's ``created`` is not a datetime (:func:`.comparison.order_key`). What
        ``statistics`` or ``decide`` raise is not caught.

    Examples
    --------
    >>> from datetime import datetime
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a = rng.random(1000)
    >>> members = [Member(1, "ann", datetime(2026, 1, 1)), Member(2, "bob", datetime(2026, 1, 2))]
    >>> stats = InMemoryPairStatistics({1: a, 2: a[::-1].copy()})
    >>> decide_in_order(members, {1, 2}, stats, ScoringPolicy())[2].result.reason
    'duplicate'
    """
    ordered = sorted(members, key=lambda m: m.key)
    ids = [m.id for m in ordered]
    places = np.asarray(statistics.index(ids), dtype=np.int64)
    users: dict[str, int] = {}
    user_of = np.array([users.setdefault(m.user, len(users)) for m in ordered], dtype=np.int64)
    # Each user's latest comparable member so far (its position in ``ordered``; -1: none): the
    # comparison rule's frontier (:class:`.comparison.Frontier`), as an array.
    latest = np.full(len(users), -1, dtype=np.int64)
    wanted = set(to_decide)
    total = sum(m.id in wanted and places[k] >= 0 for k, m in enumerate(ordered))
    decisions: dict[Hashable, OriginalityDecision] = {}
    for k, member in enumerate(ordered):
        comparable = member.comparable
        if member.id in wanted and places[k] >= 0:
            others = latest[latest >= 0]
            others = others[user_of[others] != user_of[k]]  # other users' only
            others = np.sort(others[places[others] >= 0])  # compared: read; oldest first
            decision = _decide_one(
                k, others, ids, places, statistics, policy, decide, keep_compared
            )
            decisions[member.id] = decision
            comparable = decision.result.original
            if progress is not None:
                progress(len(decisions), total)
        if comparable:
            latest[user_of[k]] = k
    return decisions


def _decide_one(
    k: int,
    others: np.ndarray,
    ids: Sequence[Hashable],
    places: np.ndarray,
    statistics: PairStatistics,
    policy: ScoringPolicy,
    decide: Decide | None,
    keep_compared: bool,
) -> OriginalityDecision:
    """The decision of ``ordered[k]`` against ``ordered[others]`` (positions, oldest first)."""
    compared = tuple(ids[o] for o in others) if keep_compared or decide is not None else None
    if decide is not None:
        result = decide(ids[k], compared)
        matched = tuple(compared[m.index] for m in result.matches)
        return OriginalityDecision(result, matched, None, None, compared)
    new, earlier = int(places[k]), places[others]
    exact_up_to = policy.ks_limits(statistics.n_rows).similar_at_most
    r, counts = statistics.compare(new, earlier, exact_up_to)
    result = decide_originality(
        r,
        counts,
        statistics.n_rows,
        policy,
        exact_correlated=lambda m: statistics.correlated(
            new, int(earlier[m]), policy.max_correlation
        ),
    )
    if result.reason == "correlated" and any(
        counts[m.index] > exact_up_to for m in result.matches
    ):  # a correlated match far in KS may carry a bound: what it records is exact
        exact = {
            m.index: statistics.ks_count(new, int(earlier[m.index]))
            for m in result.matches
            if counts[m.index] > exact_up_to
        }
        result = dataclasses.replace(
            result,
            matches=tuple(
                dataclasses.replace(m, ks=exact[m.index] / statistics.n_rows)
                if m.index in exact
                else m
                for m in result.matches
            ),
        )
    matched = tuple(ids[others[m.index]] for m in result.matches)
    nearest_ks = nearest_correlation = None
    if len(others):

        def nearest(m: int, count_is_exact: bool) -> Nearest:
            value = float(r[m])
            count = int(counts[m])
            if not count_is_exact and count > exact_up_to:  # a bound, maybe: record the exact
                count = statistics.ks_count(new, int(earlier[m]))
            return Nearest(
                ids[others[m]], count / statistics.n_rows, None if np.isnan(value) else value
            )

        # The smallest count of the row is exact (PairStatistics.compare); the oldest of equals.
        nearest_ks = nearest(int(np.argmin(counts)), count_is_exact=True)
        magnitude = np.abs(np.asarray(r, dtype=np.float64))
        if not np.isnan(magnitude).all():
            nearest_correlation = nearest(int(np.nanargmax(magnitude)), count_is_exact=False)
    return OriginalityDecision(result, matched, nearest_ks, nearest_correlation, compared)


class InMemoryPairStatistics:
    """Pair statistics computed on demand from predictions held in memory.

    For the ``score`` command, the measured alternatives and tests; every KS count is exact.

    Parameters
    ----------
    predictions : mapping of id to array_like of shape ``(n,)``, float
        Every submission's predictions, id-aligned, all of one length ``n``; finite.

    Raises
    ------
    ValueError
        If a submission's predictions are not a one-dimensional array of finite numbers, are
        empty, or differ in length from the first's (the message names its id).

    Examples
    --------
    >>> stats = InMemoryPairStatistics({"a": [0.1, 0.2, 0.3, 0.4], "b": [0.4, 0.3, 0.2, 0.1]})
    >>> stats.n_rows, stats.index(["a", "z"]).tolist()
    (4, [0, -1])
    >>> r, counts = stats.compare(0, np.array([1]))
    >>> r.round(12), counts  # the same values reordered: KS 0, r = -1
    (array([-1.]), array([0]))
    >>> InMemoryPairStatistics({"a": [0.1, 0.2], "b": [0.1, 0.2, 0.3]})
    Traceback (most recent call last):
    ...
    ValueError: predictions['b'] must have the 2 values of predictions['a'], got 3
    """

    def __init__(self, predictions: Mapping[Hashable, np.ndarray]) -> None:
        self._ids = list(predictions)
        self._row = {submission_id: k for k, submission_id in enumerate(self._ids)}
        rows = [as_vector(predictions[i], f"predictions[{i!r}]") for i in self._ids]
        for submission_id, row in zip(self._ids, rows, strict=True):
            if row.shape != rows[0].shape:
                raise ValueError(
                    f"predictions[{submission_id!r}] must have the {rows[0].shape[0]} values of "
                    f"predictions[{self._ids[0]!r}], got {row.shape[0]}"
                )
        self.n_rows = rows[0].shape[0] if rows else 0
        self._matrix = np.vstack(rows) if rows else np.empty((0, 0))
        self._sorted = np.sort(self._matrix, axis=1)

    def predictions(self, submission_id: Hashable) -> np.ndarray:
        """The submission's predictions, shape ``(n,)`` (a view: do not modify).

        Raises ``KeyError`` for an id it does not hold.
        """
        return self._matrix[self._row[submission_id]]

    def index(self, ids: Sequence[Hashable]) -> np.ndarray:
        """:meth:`PairStatistics.index`: each id's row, -1 for an id it does not hold."""
        return np.array([self._row.get(i, -1) for i in ids], dtype=np.int64)

    def compare(
        self, new: int, earlier: np.ndarray, exact_up_to: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`PairStatistics.compare`, every count exact (``exact_up_to`` is not needed)."""
        from numerai_assets.scoring.correlation import correlations
        from numerai_assets.scoring.ks import ks_counts

        rows = np.asarray(earlier, dtype=np.int64)
        values = self._matrix[new]
        r = correlations(values, self._matrix, rows=rows)
        return r, ks_counts(values, self._sorted, earlier_sorted=True, rows=rows)

    def correlated(self, new: int, earlier: int, threshold: float) -> bool:
        """:meth:`PairStatistics.correlated`: :func:`.exact.abs_correlation_exceeds`."""
        return abs_correlation_exceeds(self._matrix[new], self._matrix[earlier], threshold)

    def ks_count(self, new: int, earlier: int) -> int:
        """:meth:`PairStatistics.ks_count`: the exact KS count of one pair."""
        from numerai_assets.scoring.ks import ks_counts

        rows = np.array([earlier], dtype=np.int64)
        return int(ks_counts(self._matrix[new], self._sorted, earlier_sorted=True, rows=rows)[0])
