"""The last step of scoring a batch: every decision written back, one atomic update per
submission, and the round's leaderboard brought in line once."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Mapping
from datetime import datetime

from numerai_assets.batch.originality import OriginalityScores
from numerai_assets.batch.prepare import PreparedBatch
from numerai_assets.scoring.concordance import ConcordanceResult
from numerai_assets.scoring.round_decisions import Nearest, OriginalityDecision
from numerai_assets.store import SubmissionStore
from numerai_assets.store.submissions import invalid_update, scores_update


def concordance_record(result: ConcordanceResult) -> dict:
    """The concordance stored next to a submission's flag."""
    return {
        "value": result.concordant,
        "score": result.score,
        "clusters": [dataclasses.asdict(c) for c in result.clusters],
    }


def originality_record(decision: OriginalityDecision, users: Mapping[Hashable, str]) -> dict:
    """The originality stored next to a submission's flag: the decision, the pairs that decided
    it (``matches``), the counts of pairs meeting each test and the nearest pairs (shown to
    participants and drawn in the round's picture, whatever the decision)."""
    result = decision.result

    def pair(nearest: Nearest) -> dict:
        return {
            "username": users[nearest.id],
            "submission_id": str(nearest.id),
            "ks": nearest.ks,
            "correlation": nearest.correlation,
        }

    nearest = {}
    if decision.nearest_ks is not None:
        nearest["ks"] = pair(decision.nearest_ks)
    if decision.nearest_correlation is not None:
        nearest["correlation"] = pair(decision.nearest_correlation)
    return {
        "value": result.original,
        "reason": result.reason,
        "pairs": result.pairs,
        "matches": [
            {
                "submission_id": str(matched),
                "username": users[matched],
                "correlation": match.correlation,
                "ks": match.ks,
            }
            for match, matched in zip(result.matches, decision.matched, strict=True)
        ],
        "nearest": nearest,
    }


def write_results(
    store: SubmissionStore,
    batch: PreparedBatch,
    concordance_results: Mapping[str, ConcordanceResult],
    originality: OriginalityScores,
    *,
    run_id: str,
    scored_at: datetime,
    log: Callable[[str], None] = lambda message: None,
) -> list[dict]:
    """Write every result back in one call (:meth:`SubmissionStore.update_many`); one summary
    row per submission for the run's report."""
    rows, updates = [], []
    for entry in batch.entries:
        doc = entry.submission
        row = {"id": entry.id, "username": doc["username"]}
        if entry.failure is not None:
            rows.append({**row, "pending": entry.failure})
            continue
        if entry.invalid_reason is not None:
            update = invalid_update(
                reason=entry.invalid_reason,
                at=scored_at,
                run_id=run_id,
                policy=batch.policy.version,
            )
            rows.append({**row, "invalid": entry.invalid_reason})
        else:
            concordant = concordance_record(concordance_results[entry.id])
            original = originality_record(originality.decisions[entry.id], originality.users)
            update = scores_update(
                concordance=concordant,
                originality=original,
                scored_at=scored_at,
                run_id=run_id,
                policy=batch.policy.version,
            )
            rows.append(
                {
                    **row,
                    "concordance": concordant["score"],
                    "concordant": concordant["value"],
                    "original": original["value"],
                    "reason": original["reason"],
                }
            )
        updates.append((doc["_id"], update))
    gone = {str(oid) for oid in store.update_many(updates)}
    for sid in sorted(gone):
        log(f"{sid}: deleted before its scores were written; left out")
    # One leaderboard write for the whole batch, which also completes any write an earlier run
    # was interrupted in the middle of (a submission written, its entry not).
    store.reconcile_leaderboard(batch.round)
    return [row for row in rows if row["id"] not in gone]
