"""``numerai-assets score``: score one submission file offline, without Dagster or a database.

How people check a file by hand, and how the math is checked end to end on real files. The
deployment's scoring policy applies (``NUMERAI_SCORING_POLICY``), and the ``--against`` files
are judged as the pipeline would judge them: in order, each by the same comparison rule, so an
earlier file that is itself a copy (or refused) is not compared against.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from numerai_assets.datasets import load_round_dataset
from numerai_assets.scoring import (
    ScoringPolicy,
    SubmissionError,
    concordance,
    consistency,
    originality,
    read_submission,
    refusal,
)
from numerai_assets.scoring.concordance import cluster_round
from numerai_assets.store.documents import latest_comparable_per_user


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("score", help="score one submission file against a round dataset")
    parser.add_argument("--dataset", required=True, type=Path, help="round dataset: folder or zip")
    parser.add_argument("--submission", required=True, type=Path, help="CSV id,probability")
    parser.add_argument(
        "--against",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="an earlier submission of another user (repeat, oldest first)",
    )
    parser.add_argument("--seed", type=int, help="KMeans random_state (default: the policy's)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def _read(path: Path, ids: np.ndarray) -> np.ndarray:
    try:
        return read_submission(path, ids)
    except SubmissionError as error:
        raise SubmissionError(f"{path}: {error}") from None


def _judge_against(
    earlier: list[np.ndarray], policy: ScoringPolicy
) -> tuple[list[dict], list[str | None]]:
    """The ``--against`` files as submission documents of distinct users, oldest first, with
    the statuses the pipeline would have given them; and each one's refusal, if any."""
    start = datetime(2000, 1, 1, tzinfo=timezone.utc)
    docs: list[dict] = []
    refused = []
    for k, predictions in enumerate(earlier):
        doc = {"_id": k, "username": f"against-{k}", "competition_id": 0}
        doc["created"] = start + timedelta(seconds=k)
        reason = refusal(predictions, policy)
        refused.append(reason)
        if reason is not None:
            docs.append({**doc, "invalid": {"reason": reason}})
            continue
        result = _originality(predictions, doc, docs, earlier, policy)[0]
        docs.append({**doc, "original": {"pending": False, "value": result.original}})
    return docs, refused


def _originality(
    predictions: np.ndarray,
    doc: dict,
    docs: list[dict],
    earlier: list[np.ndarray],
    policy: ScoringPolicy,
) -> tuple:
    """``doc``'s originality against what the comparison rule picks from ``docs``."""
    picked = [d["_id"] for d in latest_comparable_per_user(docs, doc)]
    rows = np.vstack([earlier[k] for k in picked]) if picked else np.empty((0, len(predictions)))
    return originality(predictions, rows, policy=policy), picked


def score_files(
    dataset: Path,
    submission: Path,
    against: list[Path],
    *,
    seed: int | None = None,
    policy: ScoringPolicy | None = None,
) -> dict:
    """The three scores of ``submission`` as the JSON-able dict the command prints.

    Raises :class:`SubmissionError` when a file cannot be read or the policy refuses
    ``submission``; an ``--against`` file the policy refuses is reported and not compared.
    """
    policy = ScoringPolicy.from_settings() if policy is None else policy
    if seed is not None:
        policy = dataclasses.replace(policy, random_state=seed)
    data = load_round_dataset(dataset)
    ids = data.tournament_ids
    probabilities = _read(submission, ids)
    reason = refusal(probabilities, policy)
    if reason is not None:
        raise SubmissionError(f"{submission}: {reason}")
    earlier = [_read(p, ids) for p in against]

    fitted = cluster_round(
        data.all_features(),
        data.tournament[list(data.features)].to_numpy(),
        data.data_types,
        ids,
        random_state=policy.random_state,
        n_clusters=policy.n_clusters,
    )
    concordance_result = concordance(probabilities, fitted.clusters, policy=policy)
    docs, refused = _judge_against(earlier, policy)
    mine = {"_id": len(docs), "username": "me", "competition_id": 0}
    mine["created"] = datetime(2000, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=len(docs))
    originality_result, picked = _originality(probabilities, mine, docs, earlier, policy)
    validation = data.validation_rows()
    consistency_result = consistency(
        probabilities[validation],
        data.tournament["target"].to_numpy(dtype=float)[validation],
        data.tournament["era"].to_numpy()[validation],
    )
    return {
        "policy": policy.version,
        "concordance": {
            "score": concordance_result.score,
            "concordant": concordance_result.concordant,
            "clusters": [dataclasses.asdict(c) for c in concordance_result.clusters],
        },
        "originality": {
            "original": originality_result.original,
            "reason": originality_result.reason,
            "compared": originality_result.compared,
            "matches": [
                {"file": str(against[picked[m.index]]), "correlation": m.correlation, "ks": m.ks}
                for m in originality_result.matches
            ],
            "not_compared": [
                {"file": str(against[d["_id"]]), "why": refused[d["_id"]] or "not original"}
                for d in docs
                if d["_id"] not in picked
            ],
        },
        "consistency": consistency_result.percent,
        "validation_logloss": consistency_result.validation_logloss,
    }


def run(args: argparse.Namespace) -> int:
    result = score_files(args.dataset, args.submission, args.against, seed=args.seed)
    if args.json:
        print(json.dumps(result))
        return 0
    c, o = result["concordance"], result["originality"]
    print(f"concordance  {c['score']:.4f}  {'concordant' if c['concordant'] else 'NOT concordant'}")
    why = f" ({o['reason']}: {', '.join(m['file'] for m in o['matches'])})" if o["reason"] else ""
    print(f"originality  {'original' if o['original'] else 'NOT original'}{why}")
    print(
        f"consistency  {result['consistency']:.1f}%  (validation logloss "
        f"{result['validation_logloss']:.5f})"
    )
    for skipped in o["not_compared"]:
        print(f"not compared {skipped['file']} ({skipped['why']})")
    print(f"policy       {result['policy']}")
    return 0
