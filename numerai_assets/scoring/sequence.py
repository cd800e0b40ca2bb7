"""Judging a list of submissions in order, as the pipeline judges a round, without a database.

Each array is one user's submission, oldest first. Each is refused by the policy or decided by
:func:`~numerai_assets.scoring.round_decisions.decide_in_order` (the pipeline's own pass, with
the pipeline's comparison rule), and its decision is what later ones see. The ``score`` command
and the measured alternatives (:mod:`.alternatives`) use this.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np

from numerai_assets.scoring.comparison import Member
from numerai_assets.scoring.originality import OriginalityResult
from numerai_assets.scoring.policy import ScoringPolicy, refusal
from numerai_assets.scoring.round_decisions import (
    InMemoryPairStatistics,
    OriginalityDecision,
    decide_in_order,
)

Decide = Callable[[np.ndarray, np.ndarray], OriginalityResult]
_START = datetime(2000, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Judged:
    """One submission's outcome in :func:`judge_in_order`.

    Attributes
    ----------
    refused : str or None
        The policy's reason for refusing it (:func:`.policy.refusal`), or None.
    decision : OriginalityDecision or None
        Its originality decision; None when refused. Its ids are positions in the input list.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> first = rng.random(100)
    >>> judged = judge_in_order([first, np.full(100, 0.5), first[::-1]], ScoringPolicy())
    >>> judged[1].refused
    'every probability is 0.5: a constant file carries no prediction'
    >>> judged[2].result.reason, judged[2].compared
    ('duplicate', (0,))
    """

    refused: str | None
    decision: OriginalityDecision | None

    @property
    def result(self) -> OriginalityResult | None:
        """The originality result; None when refused."""
        return None if self.decision is None else self.decision.result

    @property
    def compared(self) -> tuple[int, ...]:
        """The positions (in the input list) of the submissions it was compared with."""
        return () if self.decision is None else tuple(int(k) for k in self.decision.compared)


def judge_in_order(
    predictions: Sequence[np.ndarray], policy: ScoringPolicy, decide: Decide | None = None
) -> list[Judged]:
    """Every submission's outcome, oldest first, each from its own user, as the pipeline would.

    Each is refused by the policy (:func:`.policy.refusal`) or decided by
    :func:`.round_decisions.decide_in_order` under the comparison rule; as every submission has
    its own user, each is compared with every earlier one that is comparable (not refused, and
    original).

    Parameters
    ----------
    predictions : sequence of array_like of shape ``(n,)``, float
        The submissions, oldest first, all of one length; finite.
    policy : ScoringPolicy
    decide : callable, optional
        ``decide(new, earlier_rows)`` replaces the policy's originality decision (the
        measured alternatives): ``new`` of shape ``(n,)``, ``earlier_rows`` of shape
        ``(m, n)``, returning an :class:`.originality.OriginalityResult`.

    Returns
    -------
    list of Judged
        One per submission, in input order.

    Raises
    ------
    ValueError
        If a submission that is not refused is not a one-dimensional array of finite numbers,
        or differs in length from the others (:class:`.round_decisions.InMemoryPairStatistics`).

    Examples
    --------
    A copy is not original, so the file after it is compared with the first one only:

    >>> rng = np.random.default_rng(0)
    >>> first = rng.random(100)
    >>> judged = judge_in_order([first, first[::-1], rng.beta(2.0, 5.0, 100)], ScoringPolicy())
    >>> [(j.result.reason, j.compared) for j in judged]
    [(None, ()), ('duplicate', (0,)), (None, (0,))]
    """
    refused = [refusal(p, policy) for p in predictions]
    members = [
        Member(k, f"user-{k}", _START + timedelta(seconds=k), comparable=reason is None)
        for k, reason in enumerate(refused)
    ]
    readable = {k: predictions[k] for k, reason in enumerate(refused) if reason is None}
    statistics = InMemoryPairStatistics(readable)
    by_ids = None
    if decide is not None:

        def by_ids(new: Hashable, compared: Sequence[Hashable]) -> OriginalityResult:
            rows = [statistics.predictions(k) for k in compared]
            earlier = np.vstack(rows) if rows else np.empty((0, statistics.n_rows))
            return decide(statistics.predictions(new), earlier)

    decisions = decide_in_order(
        members, readable, statistics, policy, decide=by_ids, keep_compared=True
    )
    return [Judged(reason, decisions.get(k)) for k, reason in enumerate(refused)]
