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
    """One submission's outcome: refused (with the reason) or its originality decision; the
    positions (in the input list) of the submissions it was compared with."""

    refused: str | None
    decision: OriginalityDecision | None

    @property
    def result(self) -> OriginalityResult | None:
        return None if self.decision is None else self.decision.result

    @property
    def compared(self) -> tuple[int, ...]:
        return () if self.decision is None else tuple(int(k) for k in self.decision.compared)


def judge_in_order(
    predictions: Sequence[np.ndarray], policy: ScoringPolicy, decide: Decide | None = None
) -> list[Judged]:
    """Every submission's outcome, oldest first, each from its own user.

    ``decide(new, earlier_rows)`` replaces the policy's decision (the measured alternatives).
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

    decisions = decide_in_order(members, readable, statistics, policy, decide=by_ids)
    return [Judged(reason, decisions.get(k)) for k, reason in enumerate(refused)]
