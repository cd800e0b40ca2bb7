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
from numerai_assets.scoring.comparison import Frontier, Member
from numerai_assets.scoring.correlation import correlations
from numerai_assets.scoring.exact import abs_correlation_exceeds
from numerai_assets.scoring.ks import ks_counts
from numerai_assets.scoring.originality import OriginalityResult, decide_originality
from numerai_assets.scoring.policy import ScoringPolicy


class PairStatistics(Protocol):
    """Where the statistics of a round's pairs come from (a protocol: implement its methods).

    ``n_rows`` is the round's number of tournament rows (every file has one value per row).
    Implemented by :class:`InMemoryPairStatistics` (computed on demand) and by the pipeline's
    stored pairs (``numerai_assets.batch.originality.StoredPairStatistics``).

    Examples
    --------
    >>> stats: PairStatistics = InMemoryPairStatistics({"a": [0.1, 0.2, 0.3], "b": [0.3, 0.1, 0.2]})
    >>> r, ks_count = stats.compare("a", ["b"], exact_up_to=0)
    >>> r.round(12), ks_count, stats.correlated("a", "b", 0.5), stats.ks_count("a", "b")
    (array([-0.5]), array([0]), False, 0)
    """  # noqa: E501

    n_rows: int

    def available(self, submission_id: Hashable) -> bool:
        """Whether the submission's predictions can be compared (its file was read)."""
        ...

    def compare(
        self, submission_id: Hashable, earlier_ids: Sequence[Hashable], exact_up_to: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(r, ks_count)`` of the submission against each of ``earlier_ids``, in order.

        ``r`` is Pearson's r as float64 (NaN where undefined: a constant file), computed to
        within rounding (far inside :data:`~numerai_assets.scoring.exact.CORRELATION_TIE_BAND`).
        ``ks_count`` (int64) is the KS statistic as the integer count ``D * n_rows``: **exact**
        wherever the exact count is at most ``exact_up_to`` (every count a threshold can flag)
        and wherever it is the smallest of the row (the nearest pair, ties included); elsewhere
        it may be any lower bound of the exact count that is already above ``exact_up_to``. So
        every decision, pair count, match and nearest pair taken from it is the exact one,
        while a source may skip computing far-apart pairs exactly (:mod:`.ks_sketch`).
        """
        ...

    def correlated(self, submission_id: Hashable, earlier_id: Hashable, threshold: float) -> bool:
        """Whether ``|r| > threshold`` exactly (asked only of an r within rounding of it)."""
        ...

    def ks_count(self, submission_id: Hashable, earlier_id: Hashable) -> int:
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
    """One submission's originality, whom it was compared with, and its nearest pairs.

    Attributes
    ----------
    result : OriginalityResult
        The decision; ``result.matches[k].index`` counts positions in ``compared``.
    compared : tuple of ids
        The earlier submissions compared (the comparison rule's), oldest first.
    nearest_ks : Nearest or None
        The compared submission of smallest KS (the oldest of equals), whatever the decision;
        None when nobody was compared (or a replacement ``decide`` was given).
    nearest_correlation : Nearest or None
        The one of largest defined ``|r|``; None also when every ``r`` is undefined.

    Examples
    --------
    >>> from datetime import datetime
    >>> members = [Member(1, "ann", datetime(2026, 1, 1)), Member(2, "bob", datetime(2026, 1, 2))]
    >>> stats = InMemoryPairStatistics({1: [0.1, 0.2, 0.3, 0.4], 2: [0.4, 0.3, 0.2, 0.1]})
    >>> decision = decide_in_order(members, {2}, stats, ScoringPolicy())[2]
    >>> decision.result.reason, decision.compared, decision.matched
    ('correlated', (1,), (1,))
    >>> decision.nearest_ks
    Nearest(id=1, ks=0.0, correlation=-1.0)
    """

    result: OriginalityResult
    compared: tuple[Hashable, ...]
    nearest_ks: Nearest | None
    nearest_correlation: Nearest | None

    @property
    def matched(self) -> tuple[Hashable, ...]:
        """The ids of the earlier submissions that decided a "not original"."""
        return tuple(self.compared[m.index] for m in self.result.matches)


Decide = Callable[[Hashable, Sequence[Hashable]], OriginalityResult]


def decide_in_order(
    members: Iterable[Member],
    to_decide: Collection[Hashable],
    statistics: PairStatistics,
    policy: ScoringPolicy,
    *,
    decide: Decide | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[Hashable, OriginalityDecision]:
    """The originality of every member of ``to_decide``, walking the round in order.

    Parameters
    ----------
    members : every submission of one round, in any order, each ``comparable`` as it stands
        now (a member that is decided here starts as pending, so comparable).
    to_decide : ids of the members decided here. A member of it whose predictions are not
        ``statistics.available`` is left undecided (and, still pending, keeps its place as
        its user's latest comparable one). Members not in it keep their ``comparable``.
    statistics : the pair statistics of the round.
    policy : the thresholds (:func:`.originality.decide_originality`).
    decide : replaces the policy's decision, given the new id and the compared ids (the
        measured alternatives); its matches carry no nearest pairs.
    progress : called with (decided so far, to decide) after each decision.

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
    wanted = set(to_decide)
    total = sum(m.id in wanted and statistics.available(m.id) for m in ordered)
    frontier = Frontier()
    decisions: dict[Hashable, OriginalityDecision] = {}
    for member in ordered:
        if member.id not in wanted or not statistics.available(member.id):
            frontier.add(member)
            continue
        compared = tuple(
            c.id for c in frontier.candidates(member.user) if statistics.available(c.id)
        )
        decision = _decide_one(member.id, compared, statistics, policy, decide)
        decisions[member.id] = decision
        frontier.add(member.decided(decision.result.original))
        if progress is not None:
            progress(len(decisions), total)
    return decisions


def _decide_one(
    submission_id: Hashable,
    compared: tuple[Hashable, ...],
    statistics: PairStatistics,
    policy: ScoringPolicy,
    decide: Decide | None,
) -> OriginalityDecision:
    if decide is not None:
        return OriginalityDecision(decide(submission_id, compared), compared, None, None)
    exact_up_to = policy.ks_limits(statistics.n_rows).similar_at_most
    r, counts = statistics.compare(submission_id, compared, exact_up_to)
    result = decide_originality(
        r,
        counts,
        statistics.n_rows,
        policy,
        exact_correlated=lambda k: statistics.correlated(
            submission_id, compared[k], policy.max_correlation
        ),
    )
    if result.reason == "correlated" and any(
        counts[m.index] > exact_up_to for m in result.matches
    ):  # a correlated match far in KS may carry a bound: what it records is exact
        exact = {
            m.index: statistics.ks_count(submission_id, compared[m.index])
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
    nearest_ks = nearest_correlation = None
    if compared:
        ks = counts / statistics.n_rows

        def nearest(k: int) -> Nearest:
            value = float(r[k])
            return Nearest(compared[k], float(ks[k]), None if np.isnan(value) else value)

        nearest_ks = nearest(int(np.argmin(counts)))  # the oldest of equals
        magnitude = np.abs(np.asarray(r, dtype=np.float64))
        if not np.isnan(magnitude).all():
            nearest_correlation = nearest(int(np.nanargmax(magnitude)))
    return OriginalityDecision(result, compared, nearest_ks, nearest_correlation)


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
    >>> stats.n_rows, stats.available("a"), stats.available("z")
    (4, True, False)
    >>> r, counts = stats.compare("a", ["b"])
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

    def available(self, submission_id: Hashable) -> bool:
        """Whether it holds the submission's predictions."""
        return submission_id in self._row

    def compare(
        self, submission_id: Hashable, earlier_ids: Sequence[Hashable], exact_up_to: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`PairStatistics.compare`, every count exact (``exact_up_to`` is not needed).

        Raises ``KeyError`` for an id it does not hold.
        """
        new = self.predictions(submission_id)
        rows = np.array([self._row[i] for i in earlier_ids], dtype=np.int64)
        r = correlations(new, self._matrix, rows=rows)
        return r, ks_counts(new, self._sorted, earlier_sorted=True, rows=rows)

    def correlated(self, submission_id: Hashable, earlier_id: Hashable, threshold: float) -> bool:
        """:meth:`PairStatistics.correlated`: :func:`.exact.abs_correlation_exceeds`."""
        return abs_correlation_exceeds(
            self.predictions(submission_id), self.predictions(earlier_id), threshold
        )

    def ks_count(self, submission_id: Hashable, earlier_id: Hashable) -> int:
        """:meth:`PairStatistics.ks_count`: the exact KS count of one pair."""
        rows = np.array([self._row[earlier_id]], dtype=np.int64)
        new = self.predictions(submission_id)
        return int(ks_counts(new, self._sorted, earlier_sorted=True, rows=rows)[0])
