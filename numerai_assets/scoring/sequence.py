"""Judging a list of submissions in order, as the pipeline judges a batch, without a database.

Each array is one user's submission, oldest first. Each is refused by the policy or compared with
what the comparison rule picks among the ones before it (:func:`~numerai_assets.store.documents.
latest_comparable_per_user`, the pipeline's own rule), and its decision is what later ones see.
The ``score`` command and the measured alternatives (:mod:`.alternatives`) use this.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np

from numerai_assets.scoring.originality import OriginalityResult, originality
from numerai_assets.scoring.policy import ScoringPolicy, refusal
from numerai_assets.store.documents import latest_comparable_per_user

Decide = Callable[[np.ndarray, np.ndarray], OriginalityResult]
_START = datetime(2000, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Judged:
    """One submission's outcome: refused (with the reason) or its originality result, and the
    positions (in the input list) of the submissions it was compared with."""

    refused: str | None
    result: OriginalityResult | None
    compared: tuple[int, ...]


def judge_in_order(
    predictions: Sequence[np.ndarray], policy: ScoringPolicy, decide: Decide | None = None
) -> list[Judged]:
    """Every submission's outcome, oldest first; ``decide(new, earlier_rows)`` defaults to
    :func:`.originality` under ``policy``."""
    if decide is None:

        def decide(new: np.ndarray, earlier: np.ndarray) -> OriginalityResult:
            return originality(new, earlier, policy=policy)

    docs: list[dict] = []
    judged = []
    for k, p in enumerate(predictions):
        doc = {"_id": k, "username": f"user-{k}", "competition_id": 0}
        doc["created"] = _START + timedelta(seconds=k)
        reason = refusal(p, policy)
        if reason is not None:
            docs.append({**doc, "invalid": {"reason": reason}})
            judged.append(Judged(reason, None, ()))
            continue
        compared = tuple(d["_id"] for d in latest_comparable_per_user(docs, doc))
        rows = np.vstack([predictions[j] for j in compared]) if compared else np.empty((0, len(p)))
        result = decide(p, rows)
        docs.append({**doc, "original": {"pending": False, "value": result.original}})
        judged.append(Judged(None, result, compared))
    return judged
