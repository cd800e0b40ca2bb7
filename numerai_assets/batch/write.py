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
from numerai_assets.store import SubmissionNotFound, SubmissionStore


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
    """Write every result back; one summary row per submission for the run's report."""
    summary = []
    for entry in batch.entries:
        doc = entry.submission
        row = {"id": entry.id, "username": doc["username"]}
        if entry.failure is not None:
            summary.append({**row, "pending": entry.failure})
            continue
        try:
            if entry.invalid_reason is not None:
                store.mark_invalid(
                    doc["_id"],
                    reason=entry.invalid_reason,
                    at=scored_at,
                    run_id=run_id,
                    policy=batch.policy.version,
                    sync_leaderboard=False,
                )
                summary.append({**row, "invalid": entry.invalid_reason})
                continue
            concordant = concordance_record(concordance_results[entry.id])
            original = originality_record(originality.decisions[entry.id], originality.users)
            store.write_scores(
                doc["_id"],
                concordance=concordant,
                originality=original,
                scored_at=scored_at,
                run_id=run_id,
                policy=batch.policy.version,
                sync_leaderboard=False,
            )
        except SubmissionNotFound:
            log(f"{doc['_id']}: deleted before its scores were written; left out")
            continue
        summary.append(
            {
                **row,
                "concordance": concordant["score"],
                "concordant": concordant["value"],
                "original": original["value"],
                "reason": original["reason"],
            }
        )
    # One leaderboard write for the whole batch, which also completes any write an earlier run
    # was interrupted in the middle of (a submission written, its entry not).
    store.reconcile_leaderboard(batch.round)
    return summary
